//! Integration tests against the real git CLI, each in its own temp directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_platform_repo::{Change, ObjectId, PlatformRepo, RepoError, RepoOptions};

fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("run git")
}

/// Runs git in `dir`, asserts success, returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn fsck(dir: &Path) {
    let out = git_output(dir, &["fsck", "--strict", "--no-dangling"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("error") && !stderr.contains("warning"),
        "fsck: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn change(writes: &[(&str, &str)], deletes: &[&str], message: &str) -> Change {
    Change {
        writes: writes
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect(),
        deletes: deletes.iter().map(|p| (*p).to_owned()).collect(),
        message: message.to_owned(),
        time_unix: 1_700_000_000,
    }
}

fn expected_files(files: &[(&str, &str)]) -> BTreeMap<String, ObjectId> {
    files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), PlatformRepo::blob_id(c.as_bytes())))
        .collect()
}

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("platform-repo");
    (tmp, repo)
}

fn status_is_clean(dir: &Path) {
    assert_eq!(
        git(dir, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
}

#[tokio::test]
async fn commits_are_readable_by_git() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    assert_eq!(repo.head(), None);
    let first = repo
        .commit(change(
            &[
                ("terraform/modules/ecr/main.tf", "resource \"x\" {}\n"),
                ("terraform/envs/dev/svc-a/main.tf", "module \"a\" {}\n"),
                (
                    "app/templates/jenkins/generated/svc-a.Jenkinsfile",
                    "pipeline {}\n",
                ),
            ],
            &[],
            "register svc-a",
        ))
        .await
        .expect("commit")
        .expect("changed");
    let second = repo
        .commit(change(
            &[
                ("terraform/envs/dev/svc-b/main.tf", "module \"b\" {}\n"),
                ("terraform/envs/dev/svc-b/outputs.tf", "output \"b\" {}\n"),
            ],
            &[],
            "register svc-b\n\nwith a body",
        ))
        .await
        .expect("commit")
        .expect("changed");
    assert_ne!(first, second);
    assert_eq!(repo.head(), Some(second));
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]).trim(), second.to_string());
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD~1"]).trim(),
        first.to_string()
    );

    fsck(&dir);
    assert_eq!(git(&dir, &["log", "--oneline"]).lines().count(), 2);
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%an <%ae> %at%n%B"]),
        "Slipway <slipway@localhost> 1700000000\nregister svc-b\n\nwith a body\n\n"
    );
    assert_eq!(
        git(&dir, &["show", "HEAD:terraform/envs/dev/svc-b/outputs.tf"]),
        "output \"b\" {}\n"
    );
    assert_eq!(
        git(&dir, &["diff", "--name-only", "HEAD~1", "HEAD"]),
        "terraform/envs/dev/svc-b/main.tf\nterraform/envs/dev/svc-b/outputs.tf\n"
    );
    assert!(git(&dir, &["diff", "--stat", "HEAD~1", "HEAD"])
        .contains("2 files changed, 2 insertions(+)"));
    assert_eq!(
        fs::read_to_string(dir.join("app/templates/jenkins/generated/svc-a.Jenkinsfile"))
            .expect("work tree file"),
        "pipeline {}\n"
    );

    repo.flush().await.expect("flush");
    status_is_clean(&dir);
    // Against the work tree (needs the synced index to know what is tracked).
    let stat = git(&dir, &["diff", "HEAD~1", "--stat"]);
    assert!(
        stat.contains("svc-b/main.tf") && stat.contains("2 files changed, 2 insertions(+)"),
        "{stat}"
    );
    // Clone and push see the same history.
    let clone = dir.with_file_name("clone");
    git(
        dir.parent().expect("parent"),
        &[
            "clone",
            "-q",
            dir.to_str().expect("utf-8"),
            clone.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD"]).trim(),
        second.to_string()
    );
    assert_eq!(
        fs::read_to_string(clone.join("terraform/envs/dev/svc-b/main.tf")).expect("cloned file"),
        "module \"b\" {}\n"
    );
    let bare = dir.with_file_name("bare.git");
    git(
        dir.parent().expect("parent"),
        &["init", "-q", "--bare", bare.to_str().expect("utf-8")],
    );
    git(&dir, &["push", "-q", bare.to_str().expect("utf-8"), "main"]);
    assert_eq!(
        git(&bare, &["rev-parse", "main"]).trim(),
        second.to_string()
    );
    // The index really is synced (not just refreshed by `git status`).
    assert_eq!(git(&dir, &["diff-index", "--cached", "HEAD"]), "");
    assert_eq!(git(&dir, &["ls-files"]).lines().count(), 5);
}

