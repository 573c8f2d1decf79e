//! Catalog service functions: each validates, renders, writes the store in one transaction and then
//! projects the change into the platform repository before returning. Handlers call exactly one of these.

use crate::error::{ApiError, ApiResult};
use crate::upgrade::UpgradeConflict;
use crate::AppState;
use slipway_core::{
    validate, Actor, Artifact, ArtifactScope, NewService, RegeneratedArtifacts, ScaffoldPush,
    ScaffoldPushStatus, Service, ServiceUpdate, ValidationErrors,
};
use slipway_golden_paths::{render_service, Rendered, ServiceSpec, DEFAULT_TEMPLATE};
use slipway_platform_repo::Change;

/// The environment whose Terraform instantiation is generated at registration.
pub const REGISTRATION_ENV: &str = "dev";
/// Names of the built-in templates (a test keeps it equal to the embedded set). The templates in
/// use, with `--templates-dir` overrides, are `crate::api::templates::templates()?.names()`.
pub const TEMPLATES: &[&str] = &[
    "default",
    "go-api",
    "node-api",
    "python-api",
    "rust-api",
    "static-site",
];

/// A registration request after parsing, before validation.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub team: String,
    pub repo_url: String,
    pub template: Option<String>,
    pub description: Option<String>,
    /// Field names as the caller knows them (the seed API says `service_name`/`team_name`).
    pub fields: RegistrationFields,
}

#[derive(Debug, Clone, Copy)]
pub struct RegistrationFields {
    pub name: &'static str,
    pub team: &'static str,
    pub repo_url: &'static str,
}

pub const SEED_FIELDS: RegistrationFields = RegistrationFields {
    name: "service_name",
    team: "team_name",
    repo_url: "repo_url",
};
pub const API_FIELDS: RegistrationFields = RegistrationFields {
    name: "name",
    team: "team",
    repo_url: "repo_url",
};

/// What a registration produced.
pub struct Registered {
    pub service: Service,
    pub artifacts: Vec<Artifact>,
    /// For a scaffold registered with a remote: where its push stands.
    pub scaffold: Option<ScaffoldPush>,
}

fn render(name: &str, team: &str, repo_url: &str, template: &str) -> ApiResult<Rendered> {
    render_service(
        &ServiceSpec {
            name,
            team,
            repo_url,
            environment: REGISTRATION_ENV,
        },
        template,
    )
    .map_err(ApiError::internal)
}

pub async fn register(state: &AppState, reg: Registration, actor: &Actor) -> ApiResult<Registered> {
    let allow_local = state.allow_local_repos;
    register_checked(state, reg, actor, allow_local, None).await
}

/// Where the repository of a scaffolded service lives: `<data-dir>/scaffolds/<name>`, the data
/// directory being the one that holds the platform repository.
pub fn scaffold_dir(state: &AppState, name: &str) -> std::path::PathBuf {
    let repo = state.repo.path();
    repo.parent().unwrap_or(repo).join("scaffolds").join(name)
}

