//! Start-up repair of the platform repository from the database, the source of truth. After a crash
//! between a database commit and the repository commit, the files the database has and the repository
//! lacks are committed here, one commit per service, in registration order.

use slipway_core::Artifact;
use slipway_platform_repo::{Change, PlatformRepo};
use slipway_store::Store;
use std::collections::BTreeSet;

/// Directories whose content Slipway generates; files there that the database does not know are removed.
const MANAGED_PREFIXES: &[&str] = &["terraform/", "app/templates/"];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub commits: usize,
    pub written: usize,
    pub deleted: usize,
}

pub async fn reconcile(store: &dyn Store, repo: &PlatformRepo) -> anyhow::Result<ReconcileReport> {
    let expected = store.all_platform_artifacts().await?;
    let present = repo.files();
    let mut report = ReconcileReport::default();
    let expected_paths: BTreeSet<&str> = expected.iter().map(|a| a.path.as_str()).collect();

    // Group consecutive artifacts by owner (platform-wide first, then services in registration order).
    let mut groups: Vec<(Option<String>, Vec<&Artifact>)> = Vec::new();
    for a in &expected {
        match groups.last_mut() {
            Some((owner, list)) if *owner == a.service => list.push(a),
            _ => groups.push((a.service.clone(), vec![a])),
        }
    }
    for (owner, list) in groups {
        let any_present = list.iter().any(|a| present.contains_key(&a.path));
        let writes: Vec<(String, Vec<u8>)> = list
            .into_iter()
            .filter(|a| present.get(&a.path) != Some(&PlatformRepo::blob_id(&a.content)))
            .map(|a| (a.path.clone(), a.content.clone()))
            .collect();
        if writes.is_empty() {
            continue;
        }
        let what = owner
            .as_deref()
            .map_or("platform modules".to_string(), |s| format!("service {s}"));
        tracing::warn!(
            files = writes.len(),
            "platform repository is missing changes for {what}; repairing"
        );
        report.written += writes.len();
        let message = match &owner {
            Some(s) => {
                let verb = if any_present { "update" } else { "register" };
                format!("{verb} {s}\n\nreconciled from the database after an interrupted write\n")
            }
            None => "update platform modules\n\nreconciled from the database\n".to_string(),
        };
        let change = Change {
            writes,
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
