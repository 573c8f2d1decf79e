use super::{PageOf, Paging};
use crate::error::{ApiResult, Problem};
use crate::extract::ValidQuery;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use slipway_core::{AuditEvent, AuditQuery};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list_audit))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// `service`, `team`, `environment`, `deployment`.
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    /// e.g. `service.register`.
    pub action: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses(
    (status = 200, body = PageOf<AuditEvent>),
    (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list_audit(
    State(state): State<AppState>,
    ValidQuery(f): ValidQuery<AuditFilter>,
) -> ApiResult<Json<PageOf<AuditEvent>>> {
    let (limit, offset) = Paging {
        limit: f.limit,
        offset: f.offset,
    }
    .resolve()?;
    let page = state
        .store
        .list_audit(&AuditQuery {
            object_kind: f.object_kind,
            object_name: f.object_name,
            action: f.action,
            limit,
            offset,
        })
        .await?;
    Ok(Json(PageOf::new(page, limit, offset)))
}
