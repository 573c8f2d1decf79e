//! Authentication (API tokens and JWT bearer tokens) and authorization (team roles) for every route.
//!
//! Every request gets a [`Principal`]. With authentication off (tests of the catalog alone, or an
//! operator's explicit choice) it is an anonymous administrator. With it on, routes other than the
//! public ones (`/health`, `/ready`, `/metrics`, the docs) need `Authorization: Bearer <token>`:
//! an API token (`slw_…`, stored as a SHA-256 hash) or a JWT signed with the configured key. Then
//! the route's [`Rule`] decides (see [`RULES`]); a mutating route without a rule is refused.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use slipway_core::{Membership, Role, TokenOwner};
use std::collections::BTreeMap;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user name, `team:<name>` for a team's service account, or `anonymous`.
    pub name: String,
    pub admin: bool,
    pub teams: BTreeMap<String, Role>,
}

impl Principal {
    pub fn anonymous_admin() -> Self {
        Self {
            name: "anonymous".into(),
            admin: true,
            teams: BTreeMap::new(),
        }
    }

    /// `Ok` when the caller has at least `role` in `team` (administrators always do).
    pub fn require(&self, team: &str, role: Role) -> Result<(), ApiError> {
        if self.admin || self.teams.get(team).is_some_and(|r| *r >= role) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} needs the {role} role in team {team:?} (or admin) for this; it has {}",
            self.name,
            self.teams
                .get(team)
                .map_or("no role there".to_string(), |r| format!("the {r} role"))
        )))
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} needs the admin role for this",
                self.name
            )))
        }
    }
}

/// The caller, for handlers that check permissions on the request body.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts
                .extensions
                .get::<Principal>()
                .cloned()
                .unwrap_or_else(Principal::anonymous_admin),
        ))
    }
}

/// May the caller register a service in `team`? A member may; creating a new team takes an admin.
pub async fn may_register(
    state: &AppState,
    caller: &Principal,
    team: &str,
) -> Result<(), ApiError> {
    match state.store.get_team(team).await {
        Ok(_) => caller.require(team, Role::TeamMember),
        Err(slipway_store::StoreError::NotFound { .. }) => caller.require_admin().map_err(|_| {
            ApiError::Forbidden(format!(
                "team {team:?} does not exist; creating a team needs the admin role ({} is not an admin)",
                caller.name
            ))
        }),
        Err(e) => Err(e.into()),
    }
}

