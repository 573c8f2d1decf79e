//! What the app's source says about ports, environment variables and health checks.

use std::collections::BTreeMap;

use crate::detect::{Ctx, SourceFile};
use crate::plan::{BuildPlan, Cite};

/// Source-file extensions per language.
pub(crate) fn exts(language: &str) -> &'static [&'static str] {
    match language {
        "python" => &["py"],
        "node" => &["js", "mjs", "cjs", "ts", "mts", "jsx", "tsx"],
        "go" => &["go"],
        "rust" => &["rs"],
        "ruby" => &["rb"],
        "php" => &["php"],
        "java" => &["java", "kt", "properties"],
        _ => &[],
    }
}

/// Ways a language reads the `PORT` variable (quotes normalized to `"`).
fn port_reads(language: &str) -> &'static [&'static str] {
    match language {
        "python" => &[
            "environ[\"PORT\"]",
            "environ.get(\"PORT\"",
            "getenv(\"PORT\"",
            "env(\"PORT\"",
            "env.int(\"PORT\"",
        ],
        "node" => &[
            "process.env.PORT",
            "process.env[\"PORT\"]",
            "Deno.env.get(\"PORT\")",
            "Bun.env.PORT",
        ],
        "go" => &["Getenv(\"PORT\")", "LookupEnv(\"PORT\")"],
        "rust" => &["var(\"PORT\")", "var_os(\"PORT\")"],
        "ruby" => &["ENV[\"PORT\"]", "ENV.fetch(\"PORT\""],
        "php" => &["getenv(\"PORT\")", "$_ENV[\"PORT\"]", "$_SERVER[\"PORT\"]"],
        "java" => &["getenv(\"PORT\")", "${PORT"],
        _ => &[],
    }
}

/// Tokens that start a hard-coded listen address or port.
const LISTEN_TOKENS: &[&str] = &[
    ".listen(",
    "ListenAndServe(",
    "ListenAndServeTLS(",
    ".Run(",
    ".run(",
    ".Start(",
    "Listen(",
    "bind(",
    "HTTPServer(",
    "TCPServer(",
    "serve(",
    "port=",
    "port =",
    "PORT =",
    "PORT=",
    "port:",
    "Addr:",
    "server.port",
];

/// Whether `line` contains `pat` not followed by an identifier character (`PORT` but not `PORTAL`).
fn contains_token(line: &str, pat: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = line.get(from..).and_then(|s| s.find(pat)) {
        let at = from + i;
        let end = at + pat.len();
        let next = line[end..].chars().next();
        let ends_ident = pat.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if !ends_ident || !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(end);
        }
        from = end;
    }
    None
}

/// The first plausible port number in `s`: 2–5 digits, 80..=65535, not part of a dotted address.
pub(crate) fn first_port(s: &str) -> Option<u16> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before = start.checked_sub(1).map(|b| bytes[b]);
            let after = bytes.get(i).copied();
            let dotted = before == Some(b'.') || after == Some(b'.');
            let in_word = before.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                || after.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            if !dotted && !in_word && (2..=5).contains(&(i - start)) {
                if let Ok(n) = s[start..i].parse::<u32>() {
                    if (80..=65535).contains(&n) {
                        return u16::try_from(n).ok();
                    }
                }
            }
        } else {
            i += 1;
        }
    }
    None
}

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("//") || t.starts_with('#') || t.starts_with('*') || t.starts_with("/*")
}

/// Entry files first, so the line cited is the one that matters.
fn ordered<'a>(ctx: &'a Ctx, language: &str) -> Vec<&'a SourceFile> {
    let mut files: Vec<&SourceFile> = ctx.sources_with(exts(language)).collect();
    let rank = |f: &SourceFile| {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let stem = name.split('.').next().unwrap_or(name);
        let entry = [
            "main",
            "app",
            "server",
            "index",
            "wsgi",
            "asgi",
            "manage",
            "settings",
            "application",
        ]
        .contains(&stem);
        (!entry, f.path.matches('/').count(), f.path.clone())
    };
    files.sort_by_key(|f| rank(f));
    files
}

