//! `/deployments/{id}`: the state timeline and the log, which follows live (Server-Sent Events from
//! the API, by `portal.js`) until the deployment ends; the status fragment polled by htmx; Rollback
//! and Cancel.

use super::session::CsrfForm;
use super::{deployment_ctx, fragment, page, see_other, when, PortalError, PortalResult, Session};
use crate::extract::ValidPath;
use crate::{AppState, RequestActor};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deployments/{id}", get(show))
        .route("/deployments/{id}/status", get(status))
        // The API's log route, on a page path: a browser's EventSource cannot send a bearer token,
        // and the API never takes the session cookie.
        .route(
            "/deployments/{id}/logs",
            axum::routing::get(crate::api::deployments::deployment_logs),
        )
        .route("/deployments/{id}/rollback", post(rollback))
        .route("/deployments/{id}/cancel", post(cancel))
}

/// Log lines rendered into the page; the live stream carries on after them.
const LOG_LINES: u32 = 2000;

async fn status_ctx(state: &AppState, id: &str) -> PortalResult<Value> {
    let now = chrono::Utc::now();
    let d = match state.store.get_deployment(id).await {
        Ok(d) => d,
        Err(slipway_store::StoreError::NotFound { .. }) => {
            return Err(PortalError::not_found(format!(
                "There is no deployment with id {id:?}."
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let events = state.store.deployment_events(id).await?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            context! {
                status => e.status.as_str(),
                class => super::status_class(e.status),
                reason => e.reason,
                at => when(e.at, now),
                clock => e.at.format("%H:%M:%S").to_string(),
            }
        })
        .collect();
    Ok(context! { d => deployment_ctx(&d, now), events })
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PortalResult<Response> {
    let ctx = status_ctx(&state, &id).await?;
    let lines = state.store.deployment_logs(&id, 0, LOG_LINES).await?;
    let last_seq = lines.last().map(|l| l.seq).unwrap_or(0);
    let more = lines.len() as u32 == LOG_LINES;
    let log: Vec<Value> = lines
        .iter()
        .map(|l| {
            context! {
                at => l.at.format("%H:%M:%S%.3f").to_string(),
                stream => l.stream.as_str(),
                line => l.line,
            }
        })
        .collect();
    Ok(page(
        &session,
        StatusCode::OK,
        "portal/deployment.html",
        context! {
            nav => "services",
            log, last_seq, more,
            id,
            ..ctx
        },
    ))
}

/// The status, links and timeline, for htmx to swap in while the deployment moves.
async fn status(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PortalResult<Response> {
    let ctx = status_ctx(&state, &id).await?;
    Ok(session.attach(fragment(
        "portal/deployment_status.html",
        context! { csrf => session.csrf(), ..ctx },
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// Runs the API's rollback (the same checks, the same new deployment), then shows the new one.
async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> PortalResult<Response> {
    let res = crate::api::deployments::rollback_deployment(
        State(state.clone()),
        RequestActor(session.actor().clone()),
        HeaderMap::new(),
        ValidPath(id),
    )
    .await;
    // A refusal (no earlier healthy release) is a 409 page with the API's explanation.
    let (_, axum::Json(new)) = res.map_err(PortalError::from)?;
    Ok(see_other(&session, &format!("/deployments/{}", new.id)))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> PortalResult<Response> {
    let d = state.store.cancel_deployment(&id, session.actor()).await?;
    Ok(see_other(&session, &format!("/deployments/{}", d.id)))
}
