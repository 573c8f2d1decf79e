//! Reading and compare-and-swap updating `refs/heads/main` the way git does: take
//! `refs/heads/main.lock` with O_EXCL, write the new id, rename it over the ref.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{io_err, RepoError};
use crate::object::ObjectId;

pub(crate) const MAIN: &str = "refs/heads/main";

pub(crate) fn main_path(git_dir: &Path) -> PathBuf {
    git_dir.join("refs").join("heads").join("main")
}

pub(crate) fn lock_path(git_dir: &Path) -> PathBuf {
    git_dir.join("refs").join("heads").join("main.lock")
}

/// The commit `refs/heads/main` points at: the loose ref file, else `packed-refs` (where a
/// `git gc` or `git pack-refs` run by hand may have moved it); `None` while the branch is unborn.
pub(crate) fn read_main(git_dir: &Path) -> Result<Option<ObjectId>, RepoError> {
    let loose = main_path(git_dir);
    match fs::read_to_string(&loose) {
        Ok(text) => {
            let text = text.trim();
            return ObjectId::from_hex(text).map(Some).ok_or_else(|| {
                RepoError::GitOutput(format!("{} holds {text:?}", loose.display()))
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&loose)(e)),
    }
    let packed = git_dir.join("packed-refs");
    let text = match fs::read_to_string(&packed) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&packed)(e)),
    };
    for line in text.lines() {
        if let Some((id, name)) = line.split_once(' ') {
            if name == MAIN {
                return ObjectId::from_hex(id)
                    .map(Some)
                    .ok_or_else(|| RepoError::GitOutput(format!("packed-refs line {line:?}")));
            }
        }
    }
    Ok(None)
}

/// Points `refs/heads/main` at `new` if it still points at `expected`.
pub(crate) fn update_main(
    git_dir: &Path,
    expected: Option<ObjectId>,
    new: ObjectId,
    fsync: bool,
) -> Result<(), RepoError> {
    let lock = lock_path(git_dir);
    let mut file = acquire(&lock)?;
    let result = (|| {
        let current = read_main(git_dir)?;
        if current != expected {
            return Err(RepoError::RefMoved {
                expected: expected.map_or_else(|| "nothing".into(), |id| id.to_hex()),
                found: current.map_or_else(|| "nothing".into(), |id| id.to_hex()),
            });
        }
        file.write_all(format!("{new}\n").as_bytes())
            .map_err(io_err(&lock))?;
        if fsync {
            file.sync_all().map_err(io_err(&lock))?;
        }
        let main = main_path(git_dir);
        fs::rename(&lock, &main).map_err(io_err(main))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&lock);
    }
    result
}

/// Creates the lock file, waiting a little if a git process holds it (e.g. a `git pack-refs`
/// started by hand); a lock left by a dead process is removed at open, not here.
fn acquire(lock: &Path) -> Result<fs::File, RepoError> {
    let mut delay = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if waited >= Duration::from_secs(2) {
                    return Err(RepoError::RefLocked(lock.to_path_buf()));
                }
                std::thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = lock.parent().unwrap_or(lock);
                fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            Err(e) => return Err(io_err(lock)(e)),
        }
    }
}
