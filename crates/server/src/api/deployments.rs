use super::{PageOf, Paging};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath, ValidQuery};
use crate::{AppState, RequestActor};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slipway_core::{
    validate, Deployment, DeploymentEvent, DeploymentQuery, DeploymentSource, DeploymentStatus,
    FieldError, IdempotencyKey, LogLine, NewDeployment, ValidationErrors,
};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route(
            "/api/v1/deployments/{id}",
            get(get_deployment).delete(destroy_deployment),
        )
        .route("/api/v1/deployments/{id}/logs", get(deployment_logs))
        .route(
            "/api/v1/deployments/{id}/rollback",
            post(rollback_deployment),
        )
        .route("/api/v1/deployments/{id}/cancel", post(cancel_deployment))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentCreate {
    /// A registered service. Give `repo_url` instead for a one-off app that registers itself.
    #[schema(example = "payments")]
    pub service: Option<String>,
    /// A repository to deploy as a one-off app: the service is registered (team `adhoc` unless
    /// `team` is given) under `service`, or under the repository's name, if it does not exist.
    pub repo_url: Option<String>,
    /// Team of a one-off app registered by this request.
    pub team: Option<String>,
    /// Defaults to `dev`.
    #[schema(example = "dev")]
    pub environment: Option<String>,
    /// Branch, tag or commit; the repository's default branch when omitted.
    #[serde(rename = "ref")]
    #[schema(example = "main")]
    pub git_ref: Option<String>,
    /// Instances to run (1 by default).
    pub replicas: Option<u32>,
    /// Memory and CPU per instance; unset values come from the repository's plan (`slipway.toml`
    /// `[resources]`, `score.yaml`) or the operator's defaults. Replicas × these must stay within
    /// the team's per-deployment quota.
    pub resources: Option<slipway_core::Resources>,
}

/// A deployment with its events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    /// Every transition, oldest first.
    pub events: Vec<DeploymentEvent>,
}

