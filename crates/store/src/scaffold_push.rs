//! Rows of `scaffold_pushes` (migration 0007), shared by both backends.

use chrono::{DateTime, Utc};
use serde_json::json;
use slipway_core::{Actor, NewAuditEvent, ScaffoldPush, ScaffoldPushStatus};

pub(crate) const COLUMNS: &str =
    "service, remote, branch, status, commit_sha, error, attempts, updated_at";

/// Pushes still pending, oldest first.
pub(crate) const PENDING: &str = "SELECT service, remote, branch, status, commit_sha, error, \
     attempts, updated_at FROM scaffold_pushes WHERE status = 'pending' ORDER BY updated_at, service";

/// The upsert: a finished attempt (pushed or failed) counts one more; `pending` counts none.
/// `$1..$7` are service, remote, branch, status, commit_sha, error, updated_at.
pub(crate) const UPSERT: &str = "INSERT INTO scaffold_pushes \
     (service, remote, branch, status, commit_sha, error, attempts, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 = 'pending' THEN 0 ELSE 1 END, $7) \
     ON CONFLICT (service) DO UPDATE SET remote = excluded.remote, branch = excluded.branch, \
     status = excluded.status, commit_sha = excluded.commit_sha, error = excluded.error, \
     attempts = scaffold_pushes.attempts + excluded.attempts, updated_at = excluded.updated_at \
     RETURNING service, remote, branch, status, commit_sha, error, attempts, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    service: String,
    remote: String,
    branch: String,
    status: String,
    commit_sha: Option<String>,
    error: Option<String>,
    attempts: i64,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for ScaffoldPush {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        let status = ScaffoldPushStatus::parse(&r.status).ok_or_else(|| {
            sqlx::Error::Decode(format!("scaffold push status {:?}", r.status).into())
        })?;
        Ok(ScaffoldPush {
            service: r.service,
            remote: r.remote,
            branch: r.branch,
            status,
            commit: r.commit_sha,
            error: r.error,
            attempts: r.attempts,
            updated_at: r.updated_at,
        })
    }
}

/// The audit entry of a finished attempt (`None` for `pending`, which registration audits).
pub(crate) fn audit(push: &ScaffoldPush, actor: &Actor) -> Option<NewAuditEvent> {
    let result = match push.status {
        ScaffoldPushStatus::Pending => return None,
        ScaffoldPushStatus::Pushed => "success",
        ScaffoldPushStatus::Failed => "failed",
    };
    let mut event = actor.audit(
        "service.scaffold_push",
        "service",
        &push.service,
        json!({
            "remote": push.remote,
            "branch": push.branch,
            "commit": push.commit,
            "error": push.error,
        }),
    );
    event.result = result.to_string();
    Some(event)
}
