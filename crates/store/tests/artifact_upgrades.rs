//! Conformance of the template-upgrade queries (`edited_artifacts`, `adopt_artifact_edit`,
//! `upgrade_artifacts`): every test runs against SQLite (a temp file) and, when
//! `TEST_DATABASE_URL` names a PostgreSQL server, against a fresh database of its own there.

use serde_json::json;
use sha2::{Digest, Sha256};
use slipway_core::{Actor, Artifact, ArtifactScope, AuditQuery, NewService};
use slipway_store::{ArtifactEdit, ArtifactUpgrade, EditedArtifact, Store, StoreError};
use std::sync::Arc;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let url = format!("sqlite://{}", dir.path().join("slipway.db").display());
                    let store = slipway_store::connect(&url).await.expect("open sqlite store");
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = slipway_test_support::PgDb::create().await else { return };
                    let store = slipway_store::connect(&db.url).await.expect("open postgres store");
                    assert_eq!(store.backend(), "postgres");
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_both_backends!(
    an_adopted_edit_keeps_the_generated_hash,
    an_upgrade_replaces_adds_and_removes_in_one_transaction,
    an_update_regenerates_only_what_it_is_given_and_keeps_an_edit,
    module_upgrades_and_unknown_targets,
);

fn actor() -> Actor {
    Actor {
        name: "admin".into(),
        remote_addr: None,
    }
}

fn sha(content: &str) -> String {
    format!("{:x}", Sha256::digest(content.as_bytes()))
}

fn artifact(service: Option<&str>, path: &str, content: &str, generator: &str) -> Artifact {
    Artifact {
        service: service.map(str::to_string),
        scope: ArtifactScope::Platform,
        path: path.into(),
        content: content.as_bytes().to_vec(),
        sha256: sha(content),
        generator: generator.into(),
    }
}

async fn register(store: &Arc<dyn Store>, name: &str) {
    store
        .register_service(
            NewService {
                name: name.into(),
                team: "core".into(),
                repo_url: format!("https://git.example.com/core/{name}.git"),
                template: "default".into(),
                description: None,
                artifacts: vec![
                    artifact(Some(name), "a.tf", "a v1\n", "gp/default@1"),
                    artifact(Some(name), "b.tf", "b v1\n", "gp/default@1"),
                ],
                platform_files: vec![artifact(None, "modules/m.tf", "m v1\n", "gp/modules@1")],
                scaffold_push: None,
            },
            &actor(),
        )
        .await
        .expect("register");
}

fn edit(service: &str, path: &str, content: &str) -> ArtifactEdit {
    ArtifactEdit {
        service: service.into(),
        scope: ArtifactScope::Platform,
        path: path.into(),
        content: content.as_bytes().to_vec(),
        sha256: sha(content),
        detail: json!({ "commit": "0123abcd" }),
    }
}

async fn actions(store: &Arc<dyn Store>) -> Vec<(String, String)> {
    let page = store
        .list_audit(&AuditQuery::default())
        .await
        .expect("audit");
    page.items
        .into_iter()
        .map(|e| (e.action, e.object_name))
        .collect()
}

async fn an_adopted_edit_keeps_the_generated_hash(store: Arc<dyn Store>) {
    register(&store, "pay").await;
    assert_eq!(store.edited_artifacts(Some("pay")).await.unwrap(), []);

    store
        .adopt_artifact_edit(edit("pay", "a.tf", "a v1 + team\n"), &actor())
        .await
        .expect("adopt");
    let a = store
        .get_artifact("pay", ArtifactScope::Platform, "a.tf")
        .await
        .unwrap();
    assert_eq!(a.content, b"a v1 + team\n");
    assert_eq!(a.sha256, sha("a v1 + team\n"));
    assert_eq!(a.generator, "gp/default@1", "the generator stays recorded");
    let edited = EditedArtifact {
        scope: ArtifactScope::Platform,
        path: "a.tf".into(),
        sha256: sha("a v1 + team\n"),
        generated_sha256: sha("a v1\n"),
    };
    assert_eq!(
        store.edited_artifacts(Some("pay")).await.unwrap(),
        std::slice::from_ref(&edited)
    );

    // A second edit keeps the hash of what the generator produced, not of the first edit.
    store
        .adopt_artifact_edit(edit("pay", "a.tf", "a v1 + more\n"), &actor())
        .await
        .unwrap();
    assert_eq!(
        store.edited_artifacts(Some("pay")).await.unwrap(),
        [EditedArtifact {
            sha256: sha("a v1 + more\n"),
            ..edited
        }]
    );
    // Giving the generated content back is no edit any more.
    store
        .adopt_artifact_edit(edit("pay", "a.tf", "a v1\n"), &actor())
        .await
        .unwrap();
    assert_eq!(store.edited_artifacts(Some("pay")).await.unwrap(), []);

    let err = store
        .adopt_artifact_edit(edit("pay", "nope.tf", "x\n"), &actor())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                kind: "artifact",
                ..
            }
        ),
        "{err:?}"
    );
    let audit = actions(&store).await;
    assert_eq!(
        audit
            .iter()
            .filter(|(a, n)| a == "artifact.adopt" && n == "pay")
            .count(),
        3,
        "{audit:?}"
    );
}

