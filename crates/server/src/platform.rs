//! The seed-000 API, kept exactly: `/platform/services`, `/platform/deployments`,
//! `/platform/services/{name}/health`. Same routes, same JSON shapes, real data.

use crate::auth::Caller;
use crate::catalog::{self, Registration, SEED_FIELDS};
use crate::error::{ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_core::{
    validate, Deployment, DeploymentSource, NewDeployment, SeedDeploymentStatus, ServiceQuery,
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/platform/services",
            post(register_service).get(list_services),
        )
        .route(
            "/platform/services/{service_name}/health",
            get(service_health),
        )
        .route(
            "/platform/deployments",
            post(create_deployment).get(list_deployments),
        )
        .route("/platform/deployments/{build_id}", get(get_deployment))
}

/// Seed 000's registration input: exactly these three fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedRegisterRequest {
    #[schema(example = "payments")]
    pub service_name: String,
    #[schema(example = "core-platform")]
    pub team_name: String,
    #[schema(example = "https://github.com/org/payments")]
    pub repo_url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeedArtifacts {
    #[schema(example = "terraform/envs/dev/payments")]
    pub terraform: String,
    #[schema(example = "app/templates/kubernetes/generated")]
    pub k8s_manifest: String,
    #[schema(example = "app/templates/jenkins/generated")]
    pub jenkins_pipeline: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeedRegisterResponse {
    pub service_name: String,
    #[schema(example = "REGISTERED")]
    pub status: String,
    pub artifacts: SeedArtifacts,
}

/// Register a service and generate its Terraform, Kubernetes and Jenkins contracts.
///
/// The files are committed to the platform repository (`<data-dir>/platform-repo`) before the response.
#[utoipa::path(post, path = "/platform/services", tag = "platform", operation_id = "platform_register_service", request_body = SeedRegisterRequest,
    responses(
        (status = 201, description = "Registered", body = SeedRegisterResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register_service(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Caller(caller): Caller,
    ValidJson(req): ValidJson<SeedRegisterRequest>,
) -> ApiResult<(StatusCode, Json<SeedRegisterResponse>)> {
    if validate::dns_label("team_name", &req.team_name).is_ok() {
        crate::auth::may_register(&state, &caller, &req.team_name).await?;
    }
    let reg = Registration {
        name: req.service_name,
        team: req.team_name,
        repo_url: req.repo_url,
        template: None,
        description: None,
        fields: SEED_FIELDS,
    };
    let done = catalog::register(&state, reg, &actor).await?;
    let (terraform, k8s_manifest, jenkins_pipeline) =
        slipway_golden_paths::seed_artifact_dirs(&done.service.name, catalog::REGISTRATION_ENV);
    Ok((
        StatusCode::CREATED,
        Json(SeedRegisterResponse {
            service_name: done.service.name,
            status: "REGISTERED".into(),
            artifacts: SeedArtifacts {
                terraform,
                k8s_manifest,
                jenkins_pipeline,
            },
        }),
    ))
}

/// A registered service as seed 000's `services.json` recorded it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeedService {
    pub service_name: String,
    pub team_name: String,
    pub repo_url: String,
    pub registered_at: DateTime<Utc>,
}

/// List every registered service with its owner, repository and registration time.
#[utoipa::path(get, path = "/platform/services", tag = "platform", operation_id = "platform_list_services",
    responses((status = 200, body = Vec<SeedService>)))]