/// The branch a scaffold is created on and the only one pushed.
pub const SCAFFOLD_BRANCH: &str = "main";
/// How long one push of a scaffold may take.
const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Registers a service whose repository Slipway creates (`"scaffold": true`): the template's app
/// code, Dockerfile and README committed to a new git repository under the data directory. Without
/// a `repo_url`, that path becomes the service's `repo_url` and is accepted whatever
/// `--allow-local-repos` says, because Slipway made it. With one, the URL must pass the rules of
/// any repository URL (and the private-address guard) before anything is created; it becomes the
/// service's `repo_url`, the scaffold's branch is pushed there after the registration, and the
/// local repository stays as the working copy. The push is recorded `pending` by the
/// registration's transaction itself, so a process stopped before the push ends leaves it to the
/// next start ([`resume_scaffold_pushes`]). A failed push leaves the service registered, with
/// the failure in [`Registered::scaffold`] (and the audit log); [`push_scaffold`] retries.
///
/// If the registration fails, the repository is removed again, so a retry starts clean; a
/// directory already there (a crash's leftovers, or a deleted service's repository) is moved to
/// `scaffolds/.replaced/`.
pub async fn register_scaffolded(
    state: &AppState,
    mut reg: Registration,
    actor: &Actor,
) -> ApiResult<Registered> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label(reg.fields.name, &reg.name));
    errors.check(validate::dns_label(reg.fields.team, &reg.team));
    let template = reg.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let templates = crate::api::templates::templates()?;
    let remote = Some(reg.repo_url.clone()).filter(|u| !u.is_empty());
    if let Some(url) = &remote {
        errors.check(validate::repo_source(
            reg.fields.repo_url,
            url,
            state.allow_local_repos,
        ));
    }
    if !templates.can_scaffold(template) {
        let with: Vec<_> = templates
            .names()
            .into_iter()
            .filter(|n| templates.can_scaffold(n))
            .collect();
        errors.push(slipway_core::FieldError::new(
            "template",
            format!(
                "template {template:?} has no scaffold; templates with one: {}",
                with.join(", ")
            ),
        ));
    }
    errors.into_result()?;
    if let Some(url) = &remote {
        // A remote on an internal address is refused now, before anything exists; a host that
        // does not resolve is the push's failure to report (the service is still registered).
        if let Err(e @ slipway_engine::source::SourceError::Refused(_)) =
            slipway_engine::source::check_remote(url, allow_private_hosts(state)).await
        {
            return Err(ApiError::field(reg.fields.repo_url, e.to_string()));
        }
    }
    let mut registered = {
        // Scaffolds are rare: one at a time, so that a second request for the same name sees the
        // first one's service (409) instead of taking its directory for a crash's leftovers.
        static SCAFFOLDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = SCAFFOLDING.lock().await;
        if state.store.get_service(&reg.name).await.is_ok() {
            return Err(ApiError::Conflict(format!(
                "service {:?} already exists",
                reg.name
            )));
        }

        let dir = scaffold_dir(state, &reg.name);
        let local = dir
            .to_str()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("data directory is not UTF-8")))?
            .to_string();
        let repo_url = remote.clone().unwrap_or(local);
        let files = templates
            .scaffold(
                &ServiceSpec {
                    name: &reg.name,
                    team: &reg.team,
                    repo_url: &repo_url,
                    environment: REGISTRATION_ENV,
                },
                template,
            )
            .map_err(ApiError::internal)?;
        let message = format!(
            "Scaffold {} from the {template} golden path\n\nCreated by Slipway for team {}.\n",
            reg.name, reg.team
        );
        let target = dir.clone();
        let name = reg.name.clone();
        let unix_nanos = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        };
        let created = tokio::task::spawn_blocking(move || {
            // A directory without a registered service is what a crash between these two steps
            // leaves behind — or the repository of a deleted service of the same name, with the
            // team's own commits: move it aside (never delete it) and start again from nothing.
            if target.exists() {
                let aside =
                    target
                        .with_file_name(".replaced")
                        .join(format!("{}-{}", name, unix_nanos()));
                std::fs::create_dir_all(aside.parent().unwrap_or(&aside))?;
                std::fs::rename(&target, &aside)?;
            }
            slipway_golden_paths::create_repository(&target, &files, &message)
                .map_err(std::io::Error::other)
        })
        .await
        .map_err(ApiError::internal)?;
        created.map_err(ApiError::internal)?;

        // The push is recorded `pending` in the registration's own transaction: a process
        // stopped before the push ends leaves it for the next start to push
        // ([`resume_scaffold_pushes`]) instead of losing it.
        let pending = remote
            .is_some()
            .then(|| push_record(&reg.name, &repo_url, ScaffoldPushStatus::Pending));
        reg.repo_url = repo_url;
        // A remote is held to the operator's rule on local paths; the scaffold's own path is not.
        let allow_local = remote.is_none() || state.allow_local_repos;
        match register_checked(state, reg, actor, allow_local, pending).await {
            Ok(registered) => registered,
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
                return Err(e);
            }
        }
    };
    if remote.is_some() {
        registered.scaffold = Some(push_scaffold(state, &registered.service, actor).await?);
    }
    Ok(registered)
}

