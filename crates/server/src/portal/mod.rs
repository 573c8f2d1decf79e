//! The portal: server-rendered HTML pages for people (catalog, create-a-service form, deploy and
//! rollback, live deployment logs, health and runtime charts), on the same port as the API.
//!
//! Pages are minijinja templates embedded in the binary (`templates/portal/`, HTML auto-escaping on
//! every user string). Every page works without JavaScript; htmx (vendored) and a tiny script add
//! live search, status polling and the log stream. Forms carry a CSRF token (see [`session`]).
//! One file per page group: [`overview`], [`services`], [`service`], [`deployments`], [`teams`].

mod assets;
mod chart;
mod deployments;
mod highlight;
mod login;
mod overview;
mod service;
mod services;
pub mod session;
mod teams;

use crate::error::ApiError;
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use minijinja::{context, Environment, Value};
use slipway_core::{Deployment, DeploymentStatus};
use std::sync::OnceLock;

pub use session::Session;

/// The portal's routes (pages, form posts, fragments and its static assets).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(overview::router())
        .merge(services::router())
        .merge(service::router())
        .merge(deployments::router())
        .merge(teams::router())
        .merge(assets::router())
        .merge(login::router())
        .layer(axum::middleware::from_fn(server_timing))
}

/// Adds `Server-Timing: app;dur=<ms>` to every portal response (what `bench/portal.sh` reads).
async fn server_timing(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut res = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

macro_rules! templates {
    ($env:ident, $($name:literal),* $(,)?) => {
        $(
            $env.add_template(
                concat!("portal/", $name),
                include_str!(concat!("../../templates/portal/", $name)),
            )
            .expect(concat!("template ", $name, " parses")); // every template is rendered by tests/portal.rs
        )*
    };
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Names end in .html: HTML auto-escaping everywhere.
        templates!(
            env,
            "base.html",
            "macros.html",
            "overview.html",
            "services.html",
            "service_new.html",
            "service.html",
            "deployment.html",
            "deployment_status.html",
            "teams.html",
            "team.html",
            "error.html",
            "login.html",
        );
        env.add_global("asset_version", assets::ASSET_VERSION);
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env.add_global("htmx_version", assets::HTMX_VERSION);
        env
    })
}

/// Renders a template to a string.
fn render_str(name: &str, ctx: Value) -> Result<String, PortalError> {
    templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| PortalError::from(ApiError::internal(e)))
}

/// A full page: the template rendered with the session (CSRF token, and later the signed-in user),
/// and the session cookie when it is new.
fn page(session: &Session, status: StatusCode, name: &str, ctx: Value) -> Response {
    let ctx = context! { csrf => session.csrf(), user => session.user_name(), ..ctx };
    match render_str(name, ctx) {
        Ok(html) => session.attach(no_store((status, Html(html)).into_response())),
        Err(e) => e.into_response(),
    }
}

/// An HTML fragment for htmx (no layout).
fn fragment(name: &str, ctx: Value) -> Response {
    match render_str(name, ctx) {
        Ok(html) => no_store(Html(html).into_response()),
        Err(e) => e.into_response(),
    }
}

/// Pages show live data: never cache them.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `303 See Other` after a successful form post (so reloading does not post again).
fn see_other(session: &Session, location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    session.attach(res)
}

/// An error shown as an HTML page with the same status and message as the API's problem document.
#[derive(Debug)]
pub struct PortalError {
    status: StatusCode,
    title: String,
    detail: String,
}

impl PortalError {
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        PortalError {
            status,
            title: title.to_string(),
            detail: detail.into(),
        }
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", detail)
    }
}

impl From<ApiError> for PortalError {
    fn from(e: ApiError) -> Self {
        // The problem document's detail is safe to show (server errors carry only a request id).
        let p = e.to_problem();
        PortalError {
            status: StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            title: p.title,
            detail: p.detail,
        }
    }
}

impl From<slipway_store::StoreError> for PortalError {
    fn from(e: slipway_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let ctx = context! {
            title => self.title,
            detail => self.detail,
            status => self.status.as_u16(),
        };
        let html = templates()
            .get_template("portal/error.html")
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|_| {
                "<!doctype html><title>Error</title><p>Something went wrong.".into()
            });
        no_store((self.status, Html(html)).into_response())
    }
}

pub type PortalResult<T = Response> = Result<T, PortalError>;

/// A timestamp as templates show it: ISO for `<time datetime>`, a readable UTC form, and its age.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Value {
    context! {
        iso => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        ago => ago(now - t),
    }
}

fn ago(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The CSS class of a status badge: `ok`, `fail`, `run` (still moving) or `off`.
fn status_class(s: DeploymentStatus) -> &'static str {
    use DeploymentStatus::*;
    match s {
        Exposed => "ok",
        Failed | RolledBack => "fail",
        Cancelled | Destroyed => "off",
        Queued | Analyzing | Building | Provisioning | Deploying | Healthy | RollingBack => "run",
    }
}

/// A deployment as templates show it.
fn deployment_ctx(d: &Deployment, now: DateTime<Utc>) -> Value {
    context! {
        id => d.id,
        short_id => short_id(&d.id),
        service => d.service,
        environment => d.environment,
        git_ref => d.git_ref,
        status => d.status.as_str(),
        class => status_class(d.status),
        terminal => d.status.is_terminal(),
        trigger => d.trigger,
        url => d.url,
        reason => d.reason,
        commit => d.commit_sha.as_deref().map(|c| c.chars().take(10).collect::<String>()),
        release_id => d.release_id,
        rollback_of => d.rollback_of,
        replicas => d.replicas,
        created => when(d.created_at, now),
        updated => when(d.updated_at, now),
    }
}

/// The random tail of a UUIDv7 (its head is a timestamp shared by ids made close together).
fn short_id(id: &str) -> String {
    let tail: String = id.chars().rev().filter(|c| *c != '-').take(8).collect();
    tail.chars().rev().collect()
}

/// `path?k=v&…` with the non-empty pairs, form-encoded.
fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if !v.is_empty() {
            ser.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", ser.finish())
    } else {
        path.to_string()
    }
}

/// A 1-based page number from a query value; anything unreadable is page 1.
fn page_number(v: Option<&str>) -> u64 {
    v.and_then(|p| p.parse::<u64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .min(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = templates();
        assert!(env.get_template("portal/base.html").is_ok());
    }

    #[test]
    fn short_ids_are_the_random_tail() {
        assert_eq!(short_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), "2e3f4a5b");
    }

    #[test]
    fn urls_encode_their_query() {
        assert_eq!(
            url_with("/services", &[("q", "a b&<"), ("team", ""), ("page", "2")]),
            "/services?q=a+b%26%3C&page=2"
        );
        assert_eq!(url_with("/services", &[("q", "")]), "/services");
    }
}
