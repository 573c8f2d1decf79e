//! Template upgrades (`slipway templates upgrade`): regenerate services whose stored artifacts
//! differ from what the active template set renders now, without overwriting a team's edit.
//!
//! An artifact is *edited* when
//! - its stored content differs from what its recorded generator produced (the database keeps
//!   the generated sha256 once the start-up reconciler adopted a team's commit to the platform
//!   repository: `generated_sha256`), or
//! - its platform-repository work-tree file differs from the database (an uncommitted edit), or
//!   is missing.
//!
//! An edited artifact whose rendering changed is a *conflict*: reported with the reason and left
//! as it is, while the rest of its service is upgraded. A file whose new rendering equals what
//! its generator produced before has nothing to upgrade, edited or not. Each service's upgrade is
//! one database transaction and one platform-repository commit, under the catalog lock.

use crate::catalog::REGISTRATION_ENV;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use serde::{Deserialize, Serialize};
use slipway_core::{
    validate, Actor, Artifact, ArtifactScope, Service, ServiceQuery, ValidationErrors,
};
use slipway_golden_paths::{ServiceSpec, TemplateSet};
use slipway_platform_repo::Change;
use slipway_store::{ArtifactUpgrade, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// What to upgrade.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// Report what would change and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only these services (and not the shared modules); every service and the shared modules
    /// when omitted.
    #[schema(example = json!(["payments"]))]
    pub services: Option<Vec<String>>,
}

/// How one file of a service differs between its stored artifact and the active templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    Added,
    Removed,
    Changed,
    /// Same content, produced by a newer template version: only the generator is recorded anew.
    Version,
}

/// One file to upgrade.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileUpgrade {
    pub scope: ArtifactScope,
    pub path: String,
    pub change: FileChange,
    /// Unified diff from the stored artifact to the new rendering (`a/<scope>/<path>`,
    /// `b/<scope>/<path>`); empty for `version`.
    pub diff: String,
}

/// A file left as it is because a team edited it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpgradeConflict {
    pub scope: ArtifactScope,
    pub path: String,
    /// Why the file counts as edited.
    pub reason: String,
    /// Unified diff from the stored artifact to what the active templates render: the change the
    /// team would have to take over by hand.
    pub diff: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeStatus {
    /// The stored artifacts are what the active templates render.
    Current,
    /// Dry run: `files` would be upgraded.
    Outdated,
    /// `files` were upgraded (the database, and a commit in the platform repository when a
    /// platform file changed).
    Upgraded,
    /// Only conflicts: nothing to upgrade without overwriting an edit.
    Conflicted,
    /// Rendering or writing failed; see `error`. Other services go on.
    Failed,
}

/// The upgrade of one service (or of the shared Terraform modules: `service` null).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceUpgrade {
    /// The service; null for the shared Terraform modules.
    pub service: Option<String>,
    pub status: UpgradeStatus,
    /// Generators recorded on the stored artifacts, sorted.
    #[schema(example = json!(["slipway-golden-paths/default@4"]))]
    pub from: Vec<String>,
    /// The generator of the active template.
    #[schema(example = "slipway-golden-paths/default@5")]
    pub to: String,
    pub files: Vec<FileUpgrade>,
    pub conflicts: Vec<UpgradeConflict>,
    /// The platform-repository commit made for it.
    pub commit: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpgradeReport {
    pub dry_run: bool,
    /// The shared modules first (when upgraded), then each service by name.
    pub results: Vec<ServiceUpgrade>,
    /// Services (and modules) with files upgraded — or, in a dry run, to upgrade.
    pub upgraded: usize,
    /// Files left as they are because a team edited them, over all services.
    pub conflicts: usize,
}