/// Pushes the scaffolds a stopped process left `pending` (see [`Store::pending_scaffold_pushes`]),
/// one at a time, as Slipway: called at start with the list read before the server serves, so a
/// registration made meanwhile pushes its own. Each ends `pushed` or `failed` like any push —
/// recorded, audited, shown on the service — and is logged. A scaffold whose repository is not in
/// this data directory (registered through another replica) stays pending, with a warning naming
/// where to retry it.
///
/// [`Store::pending_scaffold_pushes`]: slipway_store::Store::pending_scaffold_pushes
pub async fn resume_scaffold_pushes(state: &AppState, pending: Vec<ScaffoldPush>) {
    let slipway = Actor {
        name: "slipway".into(),
        remote_addr: None,
    };
    for push in pending {
        let service = match state.store.get_service(&push.service).await {
            Ok(service) => service,
            // Deleted since: its push went with it.
            Err(slipway_store::StoreError::NotFound { .. }) => continue,
            Err(e) => {
                tracing::warn!(service = %push.service, error = %e, "cannot resume a scaffold push");
                continue;
            }
        };
        tracing::warn!(
            service = %push.service, remote = %push.remote,
            "the push of a scaffold did not finish before Slipway stopped; pushing it now"
        );
        match push_scaffold(state, &service, &slipway).await {
            Ok(done) if done.status == ScaffoldPushStatus::Pushed => tracing::info!(
                service = %done.service, remote = %done.remote, commit = ?done.commit,
                "resumed scaffold push done"
            ),
            Ok(done) => tracing::warn!(
                service = %done.service, remote = %done.remote, error = ?done.error,
                "resumed scaffold push failed; POST /api/v1/services/{}/scaffold/push retries it",
                done.service
            ),
            Err(e) => tracing::warn!(
                service = %push.service, remote = %push.remote, error = ?e,
                "a scaffold push stays pending: it cannot be resumed from this data directory \
                 (registered through another replica?); retry it where its repository is"
            ),
        }
    }
}

fn allow_private_hosts(state: &AppState) -> bool {
    state
        .engine
        .as_ref()
        .is_some_and(|e| e.fetch_limits.allow_private_hosts)
}

fn push_record(service: &str, repo_url: &str, status: ScaffoldPushStatus) -> ScaffoldPush {
    ScaffoldPush {
        service: service.to_string(),
        remote: slipway_engine::source::redact_credentials(repo_url),
        branch: SCAFFOLD_BRANCH.to_string(),
        status,
        commit: None,
        error: None,
        attempts: 0,
        updated_at: chrono::Utc::now(),
    }
}

/// Pushes a scaffolded service's repository (under the data directory) to the service's
/// `repo_url`, and records and audits the outcome. A push that fails is not an error of this
/// function: the record says `failed` and why. Pushes are made one at a time per process.
pub async fn push_scaffold(
    state: &AppState,
    service: &Service,
    actor: &Actor,
) -> ApiResult<ScaffoldPush> {
    let dir = scaffold_dir(state, &service.name);
    if !dir.join(".git").is_dir() {
        return Err(ApiError::Refused(format!(
            "the scaffold of service {:?} is no longer at {} (was the service deleted and \
             registered again?); there is nothing to push",
            service.name,
            dir.display()
        )));
    }
    static PUSHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = PUSHING.lock().await;
    // The remote's credentials are the service's repository secrets in the registration
    // environment (SLIPWAY_GIT_TOKEN, …): set them, then retry a push the remote refused.
    let credentials = match state.engine.as_ref() {
        Some(engine) => engine
            .local
            .git_credentials(&service.name, REGISTRATION_ENV)
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
        None => Default::default(),
    };
    let outcome = slipway_engine::source::push_with(
        &dir,
        &service.repo_url,
        SCAFFOLD_BRANCH,
        PUSH_TIMEOUT,
        allow_private_hosts(state),
        &credentials,
    )
    .await;
    let record = match outcome {
        Ok(commit) => ScaffoldPush {
            commit: Some(commit),
            ..push_record(&service.name, &service.repo_url, ScaffoldPushStatus::Pushed)
        },
        Err(e) => {
            tracing::warn!(service = %service.name, error = %e, "scaffold push failed");
            ScaffoldPush {
                error: Some(e.to_string()),
                ..push_record(&service.name, &service.repo_url, ScaffoldPushStatus::Failed)
            }
        }
    };
    Ok(state.store.record_scaffold_push(&record, actor).await?)
}

