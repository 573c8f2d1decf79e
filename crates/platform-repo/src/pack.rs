//! One pack file (plus its version-2 index) per commit. On the filesystems Slipway runs on, creating
//! a file costs far more than writing bytes into it (~0.9 ms per new file measured on the dev VM),
//! so the ~16 objects of a registration go into one `.pack` + one `.idx` rather than 16 loose
//! objects. A background `git repack --geometric=2` keeps the number of packs logarithmic.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::error::{io_err, RepoError};
use crate::object::{deflate, temp_name, Kind, ObjectId};

/// Prefix of the temp files packs are written to before being renamed into place.
pub(crate) const PACK_TEMP_PREFIX: &str = "tmp_pack_slipway_";

struct Entry {
    id: ObjectId,
    offset: u64,
    crc: u32,
}

/// Accumulates the objects of one commit in memory, then writes them as a pack.
#[derive(Default)]
pub(crate) struct PackWriter {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    seen: HashSet<ObjectId>,
}

impl PackWriter {
    /// Starts a new, empty pack (keeping the buffer's capacity).
    pub(crate) fn reset(&mut self) {
        // Do not keep the memory of a huge (rebuild) commit for the registrations that follow.
        if self.buf.capacity() > 64 << 20 {
            self.buf = Vec::new();
        }
        self.buf.clear();
        self.entries.clear();
        self.seen.clear();
        self.buf.extend_from_slice(b"PACK");
        self.buf.extend_from_slice(&2u32.to_be_bytes());
        // Object count, filled in by `finish`.
        self.buf.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Adds an object (once: later additions of the same id are ignored).
    pub(crate) fn add(&mut self, kind: Kind, id: ObjectId, body: &[u8]) -> io::Result<()> {
        if !self.seen.insert(id) {
            return Ok(());
        }
        let offset = self.buf.len();
        entry_header(kind, body.len(), &mut self.buf);
        deflate(body, &mut self.buf)?;
        let crc = crc32fast::hash(&self.buf[offset..]);
        self.entries.push(Entry {
            id,
            offset: offset as u64,
            crc,
        });
        Ok(())
    }

    /// Writes `pack-<checksum>.pack` then `.idx` into `pack_dir`, each through a temp file and a
    /// rename; git only sees the objects once the `.idx` is in place.
    pub(crate) fn finish(&mut self, pack_dir: &Path, fsync: bool) -> Result<(), RepoError> {
        let count = u32::try_from(self.entries.len())
            .map_err(|_| RepoError::InvalidChange("too many objects for one pack".into()))?;
        self.buf[8..12].copy_from_slice(&count.to_be_bytes());
        // Hashing a pack that holds 10,000-entry trees takes as long as writing it: do both at
        // once for big packs (the file's name needs the checksum only at the rename).
        let tmp_pack = pack_dir.join(temp_name(PACK_TEMP_PREFIX));
        let (checksum, written) = if self.buf.len() >= PARALLEL_HASH_MIN {
            let buf = &self.buf;
            std::thread::scope(|scope| {
                let hasher = scope.spawn(|| -> [u8; 20] { Sha1::digest(buf).into() });
                let written = write_temp(&tmp_pack, buf);
                let checksum = hasher.join().unwrap_or_else(|_| Sha1::digest(buf).into());
                (checksum, written)
            })
        } else {
            let checksum: [u8; 20] = Sha1::digest(&self.buf).into();
            (checksum, write_temp(&tmp_pack, &self.buf))
        };
        let finish_pack = written.and_then(|mut file| {
            file.write_all(&checksum)?;
            if fsync {
                file.sync_all()?;
            }
            drop(file);
            set_readonly(&tmp_pack)
        });
        let name = format!("pack-{}", ObjectId(checksum));
        let target = pack_dir.join(format!("{name}.pack"));
        if let Err(e) = finish_pack.and_then(|()| fs::rename(&tmp_pack, &target)) {
            let _ = fs::remove_file(&tmp_pack);
            return Err(io_err(target)(e));
        }
        self.buf.extend_from_slice(&checksum);
        let index = build_index(&mut self.entries, &checksum);
        write_atomically(pack_dir, &format!("{name}.idx"), &index, fsync)
    }
}

/// Type and size header of a pack entry: 3 bits of type, then the size in little-endian groups of
/// 4 and then 7 bits, each byte but the last with its high bit set.
fn entry_header(kind: Kind, size: usize, out: &mut Vec<u8>) {
    let mut size = size as u64;
    let mut byte = (kind.pack_type() << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

/// The version-2 pack index: fan-out table, sorted ids, CRC-32s, offsets, checksums.
fn build_index(entries: &mut [Entry], pack_checksum: &[u8; 20]) -> Vec<u8> {
    entries.sort_unstable_by_key(|entry| entry.id);
    let mut out = Vec::with_capacity(8 + 1024 + entries.len() * 28 + 40);
    out.extend_from_slice(&[0xff, b't', b'O', b'c', 0, 0, 0, 2]);
    let mut counts = [0u32; 256];
    for entry in entries.iter() {
        counts[usize::from(entry.id.0[0])] += 1;
    }
    let mut total = 0u32;
    for count in counts {
        total += count;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for entry in entries.iter() {
        out.extend_from_slice(entry.id.as_bytes());
    }
    for entry in entries.iter() {
        out.extend_from_slice(&entry.crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for entry in entries.iter() {
        match u32::try_from(entry.offset) {
            Ok(small) if small < 0x8000_0000 => out.extend_from_slice(&small.to_be_bytes()),
            _ => {
                // Offsets past 2 GiB go to the 64-bit table; the index is < 2^31 by far.
                let slot = 0x8000_0000u32 | large.len() as u32;
                out.extend_from_slice(&slot.to_be_bytes());
                large.push(entry.offset);
            }
        }
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack_checksum);
    let checksum: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&checksum);
    out
}

/// Packs at least this big are hashed on a second thread while they are written.
const PARALLEL_HASH_MIN: usize = 256 * 1024;

/// Creates a new temp file and writes `data` into it.
fn write_temp(path: &Path, data: &[u8]) -> io::Result<fs::File> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    if let Err(e) = file.write_all(data) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

fn write_atomically(dir: &Path, name: &str, data: &[u8], fsync: bool) -> Result<(), RepoError> {
    // git's `prune` removes `tmp_*` files left in objects/pack by a crash.
    let tmp = dir.join(temp_name(PACK_TEMP_PREFIX));
    let target = dir.join(name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(data)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        set_readonly(&tmp)?;
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(target)(e));
    }
    Ok(())
}

/// git keeps pack files read-only (0444).
fn set_readonly(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::object_id;
    use std::process::Command;

    #[test]
    fn pack_and_index_are_what_git_writes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut pack = PackWriter::default();
        pack.reset();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let bodies: [(Kind, &[u8]); 4] = [
            (Kind::Blob, b"hello\n"),
            (Kind::Blob, &big),
            (Kind::Blob, b""),
            (Kind::Blob, b"hello\n"),
        ];
        for (kind, body) in bodies {
            pack.add(kind, object_id(kind, body), body).expect("add");
        }
        pack.finish(tmp.path(), false).expect("finish");
        let packs: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(packs.len(), 2, "{packs:?}");
        let pack_file = packs
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .expect("pack");
        let ours = fs::read(pack_file.with_extension("idx")).expect("idx");
        // git rebuilds the index from the pack alone: it must agree byte for byte.
        let theirs_path = tmp.path().join("theirs.idx");
        let out = Command::new("git")
            .arg("index-pack")
            .arg("-o")
            .arg(&theirs_path)
            .arg(pack_file)
            .output()
            .expect("git index-pack");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(ours, fs::read(&theirs_path).expect("their idx"));
    }

    #[test]
    fn entry_header_encodes_sizes() {
        let mut out = Vec::new();
        entry_header(Kind::Blob, 15, &mut out);
        assert_eq!(out, [0x3f]);
        out.clear();
        entry_header(Kind::Tree, 16, &mut out);
        assert_eq!(out, [0xa0, 0x01]);
        out.clear();
        entry_header(Kind::Commit, 570_000, &mut out);
        // 570,000 = 0x8b290: type 1, low nibble 0, then 7-bit groups 0x29, 0x16, 0x02.
        assert_eq!(out, [0x90, 0xa9, 0x96, 0x02]);
    }
}