/// Compares (and unless `dry_run`, upgrades) the services asked for with the active templates.
pub async fn upgrade(
    state: &AppState,
    req: UpgradeRequest,
    actor: &Actor,
) -> ApiResult<UpgradeReport> {
    let set = crate::api::templates::templates()?;
    let services = match &req.services {
        Some(names) => {
            let mut errors = ValidationErrors::default();
            for name in names {
                errors.check(validate::dns_label("services", name));
            }
            errors.into_result()?;
            let mut services = Vec::new();
            for name in names.iter().collect::<BTreeSet<_>>() {
                services.push(state.store.get_service(name).await?);
            }
            services
        }
        None => all_services(state).await?,
    };
    if !req.dry_run && state.repo.ref_moved().map_err(ApiError::internal)? {
        return Err(ApiError::Refused(
            "refs/heads/main of the platform repository moved outside Slipway (a commit made \
             there while Slipway runs); restart Slipway so that the reconciler adopts the \
             commit, then upgrade"
                .into(),
        ));
    }

    let mut results = Vec::new();
    if req.services.is_none() {
        if let Some(first) = services.first() {
            results.push(upgrade_one(state, set, None, first, req.dry_run, actor).await);
        }
    }
    for service in &services {
        results.push(upgrade_one(state, set, Some(service), service, req.dry_run, actor).await);
    }
    let upgraded = results
        .iter()
        .filter(|r| matches!(r.status, UpgradeStatus::Upgraded | UpgradeStatus::Outdated))
        .count();
    let conflicts = results.iter().map(|r| r.conflicts.len()).sum();
    Ok(UpgradeReport {
        dry_run: req.dry_run,
        results,
        upgraded,
        conflicts,
    })
}

async fn all_services(state: &AppState) -> ApiResult<Vec<Service>> {
    let mut all = Vec::new();
    loop {
        let page = state
            .store
            .list_services(&ServiceQuery {
                limit: slipway_store::MAX_LIMIT,
                offset: all.len() as u64,
                ..ServiceQuery::default()
            })
            .await?;
        let done = page.items.is_empty() || all.len() + page.items.len() >= page.total as usize;
        all.extend(page.items);
        if done {
            return Ok(all);
        }
    }
}

/// One service (`owner` = `Some`) or the shared modules (`owner` = `None`, rendered with
/// `sample`'s values: they do not depend on the service).
async fn upgrade_one(
    state: &AppState,
    set: &TemplateSet,
    owner: Option<&Service>,
    sample: &Service,
    dry_run: bool,
    actor: &Actor,
) -> ServiceUpgrade {
    let mut result = ServiceUpgrade {
        service: owner.map(|s| s.name.clone()),
        status: UpgradeStatus::Current,
        from: Vec::new(),
        to: String::new(),
        files: Vec::new(),
        conflicts: Vec::new(),
        commit: None,
        error: None,
    };
    if let Err(e) = compare_and_write(state, set, owner, sample, dry_run, actor, &mut result).await
    {
        tracing::warn!(service = ?result.service, error = ?e, "template upgrade failed");
        result.status = UpgradeStatus::Failed;
        result.error = Some(match e {
            ApiError::Refused(d) | ApiError::NotFound(d) | ApiError::Conflict(d) => d,
            ApiError::SavedNotProjected(_) => "saved in the database; the platform repository \
                 commit failed and is repaired at the next start (see Slipway's log)"
                .to_string(),
            _ => "internal error; see Slipway's log".to_string(),
        });
    }
    result
}

