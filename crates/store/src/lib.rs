//! The catalog store: one [`Store`] trait, implemented on SQLite (embedded default) and PostgreSQL
//! (multi-replica installs). Both pass the same conformance suite (`tests/conformance.rs`).

use async_trait::async_trait;
use slipway_core::{
    Actor, ApiToken, Artifact, ArtifactInfo, ArtifactScope, AuditEvent, AuditQuery, Deployment,
    DeploymentEvent, DeploymentQuery, DeploymentStatus, Environment, Instance, Job, JobOutcome,
    LogLine, Membership, NewAuditEvent, NewDeployment, NewJob, NewLogLine, NewService, NewToken,
    NewUser, Page, Release, Role, RuntimeSample, SealedSecret, SecretInfo, Service, ServiceQuery,
    ServiceUpdate, Team, TransitionUpdate, User,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

mod artifact_contents;
mod common;
pub mod postgres;
mod scaffold_push;
pub mod sqlite;

/// What can go wrong in the store. `Conflict`, `NotFound` and `Refused` are the caller's fault and carry
/// a message safe to show; `Database` is ours and is logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} already exists")]
    Conflict { kind: &'static str, name: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// The request is well-formed but the current state forbids it (e.g. deleting `dev`).
    #[error("{0}")]
    Refused(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An `Idempotency-Key` reused with a different request.
    #[error("the Idempotency-Key {0:?} was already used with a different request; use a new key for a new request")]
    IdempotencyMismatch(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// An artifact whose `sha256` is not the SHA-256 of its content (the caller's bug). Contents
    /// are stored once per hash, so accepting it would make other artifacts serve these bytes.
    #[error("artifact {path:?}: {sha256:?} is not the SHA-256 of its content")]
    ContentHashMismatch { path: String, sha256: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything Slipway keeps durably. Every mutating method writes its audit event in the same
/// transaction as the change.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Round-trips to the database (for `/ready`).
    async fn ping(&self) -> Result<()>;

    // Teams
    /// Creates a team; `Conflict` if it exists.
    async fn create_team(&self, name: &str, actor: &Actor) -> Result<Team>;
    async fn get_team(&self, name: &str) -> Result<Team>;
    async fn list_teams(&self) -> Result<Vec<Team>>;

    // Services
    /// Registers a service in one transaction: creates its team if missing, inserts the service row
    /// (`Conflict` if the name is taken), its artifacts, inserts or updates the platform-wide files
    /// given, its scaffold push record when given (as `pending`, whatever status it says), and the
    /// audit event. Nothing is written when it fails.
    async fn register_service(&self, new: NewService, actor: &Actor) -> Result<Service>;
    async fn get_service(&self, name: &str) -> Result<Service>;
    /// Sorted by name. `limit` 0 means the default (50); it is capped at 1000.
    async fn list_services(&self, query: &ServiceQuery) -> Result<Page<Service>>;
    /// Applies the changes given; a new team is created if missing. When `artifacts` is given, its
    /// `writes` are inserted or replace the artifact at their path (as generated:
    /// `generated_sha256` cleared) and its `removes` are deleted; other artifacts stay as they
    /// are. The audit event (`service.update`) names the fields changed and the artifacts left as
    /// edited (`conflicts`).
    async fn update_service(
        &self,
        name: &str,
        update: ServiceUpdate,
        actor: &Actor,
    ) -> Result<Service>;
    /// Deletes the service with its artifacts and deployments.
    async fn delete_service(&self, name: &str, actor: &Actor) -> Result<()>;

    // Environments
    async fn create_environment(&self, name: &str, actor: &Actor) -> Result<Environment>;
    async fn get_environment(&self, name: &str) -> Result<Environment>;
    /// Sorted by creation, `dev` first.
    async fn list_environments(&self) -> Result<Vec<Environment>>;
    /// `Refused` for `dev` and for an environment that has deployments.
    async fn delete_environment(&self, name: &str, actor: &Actor) -> Result<()>;

    // Artifacts
    /// A service's artifacts without content, sorted by scope then path. `NotFound` for an unknown service.
    async fn list_artifacts(
        &self,
        service: &str,
        scope: Option<ArtifactScope>,
    ) -> Result<Vec<ArtifactInfo>>;
    /// One artifact with its content.
    async fn get_artifact(
        &self,
        service: &str,
        scope: ArtifactScope,
        path: &str,
    ) -> Result<Artifact>;
    /// A service's artifacts with content, sorted by scope then path.
    async fn service_artifacts(
        &self,
        service: &str,
        scope: Option<ArtifactScope>,
    ) -> Result<Vec<Artifact>>;
    /// Platform-wide files (service `None`), sorted by path.
    async fn platform_files(&self) -> Result<Vec<Artifact>>;
    /// Hands every `platform`-scope artifact to `visit`, one at a time from one snapshot:
    /// platform-wide files first, then each service's in registration order (then path). What the
    /// platform repository must contain, without holding it all in memory.
    async fn visit_platform_artifacts(
        &self,
        visit: &mut (dyn FnMut(Artifact) + Send),
    ) -> Result<()>;
    /// [`Store::visit_platform_artifacts`] collected into a vector.
    async fn all_platform_artifacts(&self) -> Result<Vec<Artifact>> {
        let mut all = Vec::new();
        self.visit_platform_artifacts(&mut |a| all.push(a)).await?;
        Ok(all)
    }

    // Template upgrades (`slipway templates upgrade`)
    /// The artifacts of a service (`None`: the platform-wide files) whose content a team edited,
    /// sorted by scope then path: those with a recorded `generated_sha256`.
    async fn edited_artifacts(&self, service: Option<&str>) -> Result<Vec<EditedArtifact>>;
    /// Records a team's edit of an artifact (found in the platform repository): the content and its
    /// sha256 become the team's, and the sha256 of what the generator produced is kept — or cleared
    /// when the edit gives the generated content back. Audited as `artifact.adopt`. `NotFound` when
    /// there is no such artifact.
    async fn adopt_artifact_edit(&self, edit: ArtifactEdit, actor: &Actor) -> Result<()>;
    /// Writes a template upgrade of one service's artifacts (or of the platform-wide files) in one
    /// transaction: `writes` are inserted or replace the artifact at their path (as generated:
    /// `generated_sha256` cleared), `removes` are deleted, and the audit event (`service.upgrade`,
    /// or `modules.upgrade`) carries `detail`. `NotFound` when the service does not exist.
    async fn upgrade_artifacts(&self, upgrade: ArtifactUpgrade, actor: &Actor) -> Result<()>;

    // Identity
    /// `Conflict` when the name is taken.
    async fn create_user(&self, new: NewUser, actor: &Actor) -> Result<User>;
    /// Creates a user on first sight (a JWT subject), with no memberships.
    async fn ensure_user(&self, name: &str) -> Result<()>;
    async fn get_user(&self, name: &str) -> Result<User>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn password_hash(&self, name: &str) -> Result<Option<String>>;
    /// Sets (or with `None` removes) a user's role in a team.
    async fn set_membership(
        &self,
        user: &str,
        team: &str,
        role: Option<Role>,
        actor: &Actor,
    ) -> Result<()>;
    /// Replaces a user's memberships (from a JWT's claims); teams that do not exist are skipped.
    async fn replace_memberships(&self, user: &str, memberships: &[Membership]) -> Result<()>;
    async fn create_token(&self, new: NewToken, actor: &Actor) -> Result<ApiToken>;
    /// The token with this hash, revoked or expired ones included (the caller decides).
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<ApiToken>;

    // Deployments
    /// Records a deployment as `QUEUED` and enqueues its `deploy` job in the same transaction; the id
    /// is a UUIDv7. `NotFound` for an unknown service or environment. With an idempotency key already
    /// used in its scope (within 24 hours) it returns that deployment and `true`, and writes nothing;
    /// `IdempotencyMismatch` when that request's fingerprint differs.
    async fn create_deployment(
        &self,
        new: NewDeployment,
        actor: &Actor,
    ) -> Result<(Deployment, bool)>;
    /// Moves a deployment to `to` and records the event, in one transaction. `Refused` when the state
    /// machine does not allow the move from the current status (so two writers cannot both move it).
    async fn transition_deployment(
        &self,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
        update: TransitionUpdate,
    ) -> Result<Deployment>;
    /// Several transitions in one transaction (e.g. FAILED then ROLLING_BACK), so no reader sees
    /// the intermediate states alone. Each step is checked like `transition_deployment`.
    async fn transition_deployment_through(
        &self,
        id: &str,
        steps: &[(DeploymentStatus, String)],
    ) -> Result<Deployment>;
    /// A deployment's events, oldest first.
    async fn deployment_events(&self, id: &str) -> Result<Vec<DeploymentEvent>>;
    /// Cancels a deployment: a queued one is `CANCELLED` at once (its job too); a running one has its
    /// job asked to stop (the worker moves it to `CANCELLED`). `Refused` when it has ended.
    async fn cancel_deployment(&self, id: &str, actor: &Actor) -> Result<Deployment>;
    /// Enqueues the job that destroys what a deployment runs (it runs after the deployments of the
    /// same service and environment ahead of it). `Refused` when already destroyed.
    async fn request_destroy(&self, id: &str, actor: &Actor) -> Result<Deployment>;
    /// Appends lines to a deployment's log, numbering them after the last.
    async fn append_logs(&self, deployment_id: &str, lines: &[NewLogLine]) -> Result<()>;
    /// Log lines with `seq > after`, oldest first, at most `limit`.
    async fn deployment_logs(
        &self,
        deployment_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogLine>>;

    // Releases
    async fn create_release(&self, release: &Release) -> Result<()>;
    async fn get_release(&self, id: &str) -> Result<Release>;
    /// Records the first time a release passed its health check and took traffic.
    async fn mark_release_healthy(&self, id: &str) -> Result<()>;
    /// Newest first.
    async fn list_releases(&self, service: &str, environment: &str) -> Result<Vec<Release>>;

    // Variables
    /// Replaces the variables of a service in an environment. `NotFound` for an unknown service or
    /// environment.
    async fn set_variables(
        &self,
        service: &str,
        environment: &str,
        variables: &BTreeMap<String, String>,
        actor: &Actor,
    ) -> Result<()>;
    async fn get_variables(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<BTreeMap<String, String>>;

    // Jobs
    /// Enqueues a job on its own (deployments enqueue theirs in `create_deployment`).
    async fn enqueue_job(&self, job: NewJob) -> Result<i64>;
    async fn get_job(&self, id: i64) -> Result<Job>;
    /// The newest job about `subject`.
    async fn latest_job_for(&self, subject: &str) -> Result<Option<Job>>;
    /// Claims the oldest runnable job of `queues` for `worker` with a lease: a queued job whose time
    /// has come, or a running job whose lease expired (its worker died). A job waits while an older
    /// job with the same concurrency key is queued or running.
    async fn claim_job(
        &self,
        queues: &[&str],
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Job>>;
    /// Extends the lease. `Ok(None)` when the worker no longer holds it (it must stop);
    /// `Ok(Some(true))` when cancellation was requested.
    async fn heartbeat_job(&self, id: i64, worker: &str, lease: Duration) -> Result<Option<bool>>;
    /// Cancels a job: a queued one at once, a running one by asking its worker (the next heartbeat
    /// tells it). Returns the job as it is now; a finished job is returned unchanged.
    async fn cancel_job(&self, id: i64) -> Result<Job>;
    /// Ends every lease at once, so running jobs are taken over now. Only for a process that knows
    /// it is the only worker (SQLite: the data directory's lock), at start, before its workers run.
    async fn expire_all_leases(&self) -> Result<u64>;
    /// Records how a job ended; `false` when the worker no longer held its lease (nothing written).
    async fn finish_job(&self, id: i64, worker: &str, outcome: JobOutcome) -> Result<bool>;
    /// Resolves when [`Store::jobs_generation`] has moved past `since`, or after `timeout`.
    async fn wait_for_jobs(&self, since: u64, timeout: Duration);
    /// A counter that moves whenever a job may have become runnable (enqueued, finished, or — on
    /// PostgreSQL — announced by another replica). A worker reads it before it claims and, when the
    /// claim finds nothing, waits only for a change since that reading, so no wake-up is lost.
    fn jobs_generation(&self) -> u64;

    // Secrets (sealed by the caller; the store never sees a value)
    /// Stores a new value (version + 1); `NotFound` for an unknown service or environment.
    async fn put_secret(&self, secret: &SealedSecret, actor: &Actor) -> Result<SecretInfo>;
    async fn list_secrets(&self, service: &str, environment: &str) -> Result<Vec<SecretInfo>>;
    /// `NotFound` when there is no such secret.
    async fn delete_secret(
        &self,
        service: &str,
        environment: &str,
        name: &str,
        actor: &Actor,
    ) -> Result<()>;
    /// The sealed values of a service's environment (to inject at deploy time), or of every secret.
    async fn sealed_secrets(&self, service_env: Option<(&str, &str)>) -> Result<Vec<SealedSecret>>;
    /// Replaces ciphertexts (a key rotation) in one transaction, versions unchanged.
    async fn reseal_secrets(&self, secrets: &[SealedSecret]) -> Result<()>;

    // Runtime samples
    async fn record_samples(&self, samples: &[RuntimeSample]) -> Result<()>;
    /// Samples at or after `since`, oldest first.
    async fn runtime_samples(
        &self,
        service: &str,
        environment: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<RuntimeSample>>;
    /// Deletes samples older than `before`; returns how many.
    async fn prune_samples(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;

    /// Deployments of a team's services that have not ended (for its concurrency quota).
    async fn active_deployments_of_team(&self, team: &str) -> Result<u64>;
    /// The uid a service's workloads run as, allocated on first use from `first` upwards.
    async fn service_uid(&self, service: &str, first: u32) -> Result<u32>;

    // Local target instances
    async fn put_instance(&self, instance: &Instance) -> Result<()>;
    async fn delete_instance(
        &self,
        service: &str,
        environment: &str,
        release_id: &str,
        slot: i32,
    ) -> Result<()>;
    /// All recorded instances, or one service's in one environment.
    async fn list_instances(&self, service_env: Option<(&str, &str)>) -> Result<Vec<Instance>>;
    async fn get_deployment(&self, id: &str) -> Result<Deployment>;
    /// Newest first.
    async fn list_deployments(&self, query: &DeploymentQuery) -> Result<Page<Deployment>>;
    /// The newest deployment of a service (in one environment, or any).
    async fn latest_deployment(
        &self,
        service: &str,
        environment: Option<&str>,
    ) -> Result<Option<Deployment>>;

    // Scaffold pushes
    /// Records where the push of a scaffolded service's repository stands, with the audit event
    /// of a finished attempt (`service.scaffold_push`, result `success` or `failed`), in one
    /// transaction; a finished attempt adds one to `attempts` (`attempts` and `updated_at` given
    /// are ignored). Returns the record as stored. `NotFound` for an unknown service.
    async fn record_scaffold_push(
        &self,
        push: &slipway_core::ScaffoldPush,
        actor: &Actor,
    ) -> Result<slipway_core::ScaffoldPush>;
    /// `None` for a service that was not scaffolded with a remote.
    async fn scaffold_push(&self, service: &str) -> Result<Option<slipway_core::ScaffoldPush>>;
    /// Pushes still `pending`, oldest first: registered, and no attempt has finished since (the
    /// process stopped before the push ended, or one is under way).
    async fn pending_scaffold_pushes(&self) -> Result<Vec<slipway_core::ScaffoldPush>>;

    // Audit
    /// Appends an event on its own (e.g. a refused request, which changes nothing else).
    async fn record_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// Newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;
}

/// An artifact whose content differs from what its generator produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedArtifact {
    pub scope: ArtifactScope,
    pub path: String,
    /// sha256 of the content now (the team's).
    pub sha256: String,
    /// sha256 of what the recorded generator produced.
    pub generated_sha256: String,
}

/// A team's content for one artifact, to adopt.
#[derive(Debug, Clone)]
pub struct ArtifactEdit {
    pub service: String,
    pub scope: ArtifactScope,
    pub path: String,
    pub content: Vec<u8>,
    /// Lowercase hex sha256 of `content`.
    pub sha256: String,
    /// Why, for the audit event (e.g. the platform repository commit it came from).
    pub detail: serde_json::Value,
}

/// One service's (or the platform-wide files') artifacts after a template upgrade.
#[derive(Debug, Clone)]
pub struct ArtifactUpgrade {
    /// `None`: the platform-wide files (shared modules).
    pub service: Option<String>,
    /// New or changed artifacts, as generated.
    pub writes: Vec<Artifact>,
    /// Artifacts the active templates no longer produce.
    pub removes: Vec<(ArtifactScope, String)>,
    /// For the audit event (template versions, paths, conflicts left alone).
    pub detail: serde_json::Value,
}

/// `(scope, path, sha256, generated_sha256)` rows into [`EditedArtifact`]s.
pub(crate) fn edited_from_rows(
    rows: Vec<(String, String, String, String)>,
) -> Result<Vec<EditedArtifact>> {
    rows.into_iter()
        .map(|(scope, path, sha256, generated_sha256)| {
            Ok(EditedArtifact {
                scope: scope
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                path,
                sha256,
                generated_sha256,
            })
        })
        .collect()
}

/// Opens the store a URL names and runs its migrations: `sqlite://PATH` (created if missing) or
/// `postgres://…` / `postgresql://…`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Default and maximum page sizes.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

pub fn effective_limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        l => l.min(MAX_LIMIT),
    }
}
