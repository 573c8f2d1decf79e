//! Updating the checked-out files. Paths are validated before they get here; on top of that no
//! symlink found in the work tree is ever followed: a directory component that is a symlink (or a
//! file) is replaced by a real directory, and files are replaced by rename, which replaces a
//! symlink rather than writing through it.
//!
//! The check-then-create sequence is not atomic against a concurrent attacker with write access to
//! the work tree; the repository belongs to the Slipway process alone.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::object::temp_name;

/// Walks `dirs` below `root`, creating each missing directory and replacing any non-directory
/// (symlink included) by a directory.
fn ensure_dirs(root: &Path, dirs: &[&str]) -> io::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for name in dirs {
        path.push(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                fs::remove_file(&path)?;
                fs::create_dir(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&path)?.is_dir() {
                        return Err(io::Error::other(format!(
                            "{} appeared as a non-directory",
                            path.display()
                        )));
                    }
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(path)
}

/// Writes `content` at `path` (components) below `root` through a temp file and a rename.
pub(crate) fn write_file(
    root: &Path,
    path: &[&str],
    content: &[u8],
    fsync: bool,
) -> io::Result<()> {
    let Some((name, parents)) = path.split_last() else {
        return Err(io::Error::other("empty path"));
    };
    let dir = ensure_dirs(root, parents)?;
    let tmp = dir.join(temp_name(".slipway-tmp-"));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(content)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the file at `path` below `root` and then every parent directory left empty. Does
/// nothing if a parent is missing or is not a real directory.
pub(crate) fn remove_file(root: &Path, path: &[&str]) -> io::Result<()> {
    let Some((name, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut dir = root.to_path_buf();
    for parent in parents {
        dir.push(parent);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let file = dir.join(name);
    match fs::symlink_metadata(&file) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for _ in parents {
        // Fails (and stops) at the first directory that still has entries.
        if fs::remove_dir(&dir).is_err() {
            break;
        }
        dir.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_planted_symlinks_and_remove_prunes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("repo");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("a")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("f"), root.join("top")).expect("symlink");

        write_file(&root, &["a", "b", "c.txt"], b"hi", false).expect("write");
        write_file(&root, &["top"], b"top", false).expect("write");
        assert_eq!(fs::read(root.join("a/b/c.txt")).expect("read"), b"hi");
        assert!(fs::symlink_metadata(root.join("a")).expect("meta").is_dir());
        assert!(!fs::symlink_metadata(root.join("top"))
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_dir(&outside).expect("ls").count(),
            0,
            "nothing written outside"
        );

        remove_file(&root, &["a", "b", "c.txt"]).expect("remove");
        assert!(!root.join("a").exists(), "empty parents pruned");
        assert!(root.exists());
    }
}
