use std::path::PathBuf;

/// What can go wrong in the platform repository. `InvalidPath`, `PathConflict`, `InvalidChange` are
/// the caller's fault; the rest are environment or repository problems to log.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("path {path:?} conflicts with the repository tree: {reason}")]
    PathConflict { path: String, reason: &'static str },
    #[error("invalid change: {0}")]
    InvalidChange(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not run git: {0}")]
    GitSpawn(#[source] std::io::Error),
    #[error("`git {args}` failed ({status}): {stderr}")]
    Git {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("unexpected output from git: {0}")]
    GitOutput(String),
    #[error("{path} is not a git repository owned by Slipway: {reason}")]
    NotARepository { path: PathBuf, reason: String },
    #[error("{0} is in use by another Slipway process (it holds .git/slipway.lock)")]
    InUse(PathBuf),
    #[error("refs/heads/main moved outside Slipway (expected {expected}, found {found}); reopen or rebuild the repository")]
    RefMoved { expected: String, found: String },
    #[error("refs/heads/main is locked by another writer ({0} exists)")]
    RefLocked(PathBuf),
    #[error("an earlier commit panicked; the in-memory tree can no longer be trusted, reopen the repository")]
    Poisoned,
    #[error("background task failed: {0}")]
    Task(String),
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RepoError {
    let path = path.into();
    move |source| RepoError::Io { path, source }
}
