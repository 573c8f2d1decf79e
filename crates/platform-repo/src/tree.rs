//! The HEAD tree kept in memory. Every directory caches its tree id; a change clears the cache only
//! on the directories along the changed paths, so a commit re-serializes and re-hashes just those.

use std::collections::BTreeMap;

use crate::error::RepoError;
use crate::object::ObjectId;

/// Modes git allows for non-directory tree entries. Slipway writes `Regular`; the others are kept
/// as found when a tree written by someone else is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileMode {
    Regular,
    Executable,
    Symlink,
    Gitlink,
}

impl FileMode {
    fn tree_mode(self) -> &'static [u8] {
        match self {
            FileMode::Regular => b"100644",
            FileMode::Executable => b"100755",
            FileMode::Symlink => b"120000",
            FileMode::Gitlink => b"160000",
        }
    }

    pub(crate) fn parse(mode: &[u8]) -> Option<Self> {
        match mode {
            b"100644" | b"100664" => Some(FileMode::Regular),
            b"100755" => Some(FileMode::Executable),
            b"120000" => Some(FileMode::Symlink),
            b"160000" => Some(FileMode::Gitlink),
            _ => None,
        }
    }
}

pub(crate) type FileEntry = (FileMode, ObjectId);

enum Node {
    File(FileEntry),
    Dir(Box<Dir>),
}

impl Node {
    /// The directory in this node. Keys ending in '/' only ever hold directories, so the file case
    /// does not happen; should it, the file is replaced rather than panicking.
    fn make_dir(&mut self) -> &mut Dir {
        match self {
            Node::Dir(dir) => dir,
            Node::File(_) => {
                *self = Node::Dir(Box::default());
                self.make_dir()
            }
        }
    }
}

/// A directory. Keys are the entry name, plus a trailing `/` for directories: plain byte order on
/// those keys is exactly git's tree order (a directory sorts as if its name ended in `/`), and a
/// name can never hold a `/`, so the two kinds of key cannot collide.
#[derive(Default)]
pub(crate) struct Dir {
    entries: BTreeMap<Box<[u8]>, Node>,
    /// Id of this directory's tree object; `None` when it must be recomputed.
    id: Option<ObjectId>,
    /// Large directories (one entry per service) keep their serialized tree and edit it in place,
    /// instead of re-serializing 10,000 entries per commit.
    cache: Option<Box<Serialized>>,
}

/// Directories with at least this many entries keep a [`Serialized`] cache.
const CACHE_MIN_ENTRIES: usize = 256;

/// A directory's tree object body, kept in step with `Dir::entries`.
struct Serialized {
    bytes: Vec<u8>,
    /// Start of each entry in `bytes`, in tree order.
    offsets: Vec<usize>,
    /// Keys of child directories whose id changed and must be patched in before hashing.
    stale_children: Vec<Box<[u8]>>,
}

const DIR_MODE: &[u8] = b"40000";

fn push_entry(out: &mut Vec<u8>, mode: &[u8], name: &[u8], id: &ObjectId) {
    out.extend_from_slice(mode);
    out.push(b' ');
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(id.as_bytes());
}

impl Serialized {
    fn end_of(&self, i: usize) -> usize {
        self.offsets.get(i + 1).copied().unwrap_or(self.bytes.len())
    }

