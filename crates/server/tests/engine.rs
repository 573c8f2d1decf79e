//! The deployment engine end to end: real git repositories made by the tests, real processes, the
//! real proxy. No network: apps use only their language's standard library.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PY_APP: &str = r#"import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("CRASH") == "1":
    print("crashing on purpose", flush=True)
    sys.exit(3)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello " + os.environ.get("GREETING", "world") + " from " + VERSION + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

VERSION = "v1"
print("listening on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const NODE_APP: &str = r#"const http = require("http");
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => {
  if (req.url === "/health") { res.end("ok"); return; }
  res.end("node says " + (process.env.GREETING || "hi") + "\n");
}).listen(port, "127.0.0.1", () => console.log("node listening on " + port));
"#;

/// A git repository in `dir` with `files`, committed on `main`; returns its path.
fn git_repo(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    commit(dir, files, "initial");
    dir.to_path_buf()
}

fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    );
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn py_repo(dir: &Path) -> PathBuf {
    git_repo(dir, &[("app.py", PY_APP)])
}

async fn register(s: &TestServer, name: &str, repo: &Path) {
    let (status, body) = s
        .post(
            "/platform/services",
            json!({ "service_name": name, "team_name": "core", "repo_url": repo.display().to_string() }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn deploy(s: &TestServer, body: Value) -> String {
    let (status, d) = s.post("/api/v1/deployments", body).await;
    assert_eq!(status, 202, "{d}");
    assert_eq!(d["status"], "QUEUED");
    d["id"].as_str().unwrap().to_string()
}

/// Polls a deployment until it reaches a terminal status.
async fn finished(s: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(status, 200, "{d}");
        if matches!(
            d["status"].as_str(),
            Some("EXPOSED" | "FAILED" | "ROLLED_BACK" | "CANCELLED" | "DESTROYED")
        ) {
            return d;
        }
        assert!(Instant::now() < deadline, "deployment did not end: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_status(s: &TestServer, id: &str, wanted: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
        if d["status"] == wanted {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "deployment never reached {wanted}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn statuses(d: &Value) -> Vec<String> {
    d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_string())
        .collect()
}

/// GET through the engine's proxy with the app's host name.
async fn through_proxy(s: &TestServer, host: &str, path: &str) -> (u16, String) {
    let proxy = s.state.engine.as_ref().unwrap().proxy_addr;
    let res = s
        .http
        .get(format!("http://{proxy}{path}"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn text(s: &TestServer, path: &str) -> String {
    s.http
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_app_goes_from_registration_to_a_live_url() {
    let s = TestServer::start_engine().await;
    let repo = py_repo(&s.dir.path().join("src/hello"));
    register(&s, "hello", &repo).await;

    // The seed API deploys the default branch to dev.
    let (status, seed) = s
        .post("/platform/deployments", json!({ "service_name": "hello" }))
        .await;
    assert_eq!(status, 202, "{seed}");
    let id = seed["build_id"].as_str().unwrap().to_string();
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    assert_eq!(
        statuses(&d),
        [
            "QUEUED",
            "ANALYZING",
            "BUILDING",
            "PROVISIONING",
            "DEPLOYING",
            "HEALTHY",
            "EXPOSED"
        ]
    );
    let proxy_port = s.state.engine.as_ref().unwrap().proxy_addr.port();
    assert_eq!(
        d["url"],
        format!("http://hello.dev.localhost:{proxy_port}/")
    );
    assert_eq!(d["commit_sha"].as_str().unwrap().len(), 40);
    let (status, body) = through_proxy(&s, "hello.dev.localhost", "/").await;
    assert_eq!((status, body.as_str()), (200, "hello world from v1\n"));
    // Host matching ignores case and the port.
    let (status, _) = through_proxy(&s, &format!("HELLO.dev.localhost:{proxy_port}"), "/").await;
    assert_eq!(status, 200);
    let (status, _) = through_proxy(&s, "nope.dev.localhost", "/").await;
    assert_eq!(status, 404);

    // The seed views of the same record.
    let (_, seed) = s.get(&format!("/platform/deployments/{id}")).await;
    assert_eq!(seed["status"], "SUCCESS");
    let (_, health) = s.get("/platform/services/hello/health").await;
    assert_eq!(health["deployment_status"], "SUCCESS", "{health}");
    assert_eq!(health["pod_count"], 1, "{health}");
    assert!(
        health["memory_usage"].as_str().unwrap().ends_with("Mi"),
        "{health}"
    );
    assert!(
        health["cpu_usage"].as_str().unwrap().ends_with('m'),
        "{health}"
    );

    // Logs: the engine's steps and the app's own first words; the follow stream ends.
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(log.contains("[system] DEPLOYING"), "{log}");
    assert!(log.contains("[stdout] listening on"), "{log}");
    let sse = text(&s, &format!("/api/v1/deployments/{id}/logs?follow=true")).await;
    assert!(sse.contains("event: log"), "{sse}");
    assert!(sse.trim_end().ends_with("data: EXPOSED"), "{sse}");
    let app_log = text(&s, "/api/v1/services/hello/logs?environment=dev").await;
    assert!(app_log.contains("stdout] listening on"), "{app_log}");

    // Runtime history: samples from /proc and the proxy land in the database.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, m) = s
            .get("/api/v1/services/hello/metrics?environment=dev")
            .await;
        assert_eq!(status, 200, "{m}");
        let samples = m["samples"].as_array().unwrap();
        let requests: i64 = samples
            .iter()
            .map(|x| x["requests"].as_i64().unwrap())
            .sum();
        if requests >= 2 {
            assert_eq!(m["instances"], 1, "{m}");
            assert!(
                samples
                    .iter()
                    .all(|x| x["memory_bytes"].as_i64().unwrap() > 0),
                "{m}"
            );
            assert!(
                samples.iter().any(|x| x["latency_p50_ms"].is_number()),
                "{m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no samples with the requests: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let metrics = text(&s, "/metrics").await;
    assert!(
        metrics.contains(
            r#"slipway_deployments_total{service="hello",environment="dev",status="EXPOSED"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("slipway_build_duration_seconds_count 1"),
        "{metrics}"
    );

    // Proxy metrics count the requests.
    let metrics = text(&s, "/metrics").await;
    assert!(
        metrics.contains(
            r#"slipway_proxy_requests_total{service="hello",environment="dev",code_class="2xx"} 2"#
        ),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_app_is_built_with_npm_and_exposed() {
    if Command::new("npm").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "npm is required in CI (install Node.js and npm)"
        );
        eprintln!("skipped: npm is not installed");
        return;
    }
    let s = TestServer::start_engine().await;
    let package = r#"{
  "name": "node-hello",
  "version": "1.0.0",
  "private": true,
  "scripts": { "start": "node server.js" },
  "engines": { "node": ">=18" }
}
"#;
    let lock = r#"{
  "name": "node-hello",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "node-hello", "version": "1.0.0", "engines": { "node": ">=18" } }
  }
}
"#;
    let repo = git_repo(
        &s.dir.path().join("src/node"),
        &[
            ("package.json", package),
            ("package-lock.json", lock),
            ("server.js", NODE_APP),
        ],
    );
    register(&s, "node-hello", &repo).await;
    s.put(
        "/api/v1/services/node-hello/environments/dev/variables",
        json!({ "variables": { "GREETING": "bonjour" } }),
    )
    .await;
    let id = deploy(&s, json!({ "service": "node-hello" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(log.contains("$ npm ci"), "{log}");
    let (status, body) = through_proxy(&s, "node-hello.dev.localhost", "/").await;
    assert_eq!((status, body.as_str()), (200, "node says bonjour\n"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redeploys_under_load_lose_no_request_and_broken_releases_roll_back() {
    let s = TestServer::start_engine().await;
    let repo = py_repo(&s.dir.path().join("src/api"));
    register(&s, "api", &repo).await;
    let first = deploy(&s, json!({ "service": "api", "replicas": 2 })).await;
    assert_eq!(finished(&s, &first).await["status"], "EXPOSED");

    // 16 clients loop through the proxy while the app is redeployed three times.
    let proxy = s.state.engine.as_ref().unwrap().proxy_addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // What the clients have been answered so far, for waiting until the last release answers.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let stop = stop.clone();
        let answered = answered.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut failed, mut seen) =
                (0u32, Vec::new(), std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match http
                    .get(format!("http://{proxy}/"))
                    .header("host", "api.dev.localhost")
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        ok += 1;
                        let text = r.text().await.unwrap_or_default();
                        answered.lock().unwrap().insert(text.clone());
                        seen.insert(text);
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(format!("error {e}")),
                }
            }
            (ok, failed, seen)
        }));
    }
    for greeting in ["one", "two", "three"] {
        let (status, body) = s
            .put(
                "/api/v1/services/api/environments/dev/variables",
                json!({ "variables": { "GREETING": greeting } }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let id = deploy(&s, json!({ "service": "api", "replicas": 2 })).await;
        assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    }
    // The clients keep going until one of them was answered by the last release: stopping them
    // the moment it is EXPOSED could stop them before any request reached it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answered.lock().unwrap().contains("hello three from v1\n") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed, mut seen) = (0, Vec::new(), std::collections::BTreeSet::new());
    for c in clients {
        let (o, f, s) = c.await.unwrap();
        ok += o;
        failed.extend(f);
        seen.extend(s);
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 0);
    assert!(seen.contains("hello three from v1\n"), "{seen:?}");
    let (_, health) = s.get("/platform/services/api/health").await;
    assert_eq!(health["pod_count"], 2, "{health}");

    // A release that exits at start is rolled back by itself; the previous one keeps serving.
    s.put(
        "/api/v1/services/api/environments/dev/variables",
        json!({ "variables": { "GREETING": "three", "CRASH": "1" } }),
    )
    .await;
    let broken = deploy(&s, json!({ "service": "api" })).await;
    let d = finished(&s, &broken).await;
    assert_eq!(d["status"], "ROLLED_BACK", "{d}");
    let st = statuses(&d);
    assert_eq!(
        &st[st.len() - 3..],
        ["FAILED", "ROLLING_BACK", "ROLLED_BACK"],
        "{d}"
    );
    let failed_event = &d["events"][st.len() - 3];
    assert!(
        failed_event["reason"]
            .as_str()
            .unwrap()
            .contains("crash loop"),
        "{failed_event}"
    );
    let log = text(&s, &format!("/api/v1/deployments/{broken}/logs")).await;
    assert!(log.contains("crashing on purpose"), "{log}");
    // Its instances' restarts are counted for the generated CrashLooping alert.
    let metrics = text(&s, "/metrics").await;
    let restarts: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("slipway_instance_restarts_total{service=\"api\",environment=\"dev\"} ")
        })
        .unwrap_or_else(|| panic!("no restart counter for api/dev:\n{metrics}"))
        .parse()
        .expect("a count");
    assert!(restarts >= 1, "{metrics}");
    let (status, body) = through_proxy(&s, "api.dev.localhost", "/").await;
    assert_eq!((status, body.as_str()), (200, "hello three from v1\n"));
    let (_, seed) = s.get(&format!("/platform/deployments/{broken}")).await;
    assert_eq!(seed["status"], "FAILED");

    // Five releases were built; with keep_releases = 1 only the serving one and its rollback
    // target stay on disk.
    let (_, all) = s
        .get("/api/v1/deployments?service=api&status=EXPOSED")
        .await;
    let exposed: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["release_id"].as_str().unwrap().to_string())
        .collect();
    let releases = s.dir.path().join("apps/api/dev/releases");
    let on_disk = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(&releases)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect()
    };
    let expected: std::collections::BTreeSet<String> = exposed[..2].iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_disk() != expected {
        assert!(Instant::now() < deadline, "{:?} != {expected:?}", on_disk());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_redeploys_an_earlier_release_without_rebuilding_and_destroy_stops_it() {
    let s = TestServer::start_engine().await;
    let dir = s.dir.path().join("src/web");
    let repo = py_repo(&dir);
    register(&s, "web", &repo).await;
    let v1 = deploy(&s, json!({ "service": "web" })).await;
    let v1d = finished(&s, &v1).await;
    assert_eq!(v1d["status"], "EXPOSED");
    // Nothing earlier to go back to.
    let (status, body) = s
        .post(&format!("/api/v1/deployments/{v1}/rollback"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");

    let v2_sha = commit(
        &dir,
        &[("app.py", &PY_APP.replace("\"v1\"", "\"v2\""))],
        "v2",
    );
    let v2 = deploy(&s, json!({ "service": "web", "ref": v2_sha })).await;
    let v2d = finished(&s, &v2).await;
    assert_eq!(v2d["status"], "EXPOSED", "{v2d}");
    assert_eq!(v2d["commit_sha"], v2_sha.as_str());
    assert_eq!(
        through_proxy(&s, "web.dev.localhost", "/").await.1,
        "hello world from v2\n"
    );

    let (status, rb) = s
        .post(&format!("/api/v1/deployments/{v2}/rollback"), json!({}))
        .await;
    assert_eq!(status, 202, "{rb}");
    assert_eq!(rb["rollback_of"], v2.as_str());
    assert_eq!(rb["release_id"], v1d["release_id"]);
    let rbd = finished(&s, rb["id"].as_str().unwrap()).await;
    assert_eq!(rbd["status"], "EXPOSED", "{rbd}");
    assert_eq!(
        through_proxy(&s, "web.dev.localhost", "/").await.1,
        "hello world from v1\n"
    );
    let log = text(
        &s,
        &format!("/api/v1/deployments/{}/logs", rb["id"].as_str().unwrap()),
    )
    .await;
    assert!(log.contains("no rebuild"), "{log}");
    assert!(!log.contains("fetched commit"), "{log}");

    // Destroying the serving deployment stops its processes and removes its route.
    let serving = rb["id"].as_str().unwrap().to_string();
    let instances: Vec<_> = s
        .state
        .store
        .list_instances(Some(("web", "dev")))
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.state == "serving")
        .collect();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(instances[0].release_id, v1d["release_id"].as_str().unwrap());
    let pid = instances[0].pid;
    let (status, body) = s.delete(&format!("/api/v1/deployments/{serving}")).await;
    assert_eq!(status, 202, "{body}");
    let gone = wait_status(&s, &serving, "DESTROYED").await;
    assert_eq!(gone["status_before_destroy"], "EXPOSED");
    // It was counted when it ended (EXPOSED); destroying it is not a second end.
    let metrics = text(&s, "/metrics").await;
    assert!(!metrics.contains("status=\"DESTROYED\""), "{metrics}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still runs"
    );
    assert_eq!(through_proxy(&s, "web.dev.localhost", "/").await.0, 404);
    let (_, seed) = s.get(&format!("/platform/deployments/{serving}")).await;
    assert_eq!(seed["status"], "SUCCESS", "DESTROYED keeps the view it had");
    let (_, health) = s.get("/platform/services/web/health").await;
    assert_eq!(health["pod_count"], Value::Null, "{health}");
    let (status, _) = s.delete(&format!("/api/v1/deployments/{serving}")).await;
    assert_eq!(status, 409);

    // Deleting the service takes what it still runs (a new release here) with it.
    let again = deploy(&s, json!({ "service": "web" })).await;
    assert_eq!(finished(&s, &again).await["status"], "EXPOSED");
    let (status, _) = s.delete("/api/v1/services/web").await;
    assert_eq!(status, 204);
    assert_eq!(through_proxy(&s, "web.dev.localhost", "/").await.0, 404);
    assert!(!s.dir.path().join("apps/web").exists());
    assert!(s
        .state
        .store
        .list_instances(Some(("web", "dev")))
        .await
        .unwrap()
        .is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_fails_with_reasons() {
    let s = TestServer::start_engine().await;
    let repo = py_repo(&s.dir.path().join("src/ok"));
    register(&s, "ok", &repo).await;

    let (status, body) = s
        .post("/api/v1/deployments", json!({ "service": "ghost" }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/deployments",
            json!({ "service": "ok", "environment": "mars" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/deployments",
            json!({ "service": "ok", "replicas": 0 }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "replicas");
    let (status, body) = s
        .post(
            "/api/v1/deployments",
            json!({ "service": "ok", "ref": "-bad" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // A ref that does not exist fails at ANALYZING.
    let id = deploy(&s, json!({ "service": "ok", "ref": "no-such-branch" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(statuses(&d), ["QUEUED", "ANALYZING", "FAILED"]);
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("\"no-such-branch\" does not exist"),
        "{d}"
    );

    // A repository nothing can be made of fails with the candidates checked.
    let empty = git_repo(&s.dir.path().join("src/docs"), &[("README.md", "# docs\n")]);
    register(&s, "docs", &empty).await;
    let id = deploy(&s, json!({ "service": "docs" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "FAILED");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("ANALYZING") && reason.to_lowercase().contains("python"),
        "{reason}"
    );

    // A failing build fails with the tail of its output.
    let broken = git_repo(
        &s.dir.path().join("src/broken"),
        &[
            ("app.py", PY_APP),
            (
                "slipway.toml",
                "[build]\nbuild = \"echo compiling; echo 'error: missing semicolon' >&2; exit 3\"\nstart = \"python3 app.py\"\n",
            ),
        ],
    );
    register(&s, "broken", &broken).await;
    let id = deploy(&s, json!({ "service": "broken" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "FAILED", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("BUILDING") && reason.contains("error: missing semicolon"),
        "{reason}"
    );

    // Variables are checked.
    let (status, body) = s
        .put(
            "/api/v1/services/ok/environments/dev/variables",
            json!({ "variables": { "PORT": "1", "9x": "y" } }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    s.stop().await;
}

/// Answers 500 on /health for its first 3 seconds (say, while it warms a cache), then 200; every
/// request is a line of its own output.
const PY_WARMING_APP: &str = r#"import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.monotonic()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        warm = time.monotonic() - START >= 3
        code = 200 if warm or self.path != "/health" else 500
        print("request", self.path, code, flush=True)
        body = b"warm\n" if warm else b"warming\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_that_answers_unhealthy_is_probed_less_and_less_often() {
    let s = TestServer::start_engine().await;
    let repo = git_repo(
        &s.dir.path().join("src/warming"),
        &[
            ("app.py", PY_WARMING_APP),
            ("slipway.toml", "[run]\nhealth_path = \"/health\"\n"),
        ],
    );
    register(&s, "warming", &repo).await;
    let id = deploy(&s, json!({ "service": "warming" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    let unhealthy = log.matches("request /health 500").count();
    // Probing every 20 ms, the 3 s of 500s were ~150 requests (and a minute of them 3,000 lines
    // of the deployment log); with the interval doubling to at most 1 s they are a handful, and
    // the first healthy answer still comes within about a second of the app being ready.
    assert!(
        (1..=12).contains(&unhealthy),
        "{unhealthy} unhealthy probes:\n{log}"
    );
    assert!(log.contains("request /health 200"), "{log}");
    let (status, body) = through_proxy(&s, "warming.dev.localhost", "/").await;
    assert_eq!((status, body.as_str()), (200, "warm\n"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_queueing_and_cancel() {
    let s = TestServer::start_engine().await;
    // A slow build keeps the first deployment busy.
    let repo = git_repo(
        &s.dir.path().join("src/slow"),
        &[
            ("app.py", PY_APP),
            (
                "slipway.toml",
                "[build]\nbuild = \"sleep 30\"\nstart = \"python3 app.py\"\n",
            ),
        ],
    );
    register(&s, "slow", &repo).await;
    let send = |key: &'static str, body: Value| {
        let http = s.http.clone();
        let url = format!("{}/api/v1/deployments", s.url);
        async move {
            let res = http
                .post(url)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let replayed = res.headers().contains_key("idempotent-replayed");
            (
                res.status().as_u16(),
                replayed,
                res.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, replayed, first) = send("k-1", json!({ "service": "slow" })).await;
    assert_eq!((status, replayed), (202, false));
    let (status, replayed, again) = send("k-1", json!({ "service": "slow" })).await;
    assert_eq!((status, replayed), (202, true));
    assert_eq!(again["id"], first["id"]);
    let (status, _, mismatch) = send("k-1", json!({ "service": "slow", "ref": "main" })).await;
    assert_eq!(status, 422, "{mismatch}");
    assert_eq!(mismatch["errors"][0]["field"], "Idempotency-Key");

    let first = first["id"].as_str().unwrap().to_string();
    wait_status(&s, &first, "BUILDING").await;
    // A second deployment of the same service and environment waits its turn.
    let second = deploy(&s, json!({ "service": "slow" })).await;
    let (_, d) = s.get(&format!("/api/v1/deployments/{second}")).await;
    assert_eq!(d["status"], "QUEUED");
    let (status, d) = s
        .post(&format!("/api/v1/deployments/{second}/cancel"), json!({}))
        .await;
    assert_eq!((status, d["status"].as_str()), (202, Some("CANCELLED")));
    // The running one stops at its next heartbeat, its build killed.
    let (status, _) = s
        .post(&format!("/api/v1/deployments/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, 202);
    let d = finished(&s, &first).await;
    assert_eq!(d["status"], "CANCELLED", "{d}");
    let (status, body) = s
        .post(&format!("/api/v1/deployments/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_engine_runs_on_postgres() {
    let Some(db) = slipway_test_support::PgDb::create().await else {
        return;
    };
    let s = TestServer::start_engine_on(db.url.clone()).await;
    let repo = py_repo(&s.dir.path().join("src/pg"));
    register(&s, "pg-app", &repo).await;
    let id = deploy(&s, json!({ "service": "pg-app" })).await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    assert_eq!(
        through_proxy(&s, "pg-app.dev.localhost", "/").await,
        (200, "hello world from v1\n".to_string())
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analyze_plans_a_repository_with_evidence() {
    let s = TestServer::start_engine().await;
    let repo = py_repo(&s.dir.path().join("src/plan"));
    let (status, plan) = s
        .post(
            "/api/v1/analyze",
            json!({ "repo_url": repo.display().to_string(), "ref": "main" }),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    for key in [
        "language",
        "framework",
        "version",
        "install",
        "build",
        "start",
        "port",
        "app_dir",
        "health_path",
        "evidence",
    ] {
        assert!(plan.get(key).is_some(), "{key} missing: {plan}");
    }
    assert_eq!(plan["language"], "python");
    assert_eq!(plan["start"], "python3 app.py");
    assert!(plan["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["source"] == "app.py" && e["line"].is_number()));

    let (status, body) = s
        .post(
            "/api/v1/analyze",
            json!({ "repo_url": repo.display().to_string(), "ref": "nope" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let empty = git_repo(&s.dir.path().join("src/empty"), &[("README.md", "hi\n")]);
    let (status, body) = s
        .post(
            "/api/v1/analyze",
            json!({ "repo_url": empty.display().to_string() }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/analyze",
            json!({ "repo_url": "http://example.com/x", "app_dir": "../x" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_injected_write_only_and_never_logged_or_stored_in_clear() {
    const SECRET: &str = "s3cr3t-value-4242";
    let app = PY_APP
        .replace(
            "VERSION = \"v1\"",
            "VERSION = os.environ.get(\"DB_PASSWORD\", \"none\")\nprint(\"connecting with password\", os.environ.get(\"DB_PASSWORD\"), flush=True)",
        );
    let s = TestServer::start_engine().await;
    let repo = git_repo(&s.dir.path().join("src/vault"), &[("app.py", &app)]);
    register(&s, "vault", &repo).await;
    let path = "/api/v1/services/vault/environments/dev/secrets/DB_PASSWORD";
    let (status, info) = s.put(path, json!({ "value": "first" })).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (info["version"].as_i64(), info["value"].as_str()),
        (Some(1), Some("********"))
    );
    let (status, info) = s.put(path, json!({ "value": SECRET })).await;
    assert_eq!((status, info["version"].as_i64()), (200, Some(2)));
    let (_, list) = s
        .get("/api/v1/services/vault/environments/dev/secrets")
        .await;
    assert_eq!(list[0]["name"], "DB_PASSWORD");
    assert_eq!(list[0]["value"], "********");
    assert!(!list.to_string().contains(SECRET));
    let (status, body) = s
        .put(
            "/api/v1/services/vault/environments/dev/secrets/9bad",
            json!({ "value": "x" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = s
        .put(
            "/api/v1/services/ghost/environments/dev/secrets/A",
            json!({ "value": "x" }),
        )
        .await;
    assert_eq!(status, 404);

    let id = deploy(&s, json!({ "service": "vault" })).await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    // Injected: the app sees it …
    let (_, body) = through_proxy(&s, "vault.dev.localhost", "/").await;
    assert_eq!(body, format!("hello world from {SECRET}\n"));
    // … but it appears in no log …
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(log.contains("connecting with password [redacted]"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    let app_log = text(&s, "/api/v1/services/vault/logs").await;
    assert!(
        app_log.contains("[redacted]") && !app_log.contains(SECRET),
        "{app_log}"
    );
    // … nor in the database, the audit log or the release record.
    let (_, audit) = s.get("/api/v1/audit?action=secret.set").await;
    assert_eq!(audit["total"], 2, "{audit}");
    assert!(!audit.to_string().contains(SECRET));
    let (_, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
    let release = s
        .state
        .store
        .get_release(d["release_id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!serde_json::to_string(&release).unwrap().contains(SECRET));
    for file in ["slipway.db", "slipway.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.dir.path().join(file)) {
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{file} holds the secret in clear"
            );
        }
    }
    let (status, _) = s.delete(path).await;
    assert_eq!(status, 204);
    let (status, _) = s.delete(path).await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repository_that_is_not_there_fails_at_once() {
    let s = TestServer::start_engine().await;
    let gone = s.dir.path().join("src/never-created");
    register(&s, "ghost-repo", &gone).await;
    let id = deploy(&s, json!({ "service": "ghost-repo" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "FAILED", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("not there"), "{d}");
    let job = s.state.store.latest_job_for(&id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1, "a missing repository is not retried");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repositories_on_private_addresses_are_refused() {
    let s = TestServer::start_engine().await;
    for (name, url) in [
        ("meta", "https://169.254.169.254/latest/meta-data.git"),
        ("loop", "https://localhost:9/org/repo.git"),
    ] {
        let (status, body) = s
            .post(
                "/platform/services",
                json!({ "service_name": name, "team_name": "core", "repo_url": url }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = deploy(&s, json!({ "service": name })).await;
        let d = finished(&s, &id).await;
        assert_eq!(d["status"], "FAILED", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("private") && reason.contains("--allow-private-repo-hosts"),
            "{reason}"
        );
    }
    let (status, body) = s
        .post(
            "/api/v1/analyze",
            json!({ "repo_url": "https://127.0.0.1/x/y.git" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("private"), "{body}");
    s.stop().await;
}

const HOSTILE_APP: &str = r#"import json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer
results = {"uid": os.getuid()}
for name in ["slipway.db", "secrets.key"]:
    try:
        open(os.path.join(os.environ["DATA_DIR"], name), "rb").read(1)
        results[name] = "read"
    except Exception as e:
        results[name] = type(e).__name__
try:
    os.listdir(os.environ["DATA_DIR"])
    results["list"] = "listed"
except Exception as e:
    results["list"] = type(e).__name__
pids = []
try:
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
except OSError as e:
    results["fork_error"] = type(e).__name__
results["forks"] = len(pids)
for p in pids:
    os.kill(p, 9)
for p in pids:
    os.waitpid(p, 0)
body = json.dumps(results).encode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// With workload isolation, an app runs as its own uid: it cannot read the database or the
/// secrets key, cannot list the data directory, and a fork bomb stops at its process limit while
/// Slipway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolated_workloads_cannot_read_slipway_data_or_fork_bomb() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("skipped: workload isolation needs root");
        return;
    }
    let s = TestServer::start_engine_with(|c| {
        c.isolation = Some(slipway_engine::local::Isolation {
            max_processes: 64,
            ..Default::default()
        })
    })
    .await;
    let repo = git_repo(
        &s.dir.path().join("src/hostile"),
        &[("app.py", HOSTILE_APP)],
    );
    register(&s, "hostile", &repo).await;
    s.put(
        "/api/v1/services/hostile/environments/dev/variables",
        json!({ "variables": { "DATA_DIR": s.dir.path().display().to_string() } }),
    )
    .await;
    let id = deploy(&s, json!({ "service": "hostile" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let (_, body) = through_proxy(&s, "hostile.dev.localhost", "/").await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert!(r["uid"].as_u64().unwrap() >= 200_000, "{r}");
    assert_eq!(r["slipway.db"], "PermissionError", "{r}");
    assert_eq!(r["secrets.key"], "PermissionError", "{r}");
    assert_eq!(r["list"], "PermissionError", "{r}");
    assert!(r["forks"].as_u64().unwrap() < 64, "{r}");
    assert_eq!(r["fork_error"], "BlockingIOError", "{r}");
    // Slipway kept serving, and a second service gets a uid of its own.
    let (status, _) = s.get("/health").await;
    assert_eq!(status, 200);
    let other = py_repo(&s.dir.path().join("src/other"));
    register(&s, "other", &other).await;
    let id = deploy(&s, json!({ "service": "other" })).await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    let uid_a = s.state.store.service_uid("hostile", 200_000).await.unwrap();
    let uid_b = s.state.store.service_uid("other", 200_000).await.unwrap();
    assert_ne!(uid_a, uid_b);
    s.stop().await;
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A private repository: the deployment fails at once naming the secret to set; with the token set
/// as the secret SLIPWAY_GIT_TOKEN it deploys, and the token reaches neither the app's environment
/// nor any log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_repositories_deploy_with_credentials_kept_from_the_app() {
    const TOKEN: &str = "glpat-s3cr3t-0f-the-cl0ne";
    let s = TestServer::start_engine_with(|c| c.allow_private_repo_hosts = true).await;
    let work = git_repo(
        &s.dir.path().join("src/private"),
        &[(
            "app.py",
            &PY_APP.replace(
                "VERSION = \"v1\"",
                "VERSION = os.environ.get(\"SLIPWAY_GIT_TOKEN\", \"no token\")",
            ),
        )],
    );
    let served = s.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        &served,
        &["init", "-q", "-b", "main", "--bare", "private.git"],
    );
    git(&work, &["push", "-q", "../../served/private.git", "main"]);
    let certs = tempfile::tempdir().unwrap();
    let Some(server) =
        slipway_test_support::GitHttpsServer::start(&served, certs.path(), "oauth2", TOKEN)
    else {
        return;
    };
    // Each test runs in its own process under nextest; the engine's git reads the CA from here.
    std::env::set_var("GIT_SSL_CAINFO", &server.ca_file);
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "private", "team": "core", "repo_url": server.url("private.git")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let id = deploy(&s, json!({ "service": "private" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "FAILED", "{d}");
    assert!(
        d["reason"].as_str().unwrap().contains("SLIPWAY_GIT_TOKEN"),
        "{d}"
    );
    let job = s.state.store.latest_job_for(&id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1, "missing credentials are not retried");

    let secrets = "/api/v1/services/private/environments/dev/secrets";
    for (name, value) in [
        ("SLIPWAY_GIT_USERNAME", "oauth2"),
        ("SLIPWAY_GIT_TOKEN", TOKEN),
    ] {
        let (status, info) = s
            .put(&format!("{secrets}/{name}"), json!({ "value": value }))
            .await;
        assert_eq!((status, info["value"].as_str()), (200, Some("********")));
    }
    let (status, body) = s
        .put(&format!("{secrets}/SLIPWAY_OTHER"), json!({ "value": "x" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("SLIPWAY_GIT_TOKEN"), "{body}");

    let id = deploy(&s, json!({ "service": "private" })).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let (_, body) = through_proxy(&s, "private.dev.localhost", "/").await;
    assert_eq!(body, "hello world from no token\n");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(log.contains("fetched commit"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
    let release = s
        .state
        .store
        .get_release(d_release(&s, &id).await.as_str())
        .await
        .unwrap();
    assert!(!serde_json::to_string(&release).unwrap().contains(TOKEN));
    s.stop().await;
}

async fn d_release(s: &TestServer, id: &str) -> String {
    let (_, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
    d["release_id"].as_str().unwrap().to_string()
}

/// A scaffold pushed to a private HTTPS remote: refused without credentials (the service is still
/// registered), pushed by the retry once the token is set as the service's secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scaffold_reaches_a_private_remote_once_its_token_is_a_secret() {
    const TOKEN: &str = "ghp_scaff0ld-t0ken";
    let s = TestServer::start_engine_with(|c| c.allow_private_repo_hosts = true).await;
    let served = s.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        &served,
        &["init", "-q", "-b", "main", "--bare", "ledger.git"],
    );
    let certs = tempfile::tempdir().unwrap();
    let Some(server) =
        slipway_test_support::GitHttpsServer::start(&served, certs.path(), "x-access-token", TOKEN)
    else {
        return;
    };
    std::env::set_var("GIT_SSL_CAINFO", &server.ca_file);
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "core", "template": "python-api",
                   "scaffold": true, "repo_url": server.url("ledger.git")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scaffold"]["status"], "failed", "{body}");
    let error = body["scaffold"]["error"].as_str().unwrap();
    assert!(
        error.contains("no credentials are set") && error.contains("SLIPWAY_GIT_TOKEN"),
        "{error}"
    );
    let (status, _) = s
        .put(
            "/api/v1/services/ledger/environments/dev/secrets/SLIPWAY_GIT_TOKEN",
            json!({ "value": TOKEN }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, pushed) = s
        .post("/api/v1/services/ledger/scaffold/push", json!(null))
        .await;
    assert_eq!(
        (status, pushed["status"].as_str()),
        (200, Some("pushed")),
        "{pushed}"
    );
    assert_eq!(
        git(&served.join("ledger.git"), &["rev-parse", "main"]).trim(),
        pushed["commit"].as_str().unwrap()
    );
    assert!(!pushed.to_string().contains(TOKEN));
    s.stop().await;
}

const HUNGRY_APP: &str = r#"import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def limits():
    found = {}
    for line in open("/proc/self/cgroup"):
        _, names, path = line.strip().split(":", 2)
        names = names.split(",")
        bases = []
        if "memory" in names:
            bases.append(("/sys/fs/cgroup/memory" + path, ["memory.limit_in_bytes"]))
        if "cpu" in names:
            bases.append(("/sys/fs/cgroup/" + ",".join(names) + path, ["cpu.cfs_quota_us", "cpu.cfs_period_us"]))
        if names == [""]:
            bases.append(("/sys/fs/cgroup" + path, ["memory.max", "cpu.max"]))
        for base, files in bases:
            for f in files:
                try:
                    found[f] = open(os.path.join(base, f)).read().strip()
                except OSError:
                    pass
    return found
hoard = []
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/hog":
            # At most 1 GiB, so that a test whose limit does not hold fails instead of eating the host.
            for _ in range(128):
                hoard.append(bytearray(8 * 1024 * 1024))
            print("allocated 1 GiB: no memory limit held", flush=True)
        body = json.dumps(limits()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Memory and CPU per instance: the request's values reach the instance's control group (the app
/// reads its own limits), going over the memory limit gets the instance killed and restarted with
/// the reason in its log, and asking for more than a deployment may use is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_run_within_their_memory_and_cpu_limits() {
    let s = TestServer::start_engine().await;
    if let Err(why) = &s.state.engine().unwrap().local.cgroups {
        assert!(
            std::env::var_os("CI").is_none(),
            "control groups are not writable under CI: {why}"
        );
        eprintln!("skipped: control groups are not writable here: {why}");
        return;
    }
    let repo = git_repo(&s.dir.path().join("src/hungry"), &[("app.py", HUNGRY_APP)]);
    register(&s, "hungry", &repo).await;

    for (body, field) in [
        (
            json!({"service": "hungry", "resources": {"memory_mb": 1}}),
            "resources.memory_mb",
        ),
        (
            json!({"service": "hungry", "resources": {"cpu_millis": 0}}),
            "resources.cpu_millis",
        ),
    ] {
        let (status, problem) = s.post("/api/v1/deployments", body).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem.to_string().contains(field), "{problem}");
    }
    let (status, problem) = s
        .post(
            "/api/v1/deployments",
            json!({"service": "hungry", "replicas": 2, "resources": {"memory_mb": 6000}}),
        )
        .await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem
            .to_string()
            .contains("max_memory_per_deployment = 8192 MiB"),
        "{problem}"
    );

    let id = deploy(
        &s,
        json!({"service": "hungry", "resources": {"memory_mb": 64, "cpu_millis": 250}}),
    )
    .await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    assert_eq!(d["resources"], json!({"memory_mb": 64, "cpu_millis": 250}));
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(
        log.contains("each instance: 64 MiB of memory, 250m CPU; enforced with cgroup"),
        "{log}"
    );
    let (_, body) = through_proxy(&s, "hungry.dev.localhost", "/").await;
    let limits: Value = serde_json::from_str(&body).unwrap();
    let memory = limits["memory.limit_in_bytes"]
        .as_str()
        .or(limits["memory.max"].as_str());
    assert_eq!(memory, Some("67108864"), "{limits}");
    let cpu = match limits["cpu.max"].as_str() {
        Some(max) => max.to_string(),
        None => format!(
            "{} {}",
            limits["cpu.cfs_quota_us"].as_str().unwrap_or("?"),
            limits["cpu.cfs_period_us"].as_str().unwrap_or("?")
        ),
    };
    assert_eq!(cpu, "25000 100000", "{limits}");

    // Over the limit: the kernel kills it, the supervisor says why and starts it again.
    let _ = through_proxy(&s, "hungry.dev.localhost", "/hog").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let app_log = text(&s, "/api/v1/services/hungry/logs").await;
        if app_log.contains("killed for going over its memory limit (64 MiB)") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no OOM kill reported:\n{app_log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while through_proxy(&s, "hungry.dev.localhost", "/").await.0 != 200 {
        assert!(Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A rollback-free redeploy without resources runs with the defaults, recorded in its plan.
    let id = deploy(&s, json!({"service": "hungry"})).await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    let (_, body) = through_proxy(&s, "hungry.dev.localhost", "/").await;
    let limits: Value = serde_json::from_str(&body).unwrap();
    let memory = limits["memory.limit_in_bytes"]
        .as_str()
        .or(limits["memory.max"].as_str());
    assert_eq!(memory, Some("536870912"), "{limits}");
    s.stop().await;
}

/// Where limits are turned off, or the host has no writable control groups, the deployment log
/// says they are not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unenforced_limits_are_said_in_the_deployment_log() {
    let s = TestServer::start_engine_with(|c| c.resource_limits = false).await;
    let repo = py_repo(&s.dir.path().join("src/loose"));
    register(&s, "loose", &repo).await;
    let id = deploy(&s, json!({"service": "loose"})).await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(
        log.contains(
            "each instance: 512 MiB of memory, 1000m CPU; NOT enforced: resource limits are off"
        ),
        "{log}"
    );
    s.stop().await;
}

/// Without control groups (here: not used), memory is still limited, with `RLIMIT_DATA`: the app's
/// allocations beyond its limit fail (Python raises `MemoryError`) and it keeps serving; the
/// deployment log says CPU is not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_cgroups_memory_is_limited_with_an_rlimit() {
    let s = TestServer::start_engine_with(|c| c.tune_local = Some(|l| l.use_cgroups = false)).await;
    let repo = git_repo(&s.dir.path().join("src/capped"), &[("app.py", HUNGRY_APP)]);
    register(&s, "capped", &repo).await;
    let id = deploy(
        &s,
        json!({"service": "capped", "resources": {"memory_mb": 64}}),
    )
    .await;
    assert_eq!(finished(&s, &id).await["status"], "EXPOSED");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(
        log.contains(
            "each instance: 64 MiB of memory, 1000m CPU; memory enforced with RLIMIT_DATA"
        ),
        "{log}"
    );
    let _ = through_proxy(&s, "capped.dev.localhost", "/hog").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let app_log = text(&s, "/api/v1/services/capped/logs").await;
        if app_log.contains("MemoryError") {
            break;
        }
        assert!(Instant::now() < deadline, "no MemoryError:\n{app_log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = through_proxy(&s, "capped.dev.localhost", "/").await;
    assert_eq!(status, 200, "the app keeps serving");
    s.stop().await;
}

/// A build runs in its own control group, limited to what one deployment may use in all; the
/// repository's `[resources]` in slipway.toml set the instances' limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builds_are_limited_and_the_repository_sets_its_resources() {
    let s = TestServer::start_engine_with(|c| {
        c.max_per_deployment = slipway_core::Resources {
            memory_mb: Some(3072),
            cpu_millis: Some(1500),
        }
    })
    .await;
    if let Err(why) = &s.state.engine().unwrap().local.cgroups {
        assert!(
            std::env::var_os("CI").is_none(),
            "no writable cgroups under CI: {why}"
        );
        eprintln!("skipped: control groups are not writable here: {why}");
        return;
    }
    let probe = "python3 -c \"import re; p=[l.split(':',2)[2].strip() for l in open('/proc/self/cgroup') if l.split(':')[1]=='memory'][0]; print('build memory limit', open('/sys/fs/cgroup/memory'+p+'/memory.limit_in_bytes').read().strip())\"";
    let toml = format!(
        "[build]\nbuild = {}\nstart = \"python3 app.py\"\n\n[resources]\nmemory_mb = 96\ncpu = 0.5\n",
        toml_string(probe)
    );
    let repo = git_repo(
        &s.dir.path().join("src/limited"),
        &[("app.py", HUNGRY_APP), ("slipway.toml", &toml)],
    );
    register(&s, "limited", &repo).await;
    let id = deploy(&s, json!({"service": "limited"})).await;
    let d = finished(&s, &id).await;
    assert_eq!(d["status"], "EXPOSED", "{d}");
    let log = text(&s, &format!("/api/v1/deployments/{id}/logs")).await;
    assert!(
        log.contains("build limits: 3072 MiB of memory, 1500m CPU"),
        "{log}"
    );
    assert!(
        log.contains(&format!("build memory limit {}", 3072u64 * 1024 * 1024)),
        "{log}"
    );
    assert!(
        log.contains("each instance: 96 MiB of memory, 500m CPU; enforced with cgroup"),
        "{log}"
    );
    s.stop().await;
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
