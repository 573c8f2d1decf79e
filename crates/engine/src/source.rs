//! Fetching a repository at a ref with the git CLI: shallow, with `--` before user input, no
//! prompts, no hooks, a time limit and a size limit. URLs were validated before they got here.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("ref {0:?} does not exist in the repository")]
    RefNotFound(String),
    #[error("the repository could not be fetched: {0}")]
    Fetch(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the repository is not there or refuses access: {0}")]
    Unavailable(String),
    #[error("fetching the repository took longer than {0:?}")]
    Timeout(Duration),
    #[error("the repository is larger than the {limit_mb} MiB limit")]
    TooLarge { limit_mb: u64 },
    #[error("git could not be run: {0}")]
    Git(String),
}

impl SourceError {
    /// Whether trying again may help (the network, a busy server).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Fetch(_) | Self::Timeout(_))
    }
}

#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub timeout: Duration,
    pub max_bytes: u64,
    /// Allow repository hosts that resolve to loopback, private, link-local (cloud metadata) or
    /// other non-public addresses (`--allow-private-repo-hosts`). Off: such fetches are refused.
    pub allow_private_hosts: bool,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            max_bytes: 1024 * 1024 * 1024,
            allow_private_hosts: false,
        }
    }
}

/// Whether an address is one a repository fetch must not reach unless the operator allows it:
/// loopback, private (RFC 1918, unique local), link-local (the cloud metadata service lives at
/// 169.254.169.254), carrier-grade NAT, unspecified, multicast, broadcast, documentation ranges.
pub fn is_private_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x64 && seg[1] == 0xff9b)
        }
    }
}

/// A network URL split into what the guard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub scheme: &'static str,
    /// As written (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
}

/// The host and port a repository URL connects to (`None` for local paths).
pub fn remote_of(url: &str) -> Option<Remote> {
    let (scheme, rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r, 443)
    } else if let Some(r) = url.strip_prefix("ssh://") {
        ("ssh", r, 22)
    } else if let Some(r) = url.strip_prefix("git@") {
        let host = r.split(':').next()?;
        return Some(Remote {
            scheme: "scp",
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: 22,
        });
    } else {
        return None;
    };
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        (h.to_string(), port.unwrap_or(default_port))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                (h.to_string(), p.parse().unwrap_or(default_port))
            }
            _ => (hostport.to_string(), default_port),
        }
    };
    Some(Remote { scheme, host, port })
}

/// A repository's credentials for one fetch or push: the secrets `SLIPWAY_GIT_TOKEN` (with
/// `SLIPWAY_GIT_USERNAME`, default `x-access-token`) for HTTPS, `SLIPWAY_GIT_SSH_KEY` (with
/// `SLIPWAY_GIT_KNOWN_HOSTS`) for SSH. `Debug` never shows the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitCredentials {
    pub username: Option<String>,
    pub token: Option<String>,
    pub ssh_key: Option<String>,
    pub known_hosts: Option<String>,
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredentials")
            .field("username", &self.username)
            .field("token", &self.token.as_ref().map(|_| "********"))
            .field("ssh_key", &self.ssh_key.as_ref().map(|_| "********"))
            .field("known_hosts", &self.known_hosts.is_some())
            .finish()
    }
}

impl GitCredentials {
    pub fn is_empty(&self) -> bool {
        self.token.is_none() && self.ssh_key.is_none()
    }

    /// The values a log must mask.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values: Vec<String> = [&self.token, &self.ssh_key]
            .into_iter()
            .flatten()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect();
        if let (Some(user), Some(token)) = (&self.username, &self.token) {
            use base64::Engine as _;
            values
                .push(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}")));
        }
        values
    }
}

/// What one git run gets for credentials: configuration through the environment (never the
/// command line, which other users can read in `/proc`) and, for SSH, the key in a private
/// temporary directory removed when this is dropped.
#[derive(Default)]
struct GitAuth {
    env: Vec<(String, String)>,
    ssh_options: Vec<String>,
    strict_host_keys: bool,
    _dir: Option<tempfile::TempDir>,
}

