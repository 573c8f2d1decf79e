//! The platform repository: a git repository under `<data-dir>/platform-repo/` holding the files
//! Slipway generates, kept as a projection of the database with one commit per change. Commits
//! are written before the HTTP response, so on the request path; `git log`, `show`, `status`,
//! `clone` and `push` work on it as on any repository.
//!
//! # How a commit stays cheap at 10,000 services
//! No git process runs on the commit path. The crate writes git objects itself:
//!
//! - **One pack per commit.** The ~16 new objects of a registration (4 blobs, the trees along the
//!   changed paths, the commit) go into one `.pack` + `.idx` pair written through temp files and
//!   renames, not into 16 loose objects: creating a file costs ~0.9 ms on the dev VM's ext4,
//!   writing into it far less. A background `git repack --geometric=2 -d` (one thread, lowest
//!   priority) rolls the small packs up so that their number stays logarithmic; it never drops
//!   objects, so it cannot race with a commit. It runs when the repository goes idle (after
//!   [`RepoOptions::repack_when_idle`] commits) or, under sustained load, every
//!   [`RepoOptions::repack_every`] commits: at 10,000 services a repack processes ~1.8 MB per
//!   commit, work better kept off busy periods.
//! - **The HEAD tree in memory.** Each directory caches its tree id; a change clears it only
//!   along the changed paths. Directories with ≥ 256 entries (the three that hold one entry per
//!   service) also keep their serialized tree and splice changed entries into it, so a commit at
//!   10,000 services re-hashes three ~0.5 MB trees but never re-serializes them.
//! - **Big trees stored, not deflated.** Objects over 32 KiB are written as stored deflate blocks
//!   (deflating a 570 KB tree costs ~2.4 ms, storing ~0.1 ms); the repack delta-compresses them.
//!
//! What still grows with N is inherent to git's format: a changed directory needs a whole new tree
//! object, hashed once for its id and once more in the pack checksum (≈2.5 ms at 10,000 services).
//!
//! `refs/heads/main` is updated like git does (`main.lock` with O_EXCL, rename over the ref) as a
//! compare-and-swap against the HEAD in memory: a commit made behind Slipway's back makes later
//! commits fail with [`RepoError::RefMoved`] instead of being overwritten.
//!
//! The index is not written on commits: a background task runs `git read-tree -m -i` + `git
//! update-index --refresh` shortly after commits (and [`PlatformRepo::flush`] waits for it), so
//! `git status` is clean once it ran.
//!
//! # Crash safety and ownership
//! One process owns the repository: [`PlatformRepo::open`] takes an exclusive `flock` on
//! `.git/slipway.lock` (released by the kernel if the process dies) and refuses with
//! [`RepoError::InUse`] otherwise. Nothing else may write to the repository; reading, cloning and
//! fetching from it are fine.
//!
//! Objects are written before the ref, and the ref moves by an atomic rename, so a killed process
//! leaves a valid repository whose `main` is the last completed commit. `open` then removes the
//! lock files the dead process left (after giving a still-running git child of it two seconds) and
//! resets index and work tree to HEAD (`git read-tree --reset -u` + `git clean -fd`): work-tree
//! files of a commit that never landed are dropped, and the reconciler re-commits what the
//! database has and HEAD lacks (compare [`PlatformRepo::files`] with [`PlatformRepo::blob_id`] of
//! the database's contents). Without [`RepoOptions::fsync`] this holds for process crashes, not for
//! power loss.

mod error;
mod git;
mod object;
mod pack;
mod path;
mod refs;
mod repo;
mod tree;
mod worktree;

pub use error::RepoError;
pub use object::ObjectId;
pub use repo::{Change, PlatformRepo, RepoOptions, AUTHOR_EMAIL};
