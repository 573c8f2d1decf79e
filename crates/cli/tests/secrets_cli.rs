//! `slipway secrets rotate-key` on the real binary: secrets survive the rotation and the app gets
//! them after a restart; an interrupted rotation blocks the start until it is finished.

mod common;

use common::{free_port, Server, BIN};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// `slipway up` on `data` with its proxy on `proxy`, the key taken from the data directory (the
/// harness passes none of the test's own `SLIPWAY_*` variables, `SLIPWAY_SECRETS_KEY` included).
fn start(data: &Path, proxy: u16) -> Server {
    Server::builder()
        .data_dir(data)
        .proxy_port(proxy)
        .args(["--allow-local-repos"])
        .start()
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
    let proxy = free_port();
    let http = reqwest::Client::new();

    let server = start(&data, proxy);
    let api = &server.url;
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
    drop(server);

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
    let server = start(&data, proxy);
    assert_eq!(app_answer(proxy).await, SECRET);
    drop(server);

    // An interrupted rotation blocks the start with instructions.
    std::fs::write(data.join("secrets.key.new"), after).unwrap();
    let refused = Server::builder().data_dir(&data).try_start().unwrap_err();
    assert_eq!(refused.code, Some(1));
    assert!(refused.log.contains("rotate-key"));
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

/// `slipway secrets set|list|unset`: the value comes from a file or standard input (never the
/// command line), reads show a mask, repository credentials are labelled as such, bad names change
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_set_listed_and_unset_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
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