/// Records `reads_port_env` and `port` from the code when nothing of higher rank has.
pub(crate) fn apply_ports(plan: &mut BuildPlan, ctx: &Ctx, language: &str) {
    let files = ordered(ctx, language);
    let reads_decided = plan.evidence_for("reads_port_env").is_some();
    // A framework's default port yields to what the code says.
    let port_decided = plan.port.is_some()
        && !plan
            .evidence_for("port")
            .is_some_and(|e| e.rule.contains("default port"));
    if !reads_decided {
        for f in &files {
            let lines: Vec<&str> = f.text.lines().collect();
            for (i, raw) in lines.iter().enumerate() {
                // Every way of reading it names PORT: skip the other lines cheaply.
                if !raw.contains("PORT") || is_comment(raw) {
                    continue;
                }
                let line = raw.replace('\'', "\"");
                let Some((pat, end)) = port_reads(language)
                    .iter()
                    .find_map(|p| contains_token(&line, p).map(|e| (*p, e)))
                    .or_else(|| destructured_port(&line, language))
                    .or_else(|| env_schema_port(&line, language, &f.text))
                else {
                    continue;
                };
                let source = ctx.path(&f.path);
                let line_no = u32::try_from(i + 1).ok();
                plan.set_reads_port_env(
                    true,
                    Cite::file(&source, line_no, format!("code reads PORT ({pat})")),
                );
                if !port_decided {
                    // A default on the same line (`process.env.PORT || 3000`) or just below
                    // (`if port == "" { port = "8080" }`).
                    let same = first_port(&line[end..]).map(|p| (p, i));
                    let below = || {
                        lines
                            .iter()
                            .enumerate()
                            .skip(i + 1)
                            .take(4)
                            .filter(|(_, l)| {
                                l.to_ascii_lowercase().contains("port") && l.contains('=')
                            })
                            .find_map(|(j, l)| first_port(l).map(|p| (p, j)))
                    };
                    if let Some((port, j)) = same.or_else(below) {
                        plan.set_port(
                            port,
                            Cite::file(
                                &source,
                                u32::try_from(j + 1).ok(),
                                "default used when PORT is unset",
                            ),
                        );
                    }
                }
                return;
            }
        }
    }
    if plan.reads_port_env || plan.port.is_some() {
        return;
    }
    for f in &files {
        for (i, raw) in f.text.lines().enumerate() {
            // The port follows the token on the same line: no digit, no port.
            if !raw.bytes().any(|b| b.is_ascii_digit()) || is_comment(raw) {
                continue;
            }
            for token in LISTEN_TOKENS {
                if let Some(at) = raw.find(token) {
                    if let Some(port) = first_port(&raw[at + token.len()..]) {
                        plan.set_port(
                            port,
                            Cite::file(
                                ctx.path(&f.path),
                                u32::try_from(i + 1).ok(),
                                format!("hard-coded listen port ({})", token.trim()),
                            ),
                        );
                        return;
                    }
                }
            }
        }
    }
    listen_constant(plan, ctx, &files);
}

/// A listen call whose address is a named constant defined elsewhere:
/// `.bind(constants::BIND)?` with `pub const BIND: &str = "0.0.0.0:8080";`, or
/// `ListenAndServe(ADDR, …)` with `const ADDR = ":8080"`. Only upper-case names (the constant
/// convention) are followed, and only to a definition whose value is a literal with a port.
fn listen_constant(plan: &mut BuildPlan, ctx: &Ctx, files: &[&SourceFile]) {
    for f in files {
        for raw in f.text.lines() {
            if is_comment(raw) {
                continue;
            }
            for token in LISTEN_TOKENS.iter().filter(|t| t.ends_with('(')) {
                let Some(at) = raw.find(token) else {
                    continue;
                };
                let arg: String = raw[at + token.len()..]
                    .trim_start_matches('&')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.'))
                    .collect();
                let name = arg.rsplit([':', '.']).next().unwrap_or("");
                if name.len() < 2
                    || !name.starts_with(|c: char| c.is_ascii_uppercase())
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    continue;
                }
                if let Some((file, line_no, port)) = constant_port(files, name) {
                    plan.set_port(
                        port,
                        Cite::file(
                            ctx.path(&file.path),
                            line_no,
                            format!("listen address from the constant {name} ({})", token.trim()),
                        ),
                    );
                    return;
                }
            }
        }
    }
}

