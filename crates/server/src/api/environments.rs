use super::created;
use crate::error::{ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use slipway_core::{validate, Environment, ValidationErrors};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/environments",
            get(list_environments).post(create_environment),
        )
        .route(
            "/api/v1/environments/{name}",
            get(get_environment).delete(delete_environment),
        )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentCreate {
    #[schema(example = "staging")]
    pub name: String,
}

/// All environments; `dev` always exists.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", responses((status = 200, body = Vec<Environment>)))]
pub async fn list_environments(State(state): State<AppState>) -> ApiResult<Json<Vec<Environment>>> {
    Ok(Json(state.store.list_environments().await?))
}

/// Create an environment such as `staging` or `prod`.
#[utoipa::path(post, path = "/api/v1/environments", tag = "environments", request_body = EnvironmentCreate, responses(
    (status = 201, body = Environment),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_environment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidJson(req): ValidJson<EnvironmentCreate>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    validate::dns_label("name", &req.name).map_err(|e| ValidationErrors(vec![e]))?;
    Ok(created(
        state.store.create_environment(&req.name, &actor).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses(
    (status = 200, body = Environment),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_environment(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(state.store.get_environment(&name).await?))
}

/// Delete an environment. `dev` and environments with deployments cannot be deleted (409).
#[utoipa::path(delete, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses(
    (status = 204),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_environment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_environment(&name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
