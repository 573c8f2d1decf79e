//! What the two backends share: row shapes, filters, timestamps and audit details. SQL that differs
//! between SQLite and PostgreSQL stays in each backend's module.

use crate::{effective_limit, Result, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use slipway_core::{
    job_kind, ApiToken, Artifact, ArtifactInfo, ArtifactScope, AuditEvent, AuditQuery, Deployment,
    DeploymentEvent, DeploymentQuery, DeploymentSource, DeploymentStatus, Environment, Instance,
    Job, JobOutcome, JobStatus, LogLine, LogStream, Membership, NewDeployment, NewJob, NewService,
    NewestOf, Release, Role, RuntimeSample, Service, ServiceQuery, ServiceUpdate, Team, TokenOwner,
    DEPLOY_QUEUE,
};
use sqlx::{Database, Encode, QueryBuilder, Type};

/// The current time at the precision both backends keep (microseconds), so that a record returned by a
/// write equals what a later read returns.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// How the `artifacts` table keys a platform-wide file's owner: `''` for none.
pub(crate) fn owner_key(service: Option<&str>) -> &str {
    service.unwrap_or("")
}

/// `NotFound` for `''`: the owner key of platform-wide files names no service.
pub(crate) fn require_service_name(service: &str) -> Result<()> {
    if service.is_empty() {
        return Err(StoreError::NotFound {
            kind: "service",
            name: String::new(),
        });
    }
    Ok(())
}

/// `LIMIT` and `OFFSET` as the databases take them.
pub(crate) fn limit_offset(limit: u32, offset: u64) -> (i64, i64) {
    (
        i64::from(effective_limit(limit)),
        i64::try_from(offset).unwrap_or(i64::MAX),
    )
}

/// A `LIKE … ESCAPE '\'` pattern matching `needle` anywhere, with the user's `%`, `_` and `\` taken
/// literally.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One condition of a list query's `WHERE` clause.
pub(crate) enum Condition {
    /// `column = value`
    Equals(&'static str, String),
    /// `column` contains `value`, case-insensitively (see [`contains_pattern`]).
    Contains(&'static str, String),
    /// The `deployments` row is the newest of its group in the lists' order (`created_at DESC,
    /// id DESC`), as `latest_deployments` records it.
    NewestDeployment(NewestOf),
    /// The row's `service` is the name of a service matching these conditions.
    InServices(Vec<Condition>),
}

pub(crate) fn service_conditions(q: &ServiceQuery) -> Vec<Condition> {
    let mut conds = Vec::new();
    if let Some(team) = &q.team {
        conds.push(Condition::Equals("team", team.clone()));
    }
    if let Some(template) = &q.template {
        conds.push(Condition::Equals("template", template.clone()));
    }
    if let Some(search) = q.search.as_deref().filter(|s| !s.is_empty()) {
        conds.push(Condition::Contains("name", contains_pattern(search)));
    }
    conds
}

pub(crate) fn deployment_conditions(q: &DeploymentQuery) -> Vec<Condition> {
    let mut conds = Vec::new();
    if let Some(service) = &q.service {
        conds.push(Condition::Equals("service", service.clone()));
    }
    if let Some(environment) = &q.environment {
        conds.push(Condition::Equals("environment", environment.clone()));
    }
    if let Some(status) = q.status {
        conds.push(Condition::Equals("status", status.as_str().to_string()));
    }
    if let Some(newest_of) = q.newest_of {
        conds.push(Condition::NewestDeployment(newest_of));
    }
    if let Some(services) = &q.services {
        let inner = service_conditions(services);
        if !inner.is_empty() {
            conds.push(Condition::InServices(inner));
        }
    }
    conds
}

pub(crate) fn audit_conditions(q: &AuditQuery) -> Vec<Condition> {
    let mut conds = Vec::new();
    if let Some(kind) = &q.object_kind {
        conds.push(Condition::Equals("object_kind", kind.clone()));
    }
    if let Some(name) = &q.object_name {
        conds.push(Condition::Equals("object_name", name.clone()));
    }
    if let Some(action) = &q.action {
        conds.push(Condition::Equals("action", action.clone()));
    }
    conds
}

/// Appends ` WHERE …` for `conds` (nothing when empty). `case_insensitive_like` is the operator that
/// matches a `LIKE` pattern ignoring case: `LIKE` on SQLite, `ILIKE` on PostgreSQL.
pub(crate) fn push_where<'a, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    conds: &[Condition],
    case_insensitive_like: &str,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    for (i, cond) in conds.iter().enumerate() {
        qb.push(if i == 0 { " WHERE " } else { " AND " });
        match cond {
            Condition::Equals(column, value) => {
                qb.push(*column).push(" = ").push_bind(value.clone());
            }
            Condition::Contains(column, pattern) => {
                qb.push(*column)
                    .push(" ")
                    .push(case_insensitive_like)
                    .push(" ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\'");
            }
            Condition::NewestDeployment(of) => {
                // One row per service (and environment) in `latest_deployments`, kept by
                // `create_deployment`: no walk over every deployment.
                qb.push("deployments.id IN (SELECT deployment_id FROM latest_deployments WHERE environment ");
                qb.push(match of {
                    NewestOf::Service => "= '*')",
                    NewestOf::ServiceEnvironment => "<> '*')",
                });
            }
            Condition::InServices(inner) => {
                qb.push("service IN (SELECT name FROM services");
                push_where(qb, inner, case_insensitive_like);
                qb.push(")");
            }
        }
    }
}

/// Platform-wide files in one fixed order, so that concurrent registrations updating the same files
/// lock their rows in the same order (no deadlock on PostgreSQL).
pub(crate) fn sorted_files(files: &[Artifact]) -> Vec<&Artifact> {
    let mut sorted: Vec<&Artifact> = files.iter().collect();
    sorted.sort_by(|a, b| (a.scope, &a.path).cmp(&(b.scope, &b.path)));
    sorted
}

/// A service as registered, before it is written.
pub(crate) fn new_service_record(new: &NewService, at: DateTime<Utc>) -> Service {
    Service {
        name: new.name.clone(),
        team: new.team.clone(),
        repo_url: new.repo_url.clone(),
        template: new.template.clone(),
        description: new.description.clone(),
        created_at: at,
        updated_at: at,
    }
}

pub(crate) fn register_detail(new: &NewService) -> serde_json::Value {
    let mut detail = json!({
        "team": new.team,
        "repo_url": new.repo_url,
        "template": new.template,
        "artifacts": new.artifacts.len(),
        "platform_files": new.platform_files.len(),
    });
    if let Some(push) = &new.scaffold_push {
        detail["scaffold_push"] = json!({ "remote": push.remote, "branch": push.branch });
    }
    detail
}

/// Applies `update` to `service` and returns the audit detail: the fields changed with their new
/// values and, when artifacts were regenerated, how many were written, which were removed and
/// which were left as a team edited them (`conflicts`, as in a template upgrade's event).
pub(crate) fn apply_update(
    service: &mut Service,
    update: &ServiceUpdate,
    at: DateTime<Utc>,
) -> serde_json::Value {
    let mut detail = serde_json::Map::new();
    if let Some(team) = &update.team {
        service.team = team.clone();
        detail.insert("team".into(), json!(team));
    }
    if let Some(repo_url) = &update.repo_url {
        service.repo_url = repo_url.clone();
        detail.insert("repo_url".into(), json!(repo_url));
    }
    if let Some(description) = &update.description {
        service.description = description.clone();
        detail.insert("description".into(), json!(description));
    }
    if let Some(artifacts) = &update.artifacts {
        detail.insert("artifacts".into(), json!(artifacts.writes.len()));
        if !artifacts.removes.is_empty() {
            let removed: Vec<String> = artifacts
                .removes
                .iter()
                .map(|(scope, path)| format!("{scope}/{path}"))
                .collect();
            detail.insert("removed".into(), json!(removed));
        }
        detail.insert("conflicts".into(), json!(artifacts.left_as_edited));
    }
    service.updated_at = at;
    serde_json::Value::Object(detail)
}

/// Why an environment cannot be deleted, if it cannot.
pub(crate) fn environment_delete_refusal(name: &str, deployments: i64) -> Option<String> {
    if name == "dev" {
        return Some(
            "environment \"dev\" cannot be deleted: it is the default environment every service deploys to".into(),
        );
    }
    (deployments > 0).then(|| {
        format!(
            "environment {name:?} cannot be deleted: {deployments} deployment(s) refer to it; \
             delete the services deployed there (which removes their deployments) first"
        )
    })
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn parse_status(s: &str) -> Result<DeploymentStatus, sqlx::Error> {
    s.parse().map_err(decode_error)
}

fn parse_scope(s: &str) -> Result<ArtifactScope, sqlx::Error> {
    s.parse().map_err(decode_error)
}

fn to_u64(n: i64) -> u64 {
    // Counts and sizes are never negative.
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn total(count: i64) -> u64 {
    to_u64(count)
}

#[derive(sqlx::FromRow)]
pub(crate) struct TeamRow {
    name: String,
    created_at: DateTime<Utc>,
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Self {
        Team {
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EnvironmentRow {
    name: String,
    created_at: DateTime<Utc>,
}

impl From<EnvironmentRow> for Environment {
    fn from(r: EnvironmentRow) -> Self {
        Environment {
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ServiceRow {
    name: String,
    team: String,
    repo_url: String,
    template: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ServiceRow> for Service {
    fn from(r: ServiceRow) -> Self {
        Service {
            name: r.name,
            team: r.team,
            repo_url: r.repo_url,
            template: r.template,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ArtifactRow {
    service_name: String,
    scope: String,
    path: String,
    content: Vec<u8>,
    sha256: String,
    generator: String,
}

impl TryFrom<ArtifactRow> for Artifact {
    type Error = sqlx::Error;
    fn try_from(r: ArtifactRow) -> Result<Self, sqlx::Error> {
        Ok(Artifact {
            service: (!r.service_name.is_empty()).then_some(r.service_name),
            scope: parse_scope(&r.scope)?,
            path: r.path,
            content: r.content,
            sha256: r.sha256,
            generator: r.generator,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ArtifactInfoRow {
    scope: String,
    path: String,
    sha256: String,
    size: i64,
    generator: String,
}

impl TryFrom<ArtifactInfoRow> for ArtifactInfo {
    type Error = sqlx::Error;
    fn try_from(r: ArtifactInfoRow) -> Result<Self, sqlx::Error> {
        Ok(ArtifactInfo {
            scope: parse_scope(&r.scope)?,
            path: r.path,
            sha256: r.sha256,
            size: to_u64(r.size),
            generator: r.generator,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeploymentRow {
    id: String,
    service: String,
    environment: String,
    git_ref: Option<String>,
    status: String,
    status_before_destroy: Option<String>,
    trigger: String,
    release_id: Option<String>,
    rollback_of: Option<String>,
    commit_sha: Option<String>,
    url: Option<String>,
    reason: Option<String>,
    replicas: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    memory_mb: Option<i32>,
    cpu_millis: Option<i32>,
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = sqlx::Error;
    fn try_from(r: DeploymentRow) -> Result<Self, sqlx::Error> {
        Ok(Deployment {
            id: r.id,
            service: r.service,
            environment: r.environment,
            git_ref: r.git_ref,
            status: parse_status(&r.status)?,
            status_before_destroy: r
                .status_before_destroy
                .as_deref()
                .map(parse_status)
                .transpose()?,
            trigger: r.trigger,
            release_id: r.release_id,
            rollback_of: r.rollback_of,
            commit_sha: r.commit_sha,
            url: r.url,
            reason: r.reason,
            replicas: u32::try_from(r.replicas).unwrap_or(1),
            resources: slipway_core::Resources {
                memory_mb: r.memory_mb.and_then(|v| u32::try_from(v).ok()),
                cpu_millis: r.cpu_millis.and_then(|v| u32::try_from(v).ok()),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Columns of `deployments`, in `DeploymentRow` order.
pub(crate) const DEPLOYMENT_COLUMNS: &str =
    "id, service, environment, git_ref, status, status_before_destroy, \"trigger\", \
     release_id, rollback_of, commit_sha, url, reason, replicas, created_at, updated_at, \
     memory_mb, cpu_millis";

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    at: DateTime<Utc>,
    status: String,
    reason: String,
}

impl TryFrom<EventRow> for DeploymentEvent {
    type Error = sqlx::Error;
    fn try_from(r: EventRow) -> Result<Self, sqlx::Error> {
        Ok(DeploymentEvent {
            seq: r.seq,
            at: r.at,
            status: parse_status(&r.status)?,
            reason: r.reason,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LogRow {
    seq: i64,
    at: DateTime<Utc>,
    stream: String,
    line: String,
}

impl TryFrom<LogRow> for LogLine {
    type Error = sqlx::Error;
    fn try_from(r: LogRow) -> Result<Self, sqlx::Error> {
        Ok(LogLine {
            seq: r.seq,
            at: r.at,
            stream: LogStream::parse(&r.stream)
                .ok_or_else(|| decode_error(format!("unknown log stream {:?}", r.stream)))?,
            line: r.line,
        })
    }
}

/// `releases` columns; JSON columns read as text (`plan`, `variables`).
#[derive(sqlx::FromRow)]
pub(crate) struct ReleaseRow {
    id: String,
    service: String,
    environment: String,
    deployment_id: String,
    commit_sha: String,
    plan: String,
    variables: String,
    created_at: DateTime<Utc>,
    healthy_at: Option<DateTime<Utc>>,
}

impl TryFrom<ReleaseRow> for Release {
    type Error = sqlx::Error;
    fn try_from(r: ReleaseRow) -> Result<Self, sqlx::Error> {
        Ok(Release {
            id: r.id,
            service: r.service,
            environment: r.environment,
            deployment_id: r.deployment_id,
            commit_sha: r.commit_sha,
            plan: serde_json::from_str(&r.plan)
                .map_err(|e| decode_error(format!("release plan: {e}")))?,
            variables: serde_json::from_str(&r.variables)
                .map_err(|e| decode_error(format!("release variables: {e}")))?,
            created_at: r.created_at,
            healthy_at: r.healthy_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    id: i64,
    queue: String,
    kind: String,
    subject: String,
    payload: String,
    concurrency_key: Option<String>,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    cancel_requested: bool,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for Job {
    type Error = sqlx::Error;
    fn try_from(r: JobRow) -> Result<Self, sqlx::Error> {
        Ok(Job {
            id: r.id,
            queue: r.queue,
            kind: r.kind,
            subject: r.subject,
            payload: serde_json::from_str(&r.payload)
                .map_err(|e| decode_error(format!("job payload: {e}")))?,
            concurrency_key: r.concurrency_key,
            status: JobStatus::parse(&r.status)
                .ok_or_else(|| decode_error(format!("unknown job status {:?}", r.status)))?,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until,
            cancel_requested: r.cancel_requested,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SampleRow {
    service: String,
    environment: String,
    at: DateTime<Utc>,
    instances: i32,
    cpu_percent: f64,
    memory_bytes: i64,
    requests: i64,
    errors: i64,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
}

impl From<SampleRow> for RuntimeSample {
    fn from(r: SampleRow) -> Self {
        RuntimeSample {
            service: r.service,
            environment: r.environment,
            at: r.at,
            instances: r.instances,
            cpu_percent: r.cpu_percent,
            memory_bytes: r.memory_bytes,
            requests: r.requests,
            errors: r.errors,
            latency_p50_ms: r.latency_p50_ms,
            latency_p99_ms: r.latency_p99_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    name: String,
    username: Option<String>,
    team: Option<String>,
    team_role: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

pub(crate) const TOKEN_COLUMNS: &str =
    "id, name, username, team, team_role, created_at, expires_at, revoked_at";

impl TryFrom<TokenRow> for ApiToken {
    type Error = sqlx::Error;
    fn try_from(r: TokenRow) -> Result<Self, sqlx::Error> {
        let owner = match (r.username, r.team, r.team_role) {
            (Some(user), None, _) => TokenOwner::User { user },
            (None, Some(team), Some(role)) => TokenOwner::Team {
                team,
                role: Role::parse(&role)
                    .ok_or_else(|| decode_error(format!("unknown role {role:?}")))?,
            },
            _ => return Err(decode_error("token without a valid owner".into())),
        };
        Ok(ApiToken {
            id: r.id,
            name: r.name,
            owner,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

/// `(user, team, team role)` columns of a token's owner.
pub(crate) fn token_owner_columns(
    owner: &TokenOwner,
) -> (Option<String>, Option<String>, Option<&'static str>) {
    match owner {
        TokenOwner::User { user } => (Some(user.clone()), None, None),
        TokenOwner::Team { team, role } => (None, Some(team.clone()), Some(role.as_str())),
    }
}

pub(crate) fn memberships(rows: Vec<(String, String)>) -> Result<Vec<Membership>> {
    rows.into_iter()
        .map(|(team, role)| {
            Ok(Membership {
                team,
                role: Role::parse(&role)
                    .ok_or_else(|| decode_error(format!("unknown role {role:?}")))?,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct InstanceRow {
    service: String,
    environment: String,
    release_id: String,
    slot: i32,
    pid: i64,
    pid_start: i64,
    port: i32,
    state: String,
    started_at: DateTime<Utc>,
}

impl From<InstanceRow> for Instance {
    fn from(r: InstanceRow) -> Self {
        Instance {
            service: r.service,
            environment: r.environment,
            release_id: r.release_id,
            slot: r.slot,
            pid: r.pid,
            pid_start: r.pid_start,
            port: r.port,
            state: r.state,
            started_at: r.started_at,
        }
    }
}

pub(crate) const INSTANCE_COLUMNS: &str =
    "service, environment, release_id, slot, pid, pid_start, port, state, started_at";

/// How long an `Idempotency-Key` is remembered.
pub(crate) const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::hours(24);

/// A deployment's concurrency key: one deployment per service and environment runs at a time.
pub(crate) fn deployment_key(service: &str, environment: &str) -> String {
    format!("deploy:{service}/{environment}")
}

/// The first event's reason.
pub(crate) fn queued_reason(new: &NewDeployment) -> String {
    match &new.source {
        DeploymentSource::Build { git_ref: Some(r) } => format!("queued: build ref {r:?}"),
        DeploymentSource::Build { git_ref: None } => "queued: build the default branch".to_string(),
        DeploymentSource::Release {
            release_id,
            rollback_of,
        } => format!("queued: roll back deployment {rollback_of} to release {release_id}"),
    }
}

/// The `deploy` job of a new deployment.
pub(crate) fn deploy_job(deployment: &Deployment) -> NewJob {
    NewJob {
        queue: DEPLOY_QUEUE.to_string(),
        kind: job_kind::DEPLOY.to_string(),
        subject: deployment.id.clone(),
        payload: json!({ "deployment_id": deployment.id }),
        concurrency_key: Some(deployment_key(&deployment.service, &deployment.environment)),
        max_attempts: 5,
    }
}

/// The `destroy` job of a deployment.
pub(crate) fn destroy_job(deployment: &Deployment) -> NewJob {
    NewJob {
        queue: DEPLOY_QUEUE.to_string(),
        kind: job_kind::DESTROY.to_string(),
        subject: deployment.id.clone(),
        payload: json!({ "deployment_id": deployment.id }),
        concurrency_key: Some(deployment_key(&deployment.service, &deployment.environment)),
        max_attempts: 5,
    }
}

/// Refuses a transition the state machine does not allow.
pub(crate) fn check_transition(
    id: &str,
    from: DeploymentStatus,
    to: DeploymentStatus,
) -> Result<()> {
    if from.can_move_to(to) {
        Ok(())
    } else {
        Err(StoreError::Refused(format!(
            "deployment {id} is {from}; it cannot move to {to}"
        )))
    }
}

/// A `Duration` as chrono's, saturating.
pub(crate) fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    object_kind: String,
    object_name: String,
    remote_addr: Option<String>,
    result: String,
    detail: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = sqlx::Error;
    fn try_from(r: AuditRow) -> Result<Self, sqlx::Error> {
        Ok(AuditEvent {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            object_kind: r.object_kind,
            object_name: r.object_name,
            remote_addr: r.remote_addr,
            result: r.result,
            detail: serde_json::from_str(&r.detail)
                .map_err(|e| decode_error(format!("audit detail: {e}")))?,
        })
    }
}

/// Converts rows into records, failing on the first that does not decode.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = sqlx::Error>,
{
    Ok(rows
        .into_iter()
        .map(T::try_from)
        .collect::<Result<_, _>>()?)
}

/// Why a job whose worker kept dying is given up.
pub(crate) fn lease_exhausted_error(job: &Job) -> String {
    format!(
        "the worker running this job stopped answering {} times (lease expired); giving up{}",
        job.attempts,
        job.last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    )
}

/// The `jobs` columns an outcome sets: status, the next run time (retries), the error.
pub(crate) fn outcome_columns(
    outcome: &JobOutcome,
    _now: DateTime<Utc>,
) -> (&'static str, Option<DateTime<Utc>>, Option<String>) {
    match outcome {
        JobOutcome::Succeeded => (JobStatus::Succeeded.as_str(), None, None),
        JobOutcome::Retry { at, error } => {
            (JobStatus::Queued.as_str(), Some(*at), Some(error.clone()))
        }
        JobOutcome::Failed { error } => (JobStatus::Failed.as_str(), None, Some(error.clone())),
        JobOutcome::Cancelled => (JobStatus::Cancelled.as_str(), None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_pattern_escapes_wildcards() {
        assert_eq!(contains_pattern("api"), "%api%");
        assert_eq!(contains_pattern("a_b%c\\d"), "%a\\_b\\%c\\\\d%");
    }

    #[test]
    fn limit_offset_applies_defaults_and_caps() {
        assert_eq!(limit_offset(0, 0), (50, 0));
        assert_eq!(limit_offset(5000, 7), (1000, 7));
        assert_eq!(limit_offset(3, u64::MAX), (3, i64::MAX));
    }

    #[test]
    fn dev_and_used_environments_are_refused() {
        assert!(environment_delete_refusal("dev", 0).is_some());
        assert!(
            environment_delete_refusal("staging", 2).is_some_and(|m| m.contains("2 deployment"))
        );
        assert!(environment_delete_refusal("staging", 0).is_none());
    }
}
