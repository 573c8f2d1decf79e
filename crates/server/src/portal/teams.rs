//! `/teams` and `/teams/{name}`: who owns what.

use super::{page, page_number, status_class, url_with, when, PortalError, PortalResult, Session};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use slipway_core::ServiceQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list))
        .route("/teams/{name}", get(show))
}

async fn list(State(state): State<AppState>, session: Session) -> PortalResult<Response> {
    let now = chrono::Utc::now();
    let mut teams = Vec::new();
    for t in state.store.list_teams().await? {
        let services = state
            .store
            .list_services(&ServiceQuery {
                team: Some(t.name.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?
            .total;
        teams.push(context! { name => t.name, services, created => when(t.created_at, now) });
    }
    Ok(page(
        &session,
        StatusCode::OK,
        "portal/teams.html",
        context! { nav => "teams", teams },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct TeamQuery {
    page: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<TeamQuery>,
) -> PortalResult<Response> {
    let now = chrono::Utc::now();
    let team = match state.store.get_team(&name).await {
        Ok(t) => t,
        Err(slipway_store::StoreError::NotFound { .. }) => {
            return Err(PortalError::not_found(format!(
                "There is no team named {name:?}."
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let page_no = page_number(q.page.as_deref());
    let per = super::services::PER_PAGE;
    let services = state
        .store
        .list_services(&ServiceQuery {
            team: Some(team.name.clone()),
            limit: per,
            offset: (page_no - 1) * per as u64,
            ..Default::default()
        })
        .await?;
    let mut items = Vec::new();
    for s in &services.items {
        let latest = state.store.latest_deployment(&s.name, None).await?;
        items.push(context! {
            name => s.name, template => s.template, repo_url => s.repo_url,
            status => latest.as_ref().map(|d| d.status.as_str()),
            class => latest.as_ref().map(|d| status_class(d.status)),
            environment => latest.as_ref().map(|d| d.environment.clone()),
            when => latest.as_ref().map(|d| when(d.created_at, now)),
        });
    }
    // The team's members and their roles; administrators act in every team without one.
    let mut members: Vec<_> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter_map(|u| {
            let m = u.memberships.iter().find(|m| m.team == team.name)?;
            Some((u.name.clone(), m.role.as_str()))
        })
        .collect();
    members.sort();
    let members: Vec<_> = members
        .into_iter()
        .map(|(name, role)| context! { name, role })
        .collect();
    let pages = services.total.div_ceil(per as u64).max(1);
    let base = format!("/teams/{}", team.name);
    let link = |p: u64| {
        url_with(
            &base,
            &[("page", &if p > 1 { p.to_string() } else { String::new() })],
        )
    };
    Ok(page(
        &session,
        StatusCode::OK,
        "portal/team.html",
        context! {
            nav => "teams",
            team => context! { name => team.name, created => when(team.created_at, now) },
            items, members, total => services.total, page => page_no, pages,
            prev => (page_no > 1).then(|| link(page_no - 1)),
            next => (page_no < pages).then(|| link(page_no + 1)),
        },
    ))
}
