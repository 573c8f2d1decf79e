//! `PATCH /api/v1/services/{name}` with a new team or repository regenerates the service's files
//! the way `templates upgrade` does: the files whose stored content is what the generator
//! produced are written anew, while a file a team edited — committed to the platform repository
//! and adopted by the start-up reconciler, or changed in its work tree — is left as it is and
//! reported (response, audit log, commit message). On SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use slipway_test_support::PgDb;
use std::process::Command;

const TF: &str = "terraform/envs/dev/pay/main.tf";
const MANIFEST: &str = "app/templates/kubernetes/generated/pay-deployment.yaml";

fn git_in(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A commit to the platform repository by a person, as a team makes one.
fn commit_as_team(s: &TestServer, path: &str, content: &str, message: &str) {
    std::fs::write(s.repo_path().join(path), content).unwrap();
    git_in(
        &s.repo_path(),
        &[
            "-c",
            "user.name=Dana",
            "-c",
            "user.email=dana@example.com",
            "commit",
            "-q",
            "-am",
            message,
        ],
    );
}

/// How many `service.update` entries the audit log holds for `pay`.
async fn update_count(s: &TestServer) -> Value {
    s.get("/api/v1/audit?object_kind=service&object_name=pay&action=service.update")
        .await
        .1["total"]
        .clone()
}

async fn stored(s: &TestServer, path: &str) -> String {
    let (status, _, text) = s
        .get_text(&format!("/api/v1/services/pay/artifacts/{path}"))
        .await;
    assert_eq!(status, 200, "{path}: {text}");
    text
}

fn conflict<'a>(body: &'a Value, path: &str) -> &'a Value {
    body["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("no conflict for {path}: {body:#}"))
}

async fn edited_files_survive_a_new_team_and_repository(database_url: Option<String>) {
    let s = TestServer::start_with(database_url).await;
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "pay", "team": "core", "repo_url": "https://github.com/org/pay"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    s.state.repo.flush().await.unwrap();

    // A team commits a change to the service's Terraform; the next start adopts it.
    let generated_tf = std::fs::read_to_string(s.repo_path().join(TF)).unwrap();
    assert!(generated_tf.contains("\"core\""), "{generated_tf}");
    let team_tf = format!("{generated_tf}# pay: reserved capacity\n");
    commit_as_team(&s, TF, &team_tf, "pay: reserved capacity");
    let (s, report) = s.restart().await;
    assert_eq!(report.adopted, 1, "{report:?}");
    assert_eq!(stored(&s, TF).await, team_tf);
    // And edits its Kubernetes manifest in the work tree, uncommitted.
    let generated_manifest = std::fs::read_to_string(s.repo_path().join(MANIFEST)).unwrap();
    let team_manifest = format!("# pay: do not scale down\n{generated_manifest}");
    std::fs::write(s.repo_path().join(MANIFEST), &team_manifest).unwrap();
    let head_before = s.git(&["rev-parse", "HEAD"]);

    let (status, body) = s
        .patch("/api/v1/services/pay", json!({"team": "fintech"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["team"], "fintech");
    assert_eq!(body["conflicts"].as_array().unwrap().len(), 2, "{body:#}");
    let tf = conflict(&body, TF);
    assert_eq!(tf["scope"], "platform");
    assert!(
        tf["reason"].as_str().unwrap().contains("edited by a team"),
        "{tf}"
    );
    let diff = tf["diff"].as_str().unwrap();
    assert!(
        diff.starts_with(&format!("--- a/platform/{TF}\n+++ b/platform/{TF}\n")),
        "{diff}"
    );
    assert!(diff.contains("\"fintech\""), "the change it misses: {diff}");
    let manifest = conflict(&body, MANIFEST);
    assert!(
        manifest["reason"]
            .as_str()
            .unwrap()
            .contains("work-tree file differs"),
        "{manifest}"
    );

    // The edited files are as the team left them: database, HEAD and work tree.
    assert_eq!(stored(&s, TF).await, team_tf);
    assert_eq!(s.git(&["show", &format!("HEAD:{TF}")]), team_tf);
    assert_eq!(
        std::fs::read_to_string(s.repo_path().join(TF)).unwrap(),
        team_tf
    );
    assert_eq!(stored(&s, MANIFEST).await, generated_manifest);
    assert_eq!(
        std::fs::read_to_string(s.repo_path().join(MANIFEST)).unwrap(),
        team_manifest
    );
    // The others are regenerated, in one commit that names what it left.
    assert_eq!(s.commit_count(), 3, "register, the team's commit, update");
    assert_ne!(s.git(&["rev-parse", "HEAD"]), head_before);
    let changed = s.git(&["diff", "--name-only", "HEAD~1", "HEAD"]);
    assert!(!changed.is_empty(), "nothing regenerated");
    for path in changed.lines() {
        assert!(path != TF && path != MANIFEST, "{path} was overwritten");
        assert!(
            s.git(&["show", &format!("HEAD:{path}")])
                .contains("fintech"),
            "{path}"
        );
    }
    let message = s.git(&["log", "-1", "--format=%B"]);
    assert!(message.starts_with("update pay\n"), "{message}");
    for path in [TF, MANIFEST] {
        assert!(
            message.contains(&format!("left as edited: platform/{path} (")),
            "{message}"
        );
    }
    // The audit event names them like a template upgrade's.
    let (_, audit) = s.get("/api/v1/audit?action=service.update").await;
    let detail = &audit["items"][0]["detail"];
    assert_eq!(detail["team"], "fintech");
    assert_eq!(
        detail["conflicts"],
        json!([format!("platform/{MANIFEST}"), format!("platform/{TF}")]),
        "{audit:#}"
    );
    assert!(detail["artifacts"].as_u64().unwrap() > 0, "{detail}");
    // The adopted edit is still recorded: `templates upgrade` keeps sparing it.
    assert_eq!(
        s.state
            .store
            .edited_artifacts(Some("pay"))
            .await
            .unwrap()
            .len(),
        1
    );

    // The team gives up the work-tree edit: the next change regenerates that file too.
    std::fs::write(s.repo_path().join(MANIFEST), &generated_manifest).unwrap();
    let (status, body) = s
        .patch(
            "/api/v1/services/pay",
            json!({"repo_url": "https://github.com/org/payments"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let left: Vec<&str> = body["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(left, [TF], "{body:#}");
    assert!(stored(&s, MANIFEST).await.contains("fintech"));
    assert_eq!(stored(&s, TF).await, team_tf);

    // A description alone regenerates nothing.
    let commits = s.commit_count();
    let (status, body) = s
        .patch("/api/v1/services/pay", json!({"description": "money"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conflicts"], json!([]));
    assert_eq!(s.commit_count(), commits);

    // A patch that changes nothing writes nothing: same updated_at, no audit entry.
    let before = s.get("/api/v1/services/pay").await.1;
    let updates = update_count(&s).await;
    assert!(updates.as_u64().is_some_and(|n| n >= 2), "{updates}");
    for same in [
        json!({}),
        json!({"description": "money", "team": "fintech"}),
        json!({"repo_url": before["repo_url"]}),
    ] {
        let (status, body) = s.patch("/api/v1/services/pay", same.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["updated_at"], before["updated_at"], "{same}: {body}");
    }
    assert_eq!(update_count(&s).await, updates);
    assert_eq!(s.commit_count(), commits);

    // A commit made while Slipway runs may hold an edit not adopted yet: refused, nothing changed.
    s.state.repo.flush().await.unwrap();
    commit_as_team(&s, TF, &format!("{team_tf}# more\n"), "pay: more");
    let (status, problem) = s
        .patch("/api/v1/services/pay", json!({"team": "treasury"}))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("restart Slipway"),
        "{problem}"
    );
    assert_eq!(s.get("/api/v1/services/pay").await.1["team"], "fintech");
    s.stop().await;
}

#[tokio::test]
async fn edited_files_survive_a_new_team_and_repository_on_sqlite() {
    edited_files_survive_a_new_team_and_repository(None).await;
}

#[tokio::test]
async fn edited_files_survive_a_new_team_and_repository_on_postgres() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    edited_files_survive_a_new_team_and_repository(Some(db.url.clone())).await;
}
