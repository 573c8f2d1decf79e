//! `POST /api/v1/analyze`: a repository's build plan, with the evidence behind every value.

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ValidJson;
use crate::AppState;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{validate, FieldError, ValidationErrors};
use slipway_engine::source::{self, FetchLimits, SourceError};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/analyze", post(analyze))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// `https://`, `ssh://` or `git@` (local paths only with `--allow-local-repos`).
    pub repo_url: String,
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The app directory in a monorepo.
    pub app_dir: Option<String>,
}

/// Fetches the repository (shallow, with size and time limits) and plans it. `422` with the
/// analyzer's explanation (the candidates it checked, or the file and line of a malformed manifest)
/// when no plan can be made.
#[utoipa::path(post, path = "/api/v1/analyze", tag = "analyze", request_body = AnalyzeRequest, responses(
    (status = 200, description = "The build plan: language, framework, version, install, build, start, port, app_dir, health_path, evidence, …", body = Object),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn analyze(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<AnalyzeRequest>,
) -> ApiResult<Json<slipway_analyzer::BuildPlan>> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::repo_source(
        "repo_url",
        &req.repo_url,
        state.allow_local_repos,
    ));
    if let Some(r) = &req.git_ref {
        errors.check(validate::git_ref("ref", r));
    }
    if let Some(dir) = &req.app_dir {
        let ok = !dir.is_empty()
            && dir.len() <= 255
            && !dir.starts_with('/')
            && dir.split('/').all(|seg| !seg.is_empty() && seg != "..");
        if !ok {
            errors.push(FieldError::new(
                "app_dir",
                "must be a relative directory inside the repository, without '..' (e.g. services/api)",
            ));
        }
    }
    errors.into_result()?;
    let tmp = tempfile::tempdir().map_err(ApiError::internal)?;
    let dest = tmp.path().join("repo");
    let limits = FetchLimits {
        timeout: std::time::Duration::from_secs(120),
        max_bytes: 512 * 1024 * 1024,
        allow_private_hosts: state
            .engine
            .as_ref()
            .is_some_and(|e| e.fetch_limits.allow_private_hosts),
    };
    match source::fetch(&req.repo_url, req.git_ref.as_deref(), &dest, &limits).await {
        Ok(_) => {}
        Err(e @ SourceError::RefNotFound(_)) => return Err(ApiError::NotFound(e.to_string())),
        Err(
            e @ (SourceError::Fetch(_)
            | SourceError::Unavailable(_)
            | SourceError::Refused(_)
            | SourceError::TooLarge { .. }
            | SourceError::Timeout(_)),
        ) => return Err(ApiError::field("repo_url", e.to_string())),
        Err(e @ SourceError::Git(_)) => return Err(ApiError::internal(e)),
    }
    let options = slipway_analyzer::AnalyzeOptions {
        app_dir: req.app_dir.clone(),
    };
    let plan = tokio::task::spawn_blocking(move || {
        let plan = slipway_analyzer::analyze_dir(&dest, &options);
        drop(tmp);
        plan
    })
    .await
    .map_err(ApiError::internal)?;
    match plan {
        Ok(plan) => Ok(Json(plan)),
        Err(e) => Err(ApiError::Invalid {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            detail: format!("no build plan: {e}"),
            errors: vec![FieldError::new("repo_url", e.to_string())],
        }),
    }
}
