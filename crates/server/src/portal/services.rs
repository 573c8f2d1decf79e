//! `/services` (search, filters, pagination for thousands) and `/services/new` (the registration
//! form, validated by the same catalog function as the API).

use super::session::CsrfForm;
use super::{page, page_number, see_other, status_class, url_with, when, PortalResult, Session};
use crate::catalog::{self, Registration, API_FIELDS};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;
use slipway_core::{DeploymentQuery, DeploymentStatus, NewestOf, ServiceQuery};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(list))
        .route("/services/new", get(new_form).post(create))
}

pub const PER_PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    team: Option<String>,
    template: Option<String>,
    status: Option<String>,
    page: Option<String>,
}

fn clean(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("").trim().to_string()
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> PortalResult<Response> {
    let store = state.store.as_ref();
    let now = chrono::Utc::now();
    let (search, team, template, status_s) = (
        clean(&q.q),
        clean(&q.team),
        clean(&q.template),
        clean(&q.status),
    );
    let page_no = page_number(q.page.as_deref());
    let offset = (page_no - 1) * PER_PAGE as u64;
    let mut errors = Vec::new();
    if let Err(e) = slipway_core::validate::free_text("q", &search, 100) {
        errors.push(e.message);
    }
    let status = match status_s.as_str() {
        "" => None,
        s => match s.parse::<DeploymentStatus>() {
            Ok(st) => Some(st),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let filter = ServiceQuery {
        team: opt(&team),
        search: if errors.is_empty() {
            opt(&search)
        } else {
            None
        },
        template: opt(&template),
        limit: PER_PAGE,
        offset,
    };

    // Each row: the service and its newest deployment.
    let mut rows = Vec::new();
    let (total, has_more) = match status {
        None => {
            let page = store.list_services(&filter).await?;
            for s in page.items {
                let latest = store.latest_deployment(&s.name, None).await?;
                rows.push((s, latest));
            }
            (page.total, offset + (rows.len() as u64) < page.total)
        }
        Some(st) => {
            // Services whose newest deployment has this status, most recent first.
            let page = store
                .list_deployments(&DeploymentQuery {
                    status: Some(st),
                    newest_of: Some(NewestOf::Service),
                    services: Some(filter.clone()),
                    limit: PER_PAGE,
                    offset,
                    ..Default::default()
                })
                .await?;
            for d in page.items {
                // A service deleted between the two reads is left out of the page.
                if let Ok(s) = store.get_service(&d.service).await {
                    rows.push((s, Some(d)));
                }
            }
            (page.total, offset + u64::from(PER_PAGE) < page.total)
        }
    };

    let teams = store.list_teams().await?;
    let link = |p: u64| {
        url_with(
            "/services",
            &[
                ("q", &search),
                ("team", &team),
                ("template", &template),
                ("status", &status_s),
                ("page", &if p > 1 { p.to_string() } else { String::new() }),
            ],
        )
    };
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(s, latest)| {
            context! {
                name => s.name, team => s.team, template => s.template,
                repo_url => s.repo_url, description => s.description,
                status => latest.as_ref().map(|d| d.status.as_str()),
                class => latest.as_ref().map(|d| status_class(d.status)),
                environment => latest.as_ref().map(|d| d.environment.clone()),
                when => latest.as_ref().map(|d| when(d.created_at, now)),
            }
        })
        .collect();
    let shown_from = if items.is_empty() { 0 } else { offset + 1 };
    let shown_to = offset + items.len() as u64;
    Ok(page(
        &session,
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        "portal/services.html",
        context! {
            nav => "services",
            items, total, pages, page => page_no, shown_from, shown_to, errors,
            prev => (page_no > 1).then(|| link(page_no - 1)),
            next => has_more.then(|| link(page_no + 1)),
            first => (page_no > 2).then(|| link(1)),
            last => (pages > page_no + 1).then(|| link(pages)),
            q => search, team, template, status => status_s,
            teams => teams.into_iter().map(|t| t.name).collect::<Vec<_>>(),
            templates => crate::api::templates::templates()?.names(),
            statuses => DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        },
    ))
}

/// What the registration form posts.
#[derive(Debug, Default, Deserialize)]
pub struct NewServiceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    repo_url: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scaffold: Option<String>,
}

async fn new_form(State(state): State<AppState>, session: Session) -> PortalResult<Response> {
    form_page(
        &state,
        &session,
        StatusCode::OK,
        &NewServiceForm::default(),
        BTreeMap::new(),
        None,
    )
    .await
}

async fn form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: &NewServiceForm,
    errors: BTreeMap<String, String>,
    summary: Option<String>,
) -> PortalResult<Response> {
    let teams = state.store.list_teams().await?;
    Ok(page(
        session,
        status,
        "portal/service_new.html",
        context! {
            nav => "new",
            form => context! {
                name => form.name, team => form.team, repo_url => form.repo_url,
                template => if form.template.is_empty() { "default" } else { form.template.as_str() },
                description => form.description,
                scaffold => form.scaffold.is_some(),
            },
            errors, summary,
            teams => teams.into_iter().map(|t| t.name).collect::<Vec<_>>(),
            templates => crate::api::templates::templates()?.names(),
            allow_local_repos => state.allow_local_repos,
        },
    ))
}

async fn create(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<NewServiceForm>,
) -> PortalResult<Response> {
    let reg = Registration {
        name: form.name.trim().to_string(),
        team: form.team.trim().to_string(),
        repo_url: form.repo_url.trim().to_string(),
        template: Some(form.template.trim())
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        description: Some(form.description.trim())
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        fields: API_FIELDS,
    };
    let allowed = if slipway_core::validate::dns_label("team", &reg.team).is_ok() {
        crate::auth::may_register(&state, &session.principal(), &reg.team).await
    } else {
        Ok(())
    };
    let result = match allowed {
        Ok(()) if form.scaffold.is_some() => {
            catalog::register_scaffolded(&state, reg, session.actor()).await
        }
        Ok(()) => catalog::register(&state, reg, session.actor()).await,
        Err(e) => Err(e),
    };
    match result {
        Err(ApiError::Forbidden(msg)) => {
            let errors = BTreeMap::from([("team".to_string(), msg)]);
            form_page(&state, &session, StatusCode::FORBIDDEN, &form, errors, None).await
        }
        Ok(done) => Ok(see_other(
            &session,
            &format!("/services/{}?created=1", done.service.name),
        )),
        Err(ApiError::Invalid { errors, detail, .. }) => {
            let errors = errors.into_iter().fold(BTreeMap::new(), |mut m, e| {
                m.entry(e.field).or_insert(e.message);
                m
            });
            let summary = (errors.is_empty()).then_some(detail);
            form_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                errors,
                summary,
            )
            .await
        }
        Err(ApiError::Conflict(msg)) => {
            let errors = BTreeMap::from([("name".to_string(), msg)]);
            form_page(&state, &session, StatusCode::CONFLICT, &form, errors, None).await
        }
        Err(e) => Err(e.into()),
    }
}
