use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::error::{io_err, RepoError};
use crate::git::{self, Git};
use crate::object::{object_id, Kind, ObjectId};
use crate::pack::{PackWriter, PACK_TEMP_PREFIX};
use crate::path::components;
use crate::refs;
use crate::tree::{Dir, FileMode};
use crate::worktree;

/// The e-mail address of the commits Slipway writes; any other author is a person's commit.
pub const AUTHOR_EMAIL: &str = "slipway@localhost";
const AUTHOR: &str = "Slipway <slipway@localhost>";

/// One commit's worth of changes. Deletes are applied before writes; a path may appear only once
/// in the whole change. Writes of content identical to HEAD and deletes of absent files are no-ops.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// `(path, content)`: path relative to the repository root, `/`-separated.
    pub writes: Vec<(String, Vec<u8>)>,
    /// Files to remove; directories they leave empty disappear too.
    pub deletes: Vec<String>,
    pub message: String,
    /// Author and committer time (seconds since the epoch, UTC), so the caller decides the clock.
    pub time_unix: i64,
}

/// Tuning knobs; [`RepoOptions::default`] suits production.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// Run `git repack --geometric=2` in the background after this many commits even while commits
    /// keep coming (0: never). Each commit writes its own small pack; repacking keeps the number of
    /// packs logarithmic. Repacking costs CPU and I/O proportional to the size of the big trees, so
    /// it is preferably done when the repository is idle (see `repack_when_idle`).
    pub repack_every: u64,
    /// When no commit came for `index_sync_delay`, repack if at least this many commits were made
    /// since the last repack (0: only `repack_every` triggers a repack).
    pub repack_when_idle: u64,
    /// Sync the index this long after the last commit...
    pub index_sync_delay: Duration,
    /// ...but at least this often while commits keep coming.
    pub index_sync_max_delay: Duration,
    /// fsync objects, the ref and work-tree files before renaming them. Off by default: the
    /// database is the source of truth and the reconciler re-commits what a power loss drops.
    pub fsync: bool,
}

impl Default for RepoOptions {
    fn default() -> Self {
        Self {
            repack_every: 500,
            repack_when_idle: 10,
            index_sync_delay: Duration::from_millis(500),
            index_sync_max_delay: Duration::from_secs(60),
            fsync: false,
        }
    }
}

/// The platform repository: a git repository at a directory, kept as a projection of the catalog
/// with one commit per [`PlatformRepo::commit`]. See the crate documentation.
pub struct PlatformRepo {
    shared: Arc<Shared>,
    /// Holds an exclusive `flock` on `.git/slipway.lock` while this instance lives; the kernel
    /// drops it if the process dies.
    _owner: fs::File,
}

struct Shared {
    root: PathBuf,
    git_dir: PathBuf,
    git: Git,
    pack_dir: PathBuf,
    options: RepoOptions,
    /// Serializes commits in arrival order (tokio's mutex is fair).
    commit_lock: tokio::sync::Mutex<()>,
    /// The HEAD tree; held by the blocking part of a commit.
    state: std::sync::Mutex<State>,
    /// Copy of `State::head` readable without waiting for a commit in progress.
    head: std::sync::Mutex<Option<ObjectId>>,
    /// The commit the index was last synced to.
    index_synced: tokio::sync::Mutex<Option<ObjectId>>,
    index_dirty: Notify,
    closing: Notify,
    /// A work-tree update failed after its commit landed; repaired by the next index sync.
    worktree_stale: AtomicBool,
    commits_since_repack: AtomicU64,
    repack_running: AtomicBool,
}

struct State {
    tree: Dir,
    head: Option<ObjectId>,
    scratch: Vec<u8>,
    pack: PackWriter,
}

struct Prepared {
    writes: Vec<PreparedWrite>,
    deletes: Vec<String>,
    message: String,
    time_unix: i64,
}