#[tokio::test]
async fn tree_order_and_ids_match_git() {
    let names = [
        "a.b", "a-b", "a/c", "a0", "a=b", "a b", "ab", "A", "b/a.txt", "b/a/x", "b/a-x", "b/a.x",
        "b/a0", "z/y.z", "z/y/z", "z/y-z", "z/y", "é.txt", "a.b.c/d",
    ];
    let (tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    let writes: Vec<(&str, &str)> = names.iter().map(|n| (*n, *n)).collect();
    // "z/y" as a file and "z/y/z" under a directory "z/y" cannot coexist: drop the file.
    let writes: Vec<(&str, &str)> = writes.into_iter().filter(|(n, _)| *n != "z/y").collect();
    repo.commit(change(&writes, &[], "order"))
        .await
        .expect("commit");
    fsck(&dir);
    let ours = git(&dir, &["rev-parse", "HEAD^{tree}"]);

    // The same files added by git itself.
    let reference = tmp.path().join("reference");
    fs::create_dir(&reference).expect("mkdir");
    git(&reference, &["init", "-q"]);
    for (path, content) in &writes {
        let file = reference.join(path);
        fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        fs::write(&file, content).expect("write");
    }
    git(&reference, &["add", "-A"]);
    let theirs = git(&reference, &["write-tree"]);
    assert_eq!(ours, theirs);

    // And `git mktree` agrees on a directory listing given in our order.
    let listing = git(&dir, &["ls-tree", "HEAD:b"]);
    let mut mktree = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .arg("mktree")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mktree");
    std::io::Write::write_all(&mut mktree.stdin.take().expect("stdin"), listing.as_bytes())
        .expect("feed mktree");
    let out = mktree.wait_with_output().expect("mktree output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        git(&dir, &["rev-parse", "HEAD:b"])
    );
}

#[tokio::test]
async fn deletes_prune_empty_dirs_and_noops_return_none() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    repo.commit(change(
        &[("a/b/c.txt", "c"), ("a/d.txt", "d"), ("top.txt", "t")],
        &[],
        "add",
    ))
    .await
    .expect("commit");
    let head = repo.head();

    assert_eq!(
        repo.commit(change(
            &[("a/d.txt", "d")],
            &["missing.txt", "a/zz/y"],
            "noop"
        ))
        .await
        .expect("commit"),
        None
    );
    assert_eq!(repo.head(), head);

    repo.commit(change(&[], &["a/b/c.txt"], "delete c"))
        .await
        .expect("commit")
        .expect("changed");
    assert!(
        !dir.join("a/b").exists(),
        "emptied dir removed from the work tree"
    );
    assert!(dir.join("a/d.txt").exists());
    assert_eq!(
        git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]),
        "a/d.txt\ntop.txt\n"
    );

    // Replace a file by a directory and a directory by a file in one change.
    repo.commit(change(
        &[("top.txt/inner", "i"), ("a", "now a file")],
        &["top.txt", "a/d.txt"],
        "swap",
    ))
    .await
    .expect("commit")
    .expect("changed");
    assert_eq!(
        repo.files(),
        expected_files(&[("a", "now a file"), ("top.txt/inner", "i")])
    );
    assert_eq!(
        fs::read_to_string(dir.join("a")).expect("read"),
        "now a file"
    );

    // Deleting everything leaves an empty tree.
    repo.commit(change(&[], &["a", "top.txt/inner"], "empty"))
        .await
        .expect("commit")
        .expect("changed");
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD^{tree}"]).trim(),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "4");
    fsck(&dir);
    repo.flush().await.expect("flush");
    status_is_clean(&dir);
    assert_eq!(
        fs::read_dir(&dir).expect("ls").count(),
        1,
        "only .git is left"
    );
}

