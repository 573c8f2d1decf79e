use super::{created, PageOf, Paging};
use crate::catalog::{self, Patch, Registration, API_FIELDS};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath, ValidQuery};
use crate::upgrade::UpgradeConflict;
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use slipway_core::{
    Artifact, ArtifactInfo, ArtifactScope, Deployment, DeploymentQuery, ScaffoldPush, Service,
    ServiceQuery,
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/services", get(list_services).post(create_service))
        .route(
            "/api/v1/services/{name}",
            get(get_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route("/api/v1/services/{name}/artifacts", get(list_artifacts))
        .route(
            "/api/v1/services/{name}/artifacts.tar.gz",
            get(artifact_bundle),
        )
        .route(
            "/api/v1/services/{name}/artifacts/{*path}",
            get(get_artifact),
        )
        .route(
            "/api/v1/services/{name}/deployments",
            get(service_deployments),
        )
        .route(
            "/api/v1/services/{name}/scaffold/push",
            axum::routing::post(push_scaffold),
        )
}

/// Register a service through the canonical API. Later golden-path options (scaffold, …) arrive here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCreate {
    #[schema(example = "payments")]
    pub name: String,
    #[schema(example = "core-platform")]
    pub team: String,
    /// The service's repository; required unless `scaffold` is true.
    #[schema(example = "https://github.com/org/payments")]
    pub repo_url: Option<String>,
    /// Golden-path template; `default` when omitted.
    #[schema(example = "default")]
    pub template: Option<String>,
    pub description: Option<String>,
    /// Create the service's repository: the template's app code (`/health`, `/metrics`, JSON
    /// logs, unit tests), Dockerfile and README, committed to a new git repository under
    /// Slipway's data directory. Needs a template with a scaffold (`python-api`, `node-api`,
    /// `go-api`, `rust-api`). Without `repo_url` that repository becomes the `repo_url`; with one,
    /// its `main` branch is pushed there (never forced) and `scaffold` in the answer says whether
    /// the push worked — the service is registered either way.
    #[serde(default)]
    pub scaffold: bool,
}

/// A service with its generated artifacts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceDetail {
    #[serde(flatten)]
    pub service: Service,
    pub artifacts: Vec<ArtifactInfo>,
    /// The newest deployment, if any.
    pub latest_deployment: Option<Deployment>,
    /// For a service scaffolded with a remote `repo_url`: where the push stands (`failed` with
    /// git's message; `POST /api/v1/services/{name}/scaffold/push` retries). `null` otherwise.
    pub scaffold: Option<ScaffoldPush>,
    /// For a service on the `default` template, once a deployment has built it: the template
    /// that fits the language the analyzer found, and why. Never applied by Slipway.
    pub suggested_template: Option<catalog::TemplateSuggestion>,
}

