//! Catalog records as the store keeps them and the API shows them.

use crate::deployment::DeploymentStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A team owns services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Team {
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A registered service: who owns it and where its code lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    pub name: String,
    pub team: String,
    pub repo_url: String,
    /// Golden-path template the service was registered with (`default` when none was chosen).
    pub template: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A deployment environment (`dev` always exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Where an artifact belongs: the platform repository, or the service's own repository.
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
#[serde(rename_all = "lowercase")]
pub enum ArtifactScope {
    Platform,
    Service,
}

impl ArtifactScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for ArtifactScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArtifactScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "platform" => Ok(Self::Platform),
            "service" => Ok(Self::Service),
            _ => Err(format!(
                "unknown scope {s:?}; expected \"platform\" or \"service\""
            )),
        }
    }
}

/// A generated file. The database holds its content and is the source of truth; the platform
/// repository is a projection of the `platform` scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Owning service; `None` for platform-wide files such as the shared Terraform modules.
    pub service: Option<String>,
    pub scope: ArtifactScope,
    /// Path inside its repository, `/`-separated, relative.
    pub path: String,
    pub content: Vec<u8>,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    /// `<generator>@<version>` of what produced it, e.g. `slipway-golden-paths/default@1`.
    pub generator: String,
}

/// An artifact without its content, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactInfo {
    pub scope: ArtifactScope,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub generator: String,
}

impl Artifact {
    pub fn info(&self) -> ArtifactInfo {
        ArtifactInfo {
            scope: self.scope,
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            size: self.content.len() as u64,
            generator: self.generator.clone(),
        }
    }
}

/// One deployment of one service to one environment. Its `id` is seed 000's `build_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    pub id: String,
    pub service: String,
    pub environment: String,
    /// Git ref requested (branch, tag or SHA); `None` means the repository's default branch.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub status: DeploymentStatus,
    /// The status the deployment had before it was destroyed, kept for the seed-000 view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_before_destroy: Option<DeploymentStatus>,
    /// Who or what asked for it (`api`, `platform-api`, `cli`, …).
    pub trigger: String,
    /// The release it runs, once built (or from the start, for a rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    /// The deployment this one rolls back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The commit the ref resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// Where the app answers once EXPOSED.
    pub url: Option<String>,
    /// Why it is in its current state (the latest event's reason).
    pub reason: Option<String>,
    /// Instances to run (the local target balances them behind its proxy).
    pub replicas: u32,
    /// Memory and CPU per instance, when the request set them (else the plan's or the defaults).
    #[serde(skip_serializing_if = "Resources::is_empty", default)]
    pub resources: Resources,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Memory and CPU one instance may use (seed 002's `resources`); the local target enforces them
/// with control groups. `None`: not set here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Memory in MiB (e.g. 512).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_mb: Option<u32>,
    /// CPU in thousandths of a CPU, Kubernetes' millicores (e.g. 500 for half a CPU).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_millis: Option<u32>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory_mb.is_none() && self.cpu_millis.is_none()
    }

    /// `self`'s values where set, else `fallback`'s.
    pub fn or(self, fallback: Resources) -> Resources {
        Resources {
            memory_mb: self.memory_mb.or(fallback.memory_mb),
            cpu_millis: self.cpu_millis.or(fallback.cpu_millis),
        }
    }
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    pub remote_addr: Option<String>,
    pub result: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// An audit entry before the store numbers and timestamps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    pub remote_addr: Option<String>,
    pub result: String,
    pub detail: serde_json::Value,
}

/// Who made a change and from where, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub remote_addr: Option<String>,
}

impl Actor {
    pub fn audit(
        &self,
        action: &str,
        object_kind: &str,
        object_name: &str,
        detail: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor: self.name.clone(),
            action: action.to_string(),
            object_kind: object_kind.to_string(),
            object_name: object_name.to_string(),
            remote_addr: self.remote_addr.clone(),
            result: "success".to_string(),
            detail,
        }
    }
}

/// A service registration as the store receives it: the row and every artifact it produced.
#[derive(Debug, Clone)]
pub struct NewService {
    pub name: String,
    pub team: String,
    pub repo_url: String,
    pub template: String,
    pub description: Option<String>,
    pub artifacts: Vec<Artifact>,
    /// Platform-wide files (shared modules) to insert or update alongside.
    pub platform_files: Vec<Artifact>,
    /// For a scaffold registered with a remote: its push, `pending`, recorded in the same
    /// transaction, so that a process stopped before the push ends leaves a record to resume.
    pub scaffold_push: Option<crate::ScaffoldPush>,
}

/// Changes to a service; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ServiceUpdate {
    pub team: Option<String>,
    pub repo_url: Option<String>,
    pub description: Option<Option<String>>,
    /// Regenerated artifacts (a new team or repository); the service's other artifacts stay.
    pub artifacts: Option<RegeneratedArtifacts>,
}

/// What a service's regeneration changes in its artifacts. Artifacts named nowhere here are left
/// as they are: those a team edited, and those whose rendering did not change.
#[derive(Debug, Clone, Default)]
pub struct RegeneratedArtifacts {
    /// Inserted, or replacing the artifact at their path, as generated (a recorded team edit of
    /// that artifact is cleared).
    pub writes: Vec<Artifact>,
    /// Deleted: the service's template no longer produces them.
    pub removes: Vec<(ArtifactScope, String)>,
    /// `<scope>/<path>` of the artifacts left as they are because a team edited them, for the
    /// audit event.
    pub left_as_edited: Vec<String>,
}

/// A new deployment request.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub service: String,
    pub environment: String,
    pub source: crate::DeploymentSource,
    pub trigger: String,
    /// Instances to run; 1 unless asked.
    pub replicas: u32,
    /// Memory and CPU per instance the request asked for.
    pub resources: Resources,
    /// When given, a request with the same scope and key returns the deployment it created.
    pub idempotency: Option<crate::IdempotencyKey>,
}

/// Fields a transition may set beside the status.
#[derive(Debug, Clone, Default)]
pub struct TransitionUpdate {
    pub release_id: Option<String>,
    pub commit_sha: Option<String>,
    pub url: Option<String>,
}

/// Filters and paging for the service list.
#[derive(Debug, Clone, Default)]
pub struct ServiceQuery {
    pub team: Option<String>,
    /// Substring of the name.
    pub search: Option<String>,
    pub template: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// Filters and paging for the deployment list.
#[derive(Debug, Clone, Default)]
pub struct DeploymentQuery {
    pub service: Option<String>,
    pub environment: Option<String>,
    pub status: Option<DeploymentStatus>,
    /// Only deployments that are the newest of their service (or of their service in their
    /// environment). Applied before the other filters, so `status` then asks "whose newest
    /// deployment has this status".
    pub newest_of: Option<NewestOf>,
    /// Only deployments of services matching this filter (its `limit` and `offset` are ignored).
    pub services: Option<ServiceQuery>,
    pub limit: u32,
    pub offset: u64,
}

/// The group a deployment must be the newest of (see [`DeploymentQuery::newest_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewestOf {
    /// The newest deployment of each service, whatever its environment.
    Service,
    /// The newest deployment of each service in each environment.
    ServiceEnvironment,
}

/// Filters and paging for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    pub action: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// One page of a list, with the total that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}
