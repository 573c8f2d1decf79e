//! Signing in to the portal: a user name and password (argon2id) give a session cookie holding an
//! API token made for the session (12 hours; revoked at sign-out).

use super::{page, see_other, PortalResult, Session};
use crate::auth::{new_token, token_hash, SESSION_COOKIE};
use crate::portal::session::CsrfForm;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use slipway_core::{NewToken, TokenOwner};

const SESSION_HOURS: i64 = 12;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site (no `//host`, no scheme): an open redirect is refused.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

async fn login_form(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Response {
    page(
        &session,
        StatusCode::OK,
        "portal/login.html",
        context! { next => safe_next(q.next.as_deref()), auth_required => state.auth.required, username => "", error => None::<String> },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<LoginForm>,
) -> PortalResult<Response> {
    let next = safe_next(form.next.as_deref());
    let name = form.username.trim().to_string();
    let hash = if slipway_core::validate::dns_label("username", &name).is_ok() {
        state.store.password_hash(&name).await?
    } else {
        None
    };
    let by_password = hash
        .as_deref()
        .is_some_and(|h| crate::api::identity::verify_password(&form.password, h));
    // A user without a password (the first-start `admin`) signs in with one of their API tokens.
    let by_token = !by_password
        && form.password.starts_with(crate::auth::TOKEN_PREFIX)
        && match state
            .store
            .token_by_hash(&token_hash(form.password.trim()))
            .await?
        {
            Some(t) => {
                t.revoked_at.is_none()
                    && t.expires_at.is_none_or(|e| e > chrono::Utc::now())
                    && t.owner == TokenOwner::User { user: name.clone() }
            }
            None => false,
        };
    let ok = by_password || by_token;
    if !ok {
        // One message for an unknown user and a wrong password.
        return Ok(page(
            &session,
            StatusCode::UNAUTHORIZED,
            "portal/login.html",
            context! { next => next, auth_required => state.auth.required, username => name, error => Some("Wrong user name or password.") },
        ));
    }
    let (token, hash) = new_token()?;
    state
        .store
        .create_token(
            NewToken {
                id: uuid::Uuid::now_v7().to_string(),
                token_hash: hash,
                name: "portal session".into(),
                owner: TokenOwner::User { user: name },
                expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(SESSION_HOURS)),
            },
            session.actor(),
        )
        .await?;
    let mut res = see_other(&session, &next);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        SESSION_HOURS * 3600
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
struct LogoutForm {}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm { session, .. }: CsrfForm<LogoutForm>,
) -> PortalResult<Response> {
    let token = crate::auth::cookie(&headers, SESSION_COOKIE);
    if let Some(token) = token {
        if let Some(t) = state.store.token_by_hash(&token_hash(&token)).await? {
            if t.revoked_at.is_none() {
                state.store.revoke_token(&t.id, session.actor()).await?;
                state.principals.clear();
            }
        }
    }
    let mut res = see_other(&session, "/login");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
