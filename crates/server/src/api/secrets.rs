//! Secrets of a service in an environment: write-only values, encrypted before they are stored,
//! injected into the app's environment at deploy time, masked in logs.

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{validate, SecretInfo, ValidationErrors};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/services/{name}/environments/{env}/secrets",
            get(list_secrets),
        )
        .route(
            "/api/v1/services/{name}/environments/{env}/secrets/{secret}",
            put(set_secret).delete(delete_secret),
        )
}

const MAX_VALUE: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value; it is never returned.
    pub value: String,
}

fn check_name(name: &str) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::secret_name("secret", name));
    errors.into_result()
}

/// Sets a secret (a new version). The value is sealed with Slipway's secrets key before it is
/// stored and is never shown again; the next deployment injects it into the app's environment —
/// except the repository credentials (`SLIPWAY_GIT_TOKEN`, `SLIPWAY_GIT_USERNAME`,
/// `SLIPWAY_GIT_SSH_KEY`, `SLIPWAY_GIT_KNOWN_HOSTS`), which only the repository fetch uses.
#[utoipa::path(put, path = "/api/v1/services/{name}/environments/{env}/secrets/{secret}", tag = "services",
    params(("name" = String, Path), ("env" = String, Path), ("secret" = String, Path)), request_body = SecretValue, responses(
    (status = 200, body = SecretInfo),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn set_secret(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath((name, env, secret)): ValidPath<(String, String, String)>,
    ValidJson(body): ValidJson<SecretValue>,
) -> ApiResult<Json<SecretInfo>> {
    check_name(&secret)?;
    if body.value.len() > MAX_VALUE || body.value.contains('\0') {
        return Err(ApiError::field(
            "value",
            format!("must be at most {MAX_VALUE} bytes without NUL characters"),
        ));
    }
    let key = state
        .engine()?
        .local
        .secrets
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no secrets key is configured".into()))?;
    let sealed = key
        .seal(&name, &env, &secret, &body.value)
        .map_err(ApiError::internal)?;
    Ok(Json(state.store.put_secret(&sealed, &actor).await?))
}

/// A service's secrets in an environment: names and versions, values masked.
#[utoipa::path(get, path = "/api/v1/services/{name}/environments/{env}/secrets", tag = "services",
    params(("name" = String, Path), ("env" = String, Path)), responses(
    (status = 200, body = Vec<SecretInfo>),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_secrets(
    State(state): State<AppState>,
    ValidPath((name, env)): ValidPath<(String, String)>,
) -> ApiResult<Json<Vec<SecretInfo>>> {
    state.store.get_service(&name).await?;
    state.store.get_environment(&env).await?;
    Ok(Json(state.store.list_secrets(&name, &env).await?))
}

#[utoipa::path(delete, path = "/api/v1/services/{name}/environments/{env}/secrets/{secret}", tag = "services",
    params(("name" = String, Path), ("env" = String, Path), ("secret" = String, Path)), responses(
    (status = 204),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_secret(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath((name, env, secret)): ValidPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_secret(&name, &env, &secret, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
