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

/// Checks out `url` at `git_ref` (the default branch when `None`) into the empty or missing
/// directory `dest` and returns the commit SHA. Works for branch and tag names and for full commit
/// SHAs. On failure `dest` is removed.
pub async fn fetch(
    url: &str,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<String, SourceError> {
    let result = tokio::time::timeout(limits.timeout, fetch_inner(url, git_ref, dest, limits))
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
) -> Result<String, SourceError> {
    // A local path is passed as a file:// URL so that `--depth` applies (git ignores it for plain
    // paths).
    let url = if url.starts_with('/') {
        format!("file://{url}")
    } else {
        url.to_string()
    };
    let pin = guard(&url, limits.allow_private_hosts).await?;
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
    let fetched = git_with(dest, &args, pin.host_key_alias.as_deref()).await;
    if let Err(SourceError::Fetch(msg)) = &fetched {
        let missing = msg.contains("couldn't find remote ref")
            || msg.contains("not our ref")
            || msg.contains("unadvertised object")
            || msg.contains("no such remote ref");
        if missing {
            return Err(SourceError::RefNotFound(wanted.to_string()));
        }
        // A repository that is not there, or that refuses us, will not appear by retrying.
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

/// Runs git in `dir` without prompts, hooks, or system/global configuration, and returns stdout.
async fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    git_with(dir, args, None).await
}

async fn git_with(
    dir: &Path,
    args: &[&str],
    host_key_alias: Option<&str>,
) -> Result<String, SourceError> {
    // The alias is a DNS name or address from a validated URL (no spaces or quotes).
    let ssh = match host_key_alias {
        Some(alias)
            if alias
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b)) =>
        {
            format!(
                "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o HostKeyAlias={alias}"
            )
        }
        _ => "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new".to_string(),
    };
    let out = Command::new("git")
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
}
