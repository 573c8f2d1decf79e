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
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            max_bytes: 1024 * 1024 * 1024,
        }
    }
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
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| SourceError::Git(format!("cannot create {}: {e}", dest.display())))?;
    git(dest, &["init", "--quiet"]).await?;
    let wanted = git_ref.unwrap_or("HEAD");
    let fetched = git(
        dest,
        &[
            "fetch",
            "--quiet",
            "--depth=1",
            "--no-tags",
            "--",
            &url,
            wanted,
        ],
    )
    .await;
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
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        )
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
