//! Workload isolation by default (`--isolate-workloads auto`): as root, with a data directory other
//! users can pass through, each service's app runs as its own uid; where a directory above the data
//! directory is closed to other users, Slipway says which and runs them as itself.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

const APP: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getuid()).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Starts `slipway up` (auth off, isolation left at its default) and returns it with its API URL,
/// its proxy port and what it logged while starting.
fn start(data: &Path) -> (Child, String, u16, Vec<String>) {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .env("SLIPWAY_LOG", "info")
        .env_remove("SLIPWAY_ISOLATE_WORKLOADS")
        .args(["up", "--allow-local-repos", "--listen", "127.0.0.1:0"])
        .arg("--proxy-listen")
        .arg(format!("127.0.0.1:{proxy}"))
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, url, proxy, seen);
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("slipway up did not start:\n{}", seen.join("\n"));
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
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
            .current_dir(dir)
            .status()
            .unwrap()
            .success());
    }
}

async fn uid_of_app(api: &str, proxy: u16, repo: &Path) -> String {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api}/platform/services"))
        .json(
            &serde_json::json!({"service_name": "whoami", "team_name": "core",
                                  "repo_url": repo.display().to_string()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{api}/api/v1/deployments"))
        .json(&serde_json::json!({"service": "whoami"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{proxy}/"))
            .header("host", "whoami.dev.localhost")
            .send()
            .await
        {
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the app never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workloads_run_as_their_own_uid_by_default_where_they_can() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("skipped: per-service uids need Slipway to run as root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    repo(&tmp.path().join("src"));

    // A data directory below a directory others may pass through: isolated.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let (child, api, proxy, log) = start(&open.join("data"));
    assert!(
        log.iter()
            .any(|l| l.contains("workloads run as their own uid per service")),
        "{log:?}"
    );
    let uid = uid_of_app(&api, proxy, &tmp.path().join("src")).await;
    stop(child);
    assert_ne!(uid, "0", "the app runs as root");
    assert!(uid.parse::<u32>().unwrap() >= 200_000, "{uid}");

    // Below a directory closed to others: Slipway says which, and runs the app as itself.
    let closed = tmp.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (child, api, proxy, log) = start(&closed.join("data"));
    let warning = log
        .iter()
        .find(|l| l.contains("workloads run as Slipway's own user"))
        .unwrap_or_else(|| panic!("no warning: {log:?}"));
    assert!(
        warning.contains(&closed.display().to_string()) && warning.contains("chmod o+x"),
        "{warning}"
    );
    let uid = uid_of_app(&api, proxy, &tmp.path().join("src")).await;
    stop(child);
    assert_eq!(uid, "0");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
