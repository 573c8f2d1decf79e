//! Workload isolation for a Slipway that does not run as root (`--isolate-workloads auto`): every
//! build command and app instance runs in a user namespace (bubblewrap) where the data directory is
//! hidden. Run as root, the test starts `slipway up` as `nobody` (uid 65534) through `setpriv`.
//! Skips with a message where bubblewrap or unprivileged user namespaces are missing, except under
//! `CI=true`, whose `.ci/run` installs bubblewrap.

mod common;

use common::{free_port, Server, BIN};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// Tries to read Slipway's database and key, to list the data directory and to reach Slipway's
/// files through other processes' `/proc/<pid>/root`; serves what happened as JSON.
const APP: &str = r#"import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
DATA = __DATA__
def attempt(f):
    try:
        f()
        return "read"
    except Exception as e:
        return type(e).__name__
r = {"uid": os.getuid()}
r["slipway.db"] = attempt(lambda: open(os.path.join(DATA, "slipway.db"), "rb").read(1))
r["secrets.key"] = attempt(lambda: open(os.path.join(DATA, "secrets.key"), "rb").read(1))
r["list"] = attempt(lambda: os.listdir(DATA))
escaped = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        p = "/proc/%s/root%s/secrets.key" % (pid, DATA)
        if attempt(lambda: open(p, "rb").read(1)) == "read":
            escaped.append(pid)
r["escaped"] = escaped
r["pids"] = sum(1 for p in os.listdir("/proc") if p.isdigit())
body = json.dumps(r).encode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

/// The arguments of `setpriv` that run a program as `nobody`.
fn setpriv_nobody() -> [String; 5] {
    [
        "--reuid".into(),
        NOBODY.to_string(),
        "--regid".into(),
        NOBODY.to_string(),
        "--clear-groups".into(),
    ]
}

/// The command line that runs `program` as the unprivileged user.
fn unprivileged(program: &Path) -> Command {
    if as_root() {
        let mut c = Command::new("setpriv");
        c.args(setpriv_nobody()).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Why workloads cannot get a user namespace here, if they cannot.
fn userns_unavailable() -> Option<String> {
    let out = unprivileged(Path::new("bwrap"))
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--",
            "true",
        ])
        .output();
    match out {
        Err(e) => Some(format!("bwrap cannot start: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "bwrap cannot create a user namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

fn chown_tree(root: &Path) {
    if !as_root() {
        return;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    assert!(Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread")]
async fn unprivileged_slipway_runs_workloads_in_a_user_namespace_that_hides_its_data() {
    if let Some(why) = userns_unavailable() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs bubblewrap with user namespaces (.ci/run installs it): {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let src = tmp.path().join("src");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let data_literal = serde_json::to_string(&data.display().to_string()).unwrap();
    std::fs::write(src.join("app.py"), APP.replace("__DATA__", &data_literal)).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    git(&src, &["add", "-A"]);
    git(
        &src,
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
    // The binary where the unprivileged user can run it.
    let bin = tmp.path().join("slipway");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&src);
    chown_tree(&home);
    chown_tree(&data);

    let proxy = free_port();
    // The unprivileged user's copy of the binary, with only PATH and HOME of this environment.
    let mut slipway = Server::builder()
        .binary(&bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("SLIPWAY_LOG", "info")
        .args(["--allow-local-repos"])
        .proxy_port(proxy)
        .data_dir(&data)
        .current_dir(&home);
    if as_root() {
        slipway = slipway.wrap("setpriv", setpriv_nobody());
    }
    let server = slipway.start();
    let result = deploy_and_ask(&server.url, proxy, &src).await;
    let log = server.log();
    drop(server);
    let r = result.unwrap_or_else(|e| panic!("{e}\nslipway's log:\n{log}"));
    eprintln!("the app saw: {r}");
    let startup = log.split("listening on ").next().unwrap_or_default();
    assert!(
        startup
            .lines()
            .any(|l| l.contains("workloads run in a user namespace each")),
        "{startup}"
    );
    // The app serves through the proxy, as Slipway's user, and sees none of Slipway's data.
    if as_root() {
        assert_eq!(r["uid"], NOBODY, "{r}");
    }
    assert_eq!(r["slipway.db"], "FileNotFoundError", "{r}");
    assert_eq!(r["secrets.key"], "FileNotFoundError", "{r}");
    assert_eq!(r["list"], "PermissionError", "{r}");
    assert_eq!(r["escaped"], serde_json::json!([]), "{r}");
    assert!(
        r["pids"].as_u64().unwrap() < 10,
        "other processes are visible: {r}"
    );
    // Stopping Slipway stopped the app and bwrap with it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        reqwest::get(format!("http://127.0.0.1:{proxy}/"))
            .await
            .is_err(),
        "the proxy still answers"
    );
    let left = Command::new("pgrep")
        .args(["-f", &data.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

async fn deploy_and_ask(api: &str, proxy: u16, repo: &Path) -> Result<serde_json::Value, String> {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api}/platform/services"))
        .json(
            &serde_json::json!({"service_name": "nosy", "team_name": "core",
                                  "repo_url": repo.display().to_string()}),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 201 {
        return Err(format!(
            "register: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    let r = http
        .post(format!("{api}/api/v1/deployments"))
        .json(&serde_json::json!({"service": "nosy"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let deployment: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{proxy}/"))
            .header("host", "nosy.dev.localhost")
            .send()
            .await
        {
            if r.status() == 200 {
                return serde_json::from_str(&r.text().await.unwrap()).map_err(|e| e.to_string());
            }
        }
        if Instant::now() > deadline {
            let id = deployment["id"].as_str().unwrap_or_default();
            let d = http
                .get(format!("{api}/api/v1/deployments/{id}/logs"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .unwrap_or_default();
            return Err(format!(
                "the app never answered; deployment {deployment}: {d}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
