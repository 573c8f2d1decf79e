//! The app's files, behind an abstraction so detection is testable without a clone.
//!
//! Paths given to a [`RepoFs`] are relative to the repository root, `/`-separated. `.` and empty
//! components are ignored; `..` and absolute paths are refused, so a caller can never name a file
//! outside the root. [`DirFs`] additionally refuses to follow a symbolic link whose target lies
//! outside the root, caps the size of every read, and never opens anything but regular files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads larger than this are refused (manifests and source files are far smaller).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;
/// A directory listing stops after this many entries.
pub const MAX_DIR_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("`{path}` is not a path inside the repository")]
    OutsideRoot { path: String },
    #[error("{path}: {size} bytes is over the {limit}-byte limit for files the analyzer reads")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: not UTF-8 text")]
    NotText { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Read-only access to a repository's files.
pub trait RepoFs: Send + Sync {
    /// The bytes of a regular file; `Ok(None)` when there is no such file (or it is a directory, a
    /// special file, or a link leading out of the repository).
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FsError>;

    /// The entries of a directory, sorted by name; empty when the directory does not exist.
    /// Entries that are links leading out of the repository are left out.
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, FsError>;

    /// What is at `path`, if anything (links out of the repository count as nothing).
    fn kind(&self, path: &str) -> Option<EntryKind>;

    /// A file as UTF-8 text (a leading byte-order mark is dropped).
    fn read_text(&self, path: &str) -> Result<Option<String>, FsError> {
        match self.read(path)? {
            None => Ok(None),
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(mut s) => {
                    if s.starts_with('\u{feff}') {
                        s.drain(..3);
                    }
                    Ok(Some(s))
                }
                Err(_) => Err(FsError::NotText {
                    path: path.to_owned(),
                }),
            },
        }
    }

    fn is_file(&self, path: &str) -> bool {
        self.kind(path) == Some(EntryKind::File)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.kind(path) == Some(EntryKind::Dir)
    }
}