struct PreparedWrite {
    path: String,
    id: ObjectId,
    content: Vec<u8>,
}

fn split(path: &str) -> Vec<&str> {
    // Only used on paths already accepted by `components`.
    path.split('/').collect()
}

async fn run_blocking<T, F>(f: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RepoError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RepoError::Task(e.to_string()))?
}

impl PlatformRepo {
    /// Opens the repository at `path` with default options, creating it (`git init -b main`) when
    /// the directory is missing or empty. See [`PlatformRepo::open_with`].
    pub async fn open(path: &Path) -> Result<Self, RepoError> {
        Self::open_with(path, RepoOptions::default()).await
    }

    /// Opens (or creates) the repository, loads the HEAD tree with `git ls-tree`, clears locks left
    /// by a dead process and makes index and work tree match HEAD (files HEAD lacks are removed:
    /// they come from a commit that never landed; the reconciler re-commits them from the
    /// database). Only one `PlatformRepo` — one Slipway process — may own a repository.
    pub async fn open_with(path: &Path, options: RepoOptions) -> Result<Self, RepoError> {
        let root = path.to_path_buf();
        let (owner, git, tree, head) = run_blocking(move || load(&root)).await?;
        let git_dir = path.join(".git");
        let shared = Arc::new(Shared {
            root: path.to_path_buf(),
            pack_dir: git_dir.join("objects").join("pack"),
            git_dir,
            git,
            options,
            commit_lock: tokio::sync::Mutex::new(()),
            state: std::sync::Mutex::new(State {
                tree,
                head,
                scratch: Vec::new(),
                pack: PackWriter::default(),
            }),
            head: std::sync::Mutex::new(head),
            index_synced: tokio::sync::Mutex::new(head),
            index_dirty: Notify::new(),
            closing: Notify::new(),
            worktree_stale: AtomicBool::new(false),
            commits_since_repack: AtomicU64::new(0),
            repack_running: AtomicBool::new(false),
        });
        tokio::spawn(index_task(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _owner: owner,
        })
    }

    /// Moves an existing repository at `path` aside to `<path>.old-<time_unix>` (with a `-N`
    /// suffix if taken) and creates a fresh one holding `files` in a single commit (none if
    /// `files` is empty). Any `PlatformRepo` open on `path` must be dropped first.
    pub async fn rebuild(
        path: &Path,
        files: Vec<(String, Vec<u8>)>,
        message: &str,
        time_unix: i64,
    ) -> Result<Self, RepoError> {
        let target = path.to_path_buf();
        if let Some(old) = run_blocking(move || move_aside(&target, time_unix)).await? {
            tracing::info!(old = %old.display(), "moved the platform repository aside");
        }
        let repo = Self::open(path).await?;
        repo.commit(Change {
            writes: files,
            deletes: Vec::new(),
            message: message.to_owned(),
            time_unix,
        })
        .await?;
        Ok(repo)
    }

    /// Records `change` as one commit on `main` (parent: the previous HEAD), then updates the work
    /// tree. Returns the new commit, or `None` when nothing changed. Commits from concurrent tasks
    /// are applied one at a time, in arrival order, giving a linear history.
    ///
    /// The commit is durable once this returns `Ok(Some(_))`. If only the work-tree update fails
    /// afterwards, that is logged and repaired by the next index sync (or [`PlatformRepo::flush`]).
    pub async fn commit(&self, change: Change) -> Result<Option<ObjectId>, RepoError> {
        let prepared = run_blocking(move || {
            validate(&change)?;
            Ok(prepare(change))
        })
        .await?;
        let _serial = self.shared.commit_lock.lock().await;
        let shared = Arc::clone(&self.shared);
        let runtime = Handle::current();
        // The blocking part finishes (and keeps the state consistent) even if this future is
        // dropped; the state mutex then still serializes it with the next commit.
        run_blocking(move || shared.apply(prepared, &runtime)).await
    }

