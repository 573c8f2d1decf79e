//! What the repository tells about people's edits: who last changed a file, whether `main`
//! moved behind Slipway's back, and the work tree's own copy of a file.

use slipway_platform_repo::{Change, PlatformRepo, AUTHOR_EMAIL};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn write(path: &str, content: &str) -> Change {
    Change {
        writes: vec![(path.to_owned(), content.as_bytes().to_vec())],
        deletes: vec![],
        message: format!("write {path}"),
        time_unix: 1_700_000_000,
    }
}

#[tokio::test]
async fn a_persons_commit_and_work_tree_edits_are_told_apart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    let repo = PlatformRepo::open(&dir).await.expect("open");
    assert_eq!(repo.last_change("envs/a/main.tf").await.unwrap(), None);
    repo.commit(write("envs/a/main.tf", "generated\n"))
        .await
        .expect("commit");
    repo.commit(write("envs/b/main.tf", "generated\n"))
        .await
        .expect("commit");
    let (ours, email) = repo
        .last_change("envs/a/main.tf")
        .await
        .unwrap()
        .expect("a commit");
    assert_eq!(email, AUTHOR_EMAIL);
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%H", "--", "envs/a/main.tf"]).trim(),
        ours
    );
    assert!(!repo.ref_moved().unwrap());
    repo.flush().await.expect("index synced");

    // An edit in the work tree, not committed.
    std::fs::write(dir.join("envs/a/main.tf"), "edited\n").unwrap();
    assert_eq!(
        repo.work_tree_file("envs/a/main.tf").await.unwrap(),
        Some(b"edited\n".to_vec())
    );
    assert_eq!(repo.work_tree_file("envs/none.tf").await.unwrap(), None);
    // A symlink is not followed.
    std::fs::remove_file(dir.join("envs/b/main.tf")).unwrap();
    std::os::unix::fs::symlink(dir.join("envs/a/main.tf"), dir.join("envs/b/main.tf")).unwrap();
    assert_eq!(repo.work_tree_file("envs/b/main.tf").await.unwrap(), None);
    assert!(repo.work_tree_file("../outside").await.is_err());
    std::fs::remove_file(dir.join("envs/b/main.tf")).unwrap();
    git(&dir, &["checkout", "--", "envs/b/main.tf"]);

    // The person commits it: `main` moved, and the file's last change is theirs.
    git(
        &dir,
        &[
            "-c",
            "user.name=Dana",
            "-c",
            "user.email=dana@example.com",
            "commit",
            "-q",
            "-am",
            "tune a",
        ],
    );
    assert!(repo.ref_moved().unwrap());
    drop(repo);
    let repo = PlatformRepo::open(&dir).await.expect("reopen");
    assert!(!repo.ref_moved().unwrap());
    let (theirs, email) = repo
        .last_change("envs/a/main.tf")
        .await
        .unwrap()
        .expect("a commit");
    assert_eq!(email, "dana@example.com");
    assert_ne!(theirs, ours);
    let head_blob = repo.files()["envs/a/main.tf"];
    assert_eq!(repo.read_blob(head_blob).await.unwrap(), b"edited\n");
    let (_, email) = repo.last_change("envs/b/main.tf").await.unwrap().unwrap();
    assert_eq!(email, AUTHOR_EMAIL);
}
