//! Golden-path templates: what each one generates, and a preview of its files for a service
//! that does not need to exist.

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::upgrade::{UpgradeReport, UpgradeRequest};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{validate, ArtifactScope, ValidationErrors};
use slipway_golden_paths::{RenderError, ServiceSpec, TemplateInfo, TemplateSet};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/templates/{name}", get(get_template))
        .route("/api/v1/templates/{name}/render", post(render_template))
        .route("/api/v1/templates/upgrade", post(upgrade_templates))
}

/// A golden-path template.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Template {
    #[schema(example = "node-api")]
    pub name: String,
    pub version: u32,
    /// Recorded on every artifact the template produced.
    #[schema(example = "slipway-golden-paths/node-api@1")]
    pub generator: String,
    pub description: String,
    #[schema(example = "typescript")]
    pub language: String,
    /// Port the service listens on in its container.
    pub port: u16,
    pub health_path: String,
    pub ready_path: String,
    /// Files for the service's own repository (`<service>` stands for its name).
    pub service_files: Vec<String>,
    /// Files for the platform repository (besides the shared Terraform modules).
    pub platform_files: Vec<String>,
}

impl From<TemplateInfo> for Template {
    fn from(t: TemplateInfo) -> Self {
        Template {
            name: t.name,
            version: t.version,
            generator: t.generator,
            description: t.description,
            language: t.language,
            port: t.port,
            health_path: t.health_path,
            ready_path: t.ready_path,
            service_files: t.service_files,
            platform_files: t.platform_files,
        }
    }
}

/// The service to render a preview for; nothing is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    #[schema(example = "payments")]
    pub name: String,
    #[schema(example = "core-platform")]
    pub team: String,
    #[schema(example = "https://github.com/org/payments")]
    pub repo_url: String,
    /// Environment of the Terraform instantiation; `dev` when omitted.
    pub environment: Option<String>,
}

/// One rendered file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderedFile {
    pub scope: ArtifactScope,
    pub path: String,
    pub generator: String,
    pub sha256: String,
    /// UTF-8 text.
    pub content: String,
}

/// Every file a registration with this template would produce.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderedTemplate {
    pub template: String,
    /// The service's files, then the shared Terraform modules; each sorted by path.
    pub files: Vec<RenderedFile>,
}

/// The templates in use: built-in ones, overridden or added by `--templates-dir`.
pub fn templates() -> ApiResult<&'static TemplateSet> {
    slipway_golden_paths::active_templates().map_err(ApiError::internal)
}

/// Every template, sorted by name.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", responses(
    (status = 200, body = Vec<Template>)))]
pub async fn list_templates() -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        templates()?
            .list()
            .into_iter()
            .map(Template::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "templates", params(("name" = String, Path)), responses(
    (status = 200, body = Template),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_template(ValidPath(name): ValidPath<String>) -> ApiResult<Json<Template>> {
    let set = templates()?;
    set.get(&name).map(Template::from).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no template named {name:?}; known templates: {}",
            set.names().join(", ")
        ))
    })
}

/// Renders a template for a service without registering it (a preview, or files to commit by hand).
#[utoipa::path(post, path = "/api/v1/templates/{name}/render", tag = "templates", params(("name" = String, Path)),
    request_body = RenderRequest, responses(
    (status = 200, body = RenderedTemplate),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn render_template(
    ValidPath(template): ValidPath<String>,
    ValidJson(req): ValidJson<RenderRequest>,
) -> ApiResult<Json<RenderedTemplate>> {
    let set = templates()?;
    if !set.contains(&template) {
        return Err(ApiError::NotFound(format!(
            "no template named {template:?}; known templates: {}",
            set.names().join(", ")
        )));
    }
    let environment = req.environment.unwrap_or_else(|| "dev".to_string());
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label("name", &req.name));
    errors.check(validate::dns_label("team", &req.team));
    errors.check(validate::dns_label("environment", &environment));
    // Nothing is fetched from a preview's repository URL, so a local path is as good as any.
    errors.check(validate::repo_source("repo_url", &req.repo_url, true));
    errors.into_result()?;
    let rendered = set
        .render(
            &ServiceSpec {
                name: &req.name,
                team: &req.team,
                repo_url: &req.repo_url,
                environment: &environment,
            },
            &template,
        )
        .map_err(|e| match e {
            RenderError::InvalidRepoUrl { reason } => ApiError::field("repo_url", reason),
            other => ApiError::internal(other),
        })?;
    let files = rendered
        .artifacts
        .into_iter()
        .chain(rendered.platform_files)
        .map(|a| RenderedFile {
            scope: a.scope,
            path: a.path,
            generator: a.generator,
            sha256: a.sha256,
            content: String::from_utf8_lossy(&a.content).into_owned(),
        })
        .collect();
    Ok(Json(RenderedTemplate { template, files }))
}

/// Compares every service (or those named) with what the active templates render now and, unless
/// `dry_run`, regenerates the outdated ones: their artifacts in the database and one commit per
/// service in the platform repository. Files a team edited are reported as conflicts and left as
/// they are; the rest of the service is upgraded. Administrators only.
#[utoipa::path(post, path = "/api/v1/templates/upgrade", tag = "templates",
    request_body = UpgradeRequest, responses(
    (status = 200, body = UpgradeReport),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn upgrade_templates(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidJson(req): ValidJson<UpgradeRequest>,
) -> ApiResult<Json<UpgradeReport>> {
    crate::upgrade::upgrade(&state, req, &actor).await.map(Json)
}
