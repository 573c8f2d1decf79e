//! The real `slipway` binary: `up`, the CLI commands over HTTP, exit codes, signals, the data-dir lock,
//! crash recovery of the platform repository and `platform-repo rebuild`.

mod common;

use common::{cli, free_port, Server, BIN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn git(repo: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

async fn register(url: &str, name: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{url}/platform/services"))
        .json(&serde_json::json!({"service_name": name, "team_name": "core", "repo_url": format!("https://github.com/org/{name}")}))
        .send()
        .await
}

#[test]
fn cli_commands_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let url = server.url.clone();

    let out = cli(
        &url,
        &[
            "service",
            "create",
            "payments",
            "--team",
            "core",
            "--repo-url",
            "https://github.com/org/payments",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("payments")
            && out.stdout.contains("terraform/envs/dev/payments/main.tf"),
        "{}",
        out.stdout
    );

    let out = cli(
        &url,
        &[
            "service",
            "create",
            "payments",
            "--team",
            "core",
            "--repo-url",
            "https://github.com/org/payments",
        ],
    );
    assert_eq!(out.code, 5, "conflict: {}", out.stderr);
    assert!(out.stderr.contains("409"), "{}", out.stderr);

    let out = cli(
        &url,
        &[
            "service",
            "create",
            "Bad",
            "--team",
            "core",
            "--repo-url",
            "http://x/y",
        ],
    );
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("name:") && out.stderr.contains("repo_url:"),
        "every field is named: {}",
        out.stderr
    );

    let out = cli(&url, &["service", "list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    assert!(out.stdout.contains("payments"));

    let out = cli(&url, &["service", "list", "--output", "json"]);
    assert_eq!(out.code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["total"], 1);

    let out = cli(&url, &["-o", "json", "service", "show", "payments"]);
    assert_eq!(out.code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["team"], "core");

    let out = cli(&url, &["service", "show", "ghost"]);
    assert_eq!(out.code, 4, "{}", out.stderr);

    let out = cli(&url, &["-o", "json", "deploy", "payments"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["status"], "QUEUED");
    let id = d["id"].as_str().unwrap();
    let out = cli(&url, &["deployment", "show", id]);
    assert_eq!(out.code, 0);
    // The engine has picked it up by now (and fails it: this test's repository is not reachable).
    assert!(out.stdout.contains(id), "{}", out.stdout);
    let out = cli(&url, &["deployment", "list", "--service", "payments"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains(id));
    assert_eq!(cli(&url, &["deploy", "ghost"]).code, 4);
    assert_eq!(cli(&url, &["deploy", "payments", "--ref=-x"]).code, 6);

    let out = cli(&url, &["service", "delete", "payments"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("deleted"));
    assert_eq!(cli(&url, &["service", "delete", "payments"]).code, 4);

    let out = cli(&url, &["service", "delete", ".."]);
    assert_eq!(
        out.code, 6,
        "names are checked before they become a URL: {}",
        out.stderr
    );
    assert_eq!(cli(&url, &["deployment", "show", "../x"]).code, 2);
    assert_eq!(cli(&url, &["service"]).code, 2, "usage error");
    assert_eq!(cli(&url, &["--output", "xml", "service", "list"]).code, 2);
}

/// Runs the CLI with its standard output going into a pipe nobody reads any more (the reading end
/// is closed before it starts, as `| head -1` does once it has its line): every write fails with
/// EPIPE. Returns the exit code and standard error.
fn cli_into_closed_pipe(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = common::cli_command(url)
        .args(args)
        .stdout(writer)
        .output()
        .expect("the CLI runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    server.ok(&[
        "service",
        "create",
        "payments",
        "--team",
        "core",
        "--repo-url",
        "https://github.com/org/payments",
    ]);
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../analyzer/tests/fixtures/python-fastapi-uv"
    );
    for args in [
        &["service", "list"][..],
        &["service", "list", "-o", "json"],
        &["service", "show", "payments"],
        &["templates", "list"],
        &["analyze", fixture],
    ] {
        let (code, stderr) = cli_into_closed_pipe(&server.url, args);
        assert_eq!(code, Some(0), "slipway {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "slipway {args:?}: {stderr}");
    }
}

#[test]
fn unreachable_server_has_its_own_exit_code_and_message() {
    // A port that was bound and dropped, so nothing listens there.
    let port = free_port();
    let out = cli(&format!("http://127.0.0.1:{port}"), &["service", "list"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach") && out.stderr.contains("slipway up"),
        "{}",
        out.stderr
    );
    let out = cli("ftp://x", &["service", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    for sig in ["TERM", "INT"] {
        let server = Server::start(&dir.path().join("data"), &[]);
        let (status, log) = server.stop_with(sig);
        assert_eq!(status.code(), Some(0), "SIG{sig}: {log}");
        assert!(log.contains("Slipway stopped."), "{log}");
    }
}

#[test]
fn one_process_per_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &[]);
    let second = Server::builder().data_dir(&data).try_start().unwrap_err();
    assert_eq!(second.code, Some(1));
    assert!(second.log.contains("another Slipway process"));
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["platform-repo", "rebuild", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "rebuild refuses while the server runs"
    );
}

#[test]
fn bad_configuration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("slipway.toml");
    std::fs::write(&cfg, "listen = 7700\n").unwrap();
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["up", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration file"));
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["up", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn configuration_file_and_environment_are_layered() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    let cfg = dir.path().join("slipway.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n",
            from_file.display().to_string()
        ),
    )
    .unwrap();
    // The file's data dir is used…
    let server = Server::builder().config(&cfg).start();
    drop(server);
    assert!(from_file.join("slipway.db").exists());
    // …and the environment beats the file.
    let server = Server::builder()
        .config(&cfg)
        .env("SLIPWAY_DATA_DIR", &from_env)
        .start();
    drop(server);
    assert!(from_env.join("slipway.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_database_and_repository_commit_is_repaired_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo: PathBuf = data.join("platform-repo");

    // A registration that lands in the repository normally.
    let server = Server::start(&data, &[]);
    assert_eq!(
        register(&server.url, "billing").await.unwrap().status(),
        201
    );
    drop(server);

    // The process aborts right after the database commit, before the repository commit.
    let mut server = Server::start_with(&data, &[], &[("SLIPWAY_CRASH_POINT", "after-db-commit")]);
    let result = register(&server.url, "payments").await;
    assert!(result.is_err(), "the process died before answering");
    let status = server.wait_for_exit(Duration::from_secs(30));
    assert!(!status.success(), "aborted: {status:?}");
    let (_, files) = git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(
        files.contains("billing") && !files.contains("payments"),
        "{files}"
    );
    drop(server);

    // At the next start the reconciler commits what the database has and the repository lacks.
    let server = Server::start(&data, &[]);
    let (_, files) = git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]);
    for f in [
        "terraform/envs/dev/payments/main.tf",
        "terraform/envs/dev/payments/outputs.tf",
        "app/templates/kubernetes/generated/payments-deployment.yaml",
        "app/templates/jenkins/generated/payments.Jenkinsfile",
    ] {
        assert!(
            files.lines().any(|l| l == f),
            "{f} missing after repair: {files}"
        );
        assert!(repo.join(f).exists(), "{f} missing from the work tree");
    }
    let (_, log) = git(&repo, &["log", "--format=%s"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["register payments", "register billing"]
    );
    let (ok, _) = git(&repo, &["fsck", "--strict", "--no-progress"]);
    assert!(ok);
    // Repository content equals the database's.
    let served = reqwest::get(format!(
        "{}/api/v1/services/payments/artifacts/app/templates/jenkins/generated/payments.Jenkinsfile",
        server.url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(
        served,
        std::fs::read_to_string(repo.join("app/templates/jenkins/generated/payments.Jenkinsfile"))
            .unwrap()
    );
    // A second start finds nothing to repair.
    drop(server);
    let server = Server::start(&data, &[]);
    let (_, log2) = git(&repo, &["log", "--format=%s"]);
    assert_eq!(log, log2);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_repo_rebuild_recreates_the_repository_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = data.join("platform-repo");
    let server = Server::start(&data, &[]);
    for name in ["payments", "billing"] {
        assert_eq!(register(&server.url, name).await.unwrap().status(), 201);
    }
    let (_, before) = git(&repo, &["ls-tree", "-r", "HEAD"]);
    let (status, _) = server.stop_with("TERM");
    assert_eq!(status.code(), Some(0));

    std::fs::remove_dir_all(repo.join("terraform")).unwrap(); // damage the projection
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["platform-repo", "rebuild", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, after) = git(&repo, &["ls-tree", "-r", "HEAD"]);
    assert_eq!(before, after, "same tree, same blobs");
    let (_, count) = git(&repo, &["rev-list", "--count", "HEAD"]);
    assert_eq!(count.trim(), "1");
    let (_, status) = git(&repo, &["status", "--porcelain"]);
    assert_eq!(status, "");
    assert!(repo.join("terraform/envs/dev/payments/main.tf").exists());
    let moved_aside = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("platform-repo.old-")
        });
    assert!(moved_aside, "the old repository is kept aside");

    // A mistyped data directory is refused instead of yielding an empty repository.
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["platform-repo", "rebuild", "--data-dir"])
        .arg(dir.path().join("typo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Slipway data"));
    assert!(!dir.path().join("typo").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_data_dir_is_dot_slipway_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder().current_dir(dir.path()).start();
    assert_eq!(
        register(&server.url, "payments").await.unwrap().status(),
        201
    );
    let (status, _) = server.stop_with("TERM");
    assert_eq!(status.code(), Some(0));
    let data = dir.path().join(".slipway");
    assert!(data.join("slipway.db").exists());
    assert!(data
        .join("platform-repo/terraform/envs/dev/payments/main.tf")
        .exists());
    let (_, status) = git(&data.join("platform-repo"), &["status", "--porcelain"]);
    assert_eq!(status, "", "index flushed at shutdown");
}
