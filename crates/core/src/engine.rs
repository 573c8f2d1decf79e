//! Records of the deployment engine: deployment events and log lines, immutable releases, the
//! variables a release runs with, durable jobs and the local target's running instances.

use crate::DeploymentStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One transition of a deployment, with when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentEvent {
    /// 1, 2, 3… within the deployment.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub status: DeploymentStatus,
    pub reason: String,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Written by Slipway itself (steps, decisions, errors).
    System,
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "system" => Some(Self::System),
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// One line of a deployment's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// 1, 2, 3… within the deployment; a follower asks for lines after the last it saw.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

/// A log line before the store numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    pub at: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

/// An immutable build of a service for one environment: the commit, the plan it was built with and
/// the variables it runs with. A rollback runs an earlier release again, never rebuilds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    pub id: String,
    pub service: String,
    pub environment: String,
    /// The deployment that built it.
    pub deployment_id: String,
    pub commit_sha: String,
    /// The analyzer's build plan, as JSON.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    /// The environment variables it runs with (names and values; secrets are kept elsewhere).
    pub variables: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// When it first passed its health check and took traffic: only such releases are rollback targets.
    pub healthy_at: Option<DateTime<Utc>>,
}

/// What a deployment's `Idempotency-Key` is remembered by: the caller and route (`scope`), the key,
/// and a fingerprint of the request body (the same key with another body is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

/// What a new deployment runs: a build of the ref, or an earlier release again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentSource {
    /// Analyze and build `git_ref` (the default branch when `None`).
    Build { git_ref: Option<String> },
    /// Run `release_id` again (a rollback of deployment `rollback_of`).
    Release {
        release_id: String,
        rollback_of: String,
    },
}

/// A job of the durable queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    /// What it works on, e.g. a deployment id.
    pub subject: String,
    pub payload: serde_json::Value,
    /// Jobs with the same key run one at a time, oldest first.
    pub concurrency_key: Option<String>,
    pub status: JobStatus,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub subject: String,
    pub payload: serde_json::Value,
    pub concurrency_key: Option<String>,
    pub max_attempts: i32,
}

/// How a claimed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// A transient error: queue it again to run at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// A permanent error, or the attempts are used up.
    Failed {
        error: String,
    },
    Cancelled,
}

/// A job's name for the deployment engine.
pub mod job_kind {
    pub const DEPLOY: &str = "deploy";
    pub const DESTROY: &str = "destroy";
}

/// The queue the deployment engine's workers take jobs from.
pub const DEPLOY_QUEUE: &str = "deployments";

/// One process of a release run by the local target, recorded so that a restarted Slipway can find
/// (and stop) what the previous process started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub service: String,
    pub environment: String,
    pub release_id: String,
    /// 0, 1, … for `replicas` instances.
    pub slot: i32,
    pub pid: i64,
    /// The process start time (clock ticks since boot, from `/proc/<pid>/stat`), so a recycled pid is
    /// never mistaken for ours.
    pub pid_start: i64,
    pub port: i32,
    /// `starting`, `serving` or `stopping`.
    pub state: String,
    pub started_at: DateTime<Utc>,
}

/// Runtime figures of a service in one environment over one sampling interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuntimeSample {
    pub service: String,
    pub environment: String,
    pub at: DateTime<Utc>,
    /// Instances running.
    pub instances: i32,
    /// CPU used by all instances, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory of all instances.
    pub memory_bytes: i64,
    /// Requests answered through the proxy during the interval.
    pub requests: i64,
    /// 5xx answers during the interval.
    pub errors: i64,
    /// Latency percentiles of the interval's requests (`null` without requests).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub name: String,
    /// 1 for the first value, +1 for each new value.
    pub version: i32,
    /// Always `"********"`: values are write-only.
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

/// A secret as the database keeps it: encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub service: String,
    pub environment: String,
    pub name: String,
    pub version: i32,
    pub key_id: String,
    pub ciphertext: Vec<u8>,
}

/// The mask shown instead of a secret's value.
pub const SECRET_MASK: &str = "********";