impl GitAuth {
    fn new(remote: Option<&Remote>, creds: &GitCredentials) -> Result<Self, SourceError> {
        let mut auth = Self::default();
        let Some(remote) = remote else {
            return Ok(auth);
        };
        match remote.scheme {
            "https" => {
                if let Some(token) = &creds.token {
                    use base64::Engine as _;
                    let user = creds.username.as_deref().unwrap_or("x-access-token");
                    let basic =
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
                    let host = if remote.host.contains(':') {
                        format!("[{}]", remote.host)
                    } else {
                        remote.host.clone()
                    };
                    let port = if remote.port == 443 {
                        String::new()
                    } else {
                        format!(":{}", remote.port)
                    };
                    // Scoped to the repository's origin, and no redirect may carry it elsewhere.
                    auth.config(
                        format!("http.https://{host}{port}/.extraHeader"),
                        format!("Authorization: Basic {basic}"),
                    );
                    auth.config("http.followRedirects".into(), "false".into());
                }
            }
            "ssh" | "scp" => {
                if let Some(key) = &creds.ssh_key {
                    let dir = tempfile::Builder::new()
                        .prefix("slipway-git-")
                        .tempdir()
                        .map_err(|e| {
                            SourceError::Git(format!("cannot create a key directory: {e}"))
                        })?;
                    let path_ok = |p: &Path| {
                        p.to_str().is_some_and(|s| {
                            s.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
                        })
                    };
                    // The paths go into GIT_SSH_COMMAND, which git hands to a shell.
                    if !path_ok(dir.path()) {
                        return Err(SourceError::Git(format!(
                            "the temporary directory {} has characters a command line cannot \
                             carry safely; set TMPDIR to a plain path",
                            dir.path().display()
                        )));
                    }
                    let mut key = key.trim_end().to_string();
                    key.push('\n');
                    let key_path = dir.path().join("key");
                    crate::secrets::write_private(&key_path, &key)
                        .map_err(|e| SourceError::Git(format!("cannot write the key: {e}")))?;
                    auth.ssh_options.extend([
                        "-o".into(),
                        "IdentitiesOnly=yes".into(),
                        "-o".into(),
                        "IdentityAgent=none".into(),
                        "-i".into(),
                        key_path.display().to_string(),
                    ]);
                    if let Some(known) = &creds.known_hosts {
                        let known_path = dir.path().join("known_hosts");
                        crate::secrets::write_private(
                            &known_path,
                            &format!("{}\n", known.trim_end()),
                        )
                        .map_err(|e| SourceError::Git(format!("cannot write known hosts: {e}")))?;
                        auth.ssh_options.extend([
                            "-o".into(),
                            format!("UserKnownHostsFile={}", known_path.display()),
                        ]);
                        auth.strict_host_keys = true;
                    }
                    auth._dir = Some(dir);
                }
            }
            _ => {}
        }
        Ok(auth)
    }

    fn config(&mut self, key: String, value: String) {
        let i = self.env.len() / 2;
        self.env.push((format!("GIT_CONFIG_KEY_{i}"), key));
        self.env.push((format!("GIT_CONFIG_VALUE_{i}"), value));
    }
}

/// How git is made to connect to the address that was checked (and not to whatever a second DNS
/// answer says): curl's resolve list for HTTPS; for SSH the URL's host becomes the address, with
/// the name kept as the host key alias.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Pin {
    config: Vec<String>,
    url: Option<String>,
    host_key_alias: Option<String>,
}

