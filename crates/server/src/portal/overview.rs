//! `/`: the overview — figures, services needing attention (failing first), recent deployments and
//! the deployment success rate.

use super::{deployment_ctx, page, status_class, PortalResult, Session};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;
use slipway_core::{Deployment, DeploymentQuery, DeploymentStatus, NewestOf, ServiceQuery};
use slipway_store::Store;
use std::collections::HashSet;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(overview))
}

/// How many services the overview lists.
const SERVICES_SHOWN: usize = 20;

async fn count(store: &dyn Store, status: Option<DeploymentStatus>) -> PortalResult<u64> {
    Ok(store
        .list_deployments(&DeploymentQuery {
            status,
            limit: 1,
            ..Default::default()
        })
        .await?
        .total)
}

/// Services whose newest deployment in an environment failed (`FAILED` or `ROLLED_BACK`), newest
/// failure first, at most `max`, and how many such service/environment pairs there are in all.
pub(super) async fn failing_services(
    store: &dyn Store,
    max: usize,
) -> PortalResult<(Vec<Deployment>, u64)> {
    let mut failing = Vec::new();
    let mut total = 0;
    for status in [DeploymentStatus::Failed, DeploymentStatus::RolledBack] {
        let page = store
            .list_deployments(&DeploymentQuery {
                status: Some(status),
                newest_of: Some(NewestOf::ServiceEnvironment),
                limit: u32::try_from(max).unwrap_or(u32::MAX),
                ..Default::default()
            })
            .await?;
        total += page.total;
        failing.extend(page.items);
    }
    failing.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    failing.truncate(max);
    Ok((failing, total))
}

async fn overview(State(state): State<AppState>, session: Session) -> PortalResult<Response> {
    let store = state.store.as_ref();
    let now = chrono::Utc::now();
    let services_total = store
        .list_services(&ServiceQuery {
            limit: 1,
            ..Default::default()
        })
        .await?
        .total;
    let teams_total = store.list_teams().await?.len();
    let deployments_total = count(store, None).await?;
    let exposed = count(store, Some(DeploymentStatus::Exposed)).await?;
    let failed = count(store, Some(DeploymentStatus::Failed)).await?;
    let rolled_back = count(store, Some(DeploymentStatus::RolledBack)).await?;
    let mut in_progress = 0;
    for s in DeploymentStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
    {
        in_progress += count(store, Some(s)).await?;
    }
    let finished = exposed + failed + rolled_back;
    let success_rate =
        (finished > 0).then(|| (exposed as f64 * 100.0 / finished as f64).round() as i64);

    let recent = store
        .list_deployments(&DeploymentQuery {
            limit: 15,
            ..Default::default()
        })
        .await?
        .items;
    // The success rate of the newest finished deployments: what is happening now.
    let recent_finished: Vec<_> = store
        .list_deployments(&DeploymentQuery {
            limit: 100,
            ..Default::default()
        })
        .await?
        .items
        .into_iter()
        .filter(|d| {
            matches!(
                d.status,
                DeploymentStatus::Exposed | DeploymentStatus::Failed | DeploymentStatus::RolledBack
            )
        })
        .collect();
    let recent_rate = (!recent_finished.is_empty()).then(|| {
        let ok = recent_finished
            .iter()
            .filter(|d| d.status == DeploymentStatus::Exposed)
            .count();
        (ok as f64 * 100.0 / recent_finished.len() as f64).round() as i64
    });

    // Services: failing first, then the rest by name.
    let (failing, failing_count) = failing_services(store, SERVICES_SHOWN).await?;
    let mut rows = Vec::new();
    let mut listed = HashSet::new();
    for d in &failing {
        if listed.insert(d.service.clone()) {
            if let Ok(s) = store.get_service(&d.service).await {
                rows.push(context! {
                    name => s.name, team => s.team, template => s.template,
                    status => d.status.as_str(), class => status_class(d.status),
                    environment => d.environment, failing => true,
                    reason => d.reason,
                    when => super::when(d.created_at, now),
                });
            }
        }
    }
    if rows.len() < SERVICES_SHOWN {
        let more = store
            .list_services(&ServiceQuery {
                limit: SERVICES_SHOWN as u32,
                ..Default::default()
            })
            .await?;
        for s in more.items {
            if rows.len() >= SERVICES_SHOWN {
                break;
            }
            if listed.contains(&s.name) {
                continue;
            }
            let latest = store.latest_deployment(&s.name, None).await?;
            rows.push(context! {
                name => s.name, team => s.team, template => s.template,
                status => latest.as_ref().map(|d| d.status.as_str()),
                class => latest.as_ref().map(|d| status_class(d.status)),
                environment => latest.as_ref().map(|d| d.environment.clone()),
                failing => false,
                when => latest.as_ref().map(|d| super::when(d.created_at, now)),
            });
        }
    }

    Ok(page(
        &session,
        StatusCode::OK,
        "portal/overview.html",
        context! {
            nav => "overview",
            services_total, teams_total, deployments_total, in_progress,
            exposed, failed, rolled_back, success_rate, recent_rate,
            recent_finished => recent_finished.len(),
            failing_count,
            services => rows,
            recent => recent.iter().map(|d| deployment_ctx(d, now)).collect::<Vec<_>>(),
        },
    ))
}
