//! Golden-path templates over the API: listing, showing, previewing, and choosing one at
//! registration.

mod common;

use common::TestServer;
use serde_json::json;

const TEMPLATES: [&str; 6] = [
    "default",
    "go-api",
    "node-api",
    "python-api",
    "rust-api",
    "static-site",
];

#[tokio::test]
async fn templates_are_listed_and_shown() {
    let s = TestServer::start().await;
    let (status, list) = s.get("/api/v1/templates").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TEMPLATES);
    let (status, node) = s.get("/api/v1/templates/node-api").await;
    assert_eq!(status, 200);
    assert_eq!(node["language"], "typescript");
    assert_eq!(node["health_path"], "/health");
    assert_eq!(
        node["generator"],
        format!("slipway-golden-paths/node-api@{}", node["version"])
    );
    let (status, p) = s.get("/api/v1/templates/cobol-api").await;
    assert_eq!(status, 404);
    assert!(p["detail"].as_str().unwrap().contains("node-api"), "{p}");
    s.stop().await;
}

#[tokio::test]
async fn a_template_renders_a_preview_without_registering() {
    let s = TestServer::start().await;
    let (status, r) = s
        .post(
            "/api/v1/templates/python-api/render",
            json!({"name": "ledger", "team": "finance", "repo_url": "https://github.com/o/ledger"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let files = r["files"].as_array().unwrap();
    assert!(files
        .iter()
        .any(|f| f["path"] == "terraform/envs/dev/ledger/main.tf" && f["scope"] == "platform"));
    assert!(files.iter().all(|f| f["generator"]
        .as_str()
        .unwrap()
        .starts_with("slipway-golden-paths/")));
    assert_eq!(s.get("/api/v1/services/ledger").await.0, 404);
    let (status, p) = s
        .post(
            "/api/v1/templates/python-api/render",
            json!({"name": "Ledger", "team": "finance", "repo_url": "ftp://x"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(
        s.post(
            "/api/v1/templates/nope/render",
            json!({"name": "a", "team": "b", "repo_url": "https://x/y"})
        )
        .await
        .0,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn registration_chooses_a_template_and_records_it_on_every_artifact() {
    let s = TestServer::start().await;
    for (i, template) in TEMPLATES.iter().enumerate() {
        let name = format!("svc-{i}");
        let (status, created) = s
            .post(
                "/api/v1/services",
                json!({"name": name, "team": "core", "repo_url": "https://github.com/o/p", "template": template}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["template"], *template);
        let (_, info) = s.get(&format!("/api/v1/templates/{template}")).await;
        let (_, artifacts) = s.get(&format!("/api/v1/services/{name}/artifacts")).await;
        let artifacts = artifacts.as_array().unwrap();
        assert!(!artifacts.is_empty());
        for a in artifacts {
            assert_eq!(a["generator"], info["generator"], "{a}");
        }
    }
    let (_, page) = s.get("/api/v1/services?template=go-api").await;
    assert_eq!(page["total"], 1);
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_template_is_refused_with_the_known_ones() {
    let s = TestServer::start().await;
    let (status, p) = s
        .post(
            "/api/v1/services",
            json!({"name": "payments", "team": "core", "repo_url": "https://github.com/o/p", "template": "cobol-api"}),
        )
        .await;
    assert_eq!(status, 422);
    let error = &p["errors"][0];
    assert_eq!(error["field"], "template");
    let message = error["message"].as_str().unwrap();
    for t in TEMPLATES {
        assert!(message.contains(t), "{message}");
    }
    assert_eq!(s.get("/api/v1/services/payments").await.0, 404);
    s.stop().await;
}

#[tokio::test]
async fn an_update_regenerates_with_the_service_template() {
    let s = TestServer::start().await;
    let (status, _) = s
        .post(
            "/api/v1/services",
            json!({"name": "web", "team": "core", "repo_url": "https://github.com/o/web", "template": "static-site"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = s
        .patch("/api/v1/services/web", json!({"team": "design"}))
        .await;
    assert_eq!(status, 200);
    let (_, artifacts) = s.get("/api/v1/services/web/artifacts").await;
    for a in artifacts.as_array().unwrap() {
        assert!(
            a["generator"]
                .as_str()
                .unwrap()
                .starts_with("slipway-golden-paths/static-site@"),
            "{a}"
        );
    }
    let (_, _, text) = s
        .get_text("/api/v1/services/web/artifacts/terraform/envs/dev/web/main.tf")
        .await;
    assert!(text.contains("\"design\""), "{text}");
    s.stop().await;
}

/// A small Python app (standard library only) that reads `$PORT`.
const PY_APP: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_its_first_deployment_a_default_service_is_suggested_a_template_never_applied() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: python3 not found");
        return;
    }
    let s = TestServer::start_engine().await;
    let repo = s.dir.path().join("src/greeter");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("app.py"), PY_APP).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "greeter"]);
    let url = repo.to_str().unwrap();
    for (name, template) in [("greeter", "default"), ("typed", "python-api")] {
        let (status, body) = s
            .post(
                "/api/v1/services",
                json!({"name": name, "team": "core", "repo_url": url, "template": template}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        // Nothing analyzed yet: nothing to suggest.
        assert!(body["suggested_template"].is_null(), "{body}");
    }
    let (_, before) = s.get("/api/v1/services/greeter").await;
    assert!(before["suggested_template"].is_null(), "{before}");

    for name in ["greeter", "typed"] {
        let (status, d) = s
            .post("/api/v1/deployments", json!({"service": name}))
            .await;
        assert_eq!(status, 202, "{d}");
        let id = d["id"].as_str().unwrap().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let (_, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
            if d["status"] == "EXPOSED" {
                break;
            }
            assert!(
                !matches!(
                    d["status"].as_str(),
                    Some("FAILED" | "ROLLED_BACK" | "CANCELLED")
                ),
                "{d}"
            );
            assert!(std::time::Instant::now() < deadline, "{d}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    let (status, detail) = s.get("/api/v1/services/greeter").await;
    assert_eq!(status, 200);
    let suggestion = &detail["suggested_template"];
    assert_eq!(suggestion["template"], "python-api", "{detail}");
    assert_eq!(suggestion["language"], "python");
    assert_eq!(suggestion["environment"], "dev");
    assert_eq!(suggestion["evidence"]["source"], "app.py", "{suggestion}");
    let reason = suggestion["reason"].as_str().unwrap();
    assert!(reason.contains("app.py"), "{reason}");
    assert!(reason.contains("python-api"), "{reason}");
    // Shown, never applied: the service and its files keep the default template.
    assert_eq!(detail["template"], "default");
    assert!(detail["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["generator"].as_str().unwrap().contains("/default@")
            || a["generator"].as_str().unwrap().contains("/modules@")));
    // A service that chose a template gets no suggestion.
    let (_, typed) = s.get("/api/v1/services/typed").await;
    assert!(typed["suggested_template"].is_null(), "{typed}");

    // The portal's service page shows it too.
    let page = s
        .http
        .get(format!("{}/services/greeter", s.url))
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Suggested:"), "{page}");
    assert!(
        page.contains(r#"href="/api/v1/templates/python-api""#),
        "{page}"
    );
    s.stop().await;
}