async fn compare_and_write(
    state: &AppState,
    set: &TemplateSet,
    owner: Option<&Service>,
    sample: &Service,
    dry_run: bool,
    actor: &Actor,
    result: &mut ServiceUpgrade,
) -> ApiResult<()> {
    let template = &sample.template;
    let rendered = set
        .render(
            &ServiceSpec {
                name: &sample.name,
                team: &sample.team,
                repo_url: &sample.repo_url,
                environment: REGISTRATION_ENV,
            },
            template,
        )
        .map_err(|e| ApiError::Refused(format!("cannot render template {template:?}: {e}")))?;
    let name = owner.map(|s| s.name.as_str());
    let new = match name {
        Some(_) => rendered.artifacts,
        None => rendered.platform_files,
    };
    result.to = new.first().map(|a| a.generator.clone()).unwrap_or_default();

    // The catalog lock keeps a registration, update or deletion of this service from
    // interleaving between the comparison, the database write and the commit.
    let _serial = state.catalog_lock.lock().await;
    let stored = match name {
        Some(n) => state.store.service_artifacts(n, None).await?,
        None => state.store.platform_files().await?,
    };
    let edited = edited_artifacts(state, name).await?;
    result.from = stored
        .iter()
        .map(|a| a.generator.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let Comparison {
        files,
        conflicts,
        writes,
        removes,
    } = compare(state, stored, new, &edited).await?;
    result.files = files;
    result.conflicts = conflicts;

    if result.files.is_empty() {
        result.status = if result.conflicts.is_empty() {
            UpgradeStatus::Current
        } else {
            UpgradeStatus::Conflicted
        };
        return Ok(());
    }
    if dry_run {
        result.status = UpgradeStatus::Outdated;
        return Ok(());
    }

    let paths = |files: &[FileUpgrade]| -> Vec<String> {
        files
            .iter()
            .map(|f| format!("{}/{}", f.scope, f.path))
            .collect()
    };
    let detail = serde_json::json!({
        "from": result.from,
        "to": result.to,
        "files": paths(&result.files),
        "conflicts": result.conflicts.iter().map(|c| format!("{}/{}", c.scope, c.path)).collect::<Vec<_>>(),
    });
    let repo_writes: Vec<(String, Vec<u8>)> = writes
        .iter()
        .filter(|a| a.scope == ArtifactScope::Platform)
        .map(|a| (a.path.clone(), a.content.clone()))
        .collect();
    let repo_deletes: Vec<String> = removes
        .iter()
        .filter(|(scope, _)| *scope == ArtifactScope::Platform)
        .map(|(_, path)| path.clone())
        .collect();
    state
        .store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: name.map(str::to_string),
                writes,
                removes,
                detail,
            },
            actor,
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => ApiError::NotFound(format!(
                "service {:?} was deleted during the upgrade",
                name.unwrap_or_default()
            )),
            other => other.into(),
        })?;
    result.status = UpgradeStatus::Upgraded;

    let what = name.map_or("platform modules".to_string(), |n| n.to_string());
    let mut message = format!(
        "upgrade {what}: {} -> {}\n\n",
        result.from.join(", "),
        result.to
    );
    for f in &result.files {
        let change = format!("{:?}", f.change).to_lowercase();
        message.push_str(&format!("{change} {}/{}\n", f.scope, f.path));
    }
    for c in &result.conflicts {
        message.push_str(&format!(
            "left as edited: {}/{} ({})\n",
            c.scope, c.path, c.reason
        ));
    }
    message.push_str(&format!("by: {}\n", actor.name));
    let commit = state
        .repo
        .commit(Change {
            writes: repo_writes,
            deletes: repo_deletes,
            message,
            time_unix: chrono::Utc::now().timestamp(),
        })
        .await
        .map_err(|e| ApiError::SavedNotProjected(e.into()))?;
    result.commit = commit.map(|c| c.to_hex());
    Ok(())
}

/// The artifacts a team edited among those of a service (`None`: the platform-wide files), each
/// with the sha256 of what its generator produced.
pub(crate) async fn edited_artifacts(
    state: &AppState,
    service: Option<&str>,
) -> ApiResult<BTreeMap<(ArtifactScope, String), String>> {
    Ok(state
        .store
        .edited_artifacts(service)
        .await?
        .into_iter()
        .map(|e| ((e.scope, e.path), e.generated_sha256))
        .collect())
}

/// How stored artifacts compare with a new rendering of them.
pub(crate) struct Comparison {
    /// The files to write or remove, with their diffs.
    pub files: Vec<FileUpgrade>,
    /// Files left as they are because a team edited them.
    pub conflicts: Vec<UpgradeConflict>,
    /// New renderings to store (as generated).
    pub writes: Vec<Artifact>,
    /// Artifacts the new rendering no longer has.
    pub removes: Vec<(ArtifactScope, String)>,
}