/// Resolves a remote, refuses non-public addresses unless allowed, and pins the first address.
async fn guard(url: &str, allow_private: bool) -> Result<Pin, SourceError> {
    let Some(remote) = remote_of(url) else {
        return Ok(Pin::default());
    };
    let addrs: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((remote.host.as_str(), remote.port))
            .await
            .map_err(|e| SourceError::Fetch(format!("cannot resolve {}: {e}", remote.host)))?
            .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(SourceError::Unavailable(format!(
            "{} has no address",
            remote.host
        )));
    };
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_private_address(a.ip())) {
            return Err(SourceError::Refused(format!(
                "{} resolves to {}, a loopback, private or link-local address; repositories must be on \
                 public hosts (an operator can allow private hosts with --allow-private-repo-hosts)",
                remote.host,
                bad.ip()
            )));
        }
    }
    let ip = first.ip();
    let bracketed = match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    };
    Ok(match remote.scheme {
        "https" => Pin {
            config: vec![format!(
                "http.curloptResolve={}:{}:{}",
                remote.host, remote.port, bracketed
            )],
            url: None,
            host_key_alias: None,
        },
        "ssh" | "scp" => {
            // Replace the first occurrence of the host (after the user part) by the address.
            let replaced = if remote.scheme == "scp" {
                url.replacen(&format!("@{}:", remote.host), &format!("@{bracketed}:"), 1)
                    .replacen(
                        &format!("@[{}]:", remote.host),
                        &format!("@{bracketed}:"),
                        1,
                    )
            } else {
                let (head, tail) = url.split_at("ssh://".len());
                let authority_end = tail.find('/').unwrap_or(tail.len());
                let (authority, path) = tail.split_at(authority_end);
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) => (format!("{u}@"), h.to_string()),
                    None => (String::new(), authority.to_string()),
                };
                let port_part = hostport
                    .rsplit_once(':')
                    .filter(|(_, p)| {
                        p.bytes().all(|b| b.is_ascii_digit())
                            && !p.is_empty()
                            && !hostport.ends_with(']')
                    })
                    .map(|(_, p)| format!(":{p}"))
                    .unwrap_or_default();
                format!("{head}{user}{bracketed}{port_part}{path}")
            };
            Pin {
                config: Vec::new(),
                url: Some(replaced),
                host_key_alias: Some(remote.host.clone()),
            }
        }
        _ => Pin::default(),
    })
}

/// The address check alone, for refusing a remote before anything is created: `Refused` when the
/// host resolves to a non-public address (and private hosts are not allowed); a host that does not
/// resolve is `Fetch`/`Unavailable`. Local paths pass (the caller validated them).
pub async fn check_remote(url: &str, allow_private: bool) -> Result<(), SourceError> {
    guard(url, allow_private).await.map(|_| ())
}

/// Checks out `url` at `git_ref` (the default branch when `None`) into the empty or missing
/// directory `dest` and returns the commit SHA. Works for branch and tag names and for full commit
/// SHAs. On failure `dest` is removed.
pub async fn fetch(
    url: &str,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<String, SourceError> {
    fetch_with(url, git_ref, dest, limits, &GitCredentials::default()).await
}

/// [`fetch`] with the repository's credentials (used for this fetch only; nothing of them stays
/// in `dest`).
pub async fn fetch_with(
    url: &str,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &FetchLimits,
    credentials: &GitCredentials,
) -> Result<String, SourceError> {
    let result = tokio::time::timeout(
        limits.timeout,
        fetch_inner(url, git_ref, dest, limits, credentials),
    )
    .await
    .unwrap_or(Err(SourceError::Timeout(limits.timeout)));
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(dest).await;
    }
    result
}