/// May the caller deploy `service`? A member of its team may. Unknown services pass (404 follows).
pub async fn may_deploy(
    state: &AppState,
    caller: &Principal,
    service: &str,
) -> Result<(), ApiError> {
    match state.store.get_service(service).await {
        Ok(s) => caller.require(&s.team, Role::TeamMember),
        Err(slipway_store::StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No credential.
    Public,
    /// Any authenticated caller.
    Read,
    Admin,
    /// `role` in the team of the service named by the path's `{name}` or `{service_name}`.
    ServiceInPath(Role),
    /// `role` in the team of the deployment's service (path `{id}` or `{build_id}`).
    DeploymentInPath(Role),
    /// `role` in the team named by the path's `{name}`.
    TeamInPath(Role),
    /// The handler checks, from the request body (e.g. the team of a new service).
    InHandler,
}

/// Rules of the mutating routes (every `GET` needs any credential: `Read`). A test fails when a
/// route of the API has no rule here.
pub const RULES: &[(&str, &str, Rule)] = &[
    ("POST", "/platform/services", Rule::InHandler),
    ("POST", "/platform/deployments", Rule::InHandler),
    ("POST", "/api/v1/teams", Rule::Admin),
    (
        "PUT",
        "/api/v1/teams/{name}/members/{user}",
        Rule::TeamInPath(Role::TeamMaintainer),
    ),
    (
        "DELETE",
        "/api/v1/teams/{name}/members/{user}",
        Rule::TeamInPath(Role::TeamMaintainer),
    ),
    ("POST", "/api/v1/users", Rule::Admin),
    ("POST", "/api/v1/tokens", Rule::InHandler),
    ("DELETE", "/api/v1/tokens/{id}", Rule::InHandler),
    ("POST", "/api/v1/environments", Rule::Admin),
    ("DELETE", "/api/v1/environments/{name}", Rule::Admin),
    ("POST", "/api/v1/services", Rule::InHandler),
    (
        "PATCH",
        "/api/v1/services/{name}",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    (
        "DELETE",
        "/api/v1/services/{name}",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    (
        "POST",
        "/api/v1/services/{name}/scaffold/push",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    (
        "PUT",
        "/api/v1/services/{name}/environments/{env}/variables",
        Rule::ServiceInPath(Role::TeamMember),
    ),
    (
        "PUT",
        "/api/v1/services/{name}/environments/{env}/secrets/{secret}",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    (
        "DELETE",
        "/api/v1/services/{name}/environments/{env}/secrets/{secret}",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    ("POST", "/api/v1/deployments", Rule::InHandler),
    (
        "POST",
        "/api/v1/deployments/{id}/rollback",
        Rule::DeploymentInPath(Role::TeamMember),
    ),
    (
        "POST",
        "/api/v1/deployments/{id}/cancel",
        Rule::DeploymentInPath(Role::TeamMember),
    ),
    (
        "DELETE",
        "/api/v1/deployments/{id}",
        Rule::DeploymentInPath(Role::TeamMember),
    ),
    ("POST", "/api/v1/analyze", Rule::Read),
    ("POST", "/api/v1/templates/{name}/render", Rule::Read),
    ("POST", "/api/v1/templates/upgrade", Rule::Admin),
    ("GET", "/api/v1/audit", Rule::Admin),
    // The portal's forms (CSRF-protected; the session cookie is their credential).
    ("POST", "/services/new", Rule::InHandler),
    (
        "POST",
        "/services/{name}/deploy",
        Rule::ServiceInPath(Role::TeamMember),
    ),
    (
        "POST",
        "/services/{name}/scaffold/push",
        Rule::ServiceInPath(Role::TeamMaintainer),
    ),
    (
        "POST",
        "/deployments/{id}/rollback",
        Rule::DeploymentInPath(Role::TeamMember),
    ),
    (
        "POST",
        "/deployments/{id}/cancel",
        Rule::DeploymentInPath(Role::TeamMember),
    ),
    ("POST", "/login", Rule::Public),
    ("POST", "/logout", Rule::Read),
    ("GET", "/api/v1/tokens", Rule::Admin),
];

/// Routes that never need a credential.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
        || path == "/docs"
        || path.starts_with("/docs/")
        || path.starts_with("/openapi.")
        || path.starts_with("/portal/assets/")
        || path == "/login"
}

/// The portal's session cookie: an API token made at login.
pub const SESSION_COOKIE: &str = "slipway_session";

/// Pages for people (the portal, the dashboard), where a session cookie is a credential and a
/// missing one leads to the login page. The API never takes cookies.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/platform/"))
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).filter(|v| v.starts_with(TOKEN_PREFIX) && v.len() <= 80)
}

/// The rule of a route (by its pattern) and method.
pub fn rule_for(method: &Method, pattern: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == pattern)
        .map(|(_, _, r)| *r)
        .or_else(|| (*method == Method::GET || *method == Method::HEAD).then_some(Rule::Read))
}

/// How callers prove who they are.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// `false`: every caller is an anonymous administrator.
    pub required: bool,
    pub jwt: Option<JwtConfig>,
}

#[derive(Clone)]
pub struct JwtConfig {
    pub key: jsonwebtoken::DecodingKey,
    pub algorithm: jsonwebtoken::Algorithm,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim holding `team:role` strings (default `groups`).
    pub groups_claim: String,
}

/// Prefix of Slipway's API tokens.
pub const TOKEN_PREFIX: &str = "slw_";

/// A new random API token and its hash.
pub fn new_token() -> Result<(String, String), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(ApiError::internal)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unauthorized(msg: &str) -> Response {
    let mut res = ApiError::Unauthorized(msg.to_string()).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"slipway\""),
    );
    res
}

