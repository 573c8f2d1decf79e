use super::{PageOf, Paging};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath, ValidQuery};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use slipway_core::{
    validate, Deployment, DeploymentSource, DeploymentQuery, DeploymentStatus, FieldError, NewDeployment,
    ValidationErrors,
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route("/api/v1/deployments/{id}", get(get_deployment))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentCreate {
    #[schema(example = "payments")]
    pub service: String,
    /// Defaults to `dev`.
    #[schema(example = "dev")]
    pub environment: Option<String>,
    /// Branch, tag or commit; the repository's default branch when omitted.
    #[serde(rename = "ref")]
    #[schema(example = "main")]
    pub git_ref: Option<String>,
}

/// Ask for a deployment. It is recorded as `QUEUED`; the deployment engine moves it along.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = DeploymentCreate, responses(
    (status = 202, body = Deployment),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidJson(req): ValidJson<DeploymentCreate>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let environment = req
        .environment
        .unwrap_or_else(|| crate::catalog::REGISTRATION_ENV.to_string());
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label("service", &req.service));
    errors.check(validate::dns_label("environment", &environment));
    if let Some(r) = &req.git_ref {
        errors.check(validate::git_ref("ref", r));
    }
    errors.into_result()?;
    let d = state
        .store
        .create_deployment(
            NewDeployment {
                service: req.service,
                environment,
                source: DeploymentSource::Build {
                    git_ref: req.git_ref,
                },
                trigger: "api".into(),
                idempotency: None,
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(d.0)))
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
    (status = 400, body = Problem, content_type = "application/problem+json")))]
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
    let page = state
        .store
        .list_deployments(&DeploymentQuery {
            service: f.service,
            environment: f.environment,
            status,
            limit,
            offset,
        })
        .await?;
    Ok(Json(PageOf::new(page, limit, offset)))
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = String, Path)), responses(
    (status = 200, body = Deployment),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_deployment(
    State(state): State<AppState>,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.get_deployment(&id).await?))
}
