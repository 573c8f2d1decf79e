//! What runs: a service's environment variables, its app's own logs, and `/metrics`.

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath, ValidQuery};
use crate::{AppState, RequestActor};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{validate, FieldError, ValidationErrors};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/services/{name}/environments/{env}/variables",
            get(get_variables).put(set_variables),
        )
        .route("/api/v1/services/{name}/logs", get(service_logs))
        .route("/api/v1/services/{name}/metrics", get(service_metrics))
        .route("/metrics", get(metrics))
}

/// Largest value of one variable.
const MAX_VALUE: usize = 32 * 1024;
const MAX_VARIABLES: usize = 200;

/// Environment variables of a service in one environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variables {
    /// Name → value. Names are `[A-Za-z_][A-Za-z0-9_]*`; `PORT` and `SLIPWAY_*` are Slipway's.
    pub variables: BTreeMap<String, String>,
}

fn check_variables(vars: &BTreeMap<String, String>) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if vars.len() > MAX_VARIABLES {
        errors.push(FieldError::new(
            "variables",
            format!(
                "has {} entries; at most {MAX_VARIABLES} are allowed",
                vars.len()
            ),
        ));
    }
    for (name, value) in vars {
        let field = format!("variables.{name}");
        errors.check(validate::env_var_name(&field, name, "DATABASE_URL"));
        if value.len() > MAX_VALUE {
            errors.push(FieldError::new(
                &field,
                format!("is longer than {MAX_VALUE} bytes"),
            ));
        }
        if value.contains('\0') {
            errors.push(FieldError::new(&field, "contains a NUL character"));
        }
    }
    errors.into_result()
}

/// Replaces the variables a service's releases run with in an environment; the next deployment
/// uses them (running releases keep the values they were built with).
#[utoipa::path(put, path = "/api/v1/services/{name}/environments/{env}/variables", tag = "services",
    params(("name" = String, Path), ("env" = String, Path)), request_body = Variables, responses(
    (status = 200, body = Variables),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_variables(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath((name, env)): ValidPath<(String, String)>,
    ValidJson(body): ValidJson<Variables>,
) -> ApiResult<Json<Variables>> {
    check_variables(&body.variables)?;
    state
        .store
        .set_variables(&name, &env, &body.variables, &actor)
        .await?;
    Ok(Json(body))
}

#[utoipa::path(get, path = "/api/v1/services/{name}/environments/{env}/variables", tag = "services",
    params(("name" = String, Path), ("env" = String, Path)), responses(
    (status = 200, body = Variables),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_variables(
    State(state): State<AppState>,
    ValidPath((name, env)): ValidPath<(String, String)>,
) -> ApiResult<Json<Variables>> {
    state.store.get_service(&name).await?;
    state.store.get_environment(&env).await?;
    Ok(Json(Variables {
        variables: state.store.get_variables(&name, &env).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceLogQuery {
    /// Defaults to `dev`.
    pub environment: Option<String>,
    /// Keep the connection open and stream new lines as Server-Sent Events.
    pub follow: Option<bool>,
    /// How many of the latest lines to start with (default 100, at most 10000).
    pub lines: Option<usize>,
}

/// The running app's own stdout and stderr (every instance, newest last), from its rotated log
/// files; `follow=true` streams new lines as Server-Sent Events.
#[utoipa::path(get, path = "/api/v1/services/{name}/logs", tag = "services", params(("name" = String, Path), ServiceLogQuery), responses(
    (status = 200, description = "text/plain, or text/event-stream with follow=true", content_type = "text/plain"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn service_logs(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
    ValidQuery(q): ValidQuery<ServiceLogQuery>,
) -> ApiResult<Response> {
    let env = q
        .environment
        .unwrap_or_else(|| crate::catalog::REGISTRATION_ENV.to_string());
    validate::dns_label("environment", &env)
        .map_err(|e| ApiError::bad_request(e.message.clone(), vec![e]))?;
    state.store.get_service(&name).await?;
    state.store.get_environment(&env).await?;
    let engine = state.engine()?;
    let lines = q.lines.unwrap_or(100).min(10_000);
    let (tail, mut live) = engine.local.app_log(&name, &env, lines).await;
    if !q.follow.unwrap_or(false) {
        let mut text = tail.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        let mut res = Response::new(Body::from(text));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(res);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        for line in tail {
            if tx
                .send(Event::default().event("log").data(line))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            match live.recv().await {
                Ok(line) => {
                    if tx
                        .send(Event::default().event("log").data(line.as_ref()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = format!("[{n} lines skipped: the reader fell behind]");
                    if tx
                        .send(Event::default().event("log").data(note))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Defaults to `dev`.
    pub environment: Option<String>,
    /// RFC 3339 time; samples at or after it (default: the last hour).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runtime figures of a service in an environment: the history sampled every 15 s, and the
/// figures now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceMetrics {
    pub service: String,
    pub environment: String,
    /// Running instances now (`null` when nothing runs or this process runs no engine).
    pub instances: Option<u32>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// Proxy counters since Slipway started.
    pub requests_total: Option<u64>,
    pub errors_total: Option<u64>,
    pub samples: Vec<slipway_core::RuntimeSample>,
}

#[utoipa::path(get, path = "/api/v1/services/{name}/metrics", tag = "services", params(("name" = String, Path), MetricsQuery), responses(
    (status = 200, body = ServiceMetrics),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn service_metrics(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
    ValidQuery(q): ValidQuery<MetricsQuery>,
) -> ApiResult<Json<ServiceMetrics>> {
    let env = q
        .environment
        .unwrap_or_else(|| crate::catalog::REGISTRATION_ENV.to_string());
    state.store.get_service(&name).await?;
    state.store.get_environment(&env).await?;
    let since = q
        .since
        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::hours(1));
    let samples = state.store.runtime_samples(&name, &env, since).await?;
    let usage = state
        .engine
        .as_ref()
        .and_then(|e| e.local.usage(&name, &env));
    let stats = state
        .engine
        .as_ref()
        .and_then(|e| e.proxy.stats(&name, &env));
    Ok(Json(ServiceMetrics {
        service: name,
        environment: env,
        instances: usage.as_ref().map(|u| u.instances),
        cpu_percent: usage
            .as_ref()
            .map(|u| (u.cpu_percent * 10.0).round() / 10.0),
        memory_bytes: usage.as_ref().map(|u| u.memory_bytes),
        requests_total: stats.as_ref().map(|s| s.requests),
        errors_total: stats.as_ref().map(|s| s.errors),
        samples,
    }))
}

/// Prometheus text exposition: the proxy's per-route request counters and latency histograms, the
/// engine's deployment and build figures, and the local target's instance restarts.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    if let Some(engine) = &state.engine {
        engine.proxy.render_prometheus(&mut out);
        engine.metrics.render_prometheus(&mut out);
    }
    let mut res = Response::new(Body::from(out));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res.into_response()
}