async fn fetch_inner(
    url: &str,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &FetchLimits,
    credentials: &GitCredentials,
) -> Result<String, SourceError> {
    // A local path is passed as a file:// URL so that `--depth` applies (git ignores it for plain
    // paths).
    let url = if url.starts_with('/') {
        format!("file://{url}")
    } else {
        url.to_string()
    };
    let pin = guard(&url, limits.allow_private_hosts).await?;
    let auth = GitAuth::new(remote_of(&url).as_ref(), credentials)?;
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| SourceError::Git(format!("cannot create {}: {e}", dest.display())))?;
    git(dest, &["init", "--quiet"]).await?;
    let wanted = git_ref.unwrap_or("HEAD");
    let fetch_url = pin.url.clone().unwrap_or_else(|| url.clone());
    let mut args: Vec<&str> = Vec::new();
    for c in &pin.config {
        args.push("-c");
        args.push(c);
    }
    args.extend([
        "fetch",
        "--quiet",
        "--depth=1",
        "--no-tags",
        "--",
        &fetch_url,
        wanted,
    ]);
    let fetched = git_with(dest, &args, pin.host_key_alias.as_deref(), &auth).await;
    if let Err(SourceError::Fetch(msg)) = &fetched {
        let missing = msg.contains("couldn't find remote ref")
            || msg.contains("not our ref")
            || msg.contains("unadvertised object")
            || msg.contains("no such remote ref");
        if missing {
            return Err(SourceError::RefNotFound(wanted.to_string()));
        }
        // A repository that is not there, or that refuses us, will not appear by retrying.
        if let Some(why) = unauthorized(msg, credentials) {
            return Err(SourceError::Unavailable(why));
        }
        let absent = msg.contains("does not appear to be a git repository")
            || msg.contains("Repository not found")
            || msg.contains("repository not found")
            || msg.contains("not found")
            || msg.contains("No such file or directory")
            || msg.contains("Authentication failed")
            || msg.contains("Permission denied");
        if absent {
            return Err(SourceError::Unavailable(msg.clone()));
        }
    }
    fetched?;
    git(
        dest,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
            "FETCH_HEAD",
        ],
    )
    .await?;
    let sha = git(dest, &["rev-parse", "HEAD"]).await?;
    let size = dir_size(dest).await;
    if size > limits.max_bytes {
        return Err(SourceError::TooLarge {
            limit_mb: limits.max_bytes / (1024 * 1024),
        });
    }
    Ok(sha.trim().to_string())
}

/// When git's message says the remote asked for credentials it did not get, or refused the ones
/// it got: the message with what to do about it.
fn unauthorized(msg: &str, credentials: &GitCredentials) -> Option<String> {
    let asked = [
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "Authentication failed",
        "returned error: 401",
        "returned error: 403",
        "Permission denied (publickey",
    ]
    .iter()
    .any(|m| msg.contains(m));
    let had = if credentials.is_empty() {
        "no credentials are set"
    } else {
        "the credentials set were refused"
    };
    asked.then(|| {
        format!(
            "{msg} ({had}: a private repository needs the secret SLIPWAY_GIT_TOKEN (HTTPS) or \
             SLIPWAY_GIT_SSH_KEY (SSH) set for this service and environment)"
        )
    })
}

/// Runs git in `dir` without prompts, hooks, or system/global configuration, and returns stdout.
async fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    git_with(dir, args, None, &GitAuth::default()).await
}

async fn git_with(
    dir: &Path,
    args: &[&str],
    host_key_alias: Option<&str>,
    auth: &GitAuth,
) -> Result<String, SourceError> {
    let mut ssh = vec!["ssh", "-o", "BatchMode=yes", "-o"];
    ssh.push(if auth.strict_host_keys {
        "StrictHostKeyChecking=yes"
    } else {
        "StrictHostKeyChecking=accept-new"
    });
    // The alias is a DNS name or address from a validated URL (no spaces or quotes).
    let alias = host_key_alias
        .filter(|a| {
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        })
        .map(|a| format!("HostKeyAlias={a}"));
    if let Some(alias) = &alias {
        ssh.extend(["-o", alias]);
    }
    // Paths Slipway created, checked to be plain (see GitAuth::new).
    ssh.extend(auth.ssh_options.iter().map(String::as_str));
    let ssh = ssh.join(" ");
    let mut command = Command::new("git");
    if !auth.env.is_empty() {
        command
            .env("GIT_CONFIG_COUNT", (auth.env.len() / 2).to_string())
            .envs(auth.env.iter().map(|(k, v)| (k, v)));
    }
    let out = command
        .arg("-c")
        .arg("core.hooksPath=/dev/null")
        .arg("-c")
        .arg("protocol.file.allow=always")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env("GIT_SSH_COMMAND", ssh)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| SourceError::Git(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect();
        let mut msg = lines.join(" / ");
        if msg.len() > 600 {
            let mut cut = 600;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        Err(SourceError::Fetch(msg))
    }
}

/// Why a push did not happen. Every message is safe to show: credentials in URLs are redacted.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("refused: {0}")]
    Refused(String),
    #[error(
        "the remote's branch {branch} already has commits ({sha}) that are not in the scaffold; \
         Slipway never force-pushes: push to an empty repository, or remove that branch first"
    )]
    NotEmpty { branch: String, sha: String },
    #[error("the push failed: {0}")]
    Failed(String),
    #[error("pushing took longer than {0:?}")]
    Timeout(Duration),
    #[error("git could not be run: {0}")]
    Git(String),
}

