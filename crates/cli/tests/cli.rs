//! The real `slipway` binary: `up`, the CLI commands over HTTP, exit codes, signals, the data-dir lock,
//! crash recovery of the platform repository and `platform-repo rebuild`.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let dir = data_dir.to_str().unwrap();
        Self::start_in(
            None,
            &["up", "--listen", "127.0.0.1:0", "--data-dir", dir],
            env,
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal and waits for the process to exit; returns (exit code, rest of stderr).
    fn signal(mut self, sig: &str) -> (Option<i32>, String) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(30));
        // The pipe closes when the process (and anything it spawned) has exited.
        let mut rest = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            rest.push(line);
        }
        (status.code(), rest.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the CLI against `url`; returns (exit code, stdout, stderr).
fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(args)
        .env("SLIPWAY_URL", url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

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

    let (code, out, err) = cli(
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
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("payments") && out.contains("terraform/envs/dev/payments/main.tf"),
        "{out}"
    );

    let (code, _, err) = cli(
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
    assert_eq!(code, 5, "conflict: {err}");
    assert!(err.contains("409"), "{err}");

    let (code, _, err) = cli(
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
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("name:") && err.contains("repo_url:"),
        "every field is named: {err}"
    );

    let (code, out, _) = cli(&url, &["service", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("payments"));

    let (code, out, _) = cli(&url, &["service", "list", "--output", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 1);

    let (code, out, _) = cli(&url, &["-o", "json", "service", "show", "payments"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["team"], "core");

    let (code, _, err) = cli(&url, &["service", "show", "ghost"]);
    assert_eq!(code, 4, "{err}");

    let (code, out, err) = cli(&url, &["-o", "json", "deploy", "payments"]);
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["status"], "QUEUED");
    let id = d["id"].as_str().unwrap();
    let (code, out, _) = cli(&url, &["deployment", "show", id]);
    assert_eq!(code, 0);
    // The engine has picked it up by now (and fails it: this test's repository is not reachable).
    assert!(out.contains(id), "{out}");
    let (code, out, _) = cli(&url, &["deployment", "list", "--service", "payments"]);
    assert_eq!(code, 0);
    assert!(out.contains(id));
    assert_eq!(cli(&url, &["deploy", "ghost"]).0, 4);
    assert_eq!(cli(&url, &["deploy", "payments", "--ref=-x"]).0, 6);

    let (code, out, _) = cli(&url, &["service", "delete", "payments"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted"));
    assert_eq!(cli(&url, &["service", "delete", "payments"]).0, 4);

    let (code, _, err) = cli(&url, &["service", "delete", ".."]);
    assert_eq!(code, 6, "names are checked before they become a URL: {err}");
    assert_eq!(cli(&url, &["deployment", "show", "../x"]).0, 6);
    assert_eq!(cli(&url, &["service"]).0, 2, "usage error");
    assert_eq!(cli(&url, &["--output", "xml", "service", "list"]).0, 2);
}

#[test]
fn unreachable_server_has_its_own_exit_code_and_message() {
    // Bind and drop a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = cli(&format!("http://127.0.0.1:{port}"), &["service", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("cannot reach") && err.contains("slipway up"),
        "{err}"
    );
    let (code, _, err) = cli("ftp://x", &["service", "list"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    for sig in ["TERM", "INT"] {
        let server = Server::start(&dir.path().join("data"), &[]);
        let (code, err) = server.signal(sig);
        assert_eq!(code, Some(0), "SIG{sig}: {err}");
        assert!(err.contains("Slipway stopped."), "{err}");
    }
}

#[test]
fn one_process_per_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &[]);
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another Slipway process"));
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
    let server = Server::start_with_args(&["up", "--config", cfg.to_str().unwrap()], &[]);
    drop(server);
    assert!(from_file.join("slipway.db").exists());
    // …and the environment beats the file.
    let server = Server::start_with_args(
        &["up", "--config", cfg.to_str().unwrap()],
        &[("SLIPWAY_DATA_DIR", from_env.to_str().unwrap())],
    );
    drop(server);
    assert!(from_env.join("slipway.db").exists());
}

impl Server {
    fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_in(None, args, env)
    }

    fn start_in(cwd: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.env("SLIPWAY_AUTH", "off");
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.args(args)
            .env_remove("SLIPWAY_DATA_DIR")
            .env_remove("SLIPWAY_DATABASE_URL")
            .env_remove("SLIPWAY_CONFIG")
            .env("SLIPWAY_LOG", "warn")
            // Each test's server gets its own proxy port.
            .env("SLIPWAY_PROXY_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let url = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break Some(rest.split_whitespace().next().unwrap().to_string());
                    }
                    seen.push(line);
                }
                Err(_) => break None,
            }
        };
        match url {
            Some(url) => Server {
                child,
                url,
                stderr: rx,
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("slipway up did not start: {}", seen.join("\n"));
            }
        }
    }
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
    let mut server = Server::start(&data, &[("SLIPWAY_CRASH_POINT", "after-db-commit")]);
    let result = register(&server.url, "payments").await;
    assert!(result.is_err(), "the process died before answering");
    let status = wait_with_deadline(&mut server.child, Duration::from_secs(30));
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
    let (code, _) = server.signal("TERM");
    assert_eq!(code, Some(0));

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
    let server = Server::start_in(Some(dir.path()), &["up", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(
        register(&server.url, "payments").await.unwrap().status(),
        201
    );
    let (code, _) = server.signal("TERM");
    assert_eq!(code, Some(0));
    let data = dir.path().join(".slipway");
    assert!(data.join("slipway.db").exists());
    assert!(data
        .join("platform-repo/terraform/envs/dev/payments/main.tf")
        .exists());
    let (_, status) = git(&data.join("platform-repo"), &["status", "--porcelain"]);
    assert_eq!(status, "", "index flushed at shutdown");
}
