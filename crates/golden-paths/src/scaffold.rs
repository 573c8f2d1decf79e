//! A new service's repository: the template's app code committed to a fresh git repository.
//!
//! The files come from [`crate::TemplateSet::scaffold`] (pure); this module is the one place in
//! the crate that touches the file system and runs a program: `git`, with argument vectors and
//! `--` before every path, and no configuration of the host's user (no hooks, no signing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One file of a scaffolded repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldFile {
    /// Path inside the repository, `/`-separated, relative.
    pub path: String,
    pub content: Vec<u8>,
}

#[derive(thiserror::Error, Debug)]
pub enum ScaffoldError {
    #[error("{path} exists already")]
    Exists { path: PathBuf },
    #[error("scaffold file path {0:?} is not a plain relative path")]
    BadPath(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
}

/// Creates `dir` (which must not exist) as a git repository on branch `main` holding `files` in
/// one commit by "Slipway". On any error the directory is removed again, so a retry starts
/// clean. Blocking: call it from a blocking thread.
pub fn create_repository(
    dir: &Path,
    files: &[ScaffoldFile],
    message: &str,
) -> Result<(), ScaffoldError> {
    if dir.exists() {
        return Err(ScaffoldError::Exists {
            path: dir.to_path_buf(),
        });
    }
    let result = write_and_commit(dir, files, message);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn write_and_commit(
    dir: &Path,
    files: &[ScaffoldFile],
    message: &str,
) -> Result<(), ScaffoldError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for file in files {
        let relative = Path::new(&file.path);
        if file.path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(ScaffoldError::BadPath(file.path.clone()));
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &file.content).map_err(io(&path))?;
    }
    git(
        dir,
        &["init", "--quiet", "--initial-branch=main", "--"],
        Some(dir),
    )?;
    git(dir, &["add", "--all", "--"], Some(Path::new(".")))?;
    git(
        dir,
        &[
            "-c",
            "user.name=Slipway",
            "-c",
            "user.email=slipway@localhost",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            message,
        ],
        None,
    )
}

fn git(dir: &Path, args: &[&str], path: Option<&Path>) -> Result<(), ScaffoldError> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    if let Some(path) = path {
        command.arg(path);
    }
    let describe = || args.join(" ");
    let output = command.output().map_err(|e| ScaffoldError::Git {
        args: describe(),
        message: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(ScaffoldError::Git {
            args: describe(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}
