//! The push of a scaffolded service's repository to the remote given at registration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a scaffold's push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScaffoldPushStatus {
    /// Registered, not pushed yet (or a push is under way).
    Pending,
    /// The remote's branch holds the scaffold's commit.
    Pushed,
    /// The last attempt failed; `error` says why. `POST /api/v1/services/{name}/scaffold/push` retries.
    Failed,
}

impl ScaffoldPushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Pushed => "pushed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "pushed" => Some(Self::Pushed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A scaffolded service's push to its remote: the local repository under the data directory
/// stays the working copy, the remote becomes the service's `repo_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScaffoldPush {
    #[schema(example = "ledger")]
    pub service: String,
    /// The remote pushed to, with any credentials redacted.
    #[schema(example = "https://git.example.com/finance/ledger")]
    pub remote: String,
    /// The only branch pushed: the scaffold's default branch.
    #[schema(example = "main")]
    pub branch: String,
    pub status: ScaffoldPushStatus,
    /// The commit the remote branch points at, once pushed.
    pub commit: Option<String>,
    /// Why the last attempt failed: git's message, credentials redacted.
    pub error: Option<String>,
    /// Finished attempts (pushed or failed).
    pub attempts: i64,
    pub updated_at: DateTime<Utc>,
}
