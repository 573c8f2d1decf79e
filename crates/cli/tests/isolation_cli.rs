//! Workload isolation by default (`--isolate-workloads auto`): as root, with a data directory other
//! users can pass through, each service's app runs as its own uid; where a directory above the data
//! directory is closed to other users, Slipway says which and runs them as itself.

mod common;

use common::{free_port, Server};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// Starts `slipway up` (auth off, isolation left at its default) and returns it with its proxy port
/// and what it logged before it listened.
fn start(data: &Path) -> (Server, u16, String) {
    let proxy = free_port();
    let server = Server::builder()
        .data_dir(data)
        .proxy_port(proxy)
        .args(["--allow-local-repos"])
        .env("SLIPWAY_LOG", "info")
        .start();
    let log = server.log();
    let before_listening = log.split("listening on ").next().unwrap_or_default();
    (server, proxy, before_listening.to_string())
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
    let (server, proxy, log) = start(&open.join("data"));
    assert!(
        log.lines()
            .any(|l| l.contains("workloads run as their own uid per service")),
        "{log}"
    );
    let uid = uid_of_app(&server.url, proxy, &tmp.path().join("src")).await;
    drop(server);
    assert_ne!(uid, "0", "the app runs as root");
    assert!(uid.parse::<u32>().unwrap() >= 200_000, "{uid}");

    // Below a directory closed to others: Slipway says which, and runs the app as itself.
    let closed = tmp.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (server, proxy, log) = start(&closed.join("data"));
    let warning = log
        .lines()
        .find(|l| l.contains("workloads run as Slipway's own user"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(
        warning.contains(&closed.display().to_string()) && warning.contains("chmod o+x"),
        "{warning}"
    );
    let uid = uid_of_app(&server.url, proxy, &tmp.path().join("src")).await;
    drop(server);
    assert_eq!(uid, "0");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