/// Authenticates the caller and applies the route's rule.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.auth.required {
        request
            .extensions_mut()
            .insert(Principal::anonymous_admin());
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    if is_public(&path) {
        return next.run(request).await;
    }
    let Some(pattern) = pattern else {
        // No route matched: the fallback answers 404/405 without revealing anything.
        return next.run(request).await;
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let bearer = bearer.or_else(|| {
        is_page(&path)
            .then(|| session_cookie(request.headers()))
            .flatten()
    });
    let Some(bearer) = bearer else {
        if is_page(&path) && request.method() == Method::GET {
            let next = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let location = format!("/login?next={}", urlencode(&next));
            let mut res = axum::http::StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            return res;
        }
        return unauthorized(
            "this route needs a credential: send Authorization: Bearer <token> (an API token from `slipway token create`, or a JWT)",
        );
    };
    let principal = match principal_for(&state, &bearer).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let method = request.method().clone();
    let rule = rule_for(&method, &pattern);
    let remote_addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    if let Err(e) = authorize(&state, &principal, rule, &method, &path, &pattern).await {
        let res = e.into_response();
        audit_refusal(
            &state,
            &principal.name,
            &method,
            &pattern,
            &path,
            remote_addr,
            res.status(),
        )
        .await;
        return res;
    }
    request.extensions_mut().insert(principal.clone());
    let res = next.run(request).await;
    if res.status() == axum::http::StatusCode::FORBIDDEN {
        // Refused by the handler (a rule on the request body, a quota).
        audit_refusal(
            &state,
            &principal.name,
            &method,
            &pattern,
            &path,
            remote_addr,
            res.status(),
        )
        .await;
    }
    res
}

/// Records a refused change in the audit log (reads are not audited).
async fn audit_refusal(
    state: &AppState,
    actor: &str,
    method: &Method,
    pattern: &str,
    path: &str,
    remote_addr: Option<String>,
    status: axum::http::StatusCode,
) {
    if *method == Method::GET || *method == Method::HEAD {
        return;
    }
    let event = slipway_core::NewAuditEvent {
        actor: actor.to_string(),
        action: format!("{method} {pattern}"),
        object_kind: "route".into(),
        object_name: path.to_string(),
        remote_addr,
        result: format!("denied ({})", status.as_u16()),
        detail: serde_json::json!({}),
    };
    if let Err(e) = state.store.record_audit(event).await {
        tracing::warn!(error = %e, "cannot record a refused request in the audit log");
    }
}

/// Principals of recently seen API tokens, so that a request does not cost three database reads.
/// Entries live [`CACHE_TTL`]; revoking a token or changing a membership through this process
/// clears the cache at once (another replica sees the change within the TTL).
#[derive(Default)]
pub struct PrincipalCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (Principal, std::time::Instant)>>,
}

pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl PrincipalCache {
    fn get(&self, key: &str) -> Option<Principal> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, key: String, principal: Principal) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(key, (principal, std::time::Instant::now()));
    }

    /// Forgets everything (after a revocation or a role change).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

async fn principal_for(state: &AppState, bearer: &str) -> Result<Principal, ApiError> {
    if bearer.starts_with(TOKEN_PREFIX) {
        let key = token_hash(bearer);
        if let Some(p) = state.principals.get(&key) {
            return Ok(p);
        }
        let principal = token_principal(state, bearer).await?;
        state.principals.put(key, principal.clone());
        return Ok(principal);
    }
    jwt_principal(state, bearer).await
}

async fn token_principal(state: &AppState, bearer: &str) -> Result<Principal, ApiError> {
    let token = state
        .store
        .token_by_hash(&token_hash(bearer))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown API token".into()))?;
    if token.revoked_at.is_some() {
        return Err(ApiError::Unauthorized("this API token was revoked".into()));
    }
    if token.expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
        return Err(ApiError::Unauthorized("this API token has expired".into()));
    }
    match token.owner {
        TokenOwner::User { user } => user_principal(state, &user).await,
        TokenOwner::Team { team, role } => Ok(Principal {
            name: format!("team:{team}"),
            admin: false,
            teams: BTreeMap::from([(team, role)]),
        }),
    }
}