pub async fn list_services(State(state): State<AppState>) -> ApiResult<Json<Vec<SeedService>>> {
    let mut out = Vec::new();
    let mut query = ServiceQuery {
        limit: slipway_store::MAX_LIMIT,
        ..Default::default()
    };
    loop {
        let page = state.store.list_services(&query).await?;
        let n = page.items.len();
        out.extend(page.items.into_iter().map(|s| SeedService {
            service_name: s.name,
            team_name: s.team,
            repo_url: s.repo_url,
            registered_at: s.created_at,
        }));
        if n < query.limit as usize || out.len() as u64 >= page.total {
            break;
        }
        query.offset += n as u64;
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedDeployRequest {
    #[schema(example = "payments")]
    pub service_name: String,
}

/// A deployment as seed 000 shows it: its `build_id` and the four-state lifecycle.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeedDeployment {
    pub build_id: String,
    pub service_name: String,
    pub environment: String,
    pub status: SeedDeploymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Deployment> for SeedDeployment {
    fn from(d: Deployment) -> Self {
        SeedDeployment {
            status: d.status.seed_view(d.status_before_destroy),
            build_id: d.id,
            service_name: d.service,
            environment: d.environment,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// Record a deployment of the service's default branch to `dev`; answers `202` with its `build_id`.
#[utoipa::path(post, path = "/platform/deployments", tag = "platform", operation_id = "platform_create_deployment", request_body = SeedDeployRequest,
    responses(
        (status = 202, description = "Queued", body = SeedDeployment),
        (status = 404, description = "Unknown service", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_deployment(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Caller(caller): Caller,
    ValidJson(req): ValidJson<SeedDeployRequest>,
) -> ApiResult<(StatusCode, Json<SeedDeployment>)> {
    validate::dns_label("service_name", &req.service_name)
        .map_err(|e| slipway_core::ValidationErrors(vec![e]))?;
    crate::auth::may_deploy(&state, &caller, &req.service_name).await?;
    crate::guard::check_deployment_quota(&state, &req.service_name).await?;
    let d = state
        .store
        .create_deployment(
            NewDeployment {
                service: req.service_name,
                environment: catalog::REGISTRATION_ENV.into(),
                source: DeploymentSource::Build { git_ref: None },
                trigger: "platform-api".into(),
                replicas: 1,
                resources: Default::default(),
                idempotency: None,
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(d.0.into())))
}

/// Newest deployments first (up to 1000).
#[utoipa::path(get, path = "/platform/deployments", tag = "platform", operation_id = "platform_list_deployments",
    responses((status = 200, body = Vec<SeedDeployment>)))]
pub async fn list_deployments(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<SeedDeployment>>> {
    let page = state
        .store
        .list_deployments(&slipway_core::DeploymentQuery {
            limit: slipway_store::MAX_LIMIT,
            ..Default::default()
        })
        .await?;
    Ok(Json(page.items.into_iter().map(Into::into).collect()))
}

/// One deployment by its `build_id`.
#[utoipa::path(get, path = "/platform/deployments/{build_id}", tag = "platform", operation_id = "platform_get_deployment",
    params(("build_id" = String, Path, description = "The id returned when the deployment was created")),
    responses(
        (status = 200, body = SeedDeployment),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_deployment(
    State(state): State<AppState>,
    ValidPath(build_id): ValidPath<String>,
) -> ApiResult<Json<SeedDeployment>> {
    Ok(Json(state.store.get_deployment(&build_id).await?.into()))
}

/// Seed 000's health view. Deployment fields come from the latest deployment; runtime figures are
/// `null` until something has measured them (the deployment engine and targets report them).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeedHealth {
    pub service_name: String,
    pub last_deployment_time: Option<DateTime<Utc>>,
    pub deployment_status: Option<SeedDeploymentStatus>,
    /// Running instances, when a target reports them.
    pub pod_count: Option<u32>,
    /// CPU in Kubernetes notation (e.g. `120m`), when measured.
    pub cpu_usage: Option<String>,
    /// Memory in Kubernetes notation (e.g. `256Mi`), when measured.
    pub memory_usage: Option<String>,
}

#[utoipa::path(get, path = "/platform/services/{service_name}/health", tag = "platform", operation_id = "platform_service_health",
    params(("service_name" = String, Path)),
    responses(
        (status = 200, body = SeedHealth),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn service_health(
    State(state): State<AppState>,
    ValidPath(service_name): ValidPath<String>,
) -> ApiResult<Json<SeedHealth>> {
    Ok(Json(health(&state, &service_name).await?))
}

pub async fn health(state: &AppState, name: &str) -> ApiResult<SeedHealth> {
    let service = state.store.get_service(name).await?;
    let latest = state.store.latest_deployment(&service.name, None).await?;
    // Runtime figures come from the local target's processes (`/proc`) in the environment the
    // latest deployment went to; `null` when nothing runs there or no engine runs here.
    let usage = match (&state.engine, &latest) {
        (Some(engine), Some(d)) => engine.local.usage(&service.name, &d.environment),
        _ => None,
    };
    Ok(SeedHealth {
        service_name: service.name,
        last_deployment_time: latest.as_ref().map(|d| d.created_at),
        deployment_status: latest.map(|d| d.status.seed_view(d.status_before_destroy)),
        pod_count: usage.as_ref().map(|u| u.instances),
        cpu_usage: usage
            .as_ref()
            .map(|u| format!("{}m", (u.cpu_percent * 10.0).round() as u64)),
        memory_usage: usage
            .as_ref()
            .map(|u| format!("{}Mi", u.memory_bytes.div_ceil(1024 * 1024))),
    })
}
