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
