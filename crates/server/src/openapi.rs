//! The OpenAPI 3.1 document, generated from the handlers' annotations, and Swagger UI served from
//! vendored files (`assets/swagger-ui`, no CDN).

use crate::api::{self, PageOf};
use crate::error::Problem;
use crate::platform;
use crate::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use slipway_core::{
    ArtifactInfo, ArtifactScope, AuditEvent, Deployment, DeploymentEvent, DeploymentStatus,
    Environment, FieldError, SeedDeploymentStatus, Service, Team,
};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Slipway",
        description = "Self-hosted internal developer platform: service catalog, golden paths, deployments.\n\nThe `/platform` routes are the seed-000 compatible API; `/api/v1` is the canonical API. Errors are RFC 9457 problem documents (`application/problem+json`).",
        license(name = "Apache-2.0"),
    ),
    paths(
        platform::register_service, platform::list_services, platform::service_health,
        platform::create_deployment, platform::list_deployments, platform::get_deployment,
        api::health, api::ready,
        api::teams::list_teams, api::teams::create_team, api::teams::get_team,
        api::environments::list_environments, api::environments::create_environment,
        api::environments::get_environment, api::environments::delete_environment,
        api::services::create_service, api::services::list_services, api::services::get_service,
        api::services::update_service, api::services::delete_service, api::services::list_artifacts,
        api::services::get_artifact, api::services::artifact_bundle, api::services::service_deployments,
        api::services::push_scaffold,
        api::backstage::service_catalogs,
        api::deployments::create_deployment, api::deployments::list_deployments, api::deployments::get_deployment,
        api::deployments::deployment_logs, api::deployments::rollback_deployment, api::deployments::cancel_deployment,
        api::deployments::destroy_deployment,
        api::runtime::set_variables, api::runtime::get_variables, api::runtime::service_logs, api::runtime::service_metrics, api::runtime::metrics, api::analyze::analyze,
        api::secrets::set_secret, api::secrets::list_secrets, api::secrets::delete_secret,
        api::identity::whoami, api::identity::create_user, api::identity::list_users, api::identity::get_user,
        api::identity::set_member, api::identity::remove_member, api::identity::create_token,
        api::identity::list_tokens, api::identity::revoke_token,
        api::audit::list_audit,
        api::templates::list_templates, api::templates::get_template, api::templates::render_template,
        api::templates::upgrade_templates,
    ),
    components(schemas(
        Problem, FieldError, api::deployments::DeploymentDetail, DeploymentEvent, api::runtime::Variables, api::runtime::ServiceMetrics, api::analyze::AnalyzeRequest, api::secrets::SecretValue, slipway_core::SecretInfo, api::identity::WhoAmI, api::identity::UserCreate, api::identity::MemberRole, api::identity::TokenCreate, api::identity::TokenCreated, slipway_core::User, slipway_core::Membership, slipway_core::Role, slipway_core::ApiToken, slipway_core::TokenOwner, slipway_core::RuntimeSample, Team, Service, Environment, ArtifactInfo, ArtifactScope, Deployment, DeploymentStatus,
        api::templates::Template, api::templates::RenderRequest, api::templates::RenderedTemplate, api::templates::RenderedFile,
        crate::upgrade::UpgradeRequest, crate::upgrade::UpgradeReport, crate::upgrade::ServiceUpgrade,
        crate::upgrade::UpgradeStatus, crate::upgrade::FileUpgrade, crate::upgrade::FileChange,
        crate::upgrade::UpgradeConflict,
        SeedDeploymentStatus, AuditEvent, api::backstage::ServiceCatalog, PageOf<api::backstage::ServiceCatalog>, PageOf<Service>, PageOf<Deployment>, PageOf<AuditEvent>,
    )),
    tags(
        (name = "platform", description = "Seed-000 compatible API"),
        (name = "services", description = "Service catalog"),
        (name = "artifacts", description = "Generated golden-path files"),
        (name = "deployments", description = "Deployments"),
        (name = "analyze", description = "Build plans of repositories"),
        (name = "templates", description = "Golden-path templates"),
        (name = "identity", description = "Users, team members, API tokens"),
        (name = "teams"), (name = "environments"), (name = "audit"), (name = "system"),
    )
)]
pub struct ApiDoc;

/// The spec as served.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The spec as YAML, byte-for-byte what `/openapi.yaml` serves and `openapi.yaml` at the repo root holds.
pub fn spec_yaml() -> String {
    spec().to_yaml().unwrap_or_default()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/openapi.yaml", get(openapi_yaml))
        .route("/docs", get(docs))
        .route("/docs/", get(docs))
        .route(
            "/docs/swagger-ui.css",
            get(|| asset("text/css; charset=utf-8", SWAGGER_CSS)),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| asset("text/javascript; charset=utf-8", SWAGGER_JS)),
        )
        .route(
            "/docs/init.js",
            get(|| asset("text/javascript; charset=utf-8", INIT_JS.as_bytes())),
        )
        .route("/docs/favicon.png", get(|| asset("image/png", FAVICON)))
}

async fn openapi_json() -> Response {
    let body = spec().to_pretty_json().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn openapi_yaml() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], spec_yaml()).into_response()
}

const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const FAVICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");
const INIT_JS: &str = r##"window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
"##;

async fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn docs() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Slipway API</title>
  <link rel="icon" type="image/png" href="/docs/favicon.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <noscript>Swagger UI needs JavaScript. The spec itself is at <a href="/openapi.yaml">/openapi.yaml</a> and <a href="/openapi.json">/openapi.json</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"#,
    )
}
