//! Validation of repository-relative paths: nothing the caller passes may escape the work tree or
//! touch `.git`.

use crate::error::RepoError;

/// Longest file name most filesystems accept.
const MAX_COMPONENT: usize = 255;
const MAX_PATH: usize = 4096;

/// Splits a validated path into components, or says why it is refused: it must be relative,
/// `/`-separated, without empty, `.` or `..` components, without a component that git would treat
/// as `.git` (any case, trailing dots/spaces, the 8.3 alias `git~1`), and without NUL, backslash or
/// control characters.
pub(crate) fn components(path: &str) -> Result<Vec<&str>, RepoError> {
    let refuse = |reason: &'static str| RepoError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(refuse("empty path"));
    }
    if path.len() > MAX_PATH {
        return Err(refuse("path too long"));
    }
    if path.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    if let Some(c) = path.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(if c == '\\' {
            refuse("backslash")
        } else {
            refuse("control character")
        });
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err(refuse("empty component (leading, trailing or double '/')")),
            "." | ".." => return Err(refuse("'.' or '..' component")),
            _ => {}
        }
        if part.len() > MAX_COMPONENT {
            return Err(refuse("component longer than 255 bytes"));
        }
        let trimmed = part.trim_end_matches([' ', '.']);
        if trimmed.eq_ignore_ascii_case(".git") || trimmed.eq_ignore_ascii_case("git~1") {
            return Err(refuse("'.git' component"));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        for ok in [
            "a",
            "terraform/envs/dev/svc/main.tf",
            "app/templates/kubernetes/generated/svc-deployment.yaml",
            ".gitignore",
            "a/.github/x",
            "a.git/b",
            "...",
            "a/b c",
        ] {
            assert!(components(ok).is_ok(), "{ok}");
        }
        assert_eq!(components("a/b/c").ok(), Some(vec!["a", "b", "c"]));
    }

    #[test]
    fn refuses_escapes_and_git_dirs() {
        for bad in [
            "",
            "../x",
            "/etc/x",
            "a/../../x",
            "a/..",
            "./a",
            ".git/config",
            ".git",
            "a//b",
            "a/",
            "a/.GIT/x",
            ".Git./x",
            ".git /x",
            "GIT~1/config",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{7f}b",
            "a\u{85}b",
        ] {
            assert!(
                matches!(components(bad), Err(RepoError::InvalidPath { .. })),
                "{bad:?} should be refused"
            );
        }
        assert!(components(&"a".repeat(256)).is_err());
    }
}
