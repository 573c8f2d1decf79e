//! Crash safety of the deployment engine, on the real binary: `kill -9` Slipway while an app serves
//! and while a deployment builds, start it again, and check that nothing is stuck, nothing runs
//! twice and the app answers again.

mod common;

use common::{free_port, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const APP: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("pid " + str(os.getpid()) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// `slipway up` on `data` with its proxy on `proxy_port`, which stays the same across restarts.
fn start(data: &Path, proxy_port: u16) -> Server {
    Server::builder()
        .data_dir(data)
        .proxy_port(proxy_port)
        .args(["--allow-local-repos"])
        .start()
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn repo(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (p, c) in files {
        std::fs::write(dir.join(p), c).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "app",
        ],
    );
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let res = http.post(url).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

async fn deployment(http: &reqwest::Client, api: &str, id: &str) -> Value {
    http.get(format!("{api}/api/v1/deployments/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for(http: &reqwest::Client, api: &str, id: &str, wanted: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = deployment(http, api, id).await;
        if wanted.contains(&d["status"].as_str().unwrap_or("")) {
            return d;
        }
        assert!(Instant::now() < deadline, "stuck: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app's answer through the proxy, retried until it comes (the app may be restarting).
async fn app_pid(http: &reqwest::Client, proxy_port: u16, host: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = http
            .get(format!("http://127.0.0.1:{proxy_port}/"))
            .header("host", host)
            .send()
            .await
        {
            if res.status().is_success() {
                let text = res.text().await.unwrap();
                return text.trim().trim_start_matches("pid ").parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the app never answered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Python processes running the script `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            // The interpreter itself (`…/python3… app.py`), not the `sh -c` that started it.
            let cmd = String::from_utf8_lossy(&cmd);
            let mut args = cmd.split('\0');
            let program = args.next().unwrap_or("");
            let interpreter = program
                .rsplit('/')
                .next()
                .unwrap_or("")
                .starts_with("python");
            if interpreter && args.any(|a| a == needle) {
                found.push(pid);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_any_point_leaves_nothing_stuck_and_nothing_running_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app_dir = tmp.path().join("src/crashy");
    repo(&app_dir, &[("app.py", APP)]);
    let slow_dir = tmp.path().join("src/slowbuild");
    repo(
        &slow_dir,
        &[
            ("app.py", APP),
            (
                "slipway.toml",
                "[build]\nbuild = \"sleep 3; echo built\"\nstart = \"python3 app.py\"\n",
            ),
        ],
    );
    let proxy_port = free_port();
    let http = reqwest::Client::new();

    // 1. An app serves; Slipway dies; the app it left is stopped and started again, once.
    let s = start(&data, proxy_port);
    post(
        &http,
        format!("{}/platform/services", s.url),
        json!({ "service_name": "crashy", "team_name": "core", "repo_url": app_dir.display().to_string() }),
    )
    .await;
    let d = post(
        &http,
        format!("{}/api/v1/deployments", s.url),
        json!({ "service": "crashy" }),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_string();
    wait_for(&http, &s.url, &id, &["EXPOSED"]).await;
    let before = app_pid(&http, proxy_port, "crashy.dev.localhost").await;
    s.kill();
    assert!(
        Path::new(&format!("/proc/{before}")).exists(),
        "the app outlives a killed Slipway (until the next start)"
    );

    let s = start(&data, proxy_port);
    let after = app_pid(&http, proxy_port, "crashy.dev.localhost").await;
    assert_ne!(after, before, "the app was restarted by the new Slipway");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("/proc/{before}")).exists() {
        assert!(Instant::now() < deadline, "the old app process still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = deployment(&http, &s.url, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let checkout = data.join("apps/crashy/dev/releases");
    assert_eq!(
        processes_with("app.py")
            .into_iter()
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|cwd| cwd.starts_with(&checkout))
                .unwrap_or(false))
            .count(),
        1,
        "exactly one instance runs"
    );

    // 2. Slipway dies in the middle of a build; the deployment resumes and finishes.
    post(
        &http,
        format!("{}/platform/services", s.url),
        json!({ "service_name": "slowbuild", "team_name": "core", "repo_url": slow_dir.display().to_string() }),
    )
    .await;
    let d = post(
        &http,
        format!("{}/api/v1/deployments", s.url),
        json!({ "service": "slowbuild" }),
    )
    .await;
    let slow = d["id"].as_str().unwrap().to_string();
    wait_for(&http, &s.url, &slow, &["BUILDING"]).await;
    s.kill();
    let s = start(&data, proxy_port);
    let d = wait_for(
        &http,
        &s.url,
        &slow,
        &["EXPOSED", "FAILED", "ROLLED_BACK", "CANCELLED"],
    )
    .await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let log = http
        .get(format!("{}/api/v1/deployments/{slow}/logs", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("resuming at BUILDING"), "{log}");
    app_pid(&http, proxy_port, "slowbuild.dev.localhost").await;
    // The first app came back once more and still answers.
    app_pid(&http, proxy_port, "crashy.dev.localhost").await;
    drop(s);
    // A graceful stop stops the apps too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<u32> = processes_with("app.py")
            .into_iter()
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .map(|cwd| cwd.starts_with(&data))
                    .unwrap_or(false)
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "apps left running: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