/// The definition `const NAME … = "…:8080"` (also `static`, Go's `NAME = ":8080"` inside a
/// `const (` block) and the port in its literal value.
fn constant_port<'a>(
    files: &[&'a SourceFile],
    name: &str,
) -> Option<(&'a SourceFile, Option<u32>, u16)> {
    for f in files {
        for (i, raw) in f.text.lines().enumerate() {
            let t = raw.trim_start();
            let t = t.strip_prefix("pub ").unwrap_or(t);
            let t = t
                .strip_prefix("const ")
                .or_else(|| t.strip_prefix("static "))
                .unwrap_or(t);
            let Some(rest) = t.strip_prefix(name) else {
                continue;
            };
            if !rest.starts_with([':', ' ', '=']) {
                continue;
            }
            let Some((_, value)) = rest.split_once('=') else {
                continue;
            };
            let value = value.trim_start();
            if !value.starts_with('"') {
                continue;
            }
            if let Some(port) = first_port(value) {
                return Some((f, u32::try_from(i + 1).ok(), port));
            }
        }
    }
    None
}

/// A schema validating `process.env` that names PORT with a default:
/// `PORT: Joi.number().default(3000)` (Joi), `PORT: port({ default: 3000 })` (envalid).
fn env_schema_port(line: &str, language: &str, file: &str) -> Option<(&'static str, usize)> {
    if language != "node" || !file.contains("process.env") {
        return None;
    }
    let t = line.trim_start();
    let rest = t.strip_prefix("PORT")?.trim_start().strip_prefix(':')?;
    let schema = rest.contains("Joi.") || rest.contains("port(") || rest.contains("num(");
    if !schema {
        return None;
    }
    let end = line.len() - rest.len();
    Some(("a process.env schema names PORT", end))
}

/// `const { PORT = 3000 } = process.env`
fn destructured_port(line: &str, language: &str) -> Option<(&'static str, usize)> {
    if language == "node" && line.contains("process.env") && line.contains('{') {
        let inner = line.split('{').nth(1)?.split('}').next()?;
        if inner
            .split(',')
            .any(|p| p.split(['=', ':']).next().map(str::trim) == Some("PORT"))
        {
            return Some(("const { PORT } = process.env", line.find('{')? + 1));
        }
    }
    None
}

/// How a language reads a named variable: (prefix before the name, required?).
fn env_reads(language: &str) -> &'static [(&'static str, bool)] {
    match language {
        "python" => &[
            ("environ[\"", true),
            ("environ.get(\"", false),
            ("getenv(\"", false),
        ],
        "node" => &[("process.env.", false), ("process.env[\"", false)],
        "go" => &[("Getenv(\"", false), ("LookupEnv(\"", false)],
        "rust" => &[("env::var(\"", false), ("env::var_os(\"", false)],
        "ruby" => &[("ENV[\"", false), ("ENV.fetch(\"", true)],
        "php" => &[("getenv(\"", false), ("$_ENV[\"", false)],
        "java" => &[("getenv(\"", false)],
        _ => &[],
    }
}

/// Variables the runtime or the engine provides; not worth asking the operator for.
const AMBIENT_VARS: &[&str] = &[
    "PORT", "HOST", "HOME", "PATH", "NODE_ENV", "PWD", "USER", "DEBUG", "TZ", "LANG",
];