async fn register_checked(
    state: &AppState,
    reg: Registration,
    actor: &Actor,
    allow_local: bool,
    scaffold_push: Option<ScaffoldPush>,
) -> ApiResult<Registered> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label(reg.fields.name, &reg.name));
    errors.check(validate::dns_label(reg.fields.team, &reg.team));
    errors.check(validate::repo_source(
        reg.fields.repo_url,
        &reg.repo_url,
        allow_local,
    ));
    let template = reg.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let templates = crate::api::templates::templates()?;
    if !templates.contains(template) {
        errors.push(slipway_core::FieldError::new(
            "template",
            format!(
                "unknown template {template:?}; known templates: {}",
                templates.names().join(", ")
            ),
        ));
    }
    if let Some(d) = &reg.description {
        errors.check(validate::free_text("description", d, 1000));
    }
    errors.into_result()?;
    crate::guard::check_service_quota(state, &reg.team).await?;

    let started = std::time::Instant::now();
    let rendered = render(&reg.name, &reg.team, &reg.repo_url, template)?;
    let rendered_at = started.elapsed();
    let _serial = state.catalog_lock.lock().await;
    let service = state
        .store
        .register_service(
            NewService {
                name: reg.name.clone(),
                team: reg.team.clone(),
                repo_url: reg.repo_url.clone(),
                template: template.to_string(),
                description: reg.description.clone(),
                artifacts: rendered.artifacts.clone(),
                platform_files: rendered.platform_files.clone(),
                scaffold_push,
            },
            actor,
        )
        .await?;
    let stored_at = started.elapsed();
    state.crash_point_reached("after-db-commit");

    let mut writes = platform_writes(&rendered.platform_files);
    writes.extend(platform_writes(&rendered.artifacts));
    project(
        state,
        writes,
        vec![],
        format!(
            "register {}\n\nteam: {}\nrepo: {}\nby: {}\n",
            service.name, service.team, service.repo_url, actor.name
        ),
    )
    .await?;
    tracing::debug!(
        service = %service.name,
        render_us = rendered_at.as_micros() as u64,
        store_us = (stored_at - rendered_at).as_micros() as u64,
        commit_us = (started.elapsed() - stored_at).as_micros() as u64,
        "registered"
    );
    Ok(Registered {
        service,
        artifacts: rendered.artifacts,
        scaffold: None,
    })
}

/// A template that fits what the analyzer found in a service's code, for a service on the
/// language-neutral `default` template. Shown on the service's detail and page; never applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TemplateSuggestion {
    /// The template that fits.
    #[schema(example = "python-api")]
    pub template: String,
    /// The language the analyzer found.
    #[schema(example = "python")]
    pub language: String,
    pub framework: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// The file (and line) and rule that decided the language.
    pub evidence: Option<SuggestionEvidence>,
    /// The release whose build plan it comes from: the service's newest.
    pub release_id: String,
    pub environment: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SuggestionEvidence {
    #[schema(example = "app.py")]
    pub source: Option<String>,
    pub line: Option<u32>,
    #[schema(example = "Python manifest or entry script")]
    pub rule: String,
}

/// The template for each language the analyzer names, where one exists.
fn template_for_language(language: &str) -> Option<&'static str> {
    Some(match language {
        "python" => "python-api",
        "node" => "node-api",
        "go" => "go-api",
        "rust" => "rust-api",
        "static" => "static-site",
        _ => return None,
    })
}