async fn jwt_principal(state: &AppState, bearer: &str) -> Result<Principal, ApiError> {
    let Some(jwt) = &state.auth.jwt else {
        return Err(ApiError::Unauthorized(
            "not a Slipway API token, and no JWT key is configured".into(),
        ));
    };
    let mut validation = jsonwebtoken::Validation::new(jwt.algorithm);
    validation.validate_aud = jwt.audience.is_some();
    if let Some(aud) = &jwt.audience {
        validation.set_audience(&[aud]);
    }
    if let Some(iss) = &jwt.issuer {
        validation.set_issuer(&[iss]);
    }
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(bearer, &jwt.key, &validation)
        .map_err(|e| ApiError::Unauthorized(format!("invalid JWT: {e}")))?;
    let sub = data.claims["sub"].as_str().unwrap_or_default().to_string();
    if slipway_core::validate::dns_label("sub", &sub).is_err() {
        return Err(ApiError::Unauthorized(
            "the JWT's sub must be a user name (a DNS-1123 label)".into(),
        ));
    }
    let memberships: Vec<Membership> = data.claims[jwt.groups_claim.as_str()]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g.as_str())
                .filter_map(|g| g.split_once(':'))
                .filter_map(|(team, role)| {
                    Role::parse(role).map(|role| Membership {
                        team: team.to_string(),
                        role,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    state.store.ensure_user(&sub).await?;
    let current = state.store.get_user(&sub).await?;
    if current.memberships != memberships {
        state.store.replace_memberships(&sub, &memberships).await?;
    }
    user_principal(state, &sub).await
}

async fn user_principal(state: &AppState, user: &str) -> Result<Principal, ApiError> {
    let u = state.store.get_user(user).await?;
    Ok(Principal {
        name: u.name,
        admin: u.admin,
        teams: u
            .memberships
            .into_iter()
            .map(|m| (m.team, m.role))
            .collect(),
    })
}

/// The value of the path parameter `names[i]` in `path`, matched against `pattern`.
fn path_param<'a>(pattern: &str, path: &'a str, names: &[&str]) -> Option<&'a str> {
    pattern
        .split('/')
        .zip(path.split('/'))
        .find(|(p, _)| names.iter().any(|n| *p == format!("{{{n}}}")))
        .map(|(_, v)| v)
}

async fn authorize(
    state: &AppState,
    principal: &Principal,
    rule: Option<Rule>,
    method: &Method,
    path: &str,
    pattern: &str,
) -> Result<(), ApiError> {
    match rule {
        None => Err(ApiError::Forbidden(format!(
            "{method} {pattern} has no authorization rule; refused"
        ))),
        Some(Rule::Public | Rule::Read | Rule::InHandler) => Ok(()),
        Some(Rule::Admin) => principal.require_admin(),
        Some(Rule::ServiceInPath(role)) => {
            let Some(name) = path_param(pattern, path, &["name", "service_name"]) else {
                return principal.require_admin();
            };
            match state.store.get_service(name).await {
                Ok(s) => principal.require(&s.team, role),
                // The handler answers 404.
                Err(slipway_store::StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Some(Rule::DeploymentInPath(role)) => {
            let Some(id) = path_param(pattern, path, &["id", "build_id"]) else {
                return principal.require_admin();
            };
            match state.store.get_deployment(id).await {
                Ok(d) => {
                    let team = state.store.get_service(&d.service).await?.team;
                    principal.require(&team, role)
                }
                Err(slipway_store::StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Some(Rule::TeamInPath(role)) => {
            let Some(team) = path_param(pattern, path, &["name"]) else {
                return principal.require_admin();
            };
            principal.require(team, role)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_found_by_name() {
        assert_eq!(
            path_param(
                "/api/v1/services/{name}/environments/{env}/variables",
                "/api/v1/services/pay/environments/dev/variables",
                &["name"]
            ),
            Some("pay")
        );
        assert_eq!(
            path_param(
                "/api/v1/deployments/{id}/cancel",
                "/api/v1/deployments/x1/cancel",
                &["id"]
            ),
            Some("x1")
        );
    }

    #[test]
    fn roles_are_ordered() {
        let p = Principal {
            name: "bob".into(),
            admin: false,
            teams: BTreeMap::from([("a".to_string(), Role::TeamMember)]),
        };
        assert!(p.require("a", Role::Viewer).is_ok());
        assert!(p.require("a", Role::TeamMember).is_ok());
        assert!(p.require("a", Role::TeamMaintainer).is_err());
        assert!(p.require("b", Role::Viewer).is_err());
        assert!(p.require_admin().is_err());
        assert!(Principal::anonymous_admin()
            .require("x", Role::TeamMaintainer)
            .is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 68);
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert!(!ha.contains(&a[4..]));
    }
}
