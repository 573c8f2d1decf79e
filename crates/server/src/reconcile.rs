//! Start-up repair of the platform repository from the database, the source of truth. After a crash
//! between a database commit and the repository commit, the files the database has and the repository
//! lacks are committed here, one commit per service, in registration order.
//!
//! A service's file that HEAD holds with other content is either a crash's leftover (an older file
//! Slipway wrote: it is rewritten from the database) or a team's edit committed in the repository
//! by hand (the last commit that changed it has another author than Slipway). A team's edit is not
//! reverted: it is *adopted* — the database takes the team's content and keeps the sha256 of what
//! the generator produced, so `slipway templates upgrade` reports the file as a conflict instead of
//! overwriting it. The shared Terraform modules are platform-owned and always rewritten: change
//! them with `--templates-dir`.

use slipway_core::{Actor, Artifact, ArtifactScope};
use slipway_platform_repo::{Change, ObjectId, PlatformRepo, AUTHOR_EMAIL};
use slipway_store::{ArtifactEdit, Store};
use std::collections::BTreeSet;

/// Directories whose content Slipway generates; files there that the database does not know are removed.
const MANAGED_PREFIXES: &[&str] = &["terraform/", "app/templates/"];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub commits: usize,
    pub written: usize,
    pub deleted: usize,
    /// Files a team changed by a commit in the repository, taken into the database.
    pub adopted: usize,
}

pub async fn reconcile(store: &dyn Store, repo: &PlatformRepo) -> anyhow::Result<ReconcileReport> {
    let present = repo.files();
    let mut report = ReconcileReport::default();

    // Stream the database's platform artifacts (grouped by owner: platform-wide first, then each
    // service in registration order) and keep only what HEAD lacks, so memory stays small however
    // large the catalog is.
    struct Group {
        owner: Option<String>,
        any_present: bool,
        writes: Vec<(String, Vec<u8>)>,
        /// Paths HEAD holds with other content: (path, HEAD's blob, scope).
        differing: Vec<(String, ObjectId, ArtifactScope)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut expected_paths: BTreeSet<String> = BTreeSet::new();
    store
        .visit_platform_artifacts(&mut |a: Artifact| {
            let current = present.get(&a.path);
            if groups.last().is_none_or(|g| g.owner != a.service) {
                // Groups with nothing to repair are dropped as soon as the next one starts.
                if groups
                    .last()
                    .is_some_and(|g| g.writes.is_empty() && g.differing.is_empty())
                {
                    groups.pop();
                }
                groups.push(Group {
                    owner: a.service.clone(),
                    any_present: false,
                    writes: Vec::new(),
                    differing: Vec::new(),
                });
            }
            let Some(group) = groups.last_mut() else {
                return;
            };
            group.any_present |= current.is_some();
            match current {
                Some(id) if *id == PlatformRepo::blob_id(&a.content) => {}
                Some(id) if group.owner.is_some() => {
                    group.differing.push((a.path.clone(), *id, a.scope));
                    group.writes.push((a.path.clone(), a.content));
                }
                _ => group.writes.push((a.path.clone(), a.content)),
            }
            expected_paths.insert(a.path);
        })
        .await?;

    for mut group in groups.into_iter().filter(|g| !g.writes.is_empty()) {
        if let Some(service) = group.owner.clone() {
            for (path, id, scope) in std::mem::take(&mut group.differing) {
                if adopt_if_edited(store, repo, &service, &path, id, scope).await? {
                    group.writes.retain(|(p, _)| *p != path);
                    report.adopted += 1;
                }
            }
            if group.writes.is_empty() {
                continue;
            }
        }
        let what = group
            .owner
            .as_deref()
            .map_or("platform modules".to_string(), |s| format!("service {s}"));
        tracing::warn!(
            files = group.writes.len(),
            "platform repository is missing changes for {what}; repairing"
        );
        report.written += group.writes.len();
        let message = match &group.owner {
            Some(s) => {
                let verb = if group.any_present {
                    "update"
                } else {
                    "register"
                };
                format!("{verb} {s}\n\nreconciled from the database after an interrupted write\n")
            }
            None => "update platform modules\n\nreconciled from the database\n".to_string(),
        };
        let change = Change {
            writes: group.writes,
            deletes: vec![],
            message,
            time_unix: chrono::Utc::now().timestamp(),
        };
        if repo.commit(change).await?.is_some() {
            report.commits += 1;
        }
    }

    let stale: Vec<String> = present
        .keys()
        .filter(|p| {
            MANAGED_PREFIXES.iter().any(|m| p.starts_with(m))
                && !expected_paths.contains(p.as_str())
        })
        .cloned()
        .collect();
    if !stale.is_empty() {
        tracing::warn!(
            files = stale.len(),
            "platform repository has generated files the database does not know; removing"
        );
        report.deleted = stale.len();
        let change = Change {
            writes: vec![],
            deletes: stale,
            message: "remove files of deleted services\n\nreconciled from the database\n"
                .to_string(),
            time_unix: chrono::Utc::now().timestamp(),
        };
        if repo.commit(change).await?.is_some() {
            report.commits += 1;
        }
    }
    Ok(report)
}

/// [`reconcile`] while holding the catalog lock, so that it cannot interleave with a change whose
/// database commit it has not seen yet. Used periodically when several replicas share PostgreSQL:
/// each replica's repository then also receives the changes made through the others.
pub async fn reconcile_now(state: &crate::AppState) -> anyhow::Result<ReconcileReport> {
    let _serial = state.catalog_lock.lock().await;
    reconcile(state.store.as_ref(), &state.repo).await
}

/// Takes HEAD's content of `path` into the database when a person, not Slipway, made the last
/// commit that changed it. `true` when adopted (the file is then left as it is).
async fn adopt_if_edited(
    store: &dyn Store,
    repo: &PlatformRepo,
    service: &str,
    path: &str,
    blob: ObjectId,
    scope: ArtifactScope,
) -> anyhow::Result<bool> {
    let Some((commit, author)) = repo.last_change(path).await? else {
        return Ok(false);
    };
    if author == AUTHOR_EMAIL {
        return Ok(false);
    }
    let content = repo.read_blob(blob).await?;
    tracing::warn!(
        %service, %path, %commit, %author,
        "a commit in the platform repository changed a generated file; keeping it (adopted into \
         the database, `slipway templates upgrade` will not overwrite it)"
    );
    store
        .adopt_artifact_edit(
            ArtifactEdit {
                service: service.to_string(),
                scope,
                path: path.to_string(),
                sha256: sha256_hex(&content),
                content,
                detail: serde_json::json!({ "commit": commit, "author": author }),
            },
            &Actor {
                name: "slipway".into(),
                remote_addr: None,
            },
        )
        .await?;
    Ok(true)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}