/// Suggests a template for a service on `default`, from the build plan of its newest release (the
/// analyzer's result, kept with each release the engine built). `None` before its first such
/// deployment, for a service with another template, or for a language no template covers.
pub async fn template_suggestion(
    state: &AppState,
    service: &Service,
) -> ApiResult<Option<TemplateSuggestion>> {
    if service.template != DEFAULT_TEMPLATE {
        return Ok(None);
    }
    let mut newest: Option<slipway_core::Release> = None;
    for env in state.store.list_environments().await? {
        let releases = state.store.list_releases(&service.name, &env.name).await?;
        if let Some(r) = releases.into_iter().next() {
            if newest.as_ref().is_none_or(|n| r.created_at > n.created_at) {
                newest = Some(r);
            }
        }
    }
    let Some(release) = newest else {
        return Ok(None);
    };
    let Some(language) = release.plan["language"].as_str() else {
        return Ok(None);
    };
    let Some(template) = template_for_language(language) else {
        return Ok(None);
    };
    if !crate::api::templates::templates()?.contains(template) {
        return Ok(None);
    }
    let framework = release.plan["framework"].as_str().map(str::to_string);
    let evidence = release.plan["evidence"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["field"] == "language"))
        .map(|e| SuggestionEvidence {
            source: e["source"].as_str().map(str::to_string),
            line: e["line"].as_u64().and_then(|l| u32::try_from(l).ok()),
            rule: e["rule"].as_str().unwrap_or_default().to_string(),
        });
    let found = match &evidence {
        Some(SuggestionEvidence {
            source: Some(file),
            line,
            rule,
        }) => format!(
            " ({file}{}: {rule})",
            line.map(|l| format!(":{l}")).unwrap_or_default()
        ),
        Some(e) => format!(" ({})", e.rule),
        None => String::new(),
    };
    let short: String = release.commit_sha.chars().take(10).collect();
    let reason = format!(
        "the analyzer found {language}{}{found} at commit {short} deployed to {}; the {template} \
         golden path is made for it (Slipway never switches {}'s template by itself)",
        framework
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default(),
        release.environment,
        service.name
    );
    Ok(Some(TemplateSuggestion {
        template: template.to_string(),
        language: language.to_string(),
        framework,
        reason,
        evidence,
        release_id: release.id,
        environment: release.environment,
        commit: release.commit_sha,
    }))
}

/// Changes to a service through the canonical API.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub team: Option<String>,
    pub repo_url: Option<String>,
    pub description: Option<Option<String>>,
}

/// What an update did.
pub struct Updated {
    pub service: Service,
    /// Files left as they are because a team edited them: a new team or repository regenerates
    /// the others only.
    pub conflicts: Vec<UpgradeConflict>,
}

