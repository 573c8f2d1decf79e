//! The seed-000 API: `/platform/services`, `/platform/deployments`, `/platform/services/{name}/health`,
//! `/dashboard/{name}` — shapes, files, commits, and bad input that changes nothing.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn payments() -> Value {
    json!({"service_name": "payments", "team_name": "core-platform", "repo_url": "https://github.com/org/payments"})
}

const SEED_FILES: &[&str] = &[
    "app/templates/jenkins/generated/payments.Jenkinsfile",
    "app/templates/kubernetes/generated/payments-deployment.yaml",
    "terraform/envs/dev/_platform/main.tf",
    "terraform/envs/dev/_platform/outputs.tf",
    "terraform/envs/dev/_platform/variables.tf",
    "terraform/envs/dev/payments/main.tf",
    "terraform/envs/dev/payments/outputs.tf",
    "terraform/modules/alb/main.tf",
    "terraform/modules/alb/outputs.tf",
    "terraform/modules/alb/variables.tf",
    "terraform/modules/ecr/main.tf",
    "terraform/modules/ecr/outputs.tf",
    "terraform/modules/ecr/variables.tf",
    "terraform/modules/ecs-cluster/main.tf",
    "terraform/modules/ecs-cluster/outputs.tf",
    "terraform/modules/ecs-cluster/variables.tf",
    "terraform/modules/iam/main.tf",
    "terraform/modules/iam/outputs.tf",
    "terraform/modules/iam/variables.tf",
    "terraform/modules/network/main.tf",
    "terraform/modules/network/outputs.tf",
    "terraform/modules/network/variables.tf",
    "terraform/modules/service/main.tf",
    "terraform/modules/service/outputs.tf",
    "terraform/modules/service/variables.tf",
];

#[tokio::test]
async fn registration_returns_the_seed_body_and_commits_the_files() {
    let s = TestServer::start().await;
    let (status, body) = s.post("/platform/services", payments()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({
            "service_name": "payments",
            "status": "REGISTERED",
            "artifacts": {
                "terraform": "terraform/envs/dev/payments",
                "k8s_manifest": "app/templates/kubernetes/generated",
                "jenkins_pipeline": "app/templates/jenkins/generated"
            }
        })
    );
    // Files and commit exist when the 201 arrives.
    assert_eq!(s.worktree_files(), SEED_FILES);
    assert_eq!(s.commit_count(), 1);
    let log = s.git(&["log", "-1", "--format=%s"]);
    assert_eq!(log.trim(), "register payments");
    let committed = s.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(committed.lines().collect::<Vec<_>>(), SEED_FILES);
    // Repository content equals what the API serves from the database (the service's own
    // files; the modules and the environment's platform stack are platform-wide).
    for path in SEED_FILES
        .iter()
        .filter(|p| !p.starts_with("terraform/modules") && !p.contains("/_platform/"))
    {
        let (st, _, served) = s
            .get_text(&format!("/api/v1/services/payments/artifacts/{path}"))
            .await;
        assert_eq!(st, 200, "{path}");
        assert_eq!(served, s.git(&["show", &format!("HEAD:{path}")]), "{path}");
    }
    s.state.repo.flush().await.unwrap();
    assert_eq!(
        s.git(&["status", "--porcelain"]),
        "",
        "work tree and index match HEAD"
    );

    let (status, list) = s.get("/platform/services").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["service_name"], "payments");
    assert_eq!(list[0]["team_name"], "core-platform");
    assert_eq!(list[0]["repo_url"], "https://github.com/org/payments");
    assert!(list[0]["registered_at"].as_str().unwrap().starts_with("20"));

    // The team was created by the registration.
    let (status, team) = s.get("/api/v1/teams/core-platform").await;
    assert_eq!(status, 200);
    assert_eq!(team["service_count"], 1);
    s.stop().await;
}