/// Pushes branch `branch` of the local repository `repo` to `url` (validated by the caller:
/// `validate::repo_source`), through the same address guard and pinning as [`fetch`]. Only that
/// branch, never forced: a remote branch that has commits the local one does not is refused before
/// anything is sent. No hooks, prompts or credential helpers. Returns the commit the remote branch
/// now points at (also when it already did).
pub async fn push(
    repo: &Path,
    url: &str,
    branch: &str,
    timeout: Duration,
    allow_private_hosts: bool,
) -> Result<String, PushError> {
    push_with(
        repo,
        url,
        branch,
        timeout,
        allow_private_hosts,
        &GitCredentials::default(),
    )
    .await
}

/// [`push`] with the remote's credentials (see [`GitCredentials`]).
pub async fn push_with(
    repo: &Path,
    url: &str,
    branch: &str,
    timeout: Duration,
    allow_private_hosts: bool,
    credentials: &GitCredentials,
) -> Result<String, PushError> {
    tokio::time::timeout(
        timeout,
        push_inner(repo, url, branch, allow_private_hosts, credentials),
    )
    .await
    .unwrap_or(Err(PushError::Timeout(timeout)))
}

async fn push_inner(
    repo: &Path,
    url: &str,
    branch: &str,
    allow_private_hosts: bool,
    credentials: &GitCredentials,
) -> Result<String, PushError> {
    let named = branch
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !branch.is_empty()
        && !branch.starts_with(['-', '/', '.'])
        && !branch.contains("..");
    if !named {
        return Err(PushError::Git(format!("{branch:?} is not a branch name")));
    }
    let failed = |e: SourceError| match e {
        SourceError::Refused(m) => PushError::Refused(redact_credentials(&m)),
        SourceError::Git(m) => PushError::Git(redact_credentials(&m)),
        SourceError::Fetch(m) => PushError::Failed(redact_credentials(
            &unauthorized(&m, credentials).unwrap_or(m),
        )),
        other => PushError::Failed(redact_credentials(&other_message(other))),
    };
    let pin = guard(url, allow_private_hosts).await.map_err(failed)?;
    let auth = GitAuth::new(remote_of(url).as_ref(), credentials).map_err(failed)?;
    let push_url = pin.url.clone().unwrap_or_else(|| url.to_string());
    let reference = format!("refs/heads/{branch}");
    let local = git(repo, &["rev-parse", "--verify", "--quiet", &reference])
        .await
        .map_err(|_| PushError::Git(format!("the repository has no branch {branch}")))?
        .trim()
        .to_string();

    let mut args: Vec<&str> = vec!["-c", "credential.helper="];
    for c in &pin.config {
        args.push("-c");
        args.push(c);
    }
    let mut ls_remote = args.clone();
    ls_remote.extend(["ls-remote", "--heads", "--", &push_url, &reference]);
    let listed = git_with(repo, &ls_remote, pin.host_key_alias.as_deref(), &auth)
        .await
        .map_err(failed)?;
    let remote_sha = listed
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(_, r)| *r == reference)
        .map(|(sha, _)| sha.trim().to_string());
    if let Some(sha) = remote_sha {
        if sha == local {
            return Ok(local);
        }
        // A fast-forward (the remote branch is an earlier state of ours) is a normal push; anything
        // else would need force, which Slipway never uses.
        let ancestor = sha.len() >= 40
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
            && git(repo, &["merge-base", "--is-ancestor", &sha, &local])
                .await
                .is_ok();
        if !ancestor {
            return Err(PushError::NotEmpty {
                branch: branch.to_string(),
                sha: sha.chars().take(12).collect(),
            });
        }
    }
    let refspec = format!("{reference}:{reference}");
    let mut push = args;
    push.extend([
        "push",
        "--quiet",
        "--no-verify",
        "--no-follow-tags",
        "--",
        &push_url,
        &refspec,
    ]);
    git_with(repo, &push, pin.host_key_alias.as_deref(), &auth)
        .await
        .map_err(failed)?;
    Ok(local)
}

