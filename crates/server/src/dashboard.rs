//! `/dashboard/{name}`: seed 000's read-only operator view, server-rendered, every user string escaped.

use crate::error::{ApiError, ApiResult};
use crate::extract::ValidPath;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Environment};
use std::sync::OnceLock;

pub fn router() -> Router<AppState> {
    Router::new().route("/dashboard/{service_name}", get(dashboard))
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Names ending in .html get HTML auto-escaping.
        env.add_template(
            "dashboard.html",
            include_str!("../templates/dashboard.html"),
        )
        .expect("dashboard template parses"); // checked by the dashboard tests
        env.add_template(
            "not_found.html",
            include_str!("../templates/not_found.html"),
        )
        .expect("not_found template parses"); // checked by the dashboard tests
        env
    })
}

async fn dashboard(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Response> {
    let service = match state.store.get_service(&name).await {
        Ok(s) => s,
        Err(slipway_store::StoreError::NotFound { .. }) => {
            let html = templates()
                .get_template("not_found.html")
                .and_then(|t| t.render(context! { name }))
                .map_err(ApiError::internal)?;
            return Ok((StatusCode::NOT_FOUND, Html(html)).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let health = crate::platform::health(&state, &service.name).await?;
    let deployments = state
        .store
        .list_deployments(&slipway_core::DeploymentQuery {
            service: Some(service.name.clone()),
            limit: 10,
            ..Default::default()
        })
        .await?;
    let artifacts = state.store.list_artifacts(&service.name, None).await?;
    let deployments: Vec<_> = deployments
        .items
        .into_iter()
        .map(|d| {
            context! {
                id => d.id,
                environment => d.environment,
                status => d.status.as_str(),
                seed_status => d.status.seed_view(d.status_before_destroy).as_str(),
                created_at => d.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }
        })
        .collect();
    let html = templates()
        .get_template("dashboard.html")
        .and_then(|t| {
            t.render(context! {
                service => context! {
                    name => service.name,
                    team => service.team,
                    repo_url => service.repo_url,
                    template => service.template,
                    description => service.description,
                    registered_at => service.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                },
                health => context! {
                    last_deployment_time => health.last_deployment_time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    deployment_status => health.deployment_status.map(|s| s.as_str()),
                    pod_count => health.pod_count,
                    cpu_usage => health.cpu_usage,
                    memory_usage => health.memory_usage,
                },
                deployments,
                artifacts => artifacts.iter().map(|a| context! { path => a.path, scope => a.scope.as_str(), size => a.size, sha256 => a.sha256 }).collect::<Vec<_>>(),
            })
        })
        .map_err(ApiError::internal)?;
    Ok(Html(html).into_response())
}
