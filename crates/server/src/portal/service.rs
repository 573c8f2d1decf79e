//! `/services/{name}`: ownership and links, environments with their current release and URL, the
//! artifact browser, releases and deployment history, the Deploy form and Rollback buttons, health
//! and runtime charts. `POST /services/{name}/deploy` asks for a deployment;
//! `POST /services/{name}/scaffold/push` retries a scaffold's failed push to its remote.

use super::chart::{self, Series};
use super::session::CsrfForm;
use super::{
    deployment_ctx, page, page_number, see_other, url_with, when, PortalError, PortalResult,
    Session,
};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;
use slipway_core::{
    validate, ArtifactInfo, ArtifactScope, DeploymentQuery, DeploymentSource, DeploymentStatus,
    NewDeployment, ValidationErrors,
};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services/{name}", get(show))
        .route("/services/{name}/deploy", post(deploy))
        .route("/services/{name}/scaffold/push", post(push_scaffold))
        // The API's bundle on a page path, so a signed-in browser can download it.
        .route(
            "/services/{name}/artifacts.tar.gz",
            get(crate::api::services::artifact_bundle),
        )
        // The file viewer's raw link, likewise.
        .route(
            "/services/{name}/artifacts/{*path}",
            get(crate::api::services::get_artifact),
        )
}