fn other_message(e: SourceError) -> String {
    match e {
        SourceError::Fetch(m) | SourceError::Unavailable(m) => m,
        other => other.to_string(),
    }
}

/// `text` with the user information of every `http(s)://` URL replaced by `***` (a token is often
/// written as the user name) and the password of any other `scheme://user:password@` removed.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let scheme_http = head.ends_with("http://") || head.ends_with("https://");
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || "'\"<>".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((_, host)) if scheme_http => {
                out.push_str("***@");
                out.push_str(host);
            }
            Some((user, host)) => {
                match user.split_once(':') {
                    Some((name, _)) => {
                        out.push_str(name);
                        out.push_str(":***");
                    }
                    None => out.push_str(user),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

async fn dir_size(dir: &Path) -> u64 {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    total += meta.len();
                }
            }
        }
        total
    })
    .await
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn remotes_of_urls() {
        let r = |u| remote_of(u).map(|r| (r.scheme, r.host, r.port));
        assert_eq!(
            r("https://github.com/o/r"),
            Some(("https", "github.com".into(), 443))
        );
        assert_eq!(
            r("https://git.x:8443/o/r"),
            Some(("https", "git.x".into(), 8443))
        );
        assert_eq!(
            r("ssh://git@10.0.0.1:2222/o/r"),
            Some(("ssh", "10.0.0.1".into(), 2222))
        );
        assert_eq!(r("ssh://[::1]/o/r"), Some(("ssh", "::1".into(), 22)));
        assert_eq!(
            r("git@github.com:o/r.git"),
            Some(("scp", "github.com".into(), 22))
        );
        assert_eq!(r("/srv/git/x"), None);
        assert_eq!(r("file:///srv/git/x"), None);
    }

    #[tokio::test]
    async fn private_hosts_are_refused_and_public_ones_pinned() {
        for url in [
            "https://127.0.0.1/o/r",
            "https://localhost:8443/o/r",
            "ssh://git@169.254.169.254/o/r",
            "git@10.0.0.5:o/r.git",
            "https://[::1]/o/r",
        ] {
            match guard(url, false).await {
                Err(SourceError::Refused(msg)) => assert!(msg.contains("private"), "{msg}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        // Allowed by the operator: pinned to the address that was checked.
        let pin = guard("https://127.0.0.1:8443/o/r", true).await.unwrap();
        assert_eq!(pin.config, ["http.curloptResolve=127.0.0.1:8443:127.0.0.1"]);
        let pin = guard("ssh://git@localhost:2222/o/r", true).await.unwrap();
        let url = pin.url.unwrap();
        assert!(
            url == "ssh://git@127.0.0.1:2222/o/r" || url == "ssh://git@[::1]:2222/o/r",
            "{url}"
        );
        assert_eq!(pin.host_key_alias.as_deref(), Some("localhost"));
        let pin = guard("git@localhost:o/r.git", true).await.unwrap();
        let url = pin.url.unwrap();
        assert!(
            url == "git@127.0.0.1:o/r.git" || url == "git@[::1]:o/r.git",
            "{url}"
        );
        assert_eq!(guard("/srv/x", false).await.unwrap(), Pin::default());
    }
    fn sh_git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A work repository with one commit on `main`, and an empty bare repository.
    fn work_and_bare(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let work = root.join("work");
        let bare = root.join("remote.git");
        std::fs::create_dir_all(&work).unwrap();
        sh_git(&work, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(work.join("README.md"), "hello\n").unwrap();
        sh_git(&work, &["add", "--all"]);
        sh_git(&work, &["commit", "--quiet", "-m", "first"]);
        sh_git(root, &["init", "--quiet", "--bare", "remote.git"]);
        (work, bare)
    }

    const T: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn push_sends_the_branch_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, bare) = work_and_bare(tmp.path());
        // Another local branch is not pushed.
        sh_git(&work, &["branch", "other"]);
        let url = bare.to_str().unwrap();
        let sha = push(&work, url, "main", T, false).await.unwrap();
        assert_eq!(sha, sh_git(&work, &["rev-parse", "HEAD"]).trim());
        let heads = sh_git(
            &bare,
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        );
        assert_eq!(heads.trim(), format!("refs/heads/main {sha}"));
        // Again: nothing to do, same answer.
        assert_eq!(push(&work, url, "main", T, false).await.unwrap(), sha);
        // A new local commit on top is a fast-forward.
        std::fs::write(work.join("b"), "b").unwrap();
        sh_git(&work, &["add", "--all"]);
        sh_git(&work, &["commit", "--quiet", "-m", "second"]);
        let second = push(&work, &format!("file://{url}"), "main", T, false)
            .await
            .unwrap();
        assert_ne!(second, sha);
        assert_eq!(sh_git(&bare, &["rev-parse", "main"]).trim(), second);
    }

    #[tokio::test]
    async fn push_never_overwrites_a_remote_branch_with_other_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, bare) = work_and_bare(tmp.path());
        // Someone else's history on the remote's main.
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir_all(&theirs).unwrap();
        sh_git(&theirs, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(theirs.join("x"), "x").unwrap();
        sh_git(&theirs, &["add", "--all"]);
        sh_git(&theirs, &["commit", "--quiet", "-m", "theirs"]);
        sh_git(
            &theirs,
            &["push", "--quiet", bare.to_str().unwrap(), "main"],
        );
        let before = sh_git(&bare, &["rev-parse", "main"]);
        match push(&work, bare.to_str().unwrap(), "main", T, false).await {
            Err(e @ PushError::NotEmpty { .. }) => {
                assert!(e.to_string().contains("never force-pushes"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sh_git(&bare, &["rev-parse", "main"]), before);
    }

    #[tokio::test]
    async fn a_refused_push_reports_the_remote_and_a_retry_works() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, bare) = work_and_bare(tmp.path());
        let hook = bare.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            "#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let url = bare.to_str().unwrap();
        match push(&work, url, "main", T, false).await {
            Err(PushError::Failed(msg)) => {
                assert!(msg.contains("pushes are closed today"), "{msg}");
                assert!(msg.contains("pre-receive hook declined"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&hook).unwrap();
        let sha = push(&work, url, "main", T, false).await.unwrap();
        assert_eq!(sh_git(&bare, &["rev-parse", "main"]).trim(), sha);
    }

    #[tokio::test]
    async fn push_to_private_or_missing_remotes_fails_with_a_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, _) = work_and_bare(tmp.path());
        for url in ["https://127.0.0.1/o/r", "ssh://git@169.254.169.254/o/r"] {
            match push(&work, url, "main", T, false).await {
                Err(PushError::Refused(msg)) => assert!(msg.contains("private"), "{msg}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let missing = tmp.path().join("nothing-here");
        match push(&work, missing.to_str().unwrap(), "main", T, false).await {
            Err(PushError::Failed(msg)) => assert!(!msg.is_empty()),
            other => panic!("{other:?}"),
        }
        // An unreachable remote (nothing listens on the port): a failure, within the time limit.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://ghp_secret123@127.0.0.1:{port}/o/r");
        match push(&work, &url, "main", T, true).await {
            Err(PushError::Failed(msg)) => {
                assert!(!msg.contains("ghp_secret123"), "{msg}");
                assert!(msg.contains("127.0.0.1"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        match push(&work, "/x", "--force", T, false).await {
            Err(PushError::Git(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_credentials("fatal: unable to access 'https://ghp_abc@github.com/o/r/': 403"),
            "fatal: unable to access 'https://***@github.com/o/r/': 403"
        );
        assert_eq!(
            redact_credentials("ssh://git:hunter2@h/o/r and ssh://git@h/o/r, https://h/x"),
            "ssh://git:***@h/o/r and ssh://git@h/o/r, https://h/x"
        );
        assert_eq!(redact_credentials("no url"), "no url");
    }

    /// A private repository on an HTTPS server that wants a token: refused without one or with a
    /// wrong one (permanently, naming the secret to set), fetched and pushed to with the right one,
    /// which stays out of the checkout and of `Debug`.
    #[tokio::test]
    async fn private_https_repositories_are_fetched_and_pushed_with_their_token() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, _) = work_and_bare(tmp.path());
        let served = tmp.path().join("served");
        std::fs::create_dir_all(&served).unwrap();
        sh_git(&served, &["init", "--quiet", "--bare", "app.git"]);
        sh_git(&work, &["push", "--quiet", "../served/app.git", "main"]);
        let Some(server) = slipway_test_support::GitHttpsServer::start(
            &served,
            tmp.path(),
            "deploy-bot",
            "ghp_t0ken-4242",
        ) else {
            return;
        };
        // Each test runs in its own process under nextest; git reads the CA from here.
        std::env::set_var("GIT_SSL_CAINFO", &server.ca_file);
        let url = server.url("app.git");
        let limits = FetchLimits {
            allow_private_hosts: true,
            ..FetchLimits::default()
        };
        let creds = |user: Option<&str>, token: &str| GitCredentials {
            username: user.map(str::to_string),
            token: Some(token.to_string()),
            ..GitCredentials::default()
        };

        let dest = tmp.path().join("none");
        let err = fetch(&url, None, &dest, &limits).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("no credentials are set") && msg.contains("SLIPWAY_GIT_TOKEN"),
            "{msg}"
        );
        let wrong = creds(Some("deploy-bot"), "wrong");
        let err = fetch_with(&url, None, &dest, &limits, &wrong)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("were refused"), "{err}");
        // The default user name is GitHub's for tokens, which this server does not accept.
        let err = fetch_with(&url, None, &dest, &limits, &creds(None, "ghp_t0ken-4242"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("were refused"), "{err}");

        let right = creds(Some("deploy-bot"), "ghp_t0ken-4242");
        let dest = tmp.path().join("checkout");
        let sha = fetch_with(&url, None, &dest, &limits, &right)
            .await
            .unwrap();
        assert_eq!(sha, sh_git(&work, &["rev-parse", "HEAD"]).trim());
        assert!(dest.join("README.md").exists());
        let mut leftovers = String::new();
        for f in ["config", "FETCH_HEAD"] {
            leftovers += &std::fs::read_to_string(dest.join(".git").join(f)).unwrap_or_default();
        }
        assert!(!leftovers.contains("t0ken"), "{leftovers}");
        assert!(!format!("{right:?}").contains("t0ken"));

        std::fs::write(work.join("more.txt"), "more\n").unwrap();
        sh_git(&work, &["add", "--all"]);
        sh_git(&work, &["commit", "--quiet", "-m", "second"]);
        let err = push(&work, &url, "main", T, true).await.unwrap_err();
        assert!(matches!(err, PushError::Failed(_)), "{err}");
        let pushed = push_with(&work, &url, "main", T, true, &right)
            .await
            .unwrap();
        assert_eq!(
            sh_git(&served.join("app.git"), &["rev-parse", "main"]).trim(),
            pushed
        );
        assert!(right.secret_values().iter().any(|v| v == "ghp_t0ken-4242"));
    }
}