    /// The commit `main` points at, `None` before the first commit.
    pub fn head(&self) -> Option<ObjectId> {
        self.shared.current_head()
    }

    /// Every file of the HEAD tree with its blob id, for reconciling against the database.
    pub fn files(&self) -> BTreeMap<String, ObjectId> {
        // A panic mid-commit poisons the lock; later commits refuse to run, but reading the tree
        // (possibly half-changed) is still the best answer available.
        let state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state
            .tree
            .files()
            .into_iter()
            .map(|(path, (_, id))| (path, id))
            .collect()
    }

    /// The git blob id of `content` (what [`PlatformRepo::files`] reports for a file holding it).
    pub fn blob_id(content: &[u8]) -> ObjectId {
        object_id(Kind::Blob, content)
    }

    /// Waits until the index matches HEAD (so `git status` is clean), repairing the work tree
    /// first if an update of it failed. Call it at shutdown; the index is otherwise synced in the
    /// background shortly after commits.
    pub async fn flush(&self) -> Result<(), RepoError> {
        self.shared.sync_index().await
    }

    /// The last commit of HEAD's history that changed `path`: `(commit id, author e-mail)`, or
    /// `None` when no commit did. Tells a person's edit (committed in the repository by hand)
    /// apart from a file Slipway wrote ([`AUTHOR_EMAIL`]).
    pub async fn last_change(&self, path: &str) -> Result<Option<(String, String)>, RepoError> {
        components(path)?;
        let Some(head) = self.head() else {
            return Ok(None);
        };
        let git = self.shared.git.clone();
        let path = path.to_owned();
        let out = run_blocking(move || {
            git.run(&[
                "log",
                "-1",
                "--format=%H%x00%ae",
                &head.to_hex(),
                "--",
                &path,
            ])
        })
        .await?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .trim_end()
            .split_once('\0')
            .map(|(id, email)| (id.to_owned(), email.to_owned())))
    }

    /// The content of a blob (a file as some commit holds it), e.g. an id from
    /// [`PlatformRepo::files`].
    pub async fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>, RepoError> {
        let git = self.shared.git.clone();
        run_blocking(move || git.run(&["cat-file", "blob", &id.to_hex()])).await
    }

    /// Whether `refs/heads/main` on disk is not the commit this process last wrote: someone
    /// committed in the repository while Slipway runs. Slipway's next commit would fail with
    /// [`RepoError::RefMoved`]; a restart loads the new HEAD.
    pub fn ref_moved(&self) -> Result<bool, RepoError> {
        Ok(refs::read_main(&self.shared.git_dir)? != self.head())
    }

    /// The checked-out file at `path` as it is on disk now, which can differ from HEAD when
    /// someone edited it. `None` when it is missing or is not a regular file (a symlink anywhere
    /// on the way is not followed).
    pub async fn work_tree_file(&self, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let parts: Vec<String> = components(path)?.into_iter().map(str::to_owned).collect();
        let root = self.shared.root.clone();
        run_blocking(move || {
            let mut at = root;
            for part in &parts {
                at.push(part);
                match fs::symlink_metadata(&at) {
                    Ok(meta) if meta.file_type().is_symlink() => return Ok(None),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(&at)(e)),
                }
            }
            match fs::symlink_metadata(&at) {
                Ok(meta) if meta.is_file() => fs::read(&at).map(Some).map_err(io_err(&at)),
                _ => Ok(None),
            }
        })
        .await
    }

    /// The repository's root directory (its work tree).
    pub fn path(&self) -> &Path {
        &self.shared.root
    }
}

impl Drop for PlatformRepo {
    fn drop(&mut self) {
        // The background task does a last index sync and exits.
        self.shared.closing.notify_one();
    }
}

