//! Input rules shared by the API, the CLI and the portal. Every name becomes a DNS-1123 label here,
//! before it can touch a path, a template or a command.

use serde::Serialize;
use std::fmt;

/// One field that failed validation, with a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer-ish name of the field, e.g. `service_name`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// All the field errors of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn check(&mut self, r: Result<(), FieldError>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Longest DNS-1123 label.
pub const MAX_NAME_LEN: usize = 63;

/// Checks that `value` is a DNS-1123 label: 1–63 characters of `a-z`, `0-9` and `-`, starting with a
/// letter and ending with a letter or digit. (Kubernetes allows a leading digit; we don't, because the
/// name also becomes a Terraform identifier, an IAM role name and a hostname label.)
pub fn dns_label(field: &str, value: &str) -> Result<(), FieldError> {
    let fail = |why: &str| {
        Err(FieldError::new(
            field,
            format!(
                "{why}; use 1-{MAX_NAME_LEN} lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (e.g. \"payments-api\")"
            ),
        ))
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > MAX_NAME_LEN {
        return fail(&format!(
            "is {} characters long, the limit is {MAX_NAME_LEN}",
            value.len()
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let shown = if c.is_ascii_graphic() {
            format!("'{c}'")
        } else {
            format!("U+{:04X}", c as u32)
        };
        if c.is_ascii_uppercase() {
            return fail(&format!("contains the uppercase letter {shown}"));
        }
        return fail(&format!(
            "contains the character {shown}, which is not allowed"
        ));
    }
    let first = value.as_bytes()[0];
    if !first.is_ascii_lowercase() {
        return fail("must start with a lowercase letter");
    }
    if value.ends_with('-') {
        return fail("must not end with '-'");
    }
    Ok(())
}

/// Checks a repository URL: `https://host/path`, `ssh://[user@]host[:port]/path` or scp-like
/// `git@host:path`; no credentials, no whitespace or control characters, no query or fragment.
pub fn repo_url(field: &str, value: &str) -> Result<(), FieldError> {
    let fail = |why: &str| {
        Err(FieldError::new(
            field,
            format!(
                "{why}; use an https://, ssh:// or git@host:path URL without credentials (e.g. \"https://github.com/org/payments\")"
            ),
        ))
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > 2048 {
        return fail("is longer than 2048 characters");
    }
    if value.chars().any(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`')
    }) {
        return fail(
            "contains whitespace, quotes, angle brackets, backslashes or control characters",
        );
    }
    if value.starts_with('-') {
        return fail("must not start with '-'");
    }
    if value.contains(['?', '#']) {
        return fail("must not contain a query string or fragment");
    }
    let (host_part, path) = if let Some(rest) = value.strip_prefix("https://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return fail("carries credentials (user or token before '@')");
        }
        (authority, path)
    } else if let Some(rest) = value.strip_prefix("ssh://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                if user.contains(':') {
                    return fail("carries credentials (a password before '@')");
                }
                if !valid_user(user) {
                    return fail("has an invalid user name before '@'");
                }
                host
            }
            None => authority,
        };
        (host, path)
    } else if let Some(rest) = value.strip_prefix("git@") {
        match rest.split_once(':') {
            Some((host, path)) => {
                if host.contains('@') || host.contains('/') {
                    return fail("is not of the form git@host:path");
                }
                (host, path)
            }
            None => return fail("is not of the form git@host:path"),
        }
    } else if value.contains("://") {
        return fail("is not an https://, ssh:// or git@host:path URL");
    } else {
        return fail("is not a URL");
    };
    let host = host_part
        .rsplit_once(':')
        .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host_part, |(h, _)| h);
    // A host is a DNS name, an IPv4 address or a bracketed IPv6 address; it never starts with '-'
    // (ssh would read it as an option).
    let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !host.is_empty()
                && !host.starts_with(['-', '.'])
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    if !valid_host {
        return fail("has no valid host name");
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return fail("has no repository path");
    }
    if path.starts_with('-') {
        return fail("has a path starting with '-'");
    }
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return fail("contains '.' or '..' path segments");
    }
    Ok(())
}

/// An environment variable name a service may set (a variable or a secret): `[A-Za-z_][A-Za-z0-9_]*`,
/// at most 128 bytes, and not `PORT` or `SLIPWAY_*`, which Slipway sets for every release.
/// `example` goes into the message.
pub fn env_var_name(field: &str, name: &str, example: &str) -> Result<(), FieldError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(FieldError::new(
            field,
            format!("is not a valid variable name: use letters, digits and '_', not starting with a digit (e.g. {example})"),
        ));
    }
    if name == "PORT" || name.starts_with("SLIPWAY_") {
        return Err(FieldError::new(
            field,
            "is set by Slipway for every release; choose another name",
        ));
    }
    Ok(())
}

/// Memory one instance may be given, in MiB.
pub const MEMORY_MB_RANGE: std::ops::RangeInclusive<u32> = 16..=1_048_576;
/// CPU one instance may be given, in thousandths of a CPU.
pub const CPU_MILLIS_RANGE: std::ops::RangeInclusive<u32> = 10..=256_000;

/// A memory quantity as Kubernetes writes it — `512Mi`, `1Gi`, `1G`, `500M`, `256k`, or bytes —
/// in MiB, rounded up.
pub fn memory_quantity(field: &str, value: &str) -> Result<u32, FieldError> {
    let fail = || {
        FieldError::new(
            field,
            format!("{value:?} is not a memory quantity: use e.g. 512Mi, 1Gi or 1.5Gi"),
        )
    };
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().map_err(|_| fail())?;
    let factor: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(fail()),
    };
    let mib = (number * factor / (1024.0 * 1024.0)).ceil();
    if !mib.is_finite() || mib > f64::from(u32::MAX) {
        return Err(fail());
    }
    Ok(mib as u32)
}

/// A CPU quantity as Kubernetes writes it — `500m`, `0.5`, `2` — in thousandths of a CPU.
pub fn cpu_quantity(field: &str, value: &str) -> Result<u32, FieldError> {
    let fail = || {
        FieldError::new(
            field,
            format!("{value:?} is not a CPU quantity: use e.g. 500m, 0.5 or 2"),
        )
    };
    let v = value.trim();
    let millis = match v.strip_suffix('m') {
        Some(m) => m.parse::<f64>().map_err(|_| fail())?,
        None => v.parse::<f64>().map_err(|_| fail())? * 1000.0,
    };
    if !millis.is_finite() || millis < 0.0 || millis > f64::from(u32::MAX) {
        return Err(fail());
    }
    Ok(millis.ceil() as u32)
}

/// The ranges of requested resources, each error naming `<prefix>.memory_mb` or
/// `<prefix>.cpu_millis`.
pub fn resources(prefix: &str, r: &crate::Resources) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(m) = r.memory_mb.filter(|m| !MEMORY_MB_RANGE.contains(m)) {
        errors.push(FieldError::new(
            format!("{prefix}.memory_mb"),
            format!(
                "{m} is out of range: give between {} and {} MiB",
                MEMORY_MB_RANGE.start(),
                MEMORY_MB_RANGE.end()
            ),
        ));
    }
    if let Some(c) = r.cpu_millis.filter(|c| !CPU_MILLIS_RANGE.contains(c)) {
        errors.push(FieldError::new(
            format!("{prefix}.cpu_millis"),
            format!(
                "{c} is out of range: give between {} and {} thousandths of a CPU",
                CPU_MILLIS_RANGE.start(),
                CPU_MILLIS_RANGE.end()
            ),
        ));
    }
    errors
}

/// The secrets that hold a service's repository credentials in an environment. They are used only
/// to fetch the repository (and push a scaffold), never injected into the app's environment.
pub const GIT_CREDENTIAL_SECRETS: [&str; 4] = [
    "SLIPWAY_GIT_TOKEN",
    "SLIPWAY_GIT_USERNAME",
    "SLIPWAY_GIT_SSH_KEY",
    "SLIPWAY_GIT_KNOWN_HOSTS",
];

/// Whether a secret is one of the repository credentials ([`GIT_CREDENTIAL_SECRETS`]).
pub fn is_git_credential(name: &str) -> bool {
    GIT_CREDENTIAL_SECRETS.contains(&name)
}

/// A secret's name: a variable name the app receives ([`env_var_name`]) or one of the repository
/// credentials ([`GIT_CREDENTIAL_SECRETS`]).
pub fn secret_name(field: &str, name: &str) -> Result<(), FieldError> {
    if is_git_credential(name) {
        return Ok(());
    }
    env_var_name(field, name, "DATABASE_PASSWORD").map_err(|e| {
        if name.starts_with("SLIPWAY_") {
            FieldError::new(
                field,
                format!(
                    "is reserved for Slipway; the SLIPWAY_ secrets a service may set are its \
                     repository credentials: {}",
                    GIT_CREDENTIAL_SECRETS.join(", ")
                ),
            )
        } else {
            e
        }
    })
}

/// [`repo_url`], or — when the operator started Slipway with `--allow-local-repos` — a local
/// repository: an absolute path or a `file://` URL of one, without `.`/`..` segments.
pub fn repo_source(field: &str, value: &str, allow_local: bool) -> Result<(), FieldError> {
    let local = value
        .strip_prefix("file://")
        .or_else(|| value.starts_with('/').then_some(value));
    let Some(path) = local else {
        return repo_url(field, value).map_err(|mut e| {
            if allow_local {
                e.message.push_str(
                    "; this server also accepts local repositories: an absolute path or a file:// URL",
                );
            }
            e
        });
    };
    if !allow_local {
        return Err(FieldError::new(
            field,
            "is a local path; local repositories are accepted only when Slipway runs with --allow-local-repos. \
             Use an https://, ssh:// or git@host:path URL",
        ));
    }
    let fail = |why: &str| {
        Err(FieldError::new(
            field,
            format!(
                "{why}; use an absolute path such as /srv/git/payments or file:///srv/git/payments"
            ),
        ))
    };
    if !path.starts_with('/') || path.len() < 2 {
        return fail("is not an absolute path");
    }
    if path.len() > 2048 {
        return fail("is longer than 2048 characters");
    }
    if path
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`'))
    {
        return fail("contains quotes, angle brackets, backslashes or control characters");
    }
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return fail("contains '.' or '..' path segments");
    }
    Ok(())
}

/// Whether two repository sources name the same repository, as far as their text tells: a local
/// path and its `file://` form, and trailing slashes or a `.git` suffix, do not make another one.
pub fn same_repository(a: &str, b: &str) -> bool {
    fn canonical(source: &str) -> &str {
        let s = source.strip_prefix("file://").unwrap_or(source);
        let s = s.trim_end_matches('/');
        let s = s.strip_suffix(".git").unwrap_or(s).trim_end_matches('/');
        if s.is_empty() {
            "/"
        } else {
            s
        }
    }
    canonical(a) == canonical(b)
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Free text fields (descriptions): bounded, no control characters but newlines and tabs.
pub fn free_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A git ref a user asks to deploy: a branch, tag or commit name that git itself would accept and
/// that can never be read as an option.
pub fn git_ref(field: &str, value: &str) -> Result<(), FieldError> {
    let bad = value.is_empty()
        || value.len() > 255
        || value.starts_with('-')
        || value.starts_with('/')
        || value.ends_with('/')
        || value.ends_with('.')
        || value.ends_with(".lock")
        || value.contains("..")
        || value.contains("@{")
        || value.contains("//")
        || value.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if bad {
        Err(FieldError::new(
            field,
            "is not a valid git branch, tag or commit name (e.g. \"main\", \"v1.2.0\" or a commit SHA)",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities_as_kubernetes_writes_them() {
        for (q, mib) in [
            ("512Mi", 512),
            ("1Gi", 1024),
            ("1.5Gi", 1536),
            ("1G", 954),
            ("500M", 477),
            ("256Ki", 1),
            ("1048576", 1),
            ("8Gi", 8192),
        ] {
            assert_eq!(memory_quantity("m", q).unwrap(), mib, "{q}");
        }
        for bad in ["", "Mi", "12 Mi", "1Zi", "-1Gi", "1e400"] {
            assert!(memory_quantity("m", bad).is_err(), "{bad}");
        }
        for (q, millis) in [
            ("500m", 500),
            ("0.5", 500),
            ("2", 2000),
            ("4000m", 4000),
            ("0.1", 100),
        ] {
            assert_eq!(cpu_quantity("c", q).unwrap(), millis, "{q}");
        }
        for bad in ["", "m", "half", "-1", "1.5x"] {
            assert!(cpu_quantity("c", bad).is_err(), "{bad}");
        }
        let r = crate::Resources {
            memory_mb: Some(8),
            cpu_millis: Some(1),
        };
        let fields: Vec<String> = resources("resources", &r)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["resources.memory_mb", "resources.cpu_millis"]);
    }

    use super::*;

    #[test]
    fn labels() {
        for ok in ["payments", "a", "core-platform", "a1", &"a".repeat(63)] {
            assert!(dns_label("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "Payments",
            "pay ments",
            "pay\"ments",
            "pay\nments",
            "<script>",
            "-a",
            "a-",
            "1abc",
            &"a".repeat(64),
            "a_b",
            "a.b",
            "é",
        ] {
            let e = dns_label("service_name", bad).unwrap_err();
            assert_eq!(e.field, "service_name");
        }
    }

    #[test]
    fn env_var_names() {
        for ok in ["A", "_X", "DATABASE_URL", "a1"] {
            assert!(env_var_name("v", ok, "X").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A B",
            "PORT",
            "SLIPWAY_X",
            &"A".repeat(129),
        ] {
            assert!(env_var_name("v", bad, "X").is_err(), "{bad}");
        }
    }

    #[test]
    fn local_repo_sources() {
        for ok in ["/srv/git/app", "file:///srv/git/app", "/tmp/x y/repo"] {
            assert!(repo_source("repo_url", ok, true).is_ok(), "{ok}");
            assert!(repo_source("repo_url", ok, false)
                .unwrap_err()
                .message
                .contains("--allow-local-repos"));
        }
        for bad in ["/srv/../etc", "file://relative", "/a/./b", "/", "/a\"b"] {
            assert!(repo_source("repo_url", bad, true).is_err(), "{bad}");
        }
        assert!(repo_source("repo_url", "https://github.com/o/p", false).is_ok());
        assert!(repo_source("repo_url", "ftp://x/y", true).is_err());
    }

    #[test]
    fn repo_urls() {
        for ok in [
            "https://github.com/org/payments",
            "https://github.com/org/payments.git",
            "https://git.example.com:8443/a/b",
            "ssh://git@github.com/org/payments.git",
            "ssh://github.com:22/org/payments",
            "git@github.com:org/payments.git",
            "https://[2001:db8::1]/org/p",
            "ssh://git@10.0.0.1:2222/org/p",
        ] {
            assert!(repo_url("repo_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://github.com/org/p",
            "ftp://x/y",
            "file:///etc/passwd",
            "https://user:pass@github.com/org/p",
            "https://token@github.com/org/p",
            "ssh://git:pw@github.com/org/p",
            "https://github.com",
            "https://github.com/",
            "https://github.com/org/p?x=1",
            "https://github.com/org/../p",
            "git@github.com",
            "/local/path",
            "--upload-pack=x",
            "https://github.com/org/p q",
            "https://github.com/org/p\n",
            "https://exa_mple.com/a",
            "ssh://-oProxyCommand=x@host/p",
            "ssh://-v/p",
            "ssh://git@-oProxyCommand=x/p",
            "git@-oProxyCommand=x:org/p",
            "git@github.com:-x",
            "https://github.com:/p",
            "https://-github.com/p",
            "https://[zz]/p",
        ] {
            assert!(repo_url("repo_url", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refs() {
        for ok in ["main", "v1.2.0", "feature/x", "0123abcd"] {
            assert!(git_ref("ref", ok).is_ok());
        }
        for bad in ["", "-x", "a..b", "a b", "a~1", "x.lock", "/a", "a/"] {
            assert!(git_ref("ref", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_repository_ignores_trailing_slashes_git_suffix_and_file_scheme() {
        for (a, b) in [
            ("/srv/git/app", "/srv/git/app/"),
            ("/srv/git/app", "file:///srv/git/app"),
            ("/srv/git/app.git", "/srv/git/app/"),
            ("https://github.com/org/p", "https://github.com/org/p.git"),
            ("https://github.com/org/p/", "https://github.com/org/p"),
        ] {
            assert!(same_repository(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("/srv/git/app", "/srv/git/app2"),
            ("/srv/git/app", "/srv/git"),
            ("https://github.com/org/p", "https://github.com/org/q"),
            ("https://github.com/org/p", "https://gitlab.com/org/p"),
        ] {
            assert!(!same_repository(a, b), "{a} {b}");
        }
    }
}