/// Records required and optional environment variables from the code and `.env.example`.
pub(crate) fn apply_env(plan: &mut BuildPlan, ctx: &Ctx, language: &str) {
    let mut found: BTreeMap<String, (bool, Cite)> = BTreeMap::new();
    // The part of each prefix before its quote: a line without any cannot match.
    let cores: Vec<&str> = env_reads(language)
        .iter()
        .map(|(p, _)| p.trim_end_matches('"'))
        .collect();
    for f in ordered(ctx, language) {
        for (i, raw) in f.text.lines().enumerate() {
            if !cores.iter().any(|c| raw.contains(c)) || is_comment(raw) {
                continue;
            }
            let line = raw.replace('\'', "\"");
            for (prefix, required) in env_reads(language) {
                let mut rest = line.as_str();
                while let Some(at) = rest.find(prefix) {
                    let after = &rest[at + prefix.len()..];
                    let name: String = after
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &after[name.len()..];
                    if name.is_empty()
                        || !name.starts_with(|c: char| c.is_ascii_uppercase())
                        || AMBIENT_VARS.contains(&name.as_str())
                    {
                        continue;
                    }
                    // Ruby: `ENV.fetch("X", "d")` and `ENV.fetch("X") { "d" }` have a default.
                    let required = if language == "ruby" && *required {
                        rest.strip_prefix("\")").is_some_and(|r| {
                            let r = r.trim_start();
                            !r.starts_with('{') && !r.starts_with("do")
                        })
                    } else {
                        *required
                    };
                    // Rust: `env::var("X")?` or `.expect(` means the app cannot start without it.
                    let required = required
                        || (language == "rust"
                            && (rest.starts_with("\")?")
                                || rest.starts_with("\").expect(")
                                || rest.starts_with("\").unwrap()")));
                    let cite = Cite::file(
                        ctx.path(&f.path),
                        u32::try_from(i + 1).ok(),
                        if required {
                            format!("read without a default ({prefix}…)")
                        } else {
                            format!("read with a fallback ({prefix}…)")
                        },
                    );
                    match found.get(&name) {
                        Some((true, _)) => {}
                        Some((false, _)) if !required => {}
                        _ => {
                            found.insert(name, (required, cite));
                        }
                    }
                }
            }
        }
    }
    for example in [
        ".env.example",
        ".env.sample",
        ".env.template",
        "example.env",
    ] {
        let Some(text) = ctx.text_opt(example) else {
            continue;
        };
        for (i, l) in text.lines().enumerate() {
            let t = l.trim().trim_start_matches("export ").trim();
            if t.starts_with('#') {
                continue;
            }
            let Some((name, _)) = t.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || AMBIENT_VARS.contains(&name)
            {
                continue;
            }
            found.entry(name.to_owned()).or_insert_with(|| {
                (
                    false,
                    Cite::file(
                        ctx.path(example),
                        u32::try_from(i + 1).ok(),
                        "listed in the example environment file",
                    ),
                )
            });
        }
        break;
    }
    for (name, (required, cite)) in found {
        if plan.env_required.contains(&name) || plan.env_optional.contains(&name) {
            continue;
        }
        if required {
            plan.cite_item("env_required", &name, cite);
            plan.env_required.push(name);
        } else {
            plan.cite_item("env_optional", &name, cite);
            plan.env_optional.push(name);
        }
    }
}

/// Health-check routes, most specific first.
const HEALTH_PATHS: &[&str] = &[
    "/healthz", "/health", "/_health", "/livez", "/readyz", "/ready", "/ping", "/up",
];

/// Records a health path when the code defines a conventional health route.
pub(crate) fn apply_health(plan: &mut BuildPlan, ctx: &Ctx, language: &str) {
    if plan.health_path.is_some() {
        return;
    }
    let mut files = ordered(ctx, language);
    let routes = if language == "ruby" {
        ctx.sources().iter().find(|f| f.path == "config/routes.rb")
    } else {
        None
    };
    files.extend(routes);
    let django = plan.framework.as_deref() == Some("django");
    for path in HEALTH_PATHS {
        let bare = path.trim_start_matches('/');
        let exact = format!("\"{path}\"");
        let slash = format!("\"{path}/\"");
        let rails = format!("get \"{bare}\"");
        let django_path = format!("path(\"{bare}\"");
        let django_path_slash = format!("path(\"{bare}/\"");
        for f in &files {
            for (i, raw) in f.text.lines().enumerate() {
                // Every form names the path: skip the other lines cheaply.
                if !raw.contains(bare) || is_comment(raw) {
                    continue;
                }
                let line = raw.replace('\'', "\"");
                // Django's URL patterns have no leading slash: path("healthz/", ...).
                let django_slash = django && line.contains(&django_path_slash);
                let hit = line.contains(&exact)
                    || line.contains(&slash)
                    // Rails: get "up" => "rails/health#show"
                    || (language == "ruby" && line.contains(&rails))
                    || (django && line.contains(&django_path))
                    || django_slash;
                if hit {
                    let value = if django_slash {
                        format!("{path}/")
                    } else {
                        (*path).to_owned()
                    };
                    plan.set(
                        crate::plan::Field::HealthPath,
                        Some(value),
                        Cite::file(
                            ctx.path(&f.path),
                            u32::try_from(i + 1).ok(),
                            "route with a conventional health-check path",
                        ),
                    );
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_in_text() {
        assert_eq!(first_port(" || 3000)"), Some(3000));
        assert_eq!(first_port("(\"127.0.0.1\", 8000)"), Some(8000));
        assert_eq!(first_port("\":8080\")"), Some(8080));
        assert_eq!(first_port("v2 x1"), None);
        assert_eq!(first_port("70000"), None);
    }

    #[test]
    fn tokens_respect_identifier_ends() {
        assert!(contains_token("process.env.PORTAL", "process.env.PORT").is_none());
        assert!(contains_token("process.env.PORT || 1", "process.env.PORT").is_some());
    }
}