const HISTORY_PER_PAGE: u32 = 20;
/// Largest artifact shown inline (bigger ones are downloaded).
const VIEW_LIMIT: usize = 256 * 1024;
/// The runtime history charted.
const CHART_WINDOW_MINUTES: i64 = 60;

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    created: Option<String>,
    scope: Option<String>,
    file: Option<String>,
    env: Option<String>,
    dpage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeployForm {
    #[serde(default)]
    environment: String,
    #[serde(rename = "ref", default)]
    git_ref: String,
    #[serde(default)]
    replicas: String,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PortalResult<Response> {
    render(
        &state,
        &session,
        &name,
        &q,
        StatusCode::OK,
        &DeployForm::default(),
        BTreeMap::new(),
    )
    .await
}

async fn deploy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    CsrfForm { session, form }: CsrfForm<DeployForm>,
) -> PortalResult<Response> {
    // The same rules as POST /api/v1/deployments.
    let service = state.store.get_service(&name).await?;
    let environment = match form.environment.trim() {
        "" => crate::catalog::REGISTRATION_ENV.to_string(),
        e => e.to_string(),
    };
    let git_ref = Some(form.git_ref.trim())
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label("environment", &environment));
    if let Some(r) = &git_ref {
        errors.check(validate::git_ref("ref", r));
    }
    let replicas = match form.replicas.trim() {
        "" => 1,
        r => match r.parse::<u32>() {
            Ok(n) if (1..=16).contains(&n) => n,
            _ => {
                errors.push(slipway_core::FieldError::new(
                    "replicas",
                    "must be a number between 1 and 16",
                ));
                1
            }
        },
    };
    let mut field_errors: BTreeMap<String, String> = BTreeMap::new();
    if errors.0.is_empty() {
        if let Err(crate::error::ApiError::Forbidden(msg)) =
            crate::guard::check_deployment_quota(&state, &service.name).await
        {
            errors
                .0
                .push(slipway_core::FieldError::new("environment", msg));
        }
    }
    if errors.0.is_empty() {
        let created = state
            .store
            .create_deployment(
                NewDeployment {
                    service: service.name.clone(),
                    environment: environment.clone(),
                    source: DeploymentSource::Build { git_ref },
                    trigger: "portal".into(),
                    replicas,
                    resources: Default::default(),
                    idempotency: None,
                },
                session.actor(),
            )
            .await;
        match created {
            Ok((d, _)) => return Ok(see_other(&session, &format!("/deployments/{}", d.id))),
            Err(slipway_store::StoreError::NotFound {
                kind: "environment",
                name,
            }) => {
                field_errors.insert(
                    "environment".into(),
                    format!("no environment named {name:?}; create it first"),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    for e in errors.0 {
        field_errors.entry(e.field).or_insert(e.message);
    }
    render(
        &state,
        &session,
        &name,
        &ShowQuery::default(),
        StatusCode::UNPROCESSABLE_ENTITY,
        &form,
        field_errors,
    )
    .await
}

/// The Retry button of a failed scaffold push: the API's rules (only a service scaffolded with a
/// remote), then back to the service page, which shows the outcome.
async fn push_scaffold(
    State(state): State<AppState>,
    Path(name): Path<String>,
    CsrfForm { session, .. }: CsrfForm<super::deployments::Empty>,
) -> PortalResult<Response> {
    // Pushed or failed, the service page shows the outcome.
    let _outcome = crate::api::services::push_scaffold(
        State(state.clone()),
        crate::RequestActor(session.actor().clone()),
        crate::extract::ValidPath(name.clone()),
    )
    .await
    .map_err(PortalError::from)?;
    Ok(see_other(&session, &format!("/services/{name}#scaffold")))
}

async fn render(
    state: &AppState,
    session: &Session,
    name: &str,
    q: &ShowQuery,
    status: StatusCode,
    deploy_form: &DeployForm,
    deploy_errors: BTreeMap<String, String>,
) -> PortalResult<Response> {
    let store = state.store.as_ref();
    let now = chrono::Utc::now();
    let service = match store.get_service(name).await {
        Ok(s) => s,
        Err(slipway_store::StoreError::NotFound { .. }) => {
            return Err(PortalError::not_found(format!(
                "There is no service named {name:?}."
            )))
        }
        Err(e) => return Err(e.into()),
    };

    // Environments: dev always, others once deployed to.
    let mut envs = Vec::new();
    let mut env_names = Vec::new();
    let mut chart_env = None;
    for env in store.list_environments().await? {
        env_names.push(env.name.clone());
        let latest = store
            .latest_deployment(&service.name, Some(&env.name))
            .await?;
        if latest.is_none() && env.name != crate::catalog::REGISTRATION_ENV {
            continue;
        }
        let current = store
            .list_deployments(&DeploymentQuery {
                service: Some(service.name.clone()),
                environment: Some(env.name.clone()),
                status: Some(DeploymentStatus::Exposed),
                limit: 1,
                ..Default::default()
            })
            .await?
            .items
            .into_iter()
            .next();
        let releases = if latest.is_some() {
            store.list_releases(&service.name, &env.name).await?
        } else {
            vec![]
        };
        let rollback_to = current.as_ref().and_then(|c| {
            let rid = c.release_id.as_deref()?;
            slipway_engine::orchestrator::rollback_target(&releases, rid)
        });
        if chart_env.is_none() && current.is_some() {
            chart_env = Some(env.name.clone());
        }
        envs.push(context! {
            name => env.name,
            latest => latest.as_ref().map(|d| deployment_ctx(d, now)),
            current => current.as_ref().map(|d| deployment_ctx(d, now)),
            rollback_to => rollback_to.map(|r| context! {
                id => r.id, short_id => super::short_id(&r.id),
                commit => r.commit_sha.chars().take(10).collect::<String>(),
            }),
            releases => releases.iter().take(10).map(|r| context! {
                id => r.id, short_id => super::short_id(&r.id),
                commit => r.commit_sha.chars().take(10).collect::<String>(),
                created => when(r.created_at, now),
                healthy => r.healthy_at.map(|t| when(t, now)),
                serving => current.as_ref().and_then(|c| c.release_id.as_deref()) == Some(r.id.as_str()),
                variables => r.variables.len(),
            }).collect::<Vec<_>>(),
        });
    }

    // Deployment history, paged.
    let dpage = page_number(q.dpage.as_deref());
    let history = store
        .list_deployments(&DeploymentQuery {
            service: Some(service.name.clone()),
            limit: HISTORY_PER_PAGE,
            offset: (dpage - 1) * HISTORY_PER_PAGE as u64,
            ..Default::default()
        })
        .await?;
    let base = format!("/services/{}", service.name);
    let hist_link = |p: u64| {
        url_with(
            &base,
            &[("dpage", &if p > 1 { p.to_string() } else { String::new() })],
        ) + "#history"
    };
    let history_pages = history.total.div_ceil(HISTORY_PER_PAGE as u64).max(1);

    // Artifacts: a tree, and the selected file.
    let artifacts = store.list_artifacts(&service.name, None).await?;
    let selected_scope = q
        .scope
        .as_deref()
        .and_then(|s| s.parse::<ArtifactScope>().ok());
    let selected = match (selected_scope, q.file.as_deref()) {
        (Some(scope), Some(path)) => Some((scope, path.to_string())),
        _ => None,
    };
    let viewer = match &selected {
        Some((scope, path)) => match store.get_artifact(&service.name, *scope, path).await {
            Ok(a) => {
                let text = (a.content.len() <= VIEW_LIMIT)
                    .then(|| String::from_utf8(a.content.clone()).ok())
                    .flatten();
                Some(context! {
                    scope => scope.as_str(), path => a.path, size => a.content.len(),
                    sha256 => a.sha256, generator => a.generator,
                    lines => text.as_ref().map(|t| {
                        t.lines()
                            .map(|l| {
                                super::highlight::line(&a.path, l)
                                    .into_iter()
                                    .map(|(c, t)| (c.map(super::highlight::Class::as_str), t))
                                    .collect::<Vec<_>>()
                            })
                            .collect::<Vec<_>>()
                    }),
                    raw => format!("/services/{}/artifacts/{}?scope={}", service.name, a.path, scope.as_str()),
                })
            }
            Err(slipway_store::StoreError::NotFound { .. }) => Some(context! { missing => path }),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let tree = artifact_tree(&service.name, &artifacts, selected.as_ref());

    // Health now, and the runtime history of one environment.
    let health = crate::platform::health(state, &service.name).await?;
    let chart_env = q
        .env
        .clone()
        .filter(|e| env_names.contains(e))
        .or(chart_env)
        .unwrap_or_else(|| crate::catalog::REGISTRATION_ENV.to_string());
    let samples = store
        .runtime_samples(
            &service.name,
            &chart_env,
            now - chrono::TimeDelta::minutes(CHART_WINDOW_MINUTES),
        )
        .await?;
    let charts = charts(&samples);
    let last_sample = samples.last().map(|s| {
        context! {
            instances => s.instances,
            cpu => chart::fmt_num(s.cpu_percent),
            memory_mib => chart::fmt_num(s.memory_bytes as f64 / 1048576.0),
            p50 => s.latency_p50_ms.map(chart::fmt_num),
            p99 => s.latency_p99_ms.map(chart::fmt_num),
            at => when(s.at, now),
        }
    });

    let scaffold = store.scaffold_push(&service.name).await?.map(|p| {
        context! {
            status => p.status.as_str(), remote => p.remote, branch => p.branch,
            commit => p.commit.map(|c| c.chars().take(10).collect::<String>()),
            error => p.error, attempts => p.attempts, updated => when(p.updated_at, now),
        }
    });
    let suggestion = crate::catalog::template_suggestion(state, &service)
        .await?
        .map(|t| context! { template => t.template, reason => t.reason });
    let repo_link = service
        .repo_url
        .starts_with("https://")
        .then(|| service.repo_url.trim_end_matches(".git").to_string());
    Ok(page(
        session,
        status,
        "portal/service.html",
        context! {
            nav => "services",
            created => q.created.is_some(),
            service => context! {
                name => service.name, team => service.team, repo_url => service.repo_url,
                template => service.template, description => service.description,
                registered => when(service.created_at, now),
            },
            repo_link,
            scaffold,
            suggestion,
            envs,
            env_names,
            deploy_form => context! {
                environment => deploy_form.environment, git_ref => deploy_form.git_ref,
                replicas => deploy_form.replicas,
            },
            deploy_errors,
            has_engine => state.engine.is_some(),
            history => history.items.iter().map(|d| deployment_ctx(d, now)).collect::<Vec<_>>(),
            history_total => history.total,
            history_page => dpage, history_pages,
            history_prev => (dpage > 1).then(|| hist_link(dpage - 1)),
            history_next => (dpage < history_pages).then(|| hist_link(dpage + 1)),
            artifacts_count => artifacts.len(),
            tree, viewer,
            bundle => format!("/services/{}/artifacts.tar.gz", service.name),
            health => context! {
                status => health.deployment_status.map(|s| s.as_str()),
                pods => health.pod_count,
                cpu => health.cpu_usage,
                memory => health.memory_usage,
            },
            chart_env, charts, last_sample,
            chart_minutes => CHART_WINDOW_MINUTES,
        },
    ))
}

/// Artifacts as nested directories per scope: `[{scope, children: [{name, dir, href, selected,
/// children}]}]`.
fn artifact_tree(
    service: &str,
    artifacts: &[ArtifactInfo],
    selected: Option<&(ArtifactScope, String)>,
) -> Vec<Value> {
    #[derive(Default)]
    struct Dir {
        dirs: BTreeMap<String, Dir>,
        files: Vec<(String, String, u64)>,
    }
    fn to_values(
        d: &Dir,
        service: &str,
        scope: ArtifactScope,
        selected: Option<&(ArtifactScope, String)>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for (name, sub) in &d.dirs {
            out.push(context! {
                name, dir => true,
                children => to_values(sub, service, scope, selected),
            });
        }
        for (name, path, size) in &d.files {
            let href = url_with(
                &format!("/services/{service}"),
                &[("scope", scope.as_str()), ("file", path)],
            ) + "#viewer";
            let is_selected = selected.is_some_and(|(s, p)| *s == scope && p == path);
            out.push(context! {
                name, dir => false, href, size, selected => is_selected,
            });
        }
        out
    }
    let mut roots: BTreeMap<ArtifactScope, Dir> = BTreeMap::new();
    for a in artifacts {
        let mut dir = roots.entry(a.scope).or_default();
        let mut parts: Vec<&str> = a.path.split('/').collect();
        let file = parts.pop().unwrap_or("");
        for p in parts {
            dir = dir.dirs.entry(p.to_string()).or_default();
        }
        dir.files.push((file.to_string(), a.path.clone(), a.size));
    }
    roots
        .iter()
        .map(|(scope, d)| {
            context! {
                scope => scope.as_str(),
                children => to_values(d, service, *scope, selected),
            }
        })
        .collect()
}

/// Request rate, error rate, p99 latency, CPU and memory, one chart each.
fn charts(samples: &[slipway_core::RuntimeSample]) -> Vec<Value> {
    let mut rate = Vec::new();
    let mut errors = Vec::new();
    let mut latency = Vec::new();
    let mut cpu = Vec::new();
    let mut memory = Vec::new();
    let mut prev: Option<i64> = None;
    for s in samples {
        let t = s.at.timestamp();
        // Counters cover the interval since the previous sample (15 s by default).
        let dt = prev.map(|p| (t - p).max(1)).unwrap_or(15) as f64;
        prev = Some(t);
        rate.push((t, s.requests as f64 / dt));
        errors.push((t, s.errors as f64 / dt));
        if let Some(p99) = s.latency_p99_ms {
            latency.push((t, p99));
        }
        cpu.push((t, s.cpu_percent));
        memory.push((t, s.memory_bytes as f64 / 1048576.0));
    }
    [
        ("Requests", "req/s", rate),
        ("Errors (5xx)", "err/s", errors),
        ("Latency p99", "ms", latency),
        ("CPU", "% of a core", cpu),
        ("Memory", "MiB", memory),
    ]
    .into_iter()
    .map(|(label, unit, points)| {
        let now = points.last().map(|p| chart::fmt_num(p.1));
        let svg = chart::svg(&Series {
            label,
            unit,
            points,
        });
        // The SVG holds only numbers and our own labels, built above.
        context! { label, unit, now, svg => svg.map(Value::from_safe_string) }
    })
    .collect()
}