#[tokio::test]
async fn duplicate_registration_is_409_and_changes_nothing() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/platform/services", payments()).await.0, 201);
    let before = s.git(&["rev-parse", "HEAD"]);
    let (status, body) = s
        .post(
            "/platform/services",
            json!({"service_name": "payments", "team_name": "other-team", "repo_url": "https://github.com/org/other"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("payments"));
    assert_eq!(s.git(&["rev-parse", "HEAD"]), before);
    assert_eq!(s.get("/api/v1/teams/other-team").await.0, 404);
    s.stop().await;
}

/// Sends one bad registration and checks: 4xx, a problem document naming the field, and nothing written.
async fn rejects(body: Value, field: &str) {
    let s = TestServer::start().await;
    let res = s
        .http
        .post(format!("{}/platform/services", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let (status, problem) = s.post("/platform/services", body.clone()).await;
    assert!((400..500).contains(&status), "{status} for {body}");
    assert_eq!(problem["status"], status, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["field"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "expected an error on {field}, got {problem}"
    );
    assert_nothing_written(&s).await;
    s.stop().await;
}

async fn assert_nothing_written(s: &TestServer) {
    assert_eq!(s.get("/platform/services").await.1, json!([]));
    assert_eq!(s.get("/api/v1/teams").await.1, json!([]));
    assert_eq!(s.commit_count(), 0);
    assert!(s.worktree_files().is_empty(), "{:?}", s.worktree_files());
    let (_, audit) = s.get("/api/v1/audit").await;
    assert_eq!(audit["total"], 0, "{audit}");
}

fn with(field: &str, value: &str) -> Value {
    let mut b = payments();
    b[field] = json!(value);
    b
}

macro_rules! bad_input {
    ($($test:ident: $field:literal = $value:expr;)*) => {$(
        #[tokio::test]
        async fn $test() {
            rejects(with($field, $value), $field).await;
        }
    )*};
}

bad_input! {
    name_with_dot_dot: "service_name" = "../payments";
    name_with_slash: "service_name" = "pay/ments";
    name_uppercase: "service_name" = "Payments";
    name_with_space: "service_name" = "pay ments";
    name_with_quote: "service_name" = "pay\"ments";
    name_with_single_quote: "service_name" = "pay'ments";
    name_with_newline: "service_name" = "pay\nments";
    name_html: "service_name" = "<script>alert(1)</script>";
    name_too_long: "service_name" = &"a".repeat(64);
    name_empty: "service_name" = "";
    team_with_dot_dot: "team_name" = "../core";
    team_with_slash: "team_name" = "core/platform";
    team_uppercase: "team_name" = "Core";
    team_with_space: "team_name" = "core platform";
    team_with_quote: "team_name" = "core\"x";
    team_with_newline: "team_name" = "core\nx";
    team_html: "team_name" = "<b>core</b>";
    team_too_long: "team_name" = &"t".repeat(64);
    team_empty: "team_name" = "";
    repo_http: "repo_url" = "http://github.com/org/payments";
    repo_file: "repo_url" = "file:///etc/passwd";
    repo_ftp: "repo_url" = "ftp://github.com/org/payments";
    repo_local_path: "repo_url" = "/srv/git/payments";
    repo_with_credentials: "repo_url" = "https://user:secret@github.com/org/payments";
    repo_with_token: "repo_url" = "https://ghp_token@github.com/org/payments";
    repo_ssh_password: "repo_url" = "ssh://git:pw@github.com/org/payments";
    repo_option_injection: "repo_url" = "--upload-pack=touch /tmp/x";
    repo_empty: "repo_url" = "";
    repo_with_newline: "repo_url" = "https://github.com/org/payments\nx";
}

#[tokio::test]
async fn name_of_exactly_63_characters_is_accepted() {
    let s = TestServer::start().await;
    let name = format!("a{}", "b".repeat(62));
    let (status, body) = s
        .post("/platform/services", with("service_name", &name))
        .await;
    assert_eq!(status, 201, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn wrong_type_names_the_field() {
    rejects(
        json!({"service_name": 42, "team_name": "core", "repo_url": "https://github.com/o/r"}),
        "service_name",
    )
    .await;
}

#[tokio::test]
async fn unknown_field_is_rejected() {
    let mut b = payments();
    b["template"] = json!("node-api");
    rejects(b, "template").await;
}

#[tokio::test]
async fn missing_field_is_rejected() {
    rejects(
        json!({"service_name": "payments", "team_name": "core"}),
        "repo_url",
    )
    .await;
}

#[tokio::test]
async fn every_missing_field_is_listed() {
    let s = TestServer::start().await;
    let (status, problem) = s
        .post("/platform/services", json!({"service_name": "abc"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["repo_url", "team_name"], "{problem}");
    let (status, problem) = s.post("/platform/services", json!({})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
    assert_eq!(s.get("/platform/services").await.1, json!([]));
    s.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = TestServer::start().await;
    let (status, problem) = s
        .post_raw(
            "/platform/services",
            "application/json",
            "{\"service_name\": \"payments\",",
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{problem}"
    );
    assert_nothing_written(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let s = TestServer::start().await;
    let (status, _) = s
        .post_raw("/platform/services", "text/plain", payments().to_string())
        .await;
    assert_eq!(status, 415);
    assert_nothing_written(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn body_over_one_mib_is_413() {
    let s = TestServer::start().await;
    let big = format!(
        "{{\"service_name\":\"payments\",\"team_name\":\"core\",\"repo_url\":\"https://github.com/o/{}\"}}",
        "a".repeat(1024 * 1024)
    );
    let (status, problem) = s
        .post_raw("/platform/services", "application/json", big)
        .await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["status"], 413);
    assert_nothing_written(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_distinct_registrations_give_fifty_services_and_commits() {
    let s = TestServer::start().await;
    let bodies = (0..50)
        .map(|i| json!({"service_name": format!("svc-{i}"), "team_name": format!("team-{}", i % 5), "repo_url": format!("https://github.com/org/svc-{i}")}))
        .collect();
    let codes = s
        .concurrently(reqwest::Method::POST, "/platform/services", bodies)
        .await;
    assert!(codes.iter().all(|c| *c == 201), "{codes:?}");
    assert_eq!(
        s.get("/platform/services")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        50
    );
    assert_eq!(s.commit_count(), 50);
    let files = s.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(
        files
            .lines()
            .filter(|l| l.ends_with(".Jenkinsfile"))
            .count(),
        50
    );
    assert_eq!(s.get("/api/v1/teams").await.1.as_array().unwrap().len(), 5);
    s.git(&["fsck", "--strict", "--no-progress"]);
    s.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_name_give_one_201() {
    let s = TestServer::start().await;
    let bodies = (0..50)
        .map(|i| json!({"service_name": "payments", "team_name": "core", "repo_url": format!("https://github.com/org/p{i}")}))
        .collect();
    let codes = s
        .concurrently(reqwest::Method::POST, "/platform/services", bodies)
        .await;
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 49, "{codes:?}");
    assert_eq!(s.commit_count(), 1);
    s.stop().await;
}

#[tokio::test]
async fn deployments_are_queued_with_unique_build_ids() {
    let s = TestServer::start().await;
    s.post("/platform/services", payments()).await;
    let (st1, d1) = s
        .post("/platform/deployments", json!({"service_name": "payments"}))
        .await;
    let (st2, d2) = s
        .post("/platform/deployments", json!({"service_name": "payments"}))
        .await;
    assert_eq!((st1, st2), (202, 202));
    assert_eq!(d1["status"], "QUEUED");
    assert_eq!(d1["service_name"], "payments");
    assert_ne!(d1["build_id"], d2["build_id"]);
    let id = d1["build_id"].as_str().unwrap();
    let (status, got) = s.get(&format!("/platform/deployments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["build_id"], id);
    assert_eq!(got["status"], "QUEUED");
    assert_eq!(got["environment"], "dev");
    // The canonical view of the same record.
    let (_, canonical) = s.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(canonical["status"], "QUEUED");
    assert_eq!(canonical["trigger"], "platform-api");
    s.stop().await;
}

#[tokio::test]
async fn deployment_and_health_of_unknown_service_are_404() {
    let s = TestServer::start().await;
    let (status, p) = s
        .post("/platform/deployments", json!({"service_name": "ghost"}))
        .await;
    assert_eq!(status, 404, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("ghost"));
    assert_eq!(s.get("/platform/services/ghost/health").await.0, 404);
    assert_eq!(
        s.get("/platform/deployments/00000000-0000-0000-0000-000000000000")
            .await
            .0,
        404
    );
    let (status, _) = s
        .post("/platform/deployments", json!({"service_name": "../etc"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .post(
            "/platform/deployments",
            json!({"service_name": "ghost", "env": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    s.stop().await;
}

#[tokio::test]
async fn health_reports_real_state_and_null_for_unmeasured_figures() {
    let s = TestServer::start().await;
    s.post("/platform/services", payments()).await;
    let (status, h) = s.get("/platform/services/payments/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        h,
        json!({"service_name": "payments", "last_deployment_time": null, "deployment_status": null,
               "pod_count": null, "cpu_usage": null, "memory_usage": null})
    );
    let (_, d) = s
        .post("/platform/deployments", json!({"service_name": "payments"}))
        .await;
    let (_, h) = s.get("/platform/services/payments/health").await;
    assert_eq!(h["deployment_status"], "QUEUED");
    let (_, canonical) = s
        .get(&format!(
            "/api/v1/deployments/{}",
            d["build_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(h["last_deployment_time"], canonical["created_at"]);
    assert_eq!(h["pod_count"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn dashboard_shows_the_service_and_escapes_user_strings() {
    let s = TestServer::start().await;
    let (st, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "payments", "team": "core-platform", "repo_url": "https://github.com/org/payments",
                   "description": "<script>alert('x')</script> & \"quotes\""}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    s.post("/platform/deployments", json!({"service_name": "payments"}))
        .await;
    let (status, ct, html) = s.get_text("/dashboard/payments").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.contains("core-platform"));
    assert!(html
        .replace("&#x2f;", "/")
        .contains("https://github.com/org/payments"));
    assert!(html.contains("QUEUED"));
    assert!(html.contains("not measured"));
    assert!(!html.contains("<script>alert"), "unescaped user string");
    assert!(html.contains("&lt;script&gt;alert("), "{html}");

    let (status, _, html) = s
        .get_text("/dashboard/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(status, 404);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;"));
    s.stop().await;
}