/// Normalizes a repository-relative path: `/`-separated, no `.`/empty components, `""` for the
/// root. `..`, absolute paths, backslashes and NUL bytes are refused.
pub fn normalize(path: &str) -> Result<String, FsError> {
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(FsError::OutsideRoot {
            path: path.to_owned(),
        });
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(FsError::OutsideRoot {
                    path: path.to_owned(),
                })
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Joins a directory and a relative name (both repository-relative).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_owned()
    } else if name.is_empty() {
        dir.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A real directory on disk.
#[derive(Debug, Clone)]
pub struct DirFs {
    root: PathBuf,
    max_file_bytes: u64,
}

impl DirFs {
    /// Opens `root` (which must be a directory); the root itself may be reached through a link.
    pub fn new(root: &Path) -> Result<Self, FsError> {
        let display = root.display().to_string();
        let canonical = std::fs::canonicalize(root).map_err(|source| FsError::Io {
            path: display.clone(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(FsError::Io {
                path: display,
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Self {
            root: canonical,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        })
    }

    /// Changes the per-file read limit.
    pub fn with_max_file_bytes(mut self, limit: u64) -> Self {
        self.max_file_bytes = limit;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of a repository path, or `None` when it does not exist or resolves (through
    /// links) to somewhere outside the root.
    fn resolve(&self, path: &str) -> Result<Option<PathBuf>, FsError> {
        let rel = normalize(path)?;
        if rel.is_empty() {
            return Ok(Some(self.root.clone()));
        }
        let joined = self.root.join(&rel);
        // A cheap lstat first: most probes are for files that do not exist.
        if std::fs::symlink_metadata(&joined).is_err() {
            return Ok(None);
        }
        match std::fs::canonicalize(&joined) {
            Ok(real) if real.starts_with(&self.root) => Ok(Some(real)),
            Ok(_) => Ok(None),
            Err(_) => Ok(None), // dangling link or a loop
        }
    }
}

impl RepoFs for DirFs {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        let Some(real) = self.resolve(path)? else {
            return Ok(None);
        };
        let io = |source| FsError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(&real).map_err(io)?;
        if !meta.is_file() {
            return Ok(None);
        }
        if meta.len() > self.max_file_bytes {
            return Err(FsError::TooLarge {
                path: path.to_owned(),
                size: meta.len(),
                limit: self.max_file_bytes,
            });
        }
        let file = std::fs::File::open(&real).map_err(io)?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // The file may grow between stat and read; never read past the limit.
        file.take(self.max_file_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(FsError::TooLarge {
                path: path.to_owned(),
                size: bytes.len() as u64,
                limit: self.max_file_bytes,
            });
        }
        Ok(Some(bytes))
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, FsError> {
        let Some(real) = self.resolve(dir)? else {
            return Ok(Vec::new());
        };
        let Ok(read_dir) = std::fs::read_dir(&real) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in read_dir.flatten() {
            if out.len() >= MAX_DIR_ENTRIES {
                break;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let kind = if file_type.is_symlink() {
                match std::fs::canonicalize(entry.path()) {
                    Ok(target) if target.starts_with(&self.root) => {
                        match std::fs::metadata(&target) {
                            Ok(m) if m.is_dir() => EntryKind::Dir,
                            Ok(m) if m.is_file() => EntryKind::File,
                            _ => continue,
                        }
                    }
                    _ => continue,
                }
            } else if file_type.is_dir() {
                EntryKind::Dir
            } else if file_type.is_file() {
                EntryKind::File
            } else {
                continue;
            };
            out.push(DirEntry { name, kind });
        }
        out.sort();
        Ok(out)
    }

    fn kind(&self, path: &str) -> Option<EntryKind> {
        let real = self.resolve(path).ok()??;
        let meta = std::fs::metadata(real).ok()?;
        if meta.is_dir() {
            Some(EntryKind::Dir)
        } else if meta.is_file() {
            Some(EntryKind::File)
        } else {
            None
        }
    }
}

/// An in-memory repository for tests: a map from path to contents; directories are implied.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<String, Vec<u8>>,
    max_file_bytes: Option<u64>,
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a repository from `(path, contents)` pairs.
    pub fn from_files<P: AsRef<str>, C: AsRef<[u8]>>(
        files: impl IntoIterator<Item = (P, C)>,
    ) -> Self {
        let mut fs = Self::new();
        for (path, contents) in files {
            fs.insert(path.as_ref(), contents.as_ref());
        }
        fs
    }

    /// Adds a file (an invalid path is ignored: it could never be read back).
    pub fn insert(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> &mut Self {
        if let Ok(p) = normalize(path) {
            if !p.is_empty() {
                self.files.insert(p, contents.into());
            }
        }
        self
    }

    /// Builder form of [`MemFs::insert`].
    pub fn with(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.insert(path, contents);
        self
    }

    /// Caps reads like [`DirFs`] does.
    pub fn with_max_file_bytes(mut self, limit: u64) -> Self {
        self.max_file_bytes = Some(limit);
        self
    }
}

impl RepoFs for MemFs {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        let p = normalize(path)?;
        let Some(bytes) = self.files.get(&p) else {
            return Ok(None);
        };
        if let Some(limit) = self.max_file_bytes {
            if bytes.len() as u64 > limit {
                return Err(FsError::TooLarge {
                    path: p,
                    size: bytes.len() as u64,
                    limit,
                });
            }
        }
        Ok(Some(bytes.clone()))
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, FsError> {
        let d = normalize(dir)?;
        let prefix = if d.is_empty() {
            String::new()
        } else {
            format!("{d}/")
        };
        let mut out: Vec<DirEntry> = Vec::new();
        for key in self.files.keys() {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let entry = match rest.split_once('/') {
                Some((name, _)) => DirEntry {
                    name: name.to_owned(),
                    kind: EntryKind::Dir,
                },
                None => DirEntry {
                    name: rest.to_owned(),
                    kind: EntryKind::File,
                },
            };
            if out.last() != Some(&entry) && !out.contains(&entry) {
                out.push(entry);
            }
        }
        out.sort();
        Ok(out)
    }

    fn kind(&self, path: &str) -> Option<EntryKind> {
        let p = normalize(path).ok()?;
        if p.is_empty() {
            return Some(EntryKind::Dir);
        }
        if self.files.contains_key(&p) {
            return Some(EntryKind::File);
        }
        let prefix = format!("{p}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|_| EntryKind::Dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_escapes() {
        assert_eq!(normalize("./a//b/").unwrap(), "a/b");
        assert_eq!(normalize(".").unwrap(), "");
        assert!(normalize("../x").is_err());
        assert!(normalize("a/../../x").is_err());
        assert!(normalize("/etc/passwd").is_err());
    }

    #[test]
    fn memfs_lists_implied_directories() {
        let fs = MemFs::new()
            .with("a/b.txt", "1")
            .with("a/c/d.txt", "2")
            .with("e.txt", "3");
        let names: Vec<_> = fs.list("").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "e.txt"]);
        assert_eq!(fs.kind("a/c"), Some(EntryKind::Dir));
        assert_eq!(fs.kind("a/b.txt"), Some(EntryKind::File));
        assert_eq!(fs.kind("a/x"), None);
        assert_eq!(fs.list("a").unwrap().len(), 2);
    }
}
