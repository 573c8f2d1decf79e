//! `"scaffold": true` at registration: Slipway creates the service's repository under its data
//! directory, registers it with that path as `repo_url`, and the engine deploys it.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_scaffolded_service_gets_a_committed_repository_as_its_repo_url() {
    // AppState::new: --allow-local-repos is off, and a scaffold is accepted all the same.
    let s = TestServer::start().await;
    assert!(!s.state.allow_local_repos);
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dir = s.dir.path().join("scaffolds/ledger");
    assert_eq!(body["repo_url"], dir.to_str().unwrap());
    assert_eq!(body["template"], "python-api");

    assert_eq!(
        git(&dir, &["log", "--format=%an|%s"]).trim(),
        "Slipway|Scaffold ledger from the python-api golden path"
    );
    let files = git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
    for path in [
        "Dockerfile",
        ".dockerignore",
        "README.md",
        "app/__init__.py",
        "tests/test_app.py",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not committed:\n{files}"
        );
    }
    // The Dockerfile is the one registered as the service's artifact.
    let (st, _, dockerfile) = s
        .get_text("/api/v1/services/ledger/artifacts/Dockerfile?scope=service")
        .await;
    assert_eq!(st, 200);
    assert_eq!(dockerfile, git(&dir, &["show", "HEAD:Dockerfile"]));

    // Taken name: 409, and the existing repository is left alone.
    let (status, problem) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(dir.join(".git").is_dir());
    s.stop().await;
}

#[tokio::test]
async fn a_directory_already_there_is_moved_aside_and_replaced() {
    let s = TestServer::start().await;
    // What a crash between creating the repository and registering the service leaves.
    let dir = s.dir.path().join("scaffolds/ledger");
    std::fs::create_dir_all(dir.join("half")).unwrap();
    std::fs::write(dir.join("half/written"), "x").unwrap();
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "go-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!dir.join("half").exists());
    // Moved aside, never deleted: it could be a deleted service's repository with real work.
    let aside: Vec<_> = std::fs::read_dir(s.dir.path().join("scaffolds/.replaced"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].join("half/written").is_file());
    assert!(aside[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("ledger-"));
    let files = git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(files.lines().any(|l| l == "main.go"), "{files}");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    s.stop().await;
}

#[tokio::test]
async fn bad_scaffold_requests_change_nothing() {
    let s = TestServer::start().await;
    for (body, field) in [
        (json!({"name": "a", "team": "t"}), "repo_url"),
        (
            json!({"name": "a", "team": "t", "scaffold": true}),
            "template",
        ),
        (
            json!({"name": "a", "team": "t", "template": "static-site", "scaffold": true}),
            "template",
        ),
        (
            json!({"name": "a", "team": "t", "template": "python-api", "scaffold": true,
                   "repo_url": "https://github.com/o/a"}),
            "repo_url",
        ),
        (
            json!({"name": "A", "team": "t", "template": "python-api", "scaffold": true}),
            "name",
        ),
    ] {
        let (status, problem) = s.post("/api/v1/services", body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {problem}"
        );
    }
    assert!(!s.dir.path().join("scaffolds").join("a").exists());
    let (_, list) = s.get("/api/v1/services").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scaffolded_python_api_deploys_to_exposed_and_serves_health_and_metrics() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 not found");
        return;
    }
    let s = TestServer::start_engine().await;
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let (status, d) = s
        .post("/api/v1/deployments", json!({"service": "ledger"}))
        .await;
    assert_eq!(status, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(180);
    let d: Value = loop {
        let (status, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(status, 200, "{d}");
        if matches!(
            d["status"].as_str(),
            Some("EXPOSED" | "FAILED" | "ROLLED_BACK" | "CANCELLED" | "DESTROYED")
        ) {
            break d;
        }
        assert!(Instant::now() < deadline, "deployment did not end: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d["status"], "EXPOSED", "{d}");

    let proxy = s.state.engine.as_ref().unwrap().proxy_addr;
    let get = |path: &'static str| {
        let http = s.http.clone();
        async move {
            let res = http
                .get(format!("http://{proxy}{path}"))
                .header("host", "ledger.dev.localhost")
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, body) = get("/health").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status": "ok"}"#));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",path="/health",status="200"}"#),
        "{metrics}"
    );
    s.stop().await;
}