#[tokio::test]
async fn conflicting_change_leaves_everything_unchanged() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    repo.commit(change(&[("a", "file"), ("d/x", "x")], &[], "add"))
        .await
        .expect("commit");
    let head = repo.head();
    let files = repo.files();
    for bad in [
        change(&[("new", "n"), ("a/b", "under a file")], &[], "bad"),
        change(&[("new", "n"), ("d", "over a dir")], &[], "bad"),
        change(&[("new", "n")], &["d"], "delete a dir"),
    ] {
        let err = repo.commit(bad).await.expect_err("conflict");
        assert!(matches!(err, RepoError::PathConflict { .. }), "{err}");
        assert_eq!(repo.head(), head);
        assert_eq!(repo.files(), files);
    }
    let err = repo
        .commit(change(&[("x", "1")], &["x"], "twice"))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, RepoError::InvalidChange(_)), "{err}");
    assert!(!dir.join("new").exists());
    // A later valid commit builds on the unchanged tree.
    repo.commit(change(&[("new", "n")], &[], "ok"))
        .await
        .expect("commit");
    fsck(&dir);
    assert_eq!(
        git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]),
        "a\nd/x\nnew\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_land_as_a_linear_history() {
    let (_tmp, dir) = tempdir();
    let repo = Arc::new(PlatformRepo::open(&dir).await.expect("open"));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move {
                repo.commit(change(
                    &[
                        (&format!("svc/{i}/main.tf"), &format!("svc {i}")),
                        ("shared/last.txt", &format!("written by {i}")),
                    ],
                    &[],
                    &format!("register {i}"),
                ))
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("commit").expect("changed");
    }
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "50");
    assert_eq!(git(&dir, &["rev-list", "--min-parents=2", "HEAD"]), "");
    let files = repo.files();
    assert_eq!(files.len(), 51);
    for i in 0..50 {
        assert_eq!(
            git(&dir, &["show", &format!("HEAD:svc/{i}/main.tf")]),
            format!("svc {i}")
        );
    }
    // The last commit wrote shared/last.txt last.
    let last_msg = git(&dir, &["log", "-1", "--format=%s"]);
    let last = last_msg.trim().trim_start_matches("register ");
    assert_eq!(
        fs::read_to_string(dir.join("shared/last.txt")).expect("read"),
        format!("written by {last}")
    );
    fsck(&dir);
    repo.flush().await.expect("flush");
    status_is_clean(&dir);
}

#[tokio::test]
async fn reopen_loads_the_tree_also_from_packs() {
    let (_tmp, dir) = tempdir();
    let mut all = vec![];
    {
        let repo = PlatformRepo::open(&dir).await.expect("open");
        for i in 0..5 {
            let path = format!("envs/dev/svc-{i}/main.tf");
            let content = format!("content {i}");
            repo.commit(Change {
                writes: vec![(path.clone(), content.clone().into_bytes())],
                deletes: vec![],
                message: format!("c{i}"),
                time_unix: 1_700_000_000 + i,
            })
            .await
            .expect("commit");
            all.push((path, content));
        }
        repo.commit(change(&[], &["envs/dev/svc-0/main.tf"], "delete"))
            .await
            .expect("commit");
        all.remove(0);
    }
    let expected: BTreeMap<String, ObjectId> = all
        .iter()
        .map(|(p, c)| (p.clone(), PlatformRepo::blob_id(c.as_bytes())))
        .collect();
    let head = {
        let repo = PlatformRepo::open(&dir).await.expect("reopen");
        assert_eq!(repo.files(), expected);
        repo.head()
    };

    git(&dir, &["gc", "--quiet", "--prune=now"]);
    assert_eq!(pack_count(&dir), 1, "gc packed everything into one pack");
    let repo = PlatformRepo::open(&dir).await.expect("reopen packed");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.files(), expected);
    // Unchanged packed subtrees are referenced by the new commit; changed ones are rewritten.
    repo.commit(change(
        &[("envs/dev/svc-9/main.tf", "nine")],
        &[],
        "after gc",
    ))
    .await
    .expect("commit")
    .expect("changed");
    fsck(&dir);
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "7");
    repo.flush().await.expect("flush");
    status_is_clean(&dir);
}

fn pack_count(dir: &Path) -> usize {
    fs::read_dir(dir.join(".git/objects/pack"))
        .expect("ls packs")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
        .count()
}