fn validate(change: &Change) -> Result<(), RepoError> {
    if change.message.contains('\0') {
        return Err(RepoError::InvalidChange(
            "commit message contains NUL".into(),
        ));
    }
    if change.time_unix < 0 {
        return Err(RepoError::InvalidChange("commit time before 1970".into()));
    }
    let mut seen = HashSet::new();
    let paths = change
        .writes
        .iter()
        .map(|(path, _)| path)
        .chain(change.deletes.iter());
    for path in paths {
        components(path)?;
        if !seen.insert(path.as_str()) {
            return Err(RepoError::InvalidChange(format!(
                "path {path:?} appears more than once"
            )));
        }
    }
    Ok(())
}

/// Hashes the contents; runs outside the commit lock so concurrent commits hash in parallel.
fn prepare(change: Change) -> Prepared {
    Prepared {
        writes: change
            .writes
            .into_iter()
            .map(|(path, content)| PreparedWrite {
                id: object_id(Kind::Blob, &content),
                path,
                content,
            })
            .collect(),
        deletes: change.deletes,
        message: change.message,
        time_unix: change.time_unix,
    }
}

/// How to undo one tree operation: restore `old` at `path` (or remove it if `None`).
type Undo<'a> = (Vec<&'a str>, Option<(FileMode, ObjectId)>);

impl Shared {
    fn current_head(&self) -> Option<ObjectId> {
        *self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(
        self: &Arc<Self>,
        p: Prepared,
        runtime: &Handle,
    ) -> Result<Option<ObjectId>, RepoError> {
        let mut guard = self.state.lock().map_err(|_| RepoError::Poisoned)?;
        let state = &mut *guard;
        let mut undo: Vec<Undo<'_>> = Vec::new();
        let mut removed = Vec::new();
        let mut written = Vec::new();
        let commit = match self.write_commit(state, &p, &mut undo, &mut removed, &mut written) {
            Ok(Some(commit)) => commit,
            Ok(None) => return Ok(None),
            Err(e) => {
                // A pack already written is unreferenced and harmless (a manual `git gc` prunes
                // its objects); the tree goes back to HEAD's.
                for (path, old) in undo.into_iter().rev() {
                    let _ = match old {
                        Some(entry) => state.tree.set_file(&path, entry).map(|_| ()),
                        None => state.tree.remove_file(&path).map(|_| ()),
                    };
                }
                return Err(e);
            }
        };
        state.head = Some(commit);
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = Some(commit);

        let mut worktree_ok = true;
        for &i in &removed {
            let path = &p.deletes[i];
            if let Err(e) = worktree::remove_file(&self.root, &split(path)) {
                tracing::error!(%path, error = %e, "could not remove file from the platform repository work tree");
                worktree_ok = false;
            }
        }
        for &i in &written {
            let w = &p.writes[i];
            if let Err(e) =
                worktree::write_file(&self.root, &split(&w.path), &w.content, self.options.fsync)
            {
                tracing::error!(path = %w.path, error = %e, "could not write file to the platform repository work tree");
                worktree_ok = false;
            }
        }
        drop(guard);
        if !worktree_ok {
            self.worktree_stale.store(true, Ordering::Release);
        }
        self.index_dirty.notify_one();
        self.maybe_repack(runtime);
        Ok(Some(commit))
    }

    /// Applies the change to the tree, writes blobs, trees and the commit, then moves the ref.
    fn write_commit<'p>(
        &self,
        state: &mut State,
        p: &'p Prepared,
        undo: &mut Vec<Undo<'p>>,
        removed: &mut Vec<usize>,
        written: &mut Vec<usize>,
    ) -> Result<Option<ObjectId>, RepoError> {
        for (i, path) in p.deletes.iter().enumerate() {
            let comps = split(path);
            match state.tree.remove_file(&comps) {
                Ok(Some(old)) => {
                    undo.push((comps, Some(old)));
                    removed.push(i);
                }
                Ok(None) => {}
                Err(conflict) => return Err(conflict.into_error(path)),
            }
        }
        for (i, w) in p.writes.iter().enumerate() {
            let comps = split(&w.path);
            let entry = (FileMode::Regular, w.id);
            if state.tree.get_file(&comps) == Some(entry) {
                continue;
            }
            match state.tree.set_file(&comps, entry) {
                Ok(old) => {
                    undo.push((comps, old));
                    written.push(i);
                }
                Err(conflict) => return Err(conflict.into_error(&w.path)),
            }
        }
        if undo.is_empty() {
            return Ok(None);
        }

        let State {
            tree,
            head,
            scratch,
            pack,
        } = state;
        let pack_err = |e| io_err(&self.pack_dir)(e);
        let started = Instant::now();
        pack.reset();
        for &i in written.iter() {
            let w = &p.writes[i];
            pack.add(Kind::Blob, w.id, &w.content).map_err(pack_err)?;
        }
        let root = tree.ensure_id(scratch, &mut |body| {
            let id = object_id(Kind::Tree, body);
            pack.add(Kind::Tree, id, body).map_err(pack_err)?;
            Ok(id)
        })?;

        let mut body = format!("tree {root}\n");
        if let Some(parent) = head {
            body.push_str(&format!("parent {parent}\n"));
        }
        let signature = format!("{AUTHOR} {} +0000", p.time_unix);
        body.push_str(&format!("author {signature}\ncommitter {signature}\n\n"));
        body.push_str(&p.message);
        if !p.message.ends_with('\n') {
            body.push('\n');
        }
        let commit = object_id(Kind::Commit, body.as_bytes());
        pack.add(Kind::Commit, commit, body.as_bytes())
            .map_err(pack_err)?;
        let hashed = started.elapsed();
        // Objects first, the ref last: a crash in between leaves an unreferenced pack.
        pack.finish(&self.pack_dir, self.options.fsync)?;
        let packed = started.elapsed();
        refs::update_main(&self.git_dir, *head, commit, self.options.fsync)?;
        tracing::debug!(
            objects_us = hashed.as_micros() as u64,
            pack_us = (packed - hashed).as_micros() as u64,
            ref_us = (started.elapsed() - packed).as_micros() as u64,
            "platform repository commit written"
        );
        Ok(Some(commit))
    }

