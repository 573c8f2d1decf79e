//! What can go wrong, worded for the failed deployment's reason.

use serde::Serialize;

use crate::fs::FsError;
use crate::plan::AppCandidate;

/// A candidate the analyzer checked and why it did not give a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Nothing in the directory says how to build and run it.
    #[error("{}", undetected_message(app_dir, candidates))]
    Undetected {
        app_dir: String,
        candidates: Vec<Candidate>,
    },
    /// A manifest could not be parsed.
    #[error("{file}{}: {message}", line.map(|l| match column { Some(c) => format!(":{l}:{c}"), None => format!(":{l}") }).unwrap_or_default())]
    Malformed {
        file: String,
        line: Option<u32>,
        column: Option<u32>,
        message: String,
    },
    /// Several app directories are deployable and none was chosen.
    #[error("{}", ambiguous_message(apps))]
    AmbiguousApps { apps: Vec<AppCandidate> },
    /// The requested app directory is not a directory of the repository.
    #[error("app directory `{app_dir}` {reason}")]
    BadAppDir { app_dir: String, reason: String },
    #[error(transparent)]
    Fs(#[from] FsError),
}

fn undetected_message(app_dir: &str, candidates: &[Candidate]) -> String {
    let mut msg = if app_dir == "." {
        "could not tell how to build and run this repository".to_owned()
    } else {
        format!("could not tell how to build and run `{app_dir}`")
    };
    if candidates.is_empty() {
        msg.push_str(": it is empty");
    } else {
        msg.push_str("; checked: ");
        let parts: Vec<String> = candidates
            .iter()
            .map(|c| format!("{} ({})", c.name, c.reason))
            .collect();
        msg.push_str(&parts.join("; "));
    }
    msg.push_str(". Add a slipway.toml with [build] start = \"...\" to say it explicitly.");
    msg
}

fn ambiguous_message(apps: &[AppCandidate]) -> String {
    let dirs: Vec<String> = apps
        .iter()
        .filter(|a| a.deployable)
        .map(|a| match &a.language {
            Some(l) => format!("{} ({l}, from {})", a.dir, a.source),
            None => format!("{} (from {})", a.dir, a.source),
        })
        .collect();
    format!(
        "this repository holds {} deployable apps: {}; choose one with --app-dir (or app_dir in slipway.toml)",
        dirs.len(),
        dirs.join(", ")
    )
}