async fn wait_for_packs(dir: &Path, at_most: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while pack_count(dir) > at_most {
        assert!(
            Instant::now() < deadline,
            "repack did not consolidate: {} packs",
            pack_count(dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn background_repack_consolidates_per_commit_packs() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open_with(
        &dir,
        RepoOptions {
            repack_every: 5,
            ..RepoOptions::default()
        },
    )
    .await
    .expect("open");
    for i in 0..4 {
        repo.commit(change(&[(&format!("f{i}"), "x")], &[], "c"))
            .await
            .expect("commit");
    }
    assert_eq!(pack_count(&dir), 4, "one pack per commit, no loose objects");
    assert!(git(&dir, &["count-objects"]).starts_with("0 objects"));
    // The 5th commit starts a repack in the background, which rolls the five similar packs into
    // one; five more commits start another, which rolls them into one or two packs.
    repo.commit(change(&[("f4", "x")], &[], "c"))
        .await
        .expect("commit");
    wait_for_packs(&dir, 1).await;
    for i in 5..10 {
        repo.commit(change(&[(&format!("f{i}"), "x")], &[], "c"))
            .await
            .expect("commit");
    }
    wait_for_packs(&dir, 2).await;
    // Commits keep working on the repacked repository.
    repo.commit(change(&[("f0", "changed")], &[], "after repack"))
        .await
        .expect("commit")
        .expect("changed");
    fsck(&dir);
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "11");
}

#[tokio::test]
async fn open_repairs_crash_leftovers() {
    let (_tmp, dir) = tempdir();
    let head = {
        let repo = PlatformRepo::open(&dir).await.expect("open");
        repo.commit(change(
            &[
                ("keep.txt", "keep"),
                ("d/edit.txt", "orig"),
                ("gone.txt", "g"),
            ],
            &[],
            "c1",
        ))
        .await
        .expect("commit");
        repo.flush().await.expect("flush");
        repo.head().expect("head")
    };
    // What a process killed mid-commit leaves: a held ref lock, an object nothing references, work
    // tree files ahead of HEAD (new, changed, deleted), temp files, a held index lock.
    fs::write(dir.join(".git/refs/heads/main.lock"), "").expect("lock");
    fs::write(dir.join(".git/index.lock"), "").expect("lock");
    let dangling = git(&dir, &["hash-object", "-w", "--stdin"]);
    assert!(!dangling.is_empty());
    fs::create_dir_all(dir.join("new/dir")).expect("mkdir");
    fs::write(dir.join("new/dir/ahead.txt"), "ahead").expect("write");
    fs::write(dir.join("d/edit.txt"), "changed by the crashed commit").expect("write");
    fs::write(dir.join("d/.slipway-tmp-1_2"), "half").expect("write");
    fs::remove_file(dir.join("gone.txt")).expect("rm");
    let temp_pack = dir.join(".git/objects/pack/tmp_pack_slipway_1_1");
    fs::write(&temp_pack, "half a pack").expect("write");

    let repo = PlatformRepo::open(&dir).await.expect("open repairs");
    assert_eq!(repo.head(), Some(head));
    assert!(!dir.join(".git/refs/heads/main.lock").exists());
    assert!(!dir.join(".git/index.lock").exists());
    assert!(!dir.join("new").exists());
    assert!(!dir.join("d/.slipway-tmp-1_2").exists());
    assert!(!temp_pack.exists());
    assert_eq!(
        fs::read_to_string(dir.join("d/edit.txt")).expect("read"),
        "orig"
    );
    assert_eq!(fs::read_to_string(dir.join("gone.txt")).expect("read"), "g");
    status_is_clean(&dir);
    repo.commit(change(&[("after.txt", "a")], &[], "after crash"))
        .await
        .expect("commit")
        .expect("changed");
    fsck(&dir);
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "2");
}

const CHILD_ENV: &str = "SLIPWAY_PLATFORM_REPO_CRASH_CHILD";

/// Not a test on its own: when the parent test below runs this binary with `CHILD_ENV` set, it
/// commits in a loop (for at most 20 s) until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    // No background repack: a `git repack` orphaned by the kill would outlive the test.
    let options = RepoOptions {
        repack_every: 0,
        repack_when_idle: 0,
        ..RepoOptions::default()
    };
    let repo = Arc::new(
        PlatformRepo::open_with(Path::new(&dir), options)
            .await
            .expect("open"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let mut writes = Vec::new();
        for f in ["main.tf", "outputs.tf"] {
            writes.push((
                format!("envs/dev/svc-{i}/{f}"),
                vec![b'x'; 2000 + i as usize % 100],
            ));
        }
        writes.push(("shared/counter".to_owned(), i.to_string().into_bytes()));
        let deletes = if i % 3 == 2 {
            vec![format!("envs/dev/svc-{}/main.tf", i - 1)]
        } else {
            vec![]
        };
        repo.commit(Change {
            writes,
            deletes,
            message: format!("commit {i}"),
            time_unix: 1_700_000_000,
        })
        .await
        .expect("commit");
        i += 1;
    }
}

#[test]
fn killed_writer_leaves_a_valid_repository() {
    let (_tmp, dir) = tempdir();
    let exe = std::env::current_exe().expect("test binary");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (round, kill_after_commits) in [3u64, 40, 120].into_iter().enumerate() {
        let before = runtime.block_on(async {
            let repo = PlatformRepo::open(&dir).await.expect("open");
            repo.head()
        });
        let before_count: u64 = before
            .map(|_| {
                git(&dir, &["rev-list", "--count", "HEAD"])
                    .trim()
                    .parse()
                    .expect("count")
            })
            .unwrap_or(0);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        // Wait until the child made some commits, then kill it mid-flight.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = git_output(&dir, &["rev-list", "--count", "HEAD"]);
            let n: u64 = String::from_utf8_lossy(&count.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            if n >= before_count + kill_after_commits {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "child made no progress (round {round})"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().expect("kill");
        child.wait().expect("reap");

        fsck(&dir);
        runtime.block_on(async {
            let repo = PlatformRepo::open(&dir).await.expect("open after kill");
            status_is_clean(&dir);
            let listed = git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
            let files = repo.files();
            assert_eq!(
                files.keys().map(|k| format!("{k}\n")).collect::<String>(),
                listed
            );
            for (path, id) in &files {
                let on_disk = fs::read(dir.join(path)).expect("work tree file");
                assert_eq!(PlatformRepo::blob_id(&on_disk), *id, "{path}");
            }
            repo.commit(change(
                &[("after-kill.txt", &format!("{round}"))],
                &[],
                "after kill",
            ))
            .await
            .expect("commit after kill")
            .expect("changed");
            repo.flush().await.expect("flush");
            status_is_clean(&dir);
        });
        fsck(&dir);
        assert_eq!(git(&dir, &["rev-list", "--min-parents=2", "HEAD"]), "");
    }
}

#[tokio::test]
async fn unsafe_paths_are_refused_and_nothing_escapes() {
    let (tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    for bad in [
        "../x",
        "/etc/x",
        "/tmp/slipway-escape-test",
        "a/../../x",
        ".git/config",
        ".git/hooks/pre-commit",
        "a//b",
        "a/.GIT/x",
        "",
        "a/",
        "./a",
        "a\\..\\x",
        "a\0b",
    ] {
        let err = repo
            .commit(change(&[(bad, "pwned")], &[], "bad"))
            .await
            .expect_err(bad);
        assert!(
            matches!(err, RepoError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
        let err = repo
            .commit(change(&[], &[bad], "bad"))
            .await
            .expect_err(bad);
        assert!(
            matches!(err, RepoError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(repo.head(), None);
    assert!(!Path::new("/etc/x").exists());
    assert!(!Path::new("/tmp/slipway-escape-test").exists());
    let mut top: Vec<String> = fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["platform-repo"]);
    let mut inside: Vec<String> = fs::read_dir(&dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort();
    assert_eq!(inside, [".git"]);
    assert!(!fs::read_to_string(dir.join(".git/config"))
        .expect("config")
        .contains("pwned"));
}

#[tokio::test]
async fn planted_symlinks_are_not_followed() {
    let (tmp, dir) = tempdir();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    let repo = PlatformRepo::open(&dir).await.expect("open");
    std::os::unix::fs::symlink(&outside, dir.join("app")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("target.txt"), dir.join("file.txt")).expect("symlink");
    repo.commit(change(&[("app/x/y.txt", "y"), ("file.txt", "f")], &[], "c"))
        .await
        .expect("commit");
    assert_eq!(fs::read_dir(&outside).expect("ls").count(), 0);
    assert!(fs::symlink_metadata(dir.join("app"))
        .expect("meta")
        .is_dir());
    assert!(fs::symlink_metadata(dir.join("file.txt"))
        .expect("meta")
        .is_file());
    assert_eq!(
        fs::read_to_string(dir.join("app/x/y.txt")).expect("read"),
        "y"
    );
    repo.flush().await.expect("flush");
    status_is_clean(&dir);
}

#[tokio::test]
async fn failed_work_tree_update_is_repaired_by_flush() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    // A directory squatting where a file must go makes the rename into place fail.
    fs::create_dir_all(dir.join("blocked.txt/junk")).expect("mkdir");
    let commit = repo
        .commit(change(
            &[("blocked.txt", "content"), ("ok.txt", "ok")],
            &[],
            "c",
        ))
        .await
        .expect("the commit itself lands")
        .expect("changed");
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]).trim(), commit.to_string());
    assert!(dir.join("blocked.txt").is_dir());
    repo.flush().await.expect("flush repairs");
    assert_eq!(
        fs::read_to_string(dir.join("blocked.txt")).expect("read"),
        "content"
    );
    status_is_clean(&dir);
}

#[tokio::test]
async fn commits_made_behind_our_back_are_not_overwritten() {
    let (_tmp, dir) = tempdir();
    let repo = PlatformRepo::open(&dir).await.expect("open");
    repo.commit(change(&[("a", "a")], &[], "ours"))
        .await
        .expect("commit");
    git(
        &dir,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "theirs",
        ],
    );
    let theirs = git(&dir, &["rev-parse", "HEAD"]);
    let err = repo
        .commit(change(&[("b", "b")], &[], "ours again"))
        .await
        .expect_err("ref moved");
    assert!(matches!(err, RepoError::RefMoved { .. }), "{err}");
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), theirs);
    assert!(!dir.join(".git/refs/heads/main.lock").exists());
    drop(repo);
    // Reopening adopts the new HEAD.
    let repo = PlatformRepo::open(&dir).await.expect("reopen");
    repo.commit(change(&[("b", "b")], &[], "ours again"))
        .await
        .expect("commit")
        .expect("changed");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "3");
    fsck(&dir);
}

#[tokio::test]
async fn a_second_owner_is_refused_until_the_first_is_dropped() {
    let (_tmp, dir) = tempdir();
    let first = PlatformRepo::open(&dir).await.expect("open");
    let err = PlatformRepo::open(&dir).await.err().expect("in use");
    assert!(matches!(err, RepoError::InUse(_)), "{err}");
    drop(first);
    PlatformRepo::open(&dir).await.expect("free again");
}

#[tokio::test]
async fn open_refuses_a_foreign_directory() {
    let (_tmp, dir) = tempdir();
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("precious.txt"), "do not clean me").expect("write");
    let err = PlatformRepo::open(&dir).await.err().expect("refused");
    assert!(matches!(err, RepoError::NotARepository { .. }), "{err}");
    assert!(dir.join("precious.txt").exists());
}