async fn an_upgrade_replaces_adds_and_removes_in_one_transaction(store: Arc<dyn Store>) {
    register(&store, "pay").await;
    register(&store, "ledger").await;
    store
        .adopt_artifact_edit(edit("pay", "a.tf", "a team\n"), &actor())
        .await
        .unwrap();
    store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: Some("pay".into()),
                writes: vec![
                    artifact(Some("pay"), "b.tf", "b v2\n", "gp/default@2"),
                    artifact(Some("pay"), "c.tf", "c v2\n", "gp/default@2"),
                ],
                removes: vec![(ArtifactScope::Platform, "a.tf".into())],
                detail: json!({ "from": ["gp/default@1"], "to": "gp/default@2" }),
            },
            &actor(),
        )
        .await
        .expect("upgrade");
    let after = store.service_artifacts("pay", None).await.unwrap();
    assert_eq!(
        after,
        [
            artifact(Some("pay"), "b.tf", "b v2\n", "gp/default@2"),
            artifact(Some("pay"), "c.tf", "c v2\n", "gp/default@2"),
        ]
    );
    assert_eq!(store.edited_artifacts(Some("pay")).await.unwrap(), []);
    // The other service is untouched.
    let ledger = store.service_artifacts("ledger", None).await.unwrap();
    assert_eq!(ledger[0].content, b"a v1\n");
    assert!(actions(&store)
        .await
        .contains(&("service.upgrade".into(), "pay".into())));

    // Writing over an edited artifact clears its edit: the content is generated again.
    store
        .adopt_artifact_edit(edit("pay", "b.tf", "b team\n"), &actor())
        .await
        .unwrap();
    store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: Some("pay".into()),
                writes: vec![artifact(Some("pay"), "b.tf", "b v3\n", "gp/default@3")],
                removes: vec![],
                detail: json!({}),
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(store.edited_artifacts(Some("pay")).await.unwrap(), []);
}

async fn module_upgrades_and_unknown_targets(store: Arc<dyn Store>) {
    register(&store, "pay").await;
    store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: None,
                writes: vec![artifact(None, "modules/m.tf", "m v2\n", "gp/modules@2")],
                removes: vec![],
                detail: json!({ "to": "gp/modules@2" }),
            },
            &actor(),
        )
        .await
        .expect("modules upgrade");
    assert_eq!(
        store.platform_files().await.unwrap(),
        [artifact(None, "modules/m.tf", "m v2\n", "gp/modules@2")]
    );
    assert!(actions(&store)
        .await
        .contains(&("modules.upgrade".into(), "terraform/modules".into())));

    let err = store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: Some("gone".into()),
                writes: vec![artifact(Some("gone"), "x.tf", "x\n", "gp/default@2")],
                removes: vec![],
                detail: json!({}),
            },
            &actor(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                kind: "service",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        store.service_artifacts("gone", None).await.is_err(),
        "nothing written for an unknown service"
    );
}

/// `update_service` with regenerated artifacts (a PATCH of the team or repository): the files
/// given are written as generated, those removed go, and a file a team edited and the caller left
/// out stays with its recorded edit; the audit event names it.
async fn an_update_regenerates_only_what_it_is_given_and_keeps_an_edit(store: Arc<dyn Store>) {
    use slipway_core::{RegeneratedArtifacts, ServiceUpdate};
    register(&store, "pay").await;
    store
        .adopt_artifact_edit(edit("pay", "b.tf", "b v1 + team\n"), &actor())
        .await
        .expect("adopt");
    let update = ServiceUpdate {
        team: Some("fintech".into()),
        artifacts: Some(RegeneratedArtifacts {
            writes: vec![
                artifact(Some("pay"), "a.tf", "a v1 fintech\n", "gp/default@1"),
                artifact(Some("pay"), "c.tf", "c v1 fintech\n", "gp/default@1"),
            ],
            removes: vec![],
            left_as_edited: vec!["platform/b.tf".into()],
        }),
        ..Default::default()
    };
    let updated = store
        .update_service("pay", update, &actor())
        .await
        .expect("update");
    assert_eq!(updated.team, "fintech");
    let contents: Vec<(String, String)> = store
        .service_artifacts("pay", None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.path, String::from_utf8(a.content).unwrap()))
        .collect();
    assert_eq!(
        contents,
        [
            ("a.tf".to_string(), "a v1 fintech\n".to_string()),
            ("b.tf".to_string(), "b v1 + team\n".to_string()),
            ("c.tf".to_string(), "c v1 fintech\n".to_string()),
        ]
    );
    assert_eq!(
        store.edited_artifacts(Some("pay")).await.unwrap(),
        [EditedArtifact {
            scope: ArtifactScope::Platform,
            path: "b.tf".into(),
            sha256: sha("b v1 + team\n"),
            generated_sha256: sha("b v1\n"),
        }],
        "the edit is still recorded"
    );
    let event = store
        .list_audit(&AuditQuery {
            action: Some("service.update".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(event.detail["artifacts"], 2);
    assert_eq!(event.detail["conflicts"], json!(["platform/b.tf"]));
    assert!(event.detail.get("removed").is_none(), "{}", event.detail);

    // Writing the edited file (the team gave its edit up) clears the edit; a removal deletes.
    let update = ServiceUpdate {
        artifacts: Some(RegeneratedArtifacts {
            writes: vec![artifact(
                Some("pay"),
                "b.tf",
                "b v1 fintech\n",
                "gp/default@1",
            )],
            removes: vec![(ArtifactScope::Platform, "c.tf".into())],
            left_as_edited: vec![],
        }),
        ..Default::default()
    };
    store
        .update_service("pay", update, &actor())
        .await
        .expect("update");
    assert_eq!(store.edited_artifacts(Some("pay")).await.unwrap(), []);
    let paths: Vec<String> = store
        .list_artifacts("pay", None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(paths, ["a.tf", "b.tf"]);
    let event = store
        .list_audit(&AuditQuery {
            action: Some("service.update".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(event.detail["removed"], json!(["platform/c.tf"]));
    assert_eq!(event.detail["conflicts"], json!([]));
}
