//! `slipway secrets rotate-key` on the real binary: secrets survive the rotation and the app gets
//! them after a restart; an interrupted rotation blocks the start until it is finished.

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");
const SECRET: &str = "rotated-but-same-7731";

const APP: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ.get("API_KEY", "none").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn start(data: &Path, proxy: u16) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--allow-local-repos",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--proxy-listen")
        .arg(format!("127.0.0.1:{proxy}"))
        .arg("--data-dir")
        .arg(data)
        .env("SLIPWAY_LOG", "warn")
        .env_remove("SLIPWAY_SECRETS_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slipway up did not start");
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, rest.split_whitespace().next().unwrap().to_string());
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

async fn app_answer(proxy: u16) -> String {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{proxy}/"))
            .header("host", "vault.dev.localhost")
            .send()
            .await
        {
            if r.status().is_success() {
                return r.text().await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the app never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_key_keeps_every_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let repo = tmp.path().join("vault");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("app.py"), APP).unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "app",
        ],
    ] {
        assert!(Command::new("git")
            .args(&args)
            .current_dir(&repo)
            .status()
            .unwrap()
            .success());
    }
    let proxy = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = reqwest::Client::new();

    let (child, api) = start(&data, proxy);
    let r = http
        .post(format!("{api}/platform/services"))
        .json(&json!({ "service_name": "vault", "team_name": "core", "repo_url": repo.display().to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!(
            "{api}/api/v1/services/vault/environments/dev/secrets/API_KEY"
        ))
        .json(&json!({ "value": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: serde_json::Value = http
        .post(format!("{api}/api/v1/deployments"))
        .json(&json!({ "service": "vault" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(d["id"].is_string(), "{d}");
    assert_eq!(app_answer(proxy).await, SECRET);
    stop(child);

    let key_file = data.join("secrets.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let out = Command::new(BIN)
        .args(["secrets", "rotate-key", "--data-dir"])
        .arg(&data)
        .env_remove("SLIPWAY_SECRETS_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 secrets re-encrypted"));
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert!(!data.join("secrets.key.new").exists());

    // The app is started again at the next start, with the secret opened by the new key.
    let (child, _) = start(&data, proxy);
    assert_eq!(app_answer(proxy).await, SECRET);
    stop(child);

    // An interrupted rotation blocks the start with instructions.
    std::fs::write(data.join("secrets.key.new"), after).unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("SLIPWAY_SECRETS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rotate-key"));
    // Running the rotation again finishes it.
    let out = Command::new(BIN)
        .args(["secrets", "rotate-key", "--data-dir"])
        .arg(&data)
        .env_remove("SLIPWAY_SECRETS_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!data.join("secrets.key.new").exists());
}

mod common;

/// `slipway secrets set|list|unset`: the value comes from a file or standard input (never the
/// command line), reads show a mask, repository credentials are labelled as such, bad names change
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_set_listed_and_unset_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let server = common::Server::start(&tmp.path().join("data"), &[]);
    let r = reqwest::Client::new()
        .post(format!("{}/platform/services", server.url))
        .json(&json!({ "service_name": "vault", "team_name": "core",
                       "repo_url": "https://github.com/example/vault.git" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let value = tmp.path().join("token");
    std::fs::write(&value, format!("{SECRET}\n")).unwrap();
    let file = value.to_str().unwrap();

    let out = server.ok(&[
        "secrets",
        "set",
        "vault",
        "SLIPWAY_GIT_TOKEN",
        "--from-file",
        file,
    ]);
    assert!(
        out.stdout
            .contains("SLIPWAY_GIT_TOKEN version 1 set for vault in dev"),
        "{}",
        out.all()
    );
    server.ok(&["secrets", "set", "vault", "API_KEY", "--from-file", file]);
    let out = server.ok(&["secrets", "list", "vault"]);
    assert!(!out.all().contains(SECRET), "{}", out.all());
    assert!(out.stdout.contains("repository fetch") && out.stdout.contains("app environment"));
    let list = server
        .ok(&["-o", "json", "secrets", "list", "vault"])
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["value"] == "********"));

    // Refused before anything is sent: a reserved name, an empty standard input, a missing file.
    for (args, code) in [
        (
            vec![
                "secrets",
                "set",
                "vault",
                "SLIPWAY_OTHER",
                "--from-file",
                file,
            ],
            2,
        ),
        (vec!["secrets", "set", "vault", "API_KEY"], 2),
        (
            vec![
                "secrets",
                "set",
                "vault",
                "API_KEY",
                "--from-file",
                "/nonexistent/v",
            ],
            2,
        ),
        (
            vec!["secrets", "set", "ghost", "API_KEY", "--from-file", file],
            4,
        ),
    ] {
        let out = server.cli(&args);
        assert_eq!(out.code, code, "{args:?}: {}", out.all());
    }
    server.ok(&["secrets", "unset", "vault", "API_KEY"]);
    assert_eq!(
        server.cli(&["secrets", "unset", "vault", "API_KEY"]).code,
        4
    );
    let list = server
        .ok(&["-o", "json", "secrets", "list", "vault"])
        .json();
    assert_eq!(list[0]["name"], "SLIPWAY_GIT_TOKEN");
    assert_eq!(list[0]["version"], 1);
    assert_eq!(list.as_array().unwrap().len(), 1);
}
