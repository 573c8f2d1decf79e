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
