//! The browser session of the portal and its CSRF protection.
//!
//! CSRF: a double-submit token. The first page a browser gets sets `slipway_csrf` (32 random bytes,
//! hex; `HttpOnly; SameSite=Lax; Path=/`), and every form carries the same value in a hidden `csrf`
//! field. A form post is accepted only when the field equals the cookie (constant-time compare) and,
//! when the browser says where the request comes from (`Origin`, `Sec-Fetch-Site`), it comes from
//! this site; otherwise `403`. Another site can make a browser post, but can neither read nor set
//! the cookie, so it cannot know the value to put in the field.
//!
//! Authentication (the security issue) plugs in here: [`Session`] is where the signed-in user will
//! come from (a session cookie checked against the store), and [`Session::actor`] is what handlers
//! record in the audit log. Until then every caller is `anonymous`, as in the API.

use super::PortalError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;
use slipway_core::Actor;
use std::io::Read;
use std::net::SocketAddr;

pub const CSRF_COOKIE: &str = "slipway_csrf";
pub const CSRF_FIELD: &str = "csrf";
/// Largest form body the portal reads.
const FORM_LIMIT: usize = 64 * 1024;

/// Who is using the portal, and their CSRF token.
pub struct Session {
    csrf: String,
    /// The token was made for this response: send the cookie.
    new_token: bool,
    actor: Actor,
    /// The signed-in caller (with authentication on), from the auth middleware.
    principal: Option<crate::auth::Principal>,
}

impl Session {
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The signed-in user's name, for the page header (`None` when authentication is off).
    pub fn user_name(&self) -> Option<&str> {
        self.principal
            .as_ref()
            .filter(|p| p.name != "anonymous")
            .map(|p| p.name.as_str())
    }

    /// The caller, for permission checks (an anonymous administrator when authentication is off).
    pub fn principal(&self) -> crate::auth::Principal {
        self.principal
            .clone()
            .unwrap_or_else(crate::auth::Principal::anonymous_admin)
    }

    /// The caller as the audit log records it.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Sets the token cookie on a response when the token is new.
    pub fn attach(&self, mut res: Response) -> Response {
        if self.new_token {
            // `Secure` belongs here once Slipway terminates TLS itself (the security issue).
            let cookie = format!(
                "{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                self.csrf
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }

    fn from_parts(parts: &Parts) -> Self {
        let remote_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let principal = parts.extensions.get::<crate::auth::Principal>().cloned();
        let actor = Actor {
            name: principal
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), |p| p.name.clone()),
            remote_addr,
        };
        match cookie_token(&parts.headers) {
            Some(csrf) => Session {
                csrf,
                new_token: false,
                actor,
                principal,
            },
            None => Session {
                csrf: new_token(),
                new_token: true,
                actor,
                principal,
            },
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Session::from_parts(parts))
    }
}

/// A well-formed token from the request's cookie.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    crate::auth::cookie(headers, CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// 32 random bytes from the kernel, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom (not Linux): UUIDv7s carry 74 random bits each from the OS generator.
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let u = uuid::Uuid::now_v7().as_u128() ^ (i as u128);
            chunk.copy_from_slice(&u.to_le_bytes()[..8]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request comes from another site, by what the browser says about it.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// A form post (`application/x-www-form-urlencoded`) whose CSRF token was checked; with it, the
/// session and the raw pairs (for forms that re-render what was typed).
pub struct CsrfForm<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PortalError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let session = Session::from_parts(&parts);
        let forbidden = |why: &str| {
            PortalError::new(
                StatusCode::FORBIDDEN,
                "Form rejected",
                format!("{why} Reload the page and submit the form again."),
            )
        };
        if cross_site(&parts.headers) {
            return Err(forbidden("The form was sent from another site."));
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(PortalError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported form",
                "Forms are sent as application/x-www-form-urlencoded.",
            ));
        }
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            PortalError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                format!("A form may carry at most {FORM_LIMIT} bytes."),
            )
        })?;
        if bytes.len() > FORM_LIMIT {
            return Err(PortalError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                format!("A form may carry at most {FORM_LIMIT} bytes."),
            ));
        }
        let field = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.into_owned());
        let valid = !session.new_token
            && field
                .as_deref()
                .is_some_and(|f| constant_time_eq(f.as_bytes(), session.csrf.as_bytes()));
        if !valid {
            return Err(forbidden(
                "The form's security token is missing or does not match this browser's.",
            ));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            PortalError::new(
                StatusCode::BAD_REQUEST,
                "Form could not be read",
                e.to_string(),
            )
        })?;
        Ok(CsrfForm { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {CSRF_COOKIE}={a}")).unwrap(),
        );
        assert_eq!(cookie_token(&h), Some(a));
    }

    #[test]
    fn cross_site_requests_are_recognized() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7700"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7700"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }
}
