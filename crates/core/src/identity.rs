//! Who calls: users, their roles in teams, API tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A role in one team. `admin` is not a team role: it is a flag on the user.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read the team's services, deployments and logs.
    Viewer,
    /// Also deploy, roll back, cancel, set variables, register services in the team.
    TeamMember,
    /// Also change and delete services, manage secrets and members.
    TeamMaintainer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::TeamMember, Role::TeamMaintainer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::TeamMember => "team-member",
            Self::TeamMaintainer => "team-maintainer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Membership {
    pub team: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub email: Option<String>,
    /// Administrators may do everything.
    pub admin: bool,
    pub memberships: Vec<Membership>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: Option<String>,
    /// An argon2id PHC string, for the portal's login.
    pub password_hash: Option<String>,
    pub admin: bool,
}

/// Whom a token acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenOwner {
    User {
        user: String,
    },
    /// A team's service account, with one role in that team.
    Team {
        team: String,
        role: Role,
    },
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub owner: TokenOwner,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub name: String,
    pub owner: TokenOwner,
    pub expires_at: Option<DateTime<Utc>>,
}
