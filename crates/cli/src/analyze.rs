//! `slipway analyze`: the analyzer run in this process on a directory or a fetched repository, no
//! server needed.

use crate::client::{exit, CliError};
use crate::Format;
use slipway_analyzer::{AnalyzeError, AnalyzeOptions};
use slipway_engine::source::{self, FetchLimits, SourceError};
use std::path::{Path, PathBuf};

/// Whether `source` names a repository to fetch rather than a local directory.
fn is_url(source: &str) -> bool {
    if ["https://", "http://", "ssh://", "git@", "file://"]
        .iter()
        .any(|p| source.starts_with(p))
    {
        return true;
    }
    // Any other scheme (`ftp://…`, git's `ext::…` remote helpers) is a URL as well, which the
    // validation then refuses by name, unless such a directory exists here.
    let scheme = source.find("://").or_else(|| source.find("::"));
    scheme.is_some_and(|n| {
        n > 0
            && source.as_bytes()[0].is_ascii_alphabetic()
            && source[..n]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    }) && !Path::new(source).is_dir()
}

fn invalid(message: String) -> CliError {
    CliError {
        code: exit::INVALID,
        message,
    }
}

pub async fn analyze(
    format: Format,
    source: &str,
    app_dir: Option<String>,
    git_ref: Option<String>,
) -> Result<(), CliError> {
    // Keeps a fetched checkout until the analyzer is done with it.
    let mut _checkout: Option<tempfile::TempDir> = None;
    let root: PathBuf = if is_url(source) {
        slipway_core::validate::repo_source("repository", source, true)
            .map_err(|e| invalid(format!("{} {source:?}: {}", e.field, e.message)))?;
        if let Some(r) = &git_ref {
            slipway_core::validate::git_ref("--ref", r)
                .map_err(|e| invalid(format!("{} {r:?}: {}", e.field, e.message)))?;
        }
        let tmp = tempfile::Builder::new()
            .prefix("slipway-analyze-")
            .tempdir()
            .map_err(|e| CliError {
                code: exit::ERROR,
                message: format!("cannot create a temporary directory: {e}"),
            })?;
        let dest = tmp.path().join("repo");
        // The CLI fetches as its user, from wherever that user can reach: no private-host guard.
        let limits = FetchLimits {
            allow_private_hosts: true,
            ..FetchLimits::default()
        };
        let sha = source::fetch(source, git_ref.as_deref(), &dest, &limits)
            .await
            .map_err(|e| CliError {
                code: match e {
                    SourceError::RefNotFound(_) | SourceError::Unavailable(_) => exit::NOT_FOUND,
                    SourceError::Fetch(_) | SourceError::Timeout(_) => exit::UNREACHABLE,
                    _ => exit::ERROR,
                },
                message: format!("{source}: {e}"),
            })?;
        eprintln!("analyzing {source} at {sha}");
        _checkout = Some(tmp);
        dest
    } else {
        if git_ref.is_some() {
            return Err(CliError {
                code: exit::USAGE,
                message: "--ref applies to repository URLs; for a local directory check the ref out first".into(),
            });
        }
        let path = Path::new(source);
        if !path.is_dir() {
            return Err(CliError {
                code: exit::NOT_FOUND,
                message: format!(
                    "{source:?} is not a directory (give a directory, or a repository URL: https://, ssh://, git@host:path, file://)"
                ),
            });
        }
        path.to_path_buf()
    };
    let options = AnalyzeOptions { app_dir };
    let plan = tokio::task::spawn_blocking(move || slipway_analyzer::analyze_dir(&root, &options))
        .await
        .map_err(|e| CliError {
            code: exit::ERROR,
            message: format!("the analyzer stopped: {e}"),
        })?
        .map_err(|e| CliError {
            code: match e {
                AnalyzeError::BadAppDir { .. } => exit::USAGE,
                _ => exit::ERROR,
            },
            message: e.to_string(),
        })?;
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&plan).map_err(|e| CliError {
                code: exit::ERROR,
                message: format!("cannot write the plan as JSON: {e}"),
            })?;
            outln!("{text}");
        }
        Format::Table => out!("{}", slipway_analyzer::render_table(&plan)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_and_paths() {
        for url in [
            "https://github.com/org/app",
            "ssh://git@host/org/app.git",
            "git@github.com:org/app.git",
            "file:///srv/git/app",
            "http://insecure/app",
        ] {
            assert!(super::is_url(url), "{url}");
        }
        for path in [".", "/srv/git/app", "apps/web", "github.com/org/app"] {
            assert!(!super::is_url(path), "{path}");
        }
    }
}