/// Compares a service's `stored` artifacts (or the platform-wide files) with a `new` rendering:
/// every file whose rendering changed is to be written or removed, unless a team edited it
/// ([`edit_of`]), which makes it a conflict left as it is. A file whose new rendering equals what
/// its generator produced before has nothing to change, edited or not. Used by the template
/// upgrade and by a service's update (a new team or repository), so both spare the same files.
pub(crate) async fn compare(
    state: &AppState,
    stored: Vec<Artifact>,
    new: Vec<Artifact>,
    edited: &BTreeMap<(ArtifactScope, String), String>,
) -> ApiResult<Comparison> {
    let mut files = Vec::new();
    let mut conflicts = Vec::new();
    let key = |a: &Artifact| (a.scope, a.path.clone());
    let stored: BTreeMap<_, _> = stored.into_iter().map(|a| (key(&a), a)).collect();
    let new: BTreeMap<_, _> = new.into_iter().map(|a| (key(&a), a)).collect();
    let mut writes = Vec::new();
    let mut removes = Vec::new();
    for k in stored.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
        let (scope, path) = k;
        let (old, new) = (stored.get(k), new.get(k));
        let (change, diff) = match (old, new) {
            (None, None) => continue,
            (Some(o), Some(n)) => {
                let generated = edited.get(k).unwrap_or(&o.sha256);
                if &n.sha256 == generated {
                    if n.generator == o.generator || edited.contains_key(k) {
                        continue;
                    }
                    (FileChange::Version, String::new())
                } else {
                    (
                        FileChange::Changed,
                        unified_diff(*scope, path, &o.content, &n.content),
                    )
                }
            }
            (None, Some(n)) => (
                FileChange::Added,
                unified_diff(*scope, path, b"", &n.content),
            ),
            (Some(o), None) => (
                FileChange::Removed,
                unified_diff(*scope, path, &o.content, b""),
            ),
        };
        if change != FileChange::Version {
            if let Some(reason) = edit_of(state, k, old, edited.get(k)).await? {
                conflicts.push(UpgradeConflict {
                    scope: *scope,
                    path: path.clone(),
                    reason,
                    diff,
                });
                continue;
            }
        }
        match new {
            Some(n) => writes.push(n.clone()),
            None => removes.push(k.clone()),
        }
        files.push(FileUpgrade {
            scope: *scope,
            path: path.clone(),
            change,
            diff,
        });
    }

    Ok(Comparison {
        files,
        conflicts,
        writes,
        removes,
    })
}

/// Why the stored artifact `old` counts as edited, if it does: its content is not what its
/// generator produced (a team's commit adopted at start), or the platform repository's
/// work-tree file differs from it. For a file only the new rendering has, a work-tree file
/// already at its path that nothing generated.
async fn edit_of(
    state: &AppState,
    (scope, path): &(ArtifactScope, String),
    old: Option<&Artifact>,
    generated_sha256: Option<&String>,
) -> ApiResult<Option<String>> {
    if let (Some(old), Some(_)) = (old, generated_sha256) {
        return Ok(Some(format!(
            "edited by a team: its content differs from what {} generated (a commit to the \
             platform repository, adopted at start)",
            old.generator
        )));
    }
    if *scope != ArtifactScope::Platform {
        return Ok(None);
    }
    let on_disk = state
        .repo
        .work_tree_file(path)
        .await
        .map_err(ApiError::internal)?;
    Ok(match (old, on_disk) {
        (Some(old), Some(disk)) if disk != old.content => Some(
            "the platform repository's work-tree file differs from the database (an \
             uncommitted edit)"
                .to_string(),
        ),
        (Some(_), None) => {
            Some("the platform repository's work-tree file is missing or not a regular file".into())
        }
        (None, Some(_)) => Some(
            "a file the database does not know is already at this path in the platform \
             repository's work tree"
                .into(),
        ),
        _ => None,
    })
}

/// A unified diff with three lines of context; non-UTF-8 content is named, not shown.
pub fn unified_diff(scope: ArtifactScope, path: &str, old: &[u8], new: &[u8]) -> String {
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return format!("Binary files a/{scope}/{path} and b/{scope}/{path} differ\n");
    };
    let diff = similar::TextDiff::from_lines(old, new);
    let old_name = if old.is_empty() {
        "/dev/null".to_string()
    } else {
        format!("a/{scope}/{path}")
    };
    let new_name = if new.is_empty() {
        "/dev/null".to_string()
    } else {
        format!("b/{scope}/{path}")
    };
    diff.unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_unified_with_context() {
        let diff = unified_diff(
            ArtifactScope::Platform,
            "terraform/envs/dev/pay/main.tf",
            b"a\nb\nc\nd\ne\nf\ng\nh\n",
            b"a\nb\nc\nd\nE\nf\ng\nh\n",
        );
        assert_eq!(
            diff,
            "--- a/platform/terraform/envs/dev/pay/main.tf\n\
             +++ b/platform/terraform/envs/dev/pay/main.tf\n\
             @@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        let added = unified_diff(ArtifactScope::Service, "Dockerfile", b"", b"FROM x\n");
        assert!(
            added.starts_with("--- /dev/null\n+++ b/service/Dockerfile\n"),
            "{added}"
        );
        let binary = unified_diff(ArtifactScope::Service, "x.bin", b"\xff", b"");
        assert_eq!(
            binary,
            "Binary files a/service/x.bin and b/service/x.bin differ\n"
        );
    }
}