/// Applies a [`Patch`]. A new team or repository regenerates the service's artifacts the way a
/// template upgrade does: files whose stored content is what the generator produced are written
/// anew, files a team edited (adopted from a commit to the platform repository, or changed in its
/// work tree) are left as they are and reported, with the change they miss as a diff, in
/// [`Updated::conflicts`], the audit event and the commit message.
pub async fn update(
    state: &AppState,
    name: &str,
    patch: Patch,
    actor: &Actor,
) -> ApiResult<Updated> {
    let mut errors = ValidationErrors::default();
    if let Some(t) = &patch.team {
        errors.check(validate::dns_label("team", t));
    }
    if let Some(u) = &patch.repo_url {
        errors.check(validate::repo_source(
            "repo_url",
            u,
            state.allow_local_repos,
        ));
    }
    if let Some(Some(d)) = &patch.description {
        errors.check(validate::free_text("description", d, 1000));
    }
    errors.into_result()?;

    let _serial = state.catalog_lock.lock().await;
    let current = state.store.get_service(name).await?;
    let team = patch.team.clone().unwrap_or_else(|| current.team.clone());
    let repo_url = patch
        .repo_url
        .clone()
        .unwrap_or_else(|| current.repo_url.clone());
    let regenerate = team != current.team || repo_url != current.repo_url;
    let description_changes = patch
        .description
        .as_ref()
        .is_some_and(|d| *d != current.description);
    if !regenerate && !description_changes {
        // Nothing changes: no write, no new updated_at, no audit entry.
        return Ok(Updated {
            service: current,
            conflicts: Vec::new(),
        });
    }
    let comparison = if regenerate {
        if state.repo.ref_moved().map_err(ApiError::internal)? {
            // A commit made there while Slipway runs may hold a team's edit not adopted yet.
            return Err(ApiError::Refused(
                "refs/heads/main of the platform repository moved outside Slipway (a commit made \
                 there while Slipway runs); restart Slipway so that the reconciler adopts the \
                 commit, then change the team or repository"
                    .into(),
            ));
        }
        let rendered = render(name, &team, &repo_url, &current.template)?;
        let stored = state.store.service_artifacts(name, None).await?;
        let edited = crate::upgrade::edited_artifacts(state, Some(name)).await?;
        Some(crate::upgrade::compare(state, stored, rendered.artifacts, &edited).await?)
    } else {
        None
    };
    let service = state
        .store
        .update_service(
            name,
            ServiceUpdate {
                team: patch.team,
                repo_url: patch.repo_url,
                description: patch.description,
                artifacts: comparison.as_ref().map(|c| RegeneratedArtifacts {
                    writes: c.writes.clone(),
                    removes: c.removes.clone(),
                    left_as_edited: c
                        .conflicts
                        .iter()
                        .map(|c| format!("{}/{}", c.scope, c.path))
                        .collect(),
                }),
            },
            actor,
        )
        .await?;
    let Some(comparison) = comparison else {
        return Ok(Updated {
            service,
            conflicts: Vec::new(),
        });
    };
    let mut message = format!("update {name}\n\nteam: {team}\nrepo: {repo_url}\n");
    for c in &comparison.conflicts {
        message.push_str(&format!(
            "left as edited: {}/{} ({})\n",
            c.scope, c.path, c.reason
        ));
    }
    message.push_str(&format!("by: {}\n", actor.name));
    let deletes = comparison
        .removes
        .iter()
        .filter(|(scope, _)| *scope == ArtifactScope::Platform)
        .map(|(_, path)| path.clone())
        .collect();
    project(state, platform_writes(&comparison.writes), deletes, message).await?;
    Ok(Updated {
        service,
        conflicts: comparison.conflicts,
    })
}

pub async fn delete(state: &AppState, name: &str, actor: &Actor) -> ApiResult<()> {
    let _serial = state.catalog_lock.lock().await;
    let artifacts = state
        .store
        .list_artifacts(name, Some(ArtifactScope::Platform))
        .await?;
    state.store.delete_service(name, actor).await?;
    if let Some(engine) = &state.engine {
        // What it ran goes with it: processes, routes, releases and logs.
        engine.local.remove_service(name).await;
    }
    let deletes = artifacts.into_iter().map(|a| a.path).collect();
    project(
        state,
        vec![],
        deletes,
        format!("delete {name}\n\nby: {}\n", actor.name),
    )
    .await
}

fn platform_writes(artifacts: &[Artifact]) -> Vec<(String, Vec<u8>)> {
    artifacts
        .iter()
        .filter(|a| a.scope == ArtifactScope::Platform)
        .map(|a| (a.path.clone(), a.content.clone()))
        .collect()
}

/// Writes a committed catalog change into the platform repository. The database already holds it,
/// so a failure here is repaired by the reconciler; the caller still learns about it.
async fn project(
    state: &AppState,
    writes: Vec<(String, Vec<u8>)>,
    deletes: Vec<String>,
    message: String,
) -> ApiResult<()> {
    let change = Change {
        writes,
        deletes,
        message,
        time_unix: chrono::Utc::now().timestamp(),
    };
    state
        .repo
        .commit(change)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::SavedNotProjected(e.into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_names_are_the_builtin_ones() {
        let builtin = slipway_golden_paths::TemplateSet::builtin()
            .unwrap()
            .names();
        assert_eq!(super::TEMPLATES, builtin.as_slice());
    }
}