    /// Compares the sort key of entry `i` (its name, plus `/` for a directory) with `key`.
    fn cmp_entry(&self, i: usize, key: &[u8]) -> std::cmp::Ordering {
        let entry = &self.bytes[self.offsets[i]..self.end_of(i)];
        let space = entry.iter().position(|&b| b == b' ').unwrap_or(0);
        let is_dir = &entry[..space] == DIR_MODE;
        let rest = &entry[space + 1..];
        let name = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
        let suffix: &[u8] = if is_dir { b"/" } else { b"" };
        name.iter().chain(suffix).cmp(key.iter())
    }

    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.offsets.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.cmp_entry(mid, key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Sets the entry for `key` (inserting it in order, or replacing it).
    fn set(&mut self, key: &[u8], mode: &[u8], id: &ObjectId) {
        let name = key.strip_suffix(b"/").unwrap_or(key);
        let mut entry = Vec::with_capacity(mode.len() + name.len() + 22);
        push_entry(&mut entry, mode, name, id);
        match self.find(key) {
            Ok(i) => {
                let (start, end) = (self.offsets[i], self.end_of(i));
                if end - start == entry.len() {
                    self.bytes[start..end].copy_from_slice(&entry);
                } else {
                    self.bytes.splice(start..end, entry.iter().copied());
                    let grown = entry.len() as isize - (end - start) as isize;
                    for offset in &mut self.offsets[i + 1..] {
                        *offset = offset.wrapping_add_signed(grown);
                    }
                }
            }
            Err(i) => {
                let start = self.offsets.get(i).copied().unwrap_or(self.bytes.len());
                self.bytes.splice(start..start, entry.iter().copied());
                self.offsets.insert(i, start);
                for offset in &mut self.offsets[i + 1..] {
                    *offset += entry.len();
                }
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Ok(i) = self.find(key) {
            let (start, end) = (self.offsets[i], self.end_of(i));
            self.bytes.drain(start..end);
            self.offsets.remove(i);
            for offset in &mut self.offsets[i..] {
                *offset -= end - start;
            }
        }
    }

    /// Overwrites the id of the directory entry `key` (same length: no shifting).
    fn patch_id(&mut self, key: &[u8], id: &ObjectId) -> bool {
        match self.find(key) {
            Ok(i) => {
                let end = self.end_of(i);
                self.bytes[end - 20..end].copy_from_slice(id.as_bytes());
                true
            }
            Err(_) => false,
        }
    }
}

/// Why a change does not fit the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// A file sits where the path needs a directory.
    FileInTheWay,
    /// The path names a directory, not a file.
    IsDirectory,
}

impl Conflict {
    pub(crate) fn into_error(self, path: &str) -> RepoError {
        RepoError::PathConflict {
            path: path.to_owned(),
            reason: match self {
                Conflict::FileInTheWay => "a parent directory of it is a file in the tree",
                Conflict::IsDirectory => "it is a directory in the tree",
            },
        }
    }
}

fn dir_key(name: &str) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.extend_from_slice(name.as_bytes());
    key.push(b'/');
    key.into_boxed_slice()
}

impl Dir {
    fn child_dir(&self, name: &str, key_buf: &mut Vec<u8>) -> Option<&Dir> {
        key_buf.clear();
        key_buf.extend_from_slice(name.as_bytes());
        key_buf.push(b'/');
        match self.entries.get(key_buf.as_slice()) {
            Some(Node::Dir(d)) => Some(d),
            _ => None,
        }
    }

    fn has_file(&self, name: &str) -> bool {
        matches!(self.entries.get(name.as_bytes()), Some(Node::File(_)))
    }

    /// The file at `path`, if any.
    pub(crate) fn get_file(&self, path: &[&str]) -> Option<FileEntry> {
        let (last, parents) = path.split_last()?;
        let mut key_buf = Vec::new();
        let mut dir = self;
        for name in parents {
            dir = dir.child_dir(name, &mut key_buf)?;
        }
        match dir.entries.get(last.as_bytes()) {
            Some(Node::File(entry)) => Some(*entry),
            _ => None,
        }
    }

    /// Sets the file at `path`, creating directories; returns the previous file. Nothing changes
    /// when it fails.
    pub(crate) fn set_file(
        &mut self,
        path: &[&str],
        entry: FileEntry,
    ) -> Result<Option<FileEntry>, Conflict> {
        self.check_settable(path)?;
        Ok(self.set_unchecked(path, entry))
    }

    fn check_settable(&self, path: &[&str]) -> Result<(), Conflict> {
        let Some((last, parents)) = path.split_last() else {
            return Err(Conflict::IsDirectory);
        };
        let mut key_buf = Vec::new();
        let mut dir = self;
        for name in parents {
            if dir.has_file(name) {
                return Err(Conflict::FileInTheWay);
            }
            match dir.child_dir(name, &mut key_buf) {
                Some(d) => dir = d,
                // The rest of the path will be created: nothing can be in the way.
                None => return Ok(()),
            }
        }
        if dir.child_dir(last, &mut key_buf).is_some() {
            return Err(Conflict::IsDirectory);
        }
        Ok(())
    }

    fn set_unchecked(&mut self, path: &[&str], entry: FileEntry) -> Option<FileEntry> {
        self.id = None;
        match path {
            [] => None,
            [name] => {
                if let Some(cache) = &mut self.cache {
                    cache.set(name.as_bytes(), entry.0.tree_mode(), &entry.1);
                }
                match self
                    .entries
                    .insert(name.as_bytes().into(), Node::File(entry))
                {
                    Some(Node::File(old)) => Some(old),
                    _ => None,
                }
            }
            [name, rest @ ..] => {
                let key = dir_key(name);
                if let Some(cache) = &mut self.cache {
                    if !self.entries.contains_key(&key) {
                        // Placeholder id, patched in by `ensure_id`.
                        cache.set(&key, DIR_MODE, &ObjectId::default());
                    }
                    cache.stale_children.push(key.clone());
                }
                self.entries
                    .entry(key)
                    .or_insert_with(|| Node::Dir(Box::default()))
                    .make_dir()
                    .set_unchecked(rest, entry)
            }
        }
    }