#[tokio::test]
async fn rebuild_starts_over_with_one_commit() {
    let (tmp, dir) = tempdir();
    {
        let repo = PlatformRepo::open(&dir).await.expect("open");
        for i in 0..3 {
            repo.commit(change(&[(&format!("old-{i}"), "old")], &[], "old"))
                .await
                .expect("commit");
        }
    }
    fs::create_dir(tmp.path().join("platform-repo.old-1700000500")).expect("squat the first name");
    let files = vec![
        ("terraform/envs/dev/a/main.tf".to_owned(), b"a".to_vec()),
        (
            "app/templates/kubernetes/generated/a-deployment.yaml".to_owned(),
            b"kind: Deployment\n".to_vec(),
        ),
    ];
    let repo = PlatformRepo::rebuild(
        &dir,
        files.clone(),
        "rebuild from the catalog",
        1_700_000_500,
    )
    .await
    .expect("rebuild");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%s"]).trim(),
        "rebuild from the catalog"
    );
    let expected: BTreeMap<String, ObjectId> = files
        .iter()
        .map(|(p, c)| (p.clone(), PlatformRepo::blob_id(c)))
        .collect();
    assert_eq!(repo.files(), expected);
    assert!(!dir.join("old-0").exists());
    let old = tmp.path().join("platform-repo.old-1700000500-1");
    assert_eq!(git(&old, &["rev-list", "--count", "HEAD"]).trim(), "3");
    fsck(&dir);
    repo.flush().await.expect("flush");
    status_is_clean(&dir);
}
