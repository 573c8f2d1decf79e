//! Users, team members and API tokens.

use crate::auth::{new_token, Caller, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ValidJson, ValidPath};
use crate::{AppState, RequestActor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{
    validate, ApiToken, FieldError, NewToken, NewUser, Role, TokenOwner, User, ValidationErrors,
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", get(get_user))
        .route(
            "/api/v1/teams/{name}/members/{user}",
            put(set_member).delete(remove_member),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    pub admin: bool,
    /// Team → role.
    pub teams: std::collections::BTreeMap<String, Role>,
}

/// The caller as Slipway sees it.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(Caller(p): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: p.name,
        admin: p.admin,
        teams: p.teams,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub name: String,
    pub email: Option<String>,
    /// For the portal's login; stored as an argon2id hash.
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

/// Creates a user (admin only).
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", request_body = UserCreate, responses(
    (status = 201, body = User),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidJson(req): ValidJson<UserCreate>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::dns_label("name", &req.name));
    if let Some(email) = &req.email {
        if email.len() > 254
            || !email.contains('@')
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(FieldError::new("email", "is not an email address"));
        }
    }
    if let Some(pw) = &req.password {
        if pw.len() < 12 || pw.len() > 1024 {
            errors.push(FieldError::new("password", "must be 12 to 1024 characters"));
        }
    }
    errors.into_result()?;
    let password_hash = match &req.password {
        Some(pw) => Some(hash_password(pw)?),
        None => None,
    };
    let user = state
        .store
        .create_user(
            NewUser {
                name: req.name,
                email: req.email,
                password_hash,
                admin: req.admin,
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// An argon2id PHC string.
pub fn hash_password(password: &str) -> ApiResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(ApiError::internal)?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))
}

/// Whether `password` matches a stored argon2id hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "identity", responses((status = 200, body = Vec<User>)))]
pub async fn list_users(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.list_users().await?))
}

#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "identity", params(("name" = String, Path)), responses(
    (status = 200, body = User),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(
    State(state): State<AppState>,
    ValidPath(name): ValidPath<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.store.get_user(&name).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    pub role: Role,
}

/// Gives a user a role in a team (team maintainers and admins).
#[utoipa::path(put, path = "/api/v1/teams/{name}/members/{user}", tag = "identity",
    params(("name" = String, Path), ("user" = String, Path)), request_body = MemberRole, responses(
    (status = 204),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn set_member(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath((team, user)): ValidPath<(String, String)>,
    ValidJson(req): ValidJson<MemberRole>,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_membership(&user, &team, Some(req.role), &actor)
        .await?;
    state.principals.clear();
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/teams/{name}/members/{user}", tag = "identity",
    params(("name" = String, Path), ("user" = String, Path)), responses(
    (status = 204),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove_member(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    ValidPath((team, user)): ValidPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_membership(&user, &team, None, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// What it is for, e.g. `ci` or `laptop`.
    pub name: String,
    /// A token for this team's service account instead of the caller.
    pub team: Option<String>,
    /// The service account's role (default `team-member`).
    pub role: Option<Role>,
    /// A token for another user (admins only).
    pub user: Option<String>,
    /// Days until it expires (default: never).
    pub expires_in_days: Option<u32>,
}

/// A new token: the only time `token` is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

fn token_owner(caller: &Principal, req: &TokenCreate) -> ApiResult<TokenOwner> {
    match (&req.team, &req.user) {
        (Some(_), Some(_)) => Err(ApiError::field("user", "give team or user, not both")),
        (Some(team), None) => {
            let role = req.role.unwrap_or(Role::TeamMember);
            // A maintainer can make tokens for the team, up to its own role.
            caller.require(team, Role::TeamMaintainer)?;
            caller.require(team, role)?;
            Ok(TokenOwner::Team {
                team: team.clone(),
                role,
            })
        }
        (None, Some(user)) => {
            if *user != caller.name {
                caller.require_admin()?;
            }
            Ok(TokenOwner::User { user: user.clone() })
        }
        (None, None) => {
            if caller.name.starts_with("team:") || caller.name == "anonymous" {
                return Err(ApiError::field(
                    "user",
                    "this caller is not a user: name the user or the team the token is for",
                ));
            }
            Ok(TokenOwner::User {
                user: caller.name.clone(),
            })
        }
    }
}

/// Creates an API token for the caller, another user (admins), or a team's service account (its
/// maintainers). The token is shown once; Slipway keeps only its hash.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", request_body = TokenCreate, responses(
    (status = 201, body = TokenCreated),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_token(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Caller(caller): Caller,
    ValidJson(req): ValidJson<TokenCreate>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let mut errors = ValidationErrors::default();
    errors.check(validate::free_text("name", &req.name, 100));
    if req.name.is_empty() {
        errors.push(FieldError::new("name", "must not be empty"));
    }
    if let Some(t) = &req.team {
        errors.check(validate::dns_label("team", t));
    }
    if let Some(u) = &req.user {
        errors.check(validate::dns_label("user", u));
    }
    if req.expires_in_days == Some(0) {
        errors.push(FieldError::new("expires_in_days", "must be at least 1"));
    }
    errors.into_result()?;
    let owner = token_owner(&caller, &req)?;
    let (token, token_hash) = new_token()?;
    let info = state
        .store
        .create_token(
            NewToken {
                id: uuid::Uuid::now_v7().to_string(),
                token_hash,
                name: req.name,
                owner,
                expires_at: req
                    .expires_in_days
                    .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { token, info })))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", responses((status = 200, body = Vec<ApiToken>)))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.store.list_tokens().await?))
}

/// Revokes a token (its owner, the team's maintainers, or an admin).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity", params(("id" = String, Path)), responses(
    (status = 200, body = ApiToken),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Caller(caller): Caller,
    ValidPath(id): ValidPath<String>,
) -> ApiResult<Json<ApiToken>> {
    let token = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no token {id:?}")))?;
    match &token.owner {
        TokenOwner::User { user } if *user == caller.name => {}
        TokenOwner::Team { team, .. } => caller.require(team, Role::TeamMaintainer)?,
        TokenOwner::User { .. } => caller.require_admin()?,
    }
    let revoked = state.store.revoke_token(&id, &actor).await?;
    state.principals.clear();
    Ok(Json(revoked))
}
