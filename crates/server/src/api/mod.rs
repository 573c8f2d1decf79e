//! The canonical API under `/api/v1`, one module per resource, plus Slipway's own `/health` and `/ready`.

pub mod analyze;
pub mod audit;
pub mod backstage;
pub mod deployments;
pub mod environments;
pub mod identity;
pub mod runtime;
pub mod secrets;
pub mod services;
pub mod teams;
pub mod templates;

use crate::error::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(teams::router())
        .merge(environments::router())
        .merge(services::router())
        .merge(backstage::router())
        .merge(deployments::router())
        .merge(audit::router())
        .merge(runtime::router())
        .merge(analyze::router())
        .merge(templates::router())
        .merge(secrets::router())
        .merge(identity::router())
}

/// What a list filter's value names.
#[derive(Clone, Copy)]
pub enum Named {
    Service,
    Team,
    Environment,
}

/// A list filter that names a service, team or environment (`?service=`): a value that cannot be
/// such a name is a `400` naming the parameter, a name that does not exist a `404` — a typo must
/// not look like an empty list. An empty value is no filter. Returns the filter to apply.
pub async fn named_filter(
    state: &AppState,
    param: &str,
    named: Named,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    slipway_core::validate::dns_label(param, &value).map_err(|e| {
        ApiError::bad_request(
            format!("invalid query parameter {param}: {}", e.message),
            vec![e],
        )
    })?;
    match named {
        Named::Service => drop(state.store.get_service(&value).await?),
        Named::Team => drop(state.store.get_team(&value).await?),
        Named::Environment => drop(state.store.get_environment(&value).await?),
    }
    Ok(Some(value))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /docs for the API".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed(
        "this route does not accept that method; see /docs for the API".into(),
    )
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
    pub version: String,
}

/// The Slipway process is alive.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Liveness)))]
pub async fn health() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Slipway can serve: its database answers.
#[utoipa::path(get, path = "/ready", tag = "system", responses(
    (status = 200, body = Readiness),
    (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Readiness {
            status: "ready".into(),
            database: state.store.backend().into(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable("the database does not answer".into()))
        }
    }
}

/// Paging parameters shared by list routes.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u64>,
}

impl Paging {
    pub fn resolve(self) -> Result<(u32, u64), ApiError> {
        let limit = self.limit.unwrap_or(slipway_store::DEFAULT_LIMIT);
        if limit == 0 || limit > slipway_store::MAX_LIMIT {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {}", slipway_store::MAX_LIMIT),
            ));
        }
        Ok((limit, self.offset.unwrap_or(0)))
    }
}

/// A page of results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// How many items match the filters in all.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

impl<T> PageOf<T> {
    pub fn new(page: slipway_core::Page<T>, limit: u32, offset: u64) -> Self {
        PageOf {
            items: page.items,
            total: page.total,
            limit,
            offset,
        }
    }
}

pub fn created<T: Serialize>(body: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(body))
}