    /// Counts a commit and starts a repack when `repack_every` commits have accumulated.
    fn maybe_repack(self: &Arc<Self>, runtime: &Handle) {
        let count = self.commits_since_repack.fetch_add(1, Ordering::AcqRel) + 1;
        let every = self.options.repack_every;
        if every != 0 && count >= every {
            self.start_repack(every, runtime);
        }
    }

    /// Starts a background repack when at least `threshold` commits were made since the last one
    /// and no repack is running.
    fn start_repack(self: &Arc<Self>, threshold: u64, runtime: &Handle) {
        if threshold == 0
            || self.commits_since_repack.load(Ordering::Acquire) < threshold
            || self.repack_running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.commits_since_repack.store(0, Ordering::Release);
        let shared = Arc::clone(self);
        runtime.spawn_blocking(move || loop {
            let started = Instant::now();
            match shared.git.repack() {
                Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "git repack finished"),
                Err(e) => tracing::warn!(error = %e, "git repack failed"),
            }
            shared.repack_running.store(false, Ordering::Release);
            // Commits that came in meanwhile may have reached the cap while this ran.
            let every = shared.options.repack_every;
            if every == 0
                || shared.commits_since_repack.load(Ordering::Acquire) < every
                || shared.repack_running.swap(true, Ordering::AcqRel)
            {
                break;
            }
            shared.commits_since_repack.store(0, Ordering::Release);
        });
    }

    async fn sync_index(self: &Arc<Self>) -> Result<(), RepoError> {
        if self.worktree_stale.load(Ordering::Acquire) {
            self.repair_worktree().await?;
        }
        let mut synced = self.index_synced.lock().await;
        let head = self.current_head();
        if *synced == head {
            return Ok(());
        }
        let Some(target) = head else {
            return Ok(());
        };
        let git = self.git.clone();
        run_blocking(move || git.sync_index(&target)).await?;
        *synced = head;
        Ok(())
    }

    async fn repair_worktree(self: &Arc<Self>) -> Result<(), RepoError> {
        let _serial = self.commit_lock.lock().await;
        let mut synced = self.index_synced.lock().await;
        if !self.worktree_stale.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let shared = Arc::clone(self);
        let result = run_blocking(move || {
            let state = shared.state.lock().map_err(|_| RepoError::Poisoned)?;
            shared.git.reset_work_tree(state.head.as_ref())?;
            Ok(state.head)
        })
        .await;
        match result {
            Ok(head) => {
                *synced = head;
                Ok(())
            }
            Err(e) => {
                self.worktree_stale.store(true, Ordering::Release);
                Err(e)
            }
        }
    }
}