    /// Removes the file at `path` and the directories it leaves empty; returns the removed file,
    /// `None` (and no change) when there is none.
    pub(crate) fn remove_file(&mut self, path: &[&str]) -> Result<Option<FileEntry>, Conflict> {
        match path {
            [] => Err(Conflict::IsDirectory),
            [name] => {
                if self.entries.contains_key(dir_key(name).as_ref()) {
                    return Err(Conflict::IsDirectory);
                }
                match self.entries.remove(name.as_bytes()) {
                    Some(Node::File(old)) => {
                        self.id = None;
                        if let Some(cache) = &mut self.cache {
                            cache.remove(name.as_bytes());
                        }
                        Ok(Some(old))
                    }
                    Some(other) => {
                        // Unreachable: keys without '/' only hold files. Put it back untouched.
                        self.entries.insert(name.as_bytes().into(), other);
                        Ok(None)
                    }
                    None => Ok(None),
                }
            }
            [name, rest @ ..] => {
                let key = dir_key(name);
                let Some(Node::Dir(dir)) = self.entries.get_mut(key.as_ref()) else {
                    return Ok(None);
                };
                let removed = dir.remove_file(rest)?;
                if removed.is_some() {
                    let emptied = dir.entries.is_empty();
                    if emptied {
                        self.entries.remove(key.as_ref());
                    }
                    if let Some(cache) = &mut self.cache {
                        if emptied {
                            cache.remove(&key);
                        } else {
                            cache.stale_children.push(key);
                        }
                    }
                    self.id = None;
                }
                Ok(removed)
            }
        }
    }

    /// Returns this directory's tree id, computing (and handing to `write`) the tree objects of
    /// every directory whose cache was cleared, children first.
    pub(crate) fn ensure_id(
        &mut self,
        scratch: &mut Vec<u8>,
        write: &mut dyn FnMut(&[u8]) -> Result<ObjectId, RepoError>,
    ) -> Result<ObjectId, RepoError> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        if let Some(cache) = &mut self.cache {
            for key in std::mem::take(&mut cache.stale_children) {
                if let Some(Node::Dir(child)) = self.entries.get_mut(&key) {
                    let child_id = child.ensure_id(scratch, write)?;
                    if !cache.patch_id(&key, &child_id) {
                        return Err(internal("cached tree lacks a child directory"));
                    }
                }
            }
            let id = write(&cache.bytes)?;
            self.id = Some(id);
            return Ok(id);
        }
        for node in self.entries.values_mut() {
            if let Node::Dir(dir) = node {
                if dir.id.is_none() {
                    dir.ensure_id(scratch, write)?;
                }
            }
        }
        let keep = self.entries.len() >= CACHE_MIN_ENTRIES;
        let mut offsets = Vec::with_capacity(if keep { self.entries.len() } else { 0 });
        scratch.clear();
        scratch.reserve(self.entries.len() * 64);
        for (key, node) in &self.entries {
            if keep {
                offsets.push(scratch.len());
            }
            match node {
                Node::File((mode, id)) => push_entry(scratch, mode.tree_mode(), key, id),
                Node::Dir(dir) => {
                    let id = dir.id.ok_or_else(|| internal("child tree id missing"))?;
                    push_entry(scratch, DIR_MODE, &key[..key.len() - 1], &id);
                }
            }
        }
        let id = write(scratch)?;
        if keep {
            self.cache = Some(Box::new(Serialized {
                bytes: scratch.clone(),
                offsets,
                stale_children: Vec::new(),
            }));
        }
        self.id = Some(id);
        Ok(id)
    }

    /// Inserts a directory read from git with its known tree id (parents must come first, as
    /// `git ls-tree -t` lists them).
    pub(crate) fn load_dir(&mut self, path: &[&[u8]], id: ObjectId) {
        self.load_walk(path).id = Some(id);
    }

    /// Inserts a file read from git without clearing any cached id.
    pub(crate) fn load_file(&mut self, path: &[&[u8]], entry: FileEntry) {
        if let Some((last, parents)) = path.split_last() {
            self.load_walk(parents)
                .entries
                .insert((*last).into(), Node::File(entry));
        }
    }

    fn load_walk(&mut self, path: &[&[u8]]) -> &mut Dir {
        let mut dir = self;
        for name in path {
            let mut key = Vec::with_capacity(name.len() + 1);
            key.extend_from_slice(name);
            key.push(b'/');
            dir = dir
                .entries
                .entry(key.into_boxed_slice())
                .or_insert_with(|| Node::Dir(Box::default()))
                .make_dir();
        }
        dir
    }

    pub(crate) fn set_id(&mut self, id: ObjectId) {
        self.id = Some(id);
    }