/// The repository's last path segment as a service name (`https://x/org/My_App.git` → `my-app`).
fn name_from_repo(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("")
        .trim_end_matches(".git");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches('-').to_string();
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// Ask for a deployment: `202` with the deployment `QUEUED`; the engine moves it along. With an
/// `Idempotency-Key` header, a retry of the same request (same caller, same body, within 24 hours)
/// returns the same deployment; the same key with another body is refused (422).
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = DeploymentCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries return the same deployment")),
    responses(
    (status = 202, body = Deployment),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    crate::auth::Caller(caller): crate::auth::Caller,
    headers: HeaderMap,
    ValidJson(req): ValidJson<DeploymentCreate>,
) -> ApiResult<Response> {
    let environment = req
        .environment
        .clone()
        .unwrap_or_else(|| crate::catalog::REGISTRATION_ENV.to_string());
    let mut errors = ValidationErrors::default();
    let service = match (&req.service, &req.repo_url) {
        (Some(s), _) => {
            errors.check(validate::dns_label("service", s));
            s.clone()
        }
        (None, Some(url)) => {
            let derived = name_from_repo(url);
            if validate::dns_label("service", &derived).is_err() {
                errors.push(FieldError::new(
                    "service",
                    format!("cannot be derived from repo_url ({derived:?} is not a valid name); give one"),
                ));
            }
            derived
        }
        (None, None) => {
            errors.push(FieldError::new(
                "service",
                "is required (or give repo_url to deploy a one-off app)",
            ));
            String::new()
        }
    };
    if let Some(url) = &req.repo_url {
        errors.check(validate::repo_source(
            "repo_url",
            url,
            state.allow_local_repos,
        ));
    }
    if let Some(team) = &req.team {
        errors.check(validate::dns_label("team", team));
        if req.repo_url.is_none() {
            errors.push(FieldError::new("team", "only applies with repo_url"));
        }
    }
    errors.check(validate::dns_label("environment", &environment));
    if let Some(r) = &req.git_ref {
        errors.check(validate::git_ref("ref", r));
    }
    let replicas = req.replicas.unwrap_or(1);
    let max_replicas = state.quotas().replicas_per_deployment;
    if !(1..=max_replicas).contains(&replicas) {
        errors.push(FieldError::new(
            "replicas",
            format!("must be between 1 and {max_replicas} (replicas_per_deployment)"),
        ));
    }
    if let Some(r) = &req.resources {
        for e in validate::resources("resources", r) {
            errors.push(e);
        }
    }
    let idempotency = idempotency_key(&headers, &actor.name, "POST /api/v1/deployments", &req)?;
    errors.into_result()?;
    if req.repo_url.is_some() && state.store.get_service(&service).await.is_err() {
        let team = req.team.clone().unwrap_or_else(|| "adhoc".into());
        crate::auth::may_register(&state, &caller, &team).await?;
    }
    crate::auth::may_deploy(&state, &caller, &service).await?;
    crate::guard::check_deployment_quota(&state, &service).await?;
    if let (Some(r), Some(engine)) = (&req.resources, &state.engine) {
        engine
            .local
            .check_deployment_resources(replicas, *r)
            .map_err(|e| {
                ApiError::Forbidden(format!(
                    "{e}; ask for less or ask an administrator to raise the quota"
                ))
            })?;
    }

    if let Some(url) = &req.repo_url {
        match state.store.get_service(&service).await {
            Ok(existing) if !validate::same_repository(&existing.repo_url, url) => {
                return Err(ApiError::Refused(format!(
                "service {service:?} exists with another repository ({}); name a different service",
                existing.repo_url
            )))
            }
            Ok(_) => {}
            Err(slipway_store::StoreError::NotFound { .. }) => {
                let reg = crate::catalog::Registration {
                    name: service.clone(),
                    team: req.team.clone().unwrap_or_else(|| "adhoc".into()),
                    repo_url: url.clone(),
                    template: None,
                    description: None,
                    fields: crate::catalog::RegistrationFields {
                        name: "service",
                        team: "team",
                        repo_url: "repo_url",
                    },
                };
                match crate::catalog::register(&state, reg, &actor).await {
                    Ok(_) | Err(ApiError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }

    let (d, replayed) = state
        .store
        .create_deployment(
            NewDeployment {
                service,
                environment,
                source: DeploymentSource::Build {
                    git_ref: req.git_ref,
                },
                trigger: "api".into(),
                replicas,
                resources: req.resources.unwrap_or_default(),
                idempotency,
            },
            &actor,
        )
        .await?;
    let mut res = (StatusCode::ACCEPTED, Json(d)).into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// The `Idempotency-Key` of a request, scoped to the caller and route, with a fingerprint of its
/// body.
pub fn idempotency_key(
    headers: &HeaderMap,
    caller: &str,
    route: &str,
    body: &impl Serialize,
) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid Idempotency-Key header",
                vec![FieldError::new(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
                )],
            )
        })?;
    let body = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(Some(IdempotencyKey {
        scope: format!("{caller} {route}"),
        key: key.to_string(),
        fingerprint: format!("{:x}", Sha256::digest(&body)),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFilter {
    pub service: Option<String>,
    pub environment: Option<String>,
    /// A deployment status such as `QUEUED` or `EXPOSED` (any case).
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Deployments, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", params(DeploymentFilter), responses(
    (status = 200, body = PageOf<Deployment>),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "the service or environment filtered on does not exist", body = Problem, content_type = "application/problem+json")))]
pub async fn list_deployments(
    State(state): State<AppState>,
    ValidQuery(f): ValidQuery<DeploymentFilter>,
) -> ApiResult<Json<PageOf<Deployment>>> {
    let (limit, offset) = Paging {
        limit: f.limit,
        offset: f.offset,
    }
    .resolve()?;
    let status = f
        .status
        .map(|s| s.parse::<DeploymentStatus>())
        .transpose()
        .map_err(|e| {
            ApiError::bad_request(
                format!("invalid query parameter status: {e}"),
                vec![FieldError::new("status", e)],
            )
        })?;
    let service = super::named_filter(&state, "service", super::Named::Service, f.service).await?;
    let environment = super::named_filter(
        &state,
        "environment",
        super::Named::Environment,
        f.environment,
    )
    .await?;
    let page = state
        .store
        .list_deployments(&DeploymentQuery {
            service,
            environment,
            status,
            limit,
            offset,
            ..Default::default()
        })
        .await?;
    Ok(Json(PageOf::new(page, limit, offset)))
}

/// One deployment with its events and, once EXPOSED, its `url`.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = String, Path)), responses(
    (status = 200, body = DeploymentDetail),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_deployment(
    State(state): State<AppState>,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<Json<DeploymentDetail>> {
    let deployment = state.store.get_deployment(&id).await?;
    let events = state.store.deployment_events(&id).await?;
    Ok(Json(DeploymentDetail { deployment, events }))
}

/// Redeploys the release that served before this deployment's (the newest earlier release that
/// passed its health check), without rebuilding it: `202` with the new deployment; `409` when
/// there is none.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/rollback", tag = "deployments", params(("id" = String, Path)), responses(
    (status = 202, body = Deployment),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn rollback_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    headers: HeaderMap,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let d = state.store.get_deployment(&id).await?;
    let releases = state
        .store
        .list_releases(&d.service, &d.environment)
        .await?;
    let current = d.release_id.clone().unwrap_or_default();
    let target = slipway_engine::orchestrator::rollback_target(&releases, &current)
        .filter(|r| {
            state.engine.as_ref().is_none_or(|e| {
                e.local
                    .release_dir(&r.service, &r.environment, &r.id)
                    .exists()
            })
        })
        .ok_or_else(|| {
            ApiError::Refused(format!(
                "no earlier healthy release of {} in {} to roll back to",
                d.service, d.environment
            ))
        })?;
    let idempotency = idempotency_key(
        &headers,
        &actor.name,
        &format!("POST /api/v1/deployments/{id}/rollback"),
        &id,
    )?;
    crate::guard::check_deployment_quota(&state, &d.service).await?;
    let (new, _) = state
        .store
        .create_deployment(
            NewDeployment {
                service: d.service.clone(),
                environment: d.environment.clone(),
                source: DeploymentSource::Release {
                    release_id: target.id.clone(),
                    rollback_of: d.id.clone(),
                },
                trigger: "rollback".into(),
                replicas: d.replicas,
                resources: Default::default(),
                idempotency,
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(new)))
}

/// Cancels a deployment that has not ended: a queued one at once (`CANCELLED`), a running one at
/// its next step (its new release is stopped; what served keeps serving). `409` when it has ended.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments", params(("id" = String, Path)), responses(
    (status = 202, body = Deployment),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let d = state.store.cancel_deployment(&id, &actor).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// Destroys what a deployment runs (its instances stop; its route goes when it was serving) and
/// keeps the record as `DESTROYED`. `202`: the destroy job runs after deployments of the same
/// service and environment ahead of it.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = String, Path)), responses(
    (status = 202, body = Deployment),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn destroy_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let d = state.store.request_destroy(&id, &actor).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Stream Server-Sent Events (`log` events, then one `end` event when the deployment ends).
    pub follow: Option<bool>,
    /// Only lines after this sequence number.
    pub after: Option<i64>,
}

fn format_line(l: &LogLine) -> String {
    format!(
        "{} [{}] {}",
        l.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        l.stream.as_str(),
        l.line
    )
}

/// A deployment's log: plain text, or with `follow=true` Server-Sent Events until it ends. Each
/// event's `id` is the line's sequence number; reconnecting with `Last-Event-ID` resumes after it.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/logs", tag = "deployments", params(("id" = String, Path), LogQuery), responses(
    (status = 200, description = "text/plain, or text/event-stream with follow=true", content_type = "text/plain"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn deployment_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<LogQuery>,
) -> ApiResult<Response> {
    state.store.get_deployment(&id).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = resume.or(q.after).unwrap_or(0);
    if !q.follow.unwrap_or(false) {
        let mut text = String::new();
        let mut after = after;
        loop {
            let lines = state.store.deployment_logs(&id, after, 5000).await?;
            let Some(last) = lines.last() else { break };
            after = last.seq;
            for l in &lines {
                text.push_str(&format_line(l));
                text.push('\n');
            }
        }
        let mut res = Response::new(Body::from(text));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(res);
    }
    let notifier = state.engine.as_ref().map(|e| e.logs.notifier(&id));
    let store = state.store.clone();
    let stream = async_stream(store, id, after, notifier);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Log lines as events until the deployment has ended and every line was sent.
fn async_stream(
    store: std::sync::Arc<dyn slipway_store::Store>,
    id: String,
    after: i64,
    notifier: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let mut after = after;
        loop {
            // Register for a wake-up before reading, so lines that land in between are not missed.
            let notified = notifier.as_ref().map(|n| n.clone().notified_owned());
            let ended = match store.get_deployment(&id).await {
                Ok(d) => d.status.is_terminal().then_some(d.status),
                Err(_) => Some(DeploymentStatus::Destroyed),
            };
            let lines = match store.deployment_logs(&id, after, 1000).await {
                Ok(l) => l,
                Err(_) => break,
            };
            let got = lines.len();
            for l in lines {
                after = l.seq;
                let event = Event::default()
                    .id(l.seq.to_string())
                    .event("log")
                    .data(format_line(&l));
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if got > 0 {
                continue;
            }
            if let Some(status) = ended {
                let _ = tx
                    .send(Event::default().event("end").data(status.as_str()))
                    .await;
                return;
            }
            // Lines written by another replica wake no one here: poll as well.
            match notified {
                Some(n) => {
                    let _ = tokio::time::timeout(Duration::from_millis(500), n).await;
                }
                None => tokio::time::sleep(Duration::from_millis(250)).await,
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_repositories() {
        for (url, name) in [
            ("https://github.com/org/payments.git", "payments"),
            ("git@github.com:org/My_App.git", "my-app"),
            ("/srv/git/hello-py", "hello-py"),
            ("file:///srv/git/x/", "x"),
        ] {
            assert_eq!(super::name_from_repo(url), name);
        }
    }
}