/// Keeps the index eventually consistent: syncs it `index_sync_delay` after the last commit (at
/// least every `index_sync_max_delay` under steady load) and once more when the repo is dropped.
async fn index_task(shared: Arc<Shared>) {
    let delay = shared.options.index_sync_delay;
    let max_delay = shared.options.index_sync_max_delay;
    loop {
        tokio::select! {
            () = shared.index_dirty.notified() => {}
            () = shared.closing.notified() => break,
        }
        let first = Instant::now();
        let mut closing = false;
        let mut idle = false;
        loop {
            let wait = delay.min(max_delay.saturating_sub(first.elapsed()));
            tokio::select! {
                () = shared.index_dirty.notified() => {
                    if first.elapsed() >= max_delay {
                        break;
                    }
                }
                () = tokio::time::sleep(wait) => {
                    idle = wait == delay;
                    break;
                }
                () = shared.closing.notified() => {
                    closing = true;
                    break;
                }
            }
        }
        if let Err(e) = shared.sync_index().await {
            tracing::warn!(error = %e, "could not sync the platform repository index");
        }
        if closing {
            return;
        }
        if idle {
            shared.start_repack(shared.options.repack_when_idle, &Handle::current());
        }
    }
    if let Err(e) = shared.sync_index().await {
        tracing::warn!(error = %e, "could not sync the platform repository index");
    }
}

/// Opens or creates the repository on disk and loads HEAD: what `open` does off the runtime.
fn load(root: &Path) -> Result<(fs::File, Git, Dir, Option<ObjectId>), RepoError> {
    let git_dir = root.join(".git");
    ensure_repository(root, &git_dir)?;
    let owner = take_ownership(root, &git_dir)?;
    let head_file = git_dir.join("HEAD");
    let head_ref = fs::read_to_string(&head_file).map_err(io_err(&head_file))?;
    if head_ref.trim() != format!("ref: {}", refs::MAIN) {
        return Err(RepoError::NotARepository {
            path: root.to_path_buf(),
            reason: format!(
                "HEAD is {:?}, expected \"ref: {}\"",
                head_ref.trim(),
                refs::MAIN
            ),
        });
    }
    remove_stale_locks(&[refs::lock_path(&git_dir), git_dir.join("index.lock")])?;
    remove_own_temp_packs(&git_dir.join("objects").join("pack"));

    let git = Git::new(git_dir.clone(), root.to_path_buf());
    let head = refs::read_main(&git_dir)?;
    let mut tree = Dir::default();
    if let Some(head) = &head {
        let root_tree = git.commit_tree(head)?;
        let listing = git.ls_tree(head)?;
        load_listing(&listing, &mut tree)?;
        tree.set_id(root_tree);
    }
    git.reset_work_tree(head.as_ref())?;
    Ok((owner, git, tree, head))
}