#[utoipa::path(post, path = "/api/v1/services", tag = "services", request_body = ServiceCreate, responses(
    (status = 201, body = ServiceDetail),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 413, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_service(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    crate::auth::Caller(caller): crate::auth::Caller,
    ValidJson(req): ValidJson<ServiceCreate>,
) -> ApiResult<(StatusCode, Json<ServiceDetail>)> {
    if slipway_core::validate::dns_label("team", &req.team).is_ok() {
        crate::auth::may_register(&state, &caller, &req.team).await?;
    }
    if req.repo_url.is_none() && !req.scaffold {
        return Err(ApiError::field(
            "repo_url",
            "is required unless scaffold is true",
        ));
    }
    let reg = Registration {
        name: req.name,
        team: req.team,
        repo_url: req.repo_url.unwrap_or_default(),
        template: req.template,
        description: req.description,
        fields: API_FIELDS,
    };
    let done = if req.scaffold {
        catalog::register_scaffolded(&state, reg, &actor).await?
    } else {
        catalog::register(&state, reg, &actor).await?
    };
    let mut artifacts: Vec<ArtifactInfo> = done.artifacts.iter().map(Artifact::info).collect();
    // In the order GET /api/v1/services/{name} lists them: by scope, then path.
    artifacts.sort_by(|a, b| (a.scope.as_str(), &a.path).cmp(&(b.scope.as_str(), &b.path)));
    Ok(created(ServiceDetail {
        service: done.service,
        artifacts,
        latest_deployment: None,
        scaffold: done.scaffold,
        suggested_template: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceFilter {
    /// Only this team's services.
    pub team: Option<String>,
    /// Only services registered with this template.
    pub template: Option<String>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Services sorted by name, filtered and paged.
#[utoipa::path(get, path = "/api/v1/services", tag = "services", params(ServiceFilter), responses(
    (status = 200, body = PageOf<Service>),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "the team filtered on does not exist", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_services(
    State(state): State<AppState>,
    ValidQuery(f): ValidQuery<ServiceFilter>,
) -> ApiResult<Json<PageOf<Service>>> {
    let (limit, offset) = Paging {
        limit: f.limit,
        offset: f.offset,
    }
    .resolve()?;
    if let Some(s) = &f.search {
        slipway_core::validate::free_text("search", s, 100)
            .map_err(|e| slipway_core::ValidationErrors(vec![e]))?;
    }
    let team = super::named_filter(&state, "team", super::Named::Team, f.team).await?;
    let page = state
        .store
        .list_services(&ServiceQuery {
            team,
            search: f.search.filter(|s| !s.is_empty()),
            template: f.template,
            limit,
            offset,
        })
        .await?;
    Ok(Json(PageOf::new(page, limit, offset)))
}

#[utoipa::path(get, path = "/api/v1/services/{name}", tag = "services", params(("name" = String, Path)), responses(
    (status = 200, body = ServiceDetail),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_service(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Json<ServiceDetail>> {
    let service = state.store.get_service(&name).await?;
    let artifacts = state.store.list_artifacts(&name, None).await?;
    let latest_deployment = state.store.latest_deployment(&name, None).await?;
    let scaffold = state.store.scaffold_push(&name).await?;
    let suggested_template = catalog::template_suggestion(&state, &service).await?;
    Ok(Json(ServiceDetail {
        service,
        artifacts,
        latest_deployment,
        scaffold,
        suggested_template,
    }))
}

/// Push a scaffolded service's repository to its `repo_url` again (after a failed push): the
/// `main` branch only, never forced. `200` with the outcome — `status` is `pushed`, or `failed`
/// with git's message — which the service's detail shows too. `409` for a service that was not
/// scaffolded with a remote.
#[utoipa::path(post, path = "/api/v1/services/{name}/scaffold/push", tag = "services",
    params(("name" = String, Path)), responses(
    (status = 200, body = ScaffoldPush),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn push_scaffold(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Json<ScaffoldPush>> {
    let service = state.store.get_service(&name).await?;
    if state.store.scaffold_push(&name).await?.is_none() {
        return Err(ApiError::Refused(format!(
            "service {name:?} was not scaffolded with a remote repo_url; there is nothing to push"
        )));
    }
    Ok(Json(
        catalog::push_scaffold(&state, &service, &actor).await?,
    ))
}

/// Fields to change; absent fields stay as they are. A new team or repository regenerates the
/// artifacts a team did not edit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    pub team: Option<String>,
    pub repo_url: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A service after an update.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceUpdated {
    #[serde(flatten)]
    pub service: Service,
    /// Files a new team or repository did not regenerate because a team edited them (a commit
    /// to the platform repository, adopted at start, or a change in its work tree), as a
    /// template upgrade reports them: each with why and the diff it would have applied. Empty
    /// when nothing was regenerated.
    pub conflicts: Vec<UpgradeConflict>,
}

/// Change a service. A new team or repository regenerates its files, except those a team edited
/// (listed in `conflicts`), in one platform-repository commit; `409` when the platform
/// repository's `main` moved outside Slipway.
#[utoipa::path(patch, path = "/api/v1/services/{name}", tag = "services", params(("name" = String, Path)),
    request_body = ServicePatch, responses(
    (status = 200, body = ServiceUpdated),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_service(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(name): ValidPath<String>,
    ValidJson(req): ValidJson<ServicePatch>,
) -> ApiResult<Json<ServiceUpdated>> {
    let patch = Patch {
        team: req.team,
        repo_url: req.repo_url,
        description: req.description,
    };
    let updated = catalog::update(&state, &name, patch, &actor).await?;
    Ok(Json(ServiceUpdated {
        service: updated.service,
        conflicts: updated.conflicts,
    }))
}

/// Delete a service with its artifacts and deployment records; its files leave the platform repository.
#[utoipa::path(delete, path = "/api/v1/services/{name}", tag = "services", params(("name" = String, Path)), responses(
    (status = 204),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_service(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<StatusCode> {
    catalog::delete(&state, &name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScopeFilter {
    /// `platform` (files in the platform repository) or `service` (files for the service's own repository).
    pub scope: Option<ArtifactScope>,
}

/// A service's generated files (without content).
#[utoipa::path(get, path = "/api/v1/services/{name}/artifacts", tag = "artifacts",
    params(("name" = String, Path), ScopeFilter), responses(
    (status = 200, body = Vec<ArtifactInfo>),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_artifacts(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
    ValidQuery(f): ValidQuery<ScopeFilter>,
) -> ApiResult<Json<Vec<ArtifactInfo>>> {
    Ok(Json(state.store.list_artifacts(&name, f.scope).await?))
}

/// One generated file, as stored. Without `scope`, the platform file at that path wins.
#[utoipa::path(get, path = "/api/v1/services/{name}/artifacts/{path}", tag = "artifacts",
    params(("name" = String, Path), ("path" = String, Path, description = "The file's path in its repository"), ScopeFilter),
    responses(
    (status = 200, description = "The file", content_type = "text/plain"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_artifact(
    State(state): State<AppState>,
    ValidPath((name, path)): ValidPath<(String, String)>,
    ValidQuery(f): ValidQuery<ScopeFilter>,
) -> ApiResult<Response> {
    let artifact = match f.scope {
        Some(scope) => state.store.get_artifact(&name, scope, &path).await?,
        None => match state
            .store
            .get_artifact(&name, ArtifactScope::Platform, &path)
            .await
        {
            Err(slipway_store::StoreError::NotFound { .. }) => {
                state
                    .store
                    .get_artifact(&name, ArtifactScope::Service, &path)
                    .await?
            }
            other => other?,
        },
    };
    let mut res = artifact.content.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&artifact.path)),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", artifact.sha256)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&artifact.generator) {
        h.insert("x-slipway-generator", v);
    }
    Ok(res)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") => "application/json",
        Some("yaml") | Some("yml") => "application/yaml",
        _ => "text/plain; charset=utf-8",
    }
}

/// A `.tar.gz` of the service's files at their repository paths. With `scope=platform` it also holds the
/// shared Terraform modules its instantiation uses; without `scope`, both scopes under `platform/` and `service/`.
#[utoipa::path(get, path = "/api/v1/services/{name}/artifacts.tar.gz", tag = "artifacts",
    params(("name" = String, Path), ScopeFilter), responses(
    (status = 200, description = "gzip-compressed tar archive", content_type = "application/gzip"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn artifact_bundle(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
    ValidQuery(f): ValidQuery<ScopeFilter>,
) -> ApiResult<Response> {
    let service = state.store.get_service(&name).await?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let with_platform = f.scope != Some(ArtifactScope::Service);
    let with_service = f.scope != Some(ArtifactScope::Platform);
    let prefix = |scope: ArtifactScope| {
        if f.scope.is_none() {
            format!("{scope}/")
        } else {
            String::new()
        }
    };
    if with_platform {
        for a in state.store.platform_files().await? {
            files.push((
                format!("{}{}", prefix(ArtifactScope::Platform), a.path),
                a.content,
            ));
        }
    }
    for a in state
        .store
        .service_artifacts(&service.name, f.scope)
        .await?
    {
        if (a.scope == ArtifactScope::Platform && with_platform)
            || (a.scope == ArtifactScope::Service && with_service)
        {
            files.push((format!("{}{}", prefix(a.scope), a.path), a.content));
        }
    }
    files.sort();
    let bytes = tokio::task::spawn_blocking(move || crate::api::services::tar_gz(&files))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let scope = f.scope.map_or("all".to_string(), |s| s.to_string());
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{scope}.tar.gz\"",
        service.name
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A deterministic gzip'd tar: sorted entries, fixed mode, owner and mtime.
pub fn tar_gz(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, content.as_slice())?;
    }
    tar.into_inner()?.finish()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceDeploymentFilter {
    pub environment: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// A service's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/services/{name}/deployments", tag = "services",
    params(("name" = String, Path), ServiceDeploymentFilter), responses(
    (status = 200, body = PageOf<Deployment>),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such service, or the environment filtered on does not exist", body = Problem, content_type = "application/problem+json")))]
pub async fn service_deployments(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
    ValidQuery(f): ValidQuery<ServiceDeploymentFilter>,
) -> ApiResult<Json<PageOf<Deployment>>> {
    let (limit, offset) = Paging {
        limit: f.limit,
        offset: f.offset,
    }
    .resolve()?;
    let service = state.store.get_service(&name).await?;
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
            service: Some(service.name),
            environment,
            limit,
            offset,
            ..Default::default()
        })
        .await?;
    Ok(Json(PageOf::new(page, limit, offset)))
}