    /// Every file as `path -> (mode, id)`. Names that are not UTF-8 (never written by Slipway) are
    /// skipped.
    pub(crate) fn files(&self) -> BTreeMap<String, FileEntry> {
        let mut out = BTreeMap::new();
        let mut prefix = String::new();
        self.collect(&mut prefix, &mut out);
        out
    }

    fn collect(&self, prefix: &mut String, out: &mut BTreeMap<String, FileEntry>) {
        for (key, node) in &self.entries {
            let Ok(name) = std::str::from_utf8(key) else {
                tracing::warn!(?key, "skipping non-UTF-8 name in platform repository tree");
                continue;
            };
            let len = prefix.len();
            match node {
                Node::File(entry) => {
                    prefix.push_str(name);
                    out.insert(prefix.clone(), *entry);
                }
                Node::Dir(dir) => {
                    prefix.push_str(name);
                    dir.collect(prefix, out);
                }
            }
            prefix.truncate(len);
        }
    }
}

fn internal(what: &str) -> RepoError {
    RepoError::Task(format!("internal error: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{object_id, Kind};

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 20])
    }

    fn tree_id(dir: &mut Dir) -> ObjectId {
        let mut scratch = Vec::new();
        dir.ensure_id(&mut scratch, &mut |body| Ok(object_id(Kind::Tree, body)))
            .expect("no io")
    }

    #[test]
    fn set_get_remove_and_prune() {
        let mut root = Dir::default();
        assert_eq!(
            root.set_file(&["a", "b", "c"], (FileMode::Regular, id(1))),
            Ok(None)
        );
        assert_eq!(
            root.get_file(&["a", "b", "c"]),
            Some((FileMode::Regular, id(1)))
        );
        assert_eq!(
            root.set_file(&["a", "b"], (FileMode::Regular, id(2))),
            Err(Conflict::IsDirectory)
        );
        assert_eq!(
            root.set_file(&["a", "b", "c", "d"], (FileMode::Regular, id(2))),
            Err(Conflict::FileInTheWay)
        );
        assert_eq!(root.remove_file(&["a", "b"]), Err(Conflict::IsDirectory));
        assert_eq!(root.remove_file(&["a", "x"]), Ok(None));
        assert_eq!(
            root.remove_file(&["a", "b", "c"]),
            Ok(Some((FileMode::Regular, id(1))))
        );
        assert!(root.entries.is_empty(), "emptied directories are pruned");
        assert_eq!(tree_id(&mut root), object_id(Kind::Tree, b""));
    }

    #[test]
    fn only_changed_paths_are_rehashed() {
        let mut root = Dir::default();
        for i in 0..10u8 {
            root.set_file(&["d", &format!("f{i}")], (FileMode::Regular, id(i)))
                .expect("set");
            root.set_file(&["e", &format!("f{i}")], (FileMode::Regular, id(i)))
                .expect("set");
        }
        let mut count = 0;
        let mut scratch = Vec::new();
        let mut write = |body: &[u8]| {
            count += 1;
            Ok(object_id(Kind::Tree, body))
        };
        root.ensure_id(&mut scratch, &mut write).expect("ids");
        root.set_file(&["d", "new"], (FileMode::Regular, id(99)))
            .expect("set");
        root.ensure_id(&mut scratch, &mut write).expect("ids");
        assert_eq!(count, 3 + 2, "first: root, d, e; then root and d only");
    }

    #[test]
    fn cached_serialization_matches_a_fresh_one() {
        let mut root = Dir::default();
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..40 {
            let ops = if round == 0 { 3000 } else { 25 };
            for _ in 0..ops {
                let r = next();
                let i = r % 700;
                let path: Vec<String> = match r % 5 {
                    0 => vec!["big".into(), format!("f{i}")],
                    1 => vec!["big".into(), format!("d{i}"), "x".into()],
                    2 => vec!["big".into(), format!("f{i}.x")],
                    3 => vec!["big".into(), format!("d{i}"), format!("y{}", r % 3)],
                    _ => vec![format!("small{}", r % 3), format!("f{}", i % 5)],
                };
                let comps: Vec<&str> = path.iter().map(String::as_str).collect();
                if (r >> 8) % 3 == 0 {
                    root.remove_file(&comps).expect("files only");
                } else {
                    root.set_file(&comps, (FileMode::Regular, id((r >> 16) as u8)))
                        .expect("no conflicts by construction");
                }
            }
            assert!(
                round == 0
                    || root
                        .child_dir("big", &mut Vec::new())
                        .is_some_and(|d| d.cache.is_some()),
                "the big directory is cached"
            );
            let ours = tree_id(&mut root);
            let mut fresh = Dir::default();
            for (path, entry) in root.files() {
                let comps: Vec<&str> = path.split('/').collect();
                fresh.set_file(&comps, entry).expect("set");
            }
            assert_eq!(ours, tree_id(&mut fresh), "round {round}");
        }
    }
}