/// Takes the exclusive `flock` that makes this process the repository's only writer. Retries for
/// a moment: a child process forked by another thread holds a copy of the descriptor (and so the
/// lock) between its fork and its exec, even after the owner closed it.
fn take_ownership(root: &Path, git_dir: &Path) -> Result<fs::File, RepoError> {
    use rustix::fs::{flock, FlockOperation};
    let path = git_dir.join("slipway.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(RepoError::InUse(root.to_path_buf())),
            Err(e) => return Err(io_err(&path)(e.into())),
        }
    }
}

/// Removes temp files of packs this crate was writing when its process died (git's own temp
/// files, which a still-running `git repack` might be using, are left to `git gc`).
fn remove_own_temp_packs(pack_dir: &Path) {
    let Ok(entries) = fs::read_dir(pack_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PACK_TEMP_PREFIX)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn ensure_repository(root: &Path, git_dir: &Path) -> Result<(), RepoError> {
    let not_repo = |reason: &str| RepoError::NotARepository {
        path: root.to_path_buf(),
        reason: reason.to_owned(),
    };
    match fs::metadata(root) {
        Ok(meta) if !meta.is_dir() => return Err(not_repo("not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(root).map_err(io_err(root))?;
        }
        Err(e) => return Err(io_err(root)(e)),
    }
    match fs::symlink_metadata(git_dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(not_repo(".git is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(root).map_err(io_err(root))?;
            if entries.next().is_some() {
                // Never adopt (and later `git clean`) a directory holding someone else's files.
                return Err(not_repo("the directory is not empty and has no .git"));
            }
            git::init(root)
        }
        Err(e) => Err(io_err(git_dir)(e)),
    }
}

/// Slipway is the only writer of its repository, so a lock present at open was left by a process
/// that died. A git child of that process may still be finishing, though: give it two seconds.
fn remove_stale_locks(locks: &[PathBuf]) -> Result<(), RepoError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while locks.iter().any(|lock| lock.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for lock in locks {
        match fs::remove_file(lock) {
            Ok(()) => tracing::warn!(lock = %lock.display(), "removed a stale lock file"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(lock)(e)),
        }
    }
    Ok(())
}

/// Parses `git ls-tree -r -t -z` output (`<mode> <type> <id>\t<path>\0`...) into `tree`.
fn load_listing(listing: &[u8], tree: &mut Dir) -> Result<(), RepoError> {
    let bad = |record: &[u8]| {
        RepoError::GitOutput(format!(
            "ls-tree record {:?}",
            String::from_utf8_lossy(record)
        ))
    };
    for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let tab = record
            .iter()
            .position(|&b| b == b'\t')
            .ok_or_else(|| bad(record))?;
        let (meta, path) = (&record[..tab], &record[tab + 1..]);
        let mut fields = meta.split(|&b| b == b' ');
        let (Some(mode), Some(kind), Some(hex), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(record));
        };
        let id = std::str::from_utf8(hex)
            .ok()
            .and_then(ObjectId::from_hex)
            .ok_or_else(|| bad(record))?;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        match kind {
            b"tree" => tree.load_dir(&comps, id),
            b"blob" | b"commit" => {
                let mode = FileMode::parse(mode).ok_or_else(|| bad(record))?;
                tree.load_file(&comps, (mode, id));
            }
            _ => return Err(bad(record)),
        }
    }
    Ok(())
}

fn move_aside(path: &Path, time_unix: i64) -> Result<Option<PathBuf>, RepoError> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    }
    let name = path
        .file_name()
        .ok_or_else(|| RepoError::NotARepository {
            path: path.to_path_buf(),
            reason: "the path has no final component".into(),
        })?
        .to_string_lossy()
        .into_owned();
    for n in 0u32.. {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let target = path.with_file_name(format!("{name}.old-{time_unix}{suffix}"));
        if fs::symlink_metadata(&target).is_err() {
            fs::rename(path, &target).map_err(io_err(path))?;
            return Ok(Some(target));
        }
    }
    Ok(None)
}
