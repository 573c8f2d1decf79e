use super::created;
use crate::error::{ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{validate, Service, ServiceQuery, Team, ValidationErrors};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/teams", get(list_teams).post(create_team))
        .route("/api/v1/teams/{name}", get(get_team))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamCreate {
    #[schema(example = "core-platform")]
    pub name: String,
}

/// All teams, by name.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, body = Vec<Team>)))]
pub async fn list_teams(State(state): State<AppState>) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(state.store.list_teams().await?))
}

/// Create a team. Registering a service also creates its team when missing.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamCreate, responses(
    (status = 201, body = Team),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_team(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidJson(req): ValidJson<TeamCreate>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    validate::dns_label("name", &req.name).map_err(|e| ValidationErrors(vec![e]))?;
    Ok(created(state.store.create_team(&req.name, &actor).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TeamDetail {
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The team's services (first 1000 by name).
    pub services: Vec<Service>,
    pub service_count: u64,
}

/// A team and its services.
#[utoipa::path(get, path = "/api/v1/teams/{name}", tag = "teams", params(("name" = String, Path)), responses(
    (status = 200, body = TeamDetail),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_team(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Json<TeamDetail>> {
    let team = state.store.get_team(&name).await?;
    let page = state
        .store
        .list_services(&ServiceQuery {
            team: Some(team.name.clone()),
            limit: slipway_store::MAX_LIMIT,
            ..Default::default()
        })
        .await?;
    Ok(Json(TeamDetail {
        name: team.name,
        created_at: team.created_at,
        services: page.items,
        service_count: page.total,
    }))
}
