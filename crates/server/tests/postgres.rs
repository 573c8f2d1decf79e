//! The API on PostgreSQL (run when `TEST_DATABASE_URL` is set; `.ci/run` sets it): the seed flows and
//! the concurrency guarantees that depend on the database.

mod common;

use common::TestServer;
use serde_json::json;
use slipway_test_support::PgDb;

async fn server() -> Option<(PgDb, TestServer)> {
    let db = PgDb::create().await?;
    let s = TestServer::start_with(Some(db.url.clone())).await;
    Some((db, s))
}

#[tokio::test]
async fn seed_flow_on_postgres() {
    let Some((_db, s)) = server().await else {
        return;
    };
    assert_eq!(s.get("/ready").await.1["database"], "postgres");
    let (st, body) = s
        .post("/platform/services", json!({"service_name": "payments", "team_name": "core", "repo_url": "https://github.com/org/payments"}))
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["status"], "REGISTERED");
    assert_eq!(s.commit_count(), 1);
    let (st, d) = s
        .post("/platform/deployments", json!({"service_name": "payments"}))
        .await;
    assert_eq!(st, 202);
    let (_, got) = s
        .get(&format!(
            "/platform/deployments/{}",
            d["build_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got["status"], "QUEUED");
    let (_, h) = s.get("/platform/services/payments/health").await;
    assert_eq!(h["deployment_status"], "QUEUED");
    assert_eq!(h["pod_count"], serde_json::Value::Null);
    let (st, _) = s
        .post("/platform/services", json!({"service_name": "payments", "team_name": "x", "repo_url": "https://github.com/org/x"}))
        .await;
    assert_eq!(st, 409);
    assert_eq!(s.delete("/api/v1/services/payments").await.0, 204);
    assert_eq!(s.commit_count(), 2);
    s.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_on_postgres() {
    let Some((_db, s)) = server().await else {
        return;
    };
    // 50 distinct names, and 50 attempts at one name.
    let bodies = (0..100)
        .map(|i| {
            let name = if i < 50 { format!("svc-{i}") } else { "contested".to_string() };
            json!({"service_name": name, "team_name": "shared-team", "repo_url": "https://github.com/org/x"})
        })
        .collect();
    let codes = s
        .concurrently(reqwest::Method::POST, "/platform/services", bodies)
        .await;
    let (distinct_codes, contested) = codes.split_at(50);
    assert!(
        distinct_codes.iter().all(|c| *c == 201),
        "{distinct_codes:?}"
    );
    let distinct = distinct_codes.len();
    assert_eq!(distinct, 50);
    assert_eq!(
        contested.iter().filter(|c| **c == 201).count(),
        1,
        "{contested:?}"
    );
    assert_eq!(
        contested.iter().filter(|c| **c == 409).count(),
        49,
        "{contested:?}"
    );
    assert_eq!(
        s.get("/platform/services")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        51
    );
    assert_eq!(s.commit_count(), 51);
    s.stop().await;
}

/// Two replicas on one database: each one's platform repository catches up with the other's changes
/// when it reconciles (periodically under `slipway up`).
#[tokio::test]
async fn replicas_reconcile_each_others_changes() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let a = TestServer::start_with(Some(db.url.clone())).await;
    let b = TestServer::start_with(Some(db.url.clone())).await;
    let (st, _) = a
        .post("/platform/services", json!({"service_name": "payments", "team_name": "core", "repo_url": "https://github.com/org/payments"}))
        .await;
    assert_eq!(st, 201);
    assert_eq!(b.commit_count(), 0, "b has not seen it yet");
    let report = slipway_server::reconcile::reconcile_now(&b.state)
        .await
        .unwrap();
    assert!(report.commits >= 1, "{report:?}");
    let files = b.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(
        files.contains("terraform/envs/dev/payments/main.tf"),
        "{files}"
    );
    assert_eq!(
        b.git(&[
            "show",
            "HEAD:app/templates/jenkins/generated/payments.Jenkinsfile"
        ]),
        a.git(&[
            "show",
            "HEAD:app/templates/jenkins/generated/payments.Jenkinsfile"
        ])
    );
    // A deletion through b reaches a the same way.
    assert_eq!(b.delete("/api/v1/services/payments").await.0, 204);
    slipway_server::reconcile::reconcile_now(&a.state)
        .await
        .unwrap();
    let files = a.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(!files.contains("payments"), "{files}");
    a.stop().await;
    b.stop().await;
}
