//! The embedded store: one SQLite file in WAL mode.
//!
//! Writers are serialized in-process by a pool of exactly one connection, and every write transaction
//! starts with `BEGIN IMMEDIATE`, so it takes the write lock up front and can never fail half-way with
//! `SQLITE_BUSY` when it upgrades from reading to writing (another process waits on `busy_timeout`).
//! Reads go to a separate pool of several connections, which WAL lets run alongside the writer.

use crate::artifact_contents::{self, sqlite as contents, Contents};
use crate::common::{
    self, convert, owner_key, ArtifactInfoRow, ArtifactRow, AuditRow, DeploymentRow,
    EnvironmentRow, EventRow, InstanceRow, JobRow, LogRow, ReleaseRow, SampleRow, ServiceRow,
    TeamRow, TokenRow, DEPLOYMENT_COLUMNS, INSTANCE_COLUMNS, TOKEN_COLUMNS,
};
use crate::{ArtifactEdit, ArtifactUpgrade, EditedArtifact, Result, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::json;
use slipway_core::{
    job_kind, Actor, ApiToken, Artifact, ArtifactInfo, ArtifactScope, AuditEvent, AuditQuery,
    Deployment, DeploymentEvent, DeploymentQuery, DeploymentSource, DeploymentStatus, Environment,
    Instance, Job, JobOutcome, JobStatus, LogLine, Membership, NewAuditEvent, NewDeployment,
    NewJob, NewLogLine, NewService, NewToken, NewUser, Page, Release, Role, RuntimeSample,
    SealedSecret, SecretInfo, Service, ServiceQuery, ServiceUpdate, Team, TransitionUpdate, User,
    SECRET_MASK,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

const READERS: u32 = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    /// Exactly one connection: writers queue for it.
    writer: SqlitePool,
    reader: SqlitePool,
    /// Background WAL checkpoints; stopped when the store is dropped.
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    /// The jobs generation (see `Store::jobs_generation`).
    jobs_enqueued: tokio::sync::watch::Sender<u64>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(task) = self.checkpointer.take() {
            task.abort();
        }
    }
}

/// How often the background task copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl SqliteStore {
    /// Opens (creating if missing) the database `url` names (`sqlite://PATH`) and runs its migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // An in-memory database lives and dies with its connections: one connection, kept open, does
        // both reading and writing.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // The writer never checkpoints on commit (SQLite's default does, every 1000 pages, which puts
        // a checkpoint of tens of milliseconds into one unlucky request); a background task does it.
        let writer_options = if in_memory {
            options.clone()
        } else {
            options.clone().pragma("wal_autocheckpoint", "0")
        };
        let writer = SqlitePoolOptions::new()
            .after_release(|conn, _| Box::pin(close_if_left_in_transaction(conn)))
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(writer_options)
            .await?;
        let contents_were_apart = table_exists(&writer, "artifact_contents").await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        if !in_memory && !contents_were_apart {
            compact_after_contents_moved(&writer).await?;
        }
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .after_release(|conn, _| Box::pin(close_if_left_in_transaction(conn)))
                .max_connections(READERS)
                .connect_with(options)
                .await?
        };
        let checkpointer = (!in_memory).then(|| tokio::spawn(checkpoint_loop(reader.clone())));
        Ok(Self {
            writer,
            reader,
            checkpointer,
            jobs_enqueued: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Wakes every waiting worker, and the next one to wait when none is waiting now.
    fn wake_workers(&self) {
        self.jobs_enqueued.send_modify(|g| *g = g.wrapping_add(1));
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

async fn table_exists(pool: &SqlitePool, name: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

/// Migration 0010 moves the artifact contents, stored once per sha256 now, out of the old
/// `artifacts` table and drops it. SQLite keeps the pages it freed in the file (for later rows,
/// never given back), which on a catalog of thousands of services is most of the file: the first
/// start after that upgrade compacts it once. A new database frees next to nothing and is left as is.
async fn compact_after_contents_moved(pool: &SqlitePool) -> Result<()> {
    let (pages, free): (i64, i64) = sqlx::query_as(
        "SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()",
    )
    .fetch_one(pool)
    .await?;
    if free * 4 <= pages {
        return Ok(());
    }
    let started = std::time::Instant::now();
    sqlx::query("VACUUM").execute(pool).await?;
    // VACUUM wrote the compacted database into the WAL; copy it back and truncate both now.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await?;
    tracing::info!(
        pages,
        free,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compacted the database after moving artifact contents (migration 0010)"
    );
    Ok(())
}

/// Keeps a connection whose transaction was abandoned mid-way out of the pool.
///
/// A write whose future is dropped (a client hanging up, an aborted task) between sqlx's `BEGIN
/// IMMEDIATE` and the `Transaction` it returns leaves the connection inside a transaction no one can
/// end, and every later write on it fails. The ping waits for rollbacks already queued by dropped
/// transactions; a transaction still open after it is such an orphan, and the connection is closed
/// (the pool opens a new one).
async fn close_if_left_in_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection, TransactionManager};
    type Manager = <Sqlite as sqlx::Database>::TransactionManager;
    if Manager::get_transaction_depth(conn) == 0 {
        return Ok(true);
    }
    conn.ping().await?;
    Ok(Manager::get_transaction_depth(conn) == 0)
}

/// Copies committed pages from the WAL into the database file without blocking writers or readers
/// (`PASSIVE`); a no-op when there is nothing new.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
}

/// Timestamps are stored as text in one fixed-width format, so text order is time order.
fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn insert_audit(
    conn: &mut SqliteConnection,
    event: NewAuditEvent,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, object_kind, object_name, remote_addr, result, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ts(at))
    .bind(event.actor)
    .bind(event.action)
    .bind(event.object_kind)
    .bind(event.object_name)
    .bind(event.remote_addr)
    .bind(event.result)
    .bind(event.detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates `team` unless it exists (audited as `team.create` when it is created). Concurrent callers
/// creating the same team all succeed.
async fn ensure_team(
    conn: &mut SqliteConnection,
    team: &str,
    at: DateTime<Utc>,
    actor: &Actor,
    via: &str,
) -> Result<()> {
    let created = sqlx::query(
        "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(team)
    .bind(ts(at))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if created {
        insert_audit(
            conn,
            actor.audit("team.create", "team", team, json!({ "via": via })),
            at,
        )
        .await?;
    }
    Ok(())
}

/// Inserts a new service's artifact rows; their contents are stored already.
async fn insert_artifacts(
    conn: &mut SqliteConnection,
    service: &str,
    artifacts: &[Artifact],
) -> Result<()> {
    for a in artifacts {
        sqlx::query(
            "INSERT INTO artifacts (service_name, scope, path, sha256, generator) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(service)
        .bind(a.scope.as_str())
        .bind(&a.path)
        .bind(&a.sha256)
        .bind(&a.generator)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts or updates the platform-wide files; their contents are stored already.
async fn upsert_platform_files(conn: &mut SqliteConnection, files: &[Artifact]) -> Result<()> {
    let before = contents::named_by(conn, owner_key(None)).await?;
    let mut changed = false;
    for f in common::sorted_files(files) {
        changed |= sqlx::query(
            "INSERT INTO artifacts (service_name, scope, path, sha256, generator) \
             VALUES ('', $1, $2, $3, $4) \
             ON CONFLICT (service_name, scope, path) DO UPDATE \
             SET sha256 = excluded.sha256, generator = excluded.generator \
             WHERE artifacts.sha256 <> excluded.sha256 OR artifacts.generator <> excluded.generator",
        )
        .bind(f.scope.as_str())
        .bind(&f.path)
        .bind(&f.sha256)
        .bind(&f.generator)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
    }
    if changed {
        let after = contents::named_by(conn, owner_key(None)).await?;
        contents::release(conn, &artifact_contents::let_go(before, &after)).await?;
    }
    Ok(())
}

/// Inserts `writes` or replaces the artifact at their path, as generated (a recorded team edit
/// cleared), and deletes `removes`: a regeneration or upgrade of the artifacts of `owner` (a
/// service's name, or [`owner_key`]`(None)` for the platform-wide files). Contents no artifact
/// names any more are deleted.
async fn write_generated(
    conn: &mut SqliteConnection,
    owner: &str,
    writes: &[Artifact],
    removes: &[(ArtifactScope, String)],
) -> Result<()> {
    let new_contents = Contents::of(writes)?;
    let before = contents::named_by(conn, owner).await?;
    contents::store(conn, &new_contents).await?;
    for (scope, path) in removes {
        sqlx::query("DELETE FROM artifacts WHERE service_name = $1 AND scope = $2 AND path = $3")
            .bind(owner)
            .bind(scope.as_str())
            .bind(path)
            .execute(&mut *conn)
            .await?;
    }
    for a in writes {
        sqlx::query(
            "INSERT INTO artifacts (service_name, scope, path, sha256, generator) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (service_name, scope, path) DO UPDATE \
             SET sha256 = excluded.sha256, generator = excluded.generator, generated_sha256 = NULL",
        )
        .bind(owner)
        .bind(a.scope.as_str())
        .bind(&a.path)
        .bind(&a.sha256)
        .bind(&a.generator)
        .execute(&mut *conn)
        .await?;
    }
    let after = contents::named_by(conn, owner).await?;
    contents::release(conn, &artifact_contents::let_go(before, &after)).await
}

const SERVICE_COLUMNS: &str = "name, team, repo_url, template, description, created_at, updated_at";
const ARTIFACT_COLUMNS: &str = "service_name, scope, path, content, sha256, generator";
/// Artifact rows with their contents (the columns of both tables are named apart but `sha256`).
const ARTIFACTS_WITH_CONTENT: &str = "artifacts JOIN artifact_contents USING (sha256)";
const RELEASE_COLUMNS: &str =
    "id, service, environment, deployment_id, commit_sha, plan, variables, created_at, healthy_at";
const JOB_COLUMNS: &str =
    "id, queue, kind, subject, payload, concurrency_key, status, attempts, max_attempts, \
     run_at, lease_owner, lease_until, cancel_requested, last_error, created_at, updated_at";

async fn fetch_deployment(conn: &mut SqliteConnection, id: &str) -> Result<Deployment> {
    let row: Option<DeploymentRow> = sqlx::query_as(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(row.try_into()?),
        None => Err(StoreError::NotFound {
            kind: "deployment",
            name: id.to_string(),
        }),
    }
}

async fn insert_event(
    conn: &mut SqliteConnection,
    id: &str,
    status: DeploymentStatus,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_events (deployment_id, seq, at, status, reason) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM deployment_events WHERE deployment_id = $1",
    )
    .bind(id)
    .bind(ts(at))
    .bind(status.as_str())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a transition the caller has checked, with its event.
async fn move_deployment(
    conn: &mut SqliteConnection,
    current: &Deployment,
    to: DeploymentStatus,
    reason: &str,
    update: &TransitionUpdate,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE deployments SET status = $2, reason = $3, updated_at = $4, \
         release_id = COALESCE($5, release_id), commit_sha = COALESCE($6, commit_sha), url = COALESCE($7, url), \
         status_before_destroy = CASE WHEN $2 = 'DESTROYED' THEN status ELSE status_before_destroy END \
         WHERE id = $1",
    )
    .bind(&current.id)
    .bind(to.as_str())
    .bind(reason)
    .bind(ts(at))
    .bind(&update.release_id)
    .bind(&update.commit_sha)
    .bind(&update.url)
    .execute(&mut *conn)
    .await?;
    insert_event(conn, &current.id, to, reason, at).await
}

/// Cancels a deployment that has not ended: at once when its job has not started, otherwise by
/// asking the worker to stop.
async fn cancel_in_tx(
    conn: &mut SqliteConnection,
    current: &Deployment,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let job: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, status FROM jobs WHERE subject = $1 AND kind = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(&current.id)
    .bind(job_kind::DEPLOY)
    .fetch_optional(&mut *conn)
    .await?;
    match job {
        Some((job_id, status)) if status == "running" => {
            sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $2 WHERE id = $1")
                .bind(job_id)
                .bind(ts(at))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        job => {
            if let Some((job_id, status)) = job {
                if status == "queued" {
                    sqlx::query(
                        "UPDATE jobs SET status = 'cancelled', updated_at = $2 WHERE id = $1",
                    )
                    .bind(job_id)
                    .bind(ts(at))
                    .execute(&mut *conn)
                    .await?;
                }
            }
            let reason = format!("cancelled by {by} before it started");
            move_deployment(
                conn,
                current,
                DeploymentStatus::Cancelled,
                &reason,
                &TransitionUpdate::default(),
                at,
            )
            .await
        }
    }
}

async fn insert_job(conn: &mut SqliteConnection, job: &NewJob, at: DateTime<Utc>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (queue, kind, subject, payload, concurrency_key, status, attempts, max_attempts, \
         run_at, cancel_requested, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, 0, $7, $7) RETURNING id",
    )
    .bind(&job.queue)
    .bind(&job.kind)
    .bind(&job.subject)
    .bind(job.payload.to_string())
    .bind(&job.concurrency_key)
    .bind(job.max_attempts)
    .bind(ts(at))
    .fetch_one(conn)
    .await?;
    Ok(id)
}
const ARTIFACT_INFO_COLUMNS: &str = "scope, path, sha256, length(content) AS size, generator";

async fn fetch_service(conn: &mut SqliteConnection, name: &str) -> Result<Option<Service>> {
    let row = sqlx::query_as::<_, ServiceRow>(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Service::from))
}

async fn service_exists(conn: &mut SqliteConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM services WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// A service's artifacts; `NotFound` when there are none because the service does not exist.
async fn require_service_if_empty<T>(
    conn: &mut SqliteConnection,
    service: &str,
    items: Vec<T>,
) -> Result<Vec<T>> {
    if items.is_empty() && !service_exists(conn, service).await? {
        return Err(StoreError::NotFound {
            kind: "service",
            name: service.to_string(),
        });
    }
    Ok(items)
}

fn scope_clause(scope: Option<ArtifactScope>) -> &'static str {
    match scope {
        Some(_) => " AND scope = $2",
        None => "",
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_team(&self, name: &str, actor: &Actor) -> Result<Team> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let created = sqlx::query(
            "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !created {
            return Err(StoreError::Conflict {
                kind: "team",
                name: name.to_string(),
            });
        }
        insert_audit(
            &mut tx,
            actor.audit("team.create", "team", name, json!({})),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(Team {
            name: name.to_string(),
            created_at: at,
        })
    }

    async fn get_team(&self, name: &str) -> Result<Team> {
        sqlx::query_as::<_, TeamRow>("SELECT name, created_at FROM teams WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .map(Team::from)
            .ok_or_else(|| StoreError::NotFound {
                kind: "team",
                name: name.to_string(),
            })
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows = sqlx::query_as::<_, TeamRow>("SELECT name, created_at FROM teams ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    async fn register_service(&self, new: NewService, actor: &Actor) -> Result<Service> {
        let at = common::now();
        let service = common::new_service_record(&new, at);
        let new_contents = Contents::of(new.artifacts.iter().chain(&new.platform_files))?;
        let mut tx = self.begin_write().await?;
        ensure_team(&mut tx, &new.team, at, actor, "service.register").await?;
        let inserted = sqlx::query(
            "INSERT INTO services (name, team, repo_url, template, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&service.name)
        .bind(&service.team)
        .bind(&service.repo_url)
        .bind(&service.template)
        .bind(&service.description)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            // Dropping the transaction rolls back the team it may have created.
            return Err(StoreError::Conflict {
                kind: "service",
                name: new.name,
            });
        }
        contents::store(&mut tx, &new_contents).await?;
        insert_artifacts(&mut tx, &new.name, &new.artifacts).await?;
        upsert_platform_files(&mut tx, &new.platform_files).await?;
        if let Some(push) = &new.scaffold_push {
            sqlx::query(crate::scaffold_push::UPSERT)
                .bind(&push.service)
                .bind(&push.remote)
                .bind(&push.branch)
                .bind(slipway_core::ScaffoldPushStatus::Pending.as_str())
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(ts(at))
                .execute(&mut *tx)
                .await?;
        }
        let event = actor.audit(
            "service.register",
            "service",
            &new.name,
            common::register_detail(&new),
        );
        insert_audit(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(service)
    }

    async fn get_service(&self, name: &str) -> Result<Service> {
        let mut conn = self.reader.acquire().await?;
        fetch_service(&mut conn, name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "service",
                name: name.to_string(),
            })
    }

    async fn list_services(&self, query: &ServiceQuery) -> Result<Page<Service>> {
        let conds = common::service_conditions(query);
        let (limit, offset) = common::limit_offset(query.limit, query.offset);

        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM services");
        common::push_where(&mut count, &conds, "LIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;

        let mut select =
            QueryBuilder::<Sqlite>::new(format!("SELECT {SERVICE_COLUMNS} FROM services"));
        common::push_where(&mut select, &conds, "LIKE");
        select
            .push(" ORDER BY name LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<ServiceRow> = select.build_query_as().fetch_all(&self.reader).await?;

        Ok(Page {
            items: rows.into_iter().map(Service::from).collect(),
            total: common::total(total),
        })
    }

    async fn update_service(
        &self,
        name: &str,
        update: ServiceUpdate,
        actor: &Actor,
    ) -> Result<Service> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let mut service =
            fetch_service(&mut tx, name)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "service",
                    name: name.to_string(),
                })?;
        let detail = common::apply_update(&mut service, &update, at);
        if let Some(team) = &update.team {
            ensure_team(&mut tx, team, at, actor, "service.update").await?;
        }
        sqlx::query("UPDATE services SET team = $2, repo_url = $3, description = $4, updated_at = $5 WHERE name = $1")
            .bind(name)
            .bind(&service.team)
            .bind(&service.repo_url)
            .bind(&service.description)
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        if let Some(artifacts) = &update.artifacts {
            write_generated(&mut tx, name, &artifacts.writes, &artifacts.removes).await?;
        }
        insert_audit(
            &mut tx,
            actor.audit("service.update", "service", name, detail),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(service)
    }

    async fn delete_service(&self, name: &str, actor: &Actor) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let deployments: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deployments WHERE service = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        // Deployments go with the service (ON DELETE CASCADE); artifacts have no foreign key.
        let deleted = sqlx::query("DELETE FROM services WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "service",
                name: name.to_string(),
            });
        }
        let let_go: Vec<String> =
            sqlx::query_scalar("DELETE FROM artifacts WHERE service_name = $1 RETURNING sha256")
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        let artifacts = let_go.len();
        contents::release(&mut tx, &let_go.into_iter().collect()).await?;
        let detail = json!({ "artifacts": artifacts, "deployments": deployments });
        insert_audit(
            &mut tx,
            actor.audit("service.delete", "service", name, detail),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_environment(&self, name: &str, actor: &Actor) -> Result<Environment> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let created =
            sqlx::query("INSERT INTO environments (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(ts(at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !created {
            return Err(StoreError::Conflict {
                kind: "environment",
                name: name.to_string(),
            });
        }
        insert_audit(
            &mut tx,
            actor.audit("environment.create", "environment", name, json!({})),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(Environment {
            name: name.to_string(),
            created_at: at,
        })
    }

    async fn get_environment(&self, name: &str) -> Result<Environment> {
        sqlx::query_as::<_, EnvironmentRow>(
            "SELECT name, created_at FROM environments WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .map(Environment::from)
        .ok_or_else(|| StoreError::NotFound {
            kind: "environment",
            name: name.to_string(),
        })
    }

    async fn list_environments(&self) -> Result<Vec<Environment>> {
        let rows = sqlx::query_as::<_, EnvironmentRow>(
            "SELECT name, created_at FROM environments ORDER BY name <> 'dev', created_at, name",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Environment::from).collect())
    }

    async fn delete_environment(&self, name: &str, actor: &Actor) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM environments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                kind: "environment",
                name: name.to_string(),
            });
        }
        let deployments: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deployments WHERE environment = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(why) = common::environment_delete_refusal(name, deployments) {
            return Err(StoreError::Refused(why));
        }
        sqlx::query("DELETE FROM environments WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            actor.audit("environment.delete", "environment", name, json!({})),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_artifacts(
        &self,
        service: &str,
        scope: Option<ArtifactScope>,
    ) -> Result<Vec<ArtifactInfo>> {
        common::require_service_name(service)?;
        let mut conn = self.reader.acquire().await?;
        let sql = format!(
            "SELECT {ARTIFACT_INFO_COLUMNS} FROM {ARTIFACTS_WITH_CONTENT} WHERE service_name = $1{} ORDER BY scope, path",
            scope_clause(scope)
        );
        let mut select = sqlx::query_as::<_, ArtifactInfoRow>(&sql).bind(service);
        if let Some(scope) = scope {
            select = select.bind(scope.as_str());
        }
        let rows = select.fetch_all(&mut *conn).await?;
        require_service_if_empty(&mut conn, service, convert(rows)?).await
    }

    async fn get_artifact(
        &self,
        service: &str,
        scope: ArtifactScope,
        path: &str,
    ) -> Result<Artifact> {
        if service.is_empty() {
            return Err(StoreError::NotFound {
                kind: "artifact",
                name: format!("{service}/{scope}/{path}"),
            });
        }
        let row: Option<ArtifactRow> = sqlx::query_as(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM {ARTIFACTS_WITH_CONTENT} WHERE service_name = $1 AND scope = $2 AND path = $3"
        ))
        .bind(service)
        .bind(scope.as_str())
        .bind(path)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(row.try_into()?),
            None => Err(StoreError::NotFound {
                kind: "artifact",
                name: format!("{service}/{scope}/{path}"),
            }),
        }
    }

    async fn service_artifacts(
        &self,
        service: &str,
        scope: Option<ArtifactScope>,
    ) -> Result<Vec<Artifact>> {
        common::require_service_name(service)?;
        let mut conn = self.reader.acquire().await?;
        let sql = format!(
            "SELECT {ARTIFACT_COLUMNS} FROM {ARTIFACTS_WITH_CONTENT} WHERE service_name = $1{} ORDER BY scope, path",
            scope_clause(scope)
        );
        let mut select = sqlx::query_as::<_, ArtifactRow>(&sql).bind(service);
        if let Some(scope) = scope {
            select = select.bind(scope.as_str());
        }
        let rows = select.fetch_all(&mut *conn).await?;
        require_service_if_empty(&mut conn, service, convert(rows)?).await
    }

    async fn platform_files(&self) -> Result<Vec<Artifact>> {
        let rows: Vec<ArtifactRow> = sqlx::query_as(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM {ARTIFACTS_WITH_CONTENT} WHERE service_name = $1 ORDER BY path, scope"
        ))
        .bind(owner_key(None))
        .fetch_all(&self.reader)
        .await?;
        convert(rows)
    }

    async fn visit_platform_artifacts(
        &self,
        visit: &mut (dyn FnMut(Artifact) + Send),
    ) -> Result<()> {
        // One snapshot for both reads. CROSS JOIN makes SQLite walk services in registration order
        // (index `services_created`) and look their artifacts up, instead of sorting every row.
        let mut tx = self.reader.begin().await?;
        let shared = format!(
            "SELECT {ARTIFACT_COLUMNS} FROM {ARTIFACTS_WITH_CONTENT} WHERE service_name = '' AND scope = 'platform' ORDER BY path"
        );
        for sql in [shared.as_str(), "SELECT a.service_name, a.scope, a.path, c.content, a.sha256, a.generator \
             FROM services s CROSS JOIN artifacts a ON a.service_name = s.name AND a.scope = 'platform' \
             JOIN artifact_contents c ON c.sha256 = a.sha256 \
             ORDER BY s.created_at, s.name, a.path"] {
            let mut rows = sqlx::query_as::<_, ArtifactRow>(sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                for artifact in convert::<ArtifactRow, Artifact>(vec![row])? {
                    visit(artifact);
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn edited_artifacts(&self, service: Option<&str>) -> Result<Vec<EditedArtifact>> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT scope, path, sha256, generated_sha256 FROM artifacts \
             WHERE service_name = $1 AND generated_sha256 IS NOT NULL ORDER BY scope, path",
        )
        .bind(owner_key(service))
        .fetch_all(&self.reader)
        .await?;
        crate::edited_from_rows(rows)
    }

    async fn adopt_artifact_edit(&self, edit: ArtifactEdit, actor: &Actor) -> Result<()> {
        let at = common::now();
        let mut new_contents = Contents::default();
        new_contents.add(&edit.path, &edit.sha256, &edit.content)?;
        let mut tx = self.begin_write().await?;
        let before = contents::named_by(&mut tx, &edit.service).await?;
        contents::store(&mut tx, &new_contents).await?;
        // The right-hand sides read the row as it was: the first edit moves `sha256` into
        // `generated_sha256`, later ones keep it, and content equal to it again clears it.
        let updated = sqlx::query(
            "UPDATE artifacts SET \
             generated_sha256 = CASE WHEN COALESCE(generated_sha256, sha256) = $4 THEN NULL \
                                     ELSE COALESCE(generated_sha256, sha256) END, \
             sha256 = $4 \
             WHERE service_name = $1 AND scope = $2 AND path = $3",
        )
        .bind(&edit.service)
        .bind(edit.scope.as_str())
        .bind(&edit.path)
        .bind(&edit.sha256)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            // Dropping the transaction rolls back the content it may have stored.
            return Err(StoreError::NotFound {
                kind: "artifact",
                name: format!("{}/{}/{}", edit.service, edit.scope, edit.path),
            });
        }
        let after = contents::named_by(&mut tx, &edit.service).await?;
        contents::release(&mut tx, &artifact_contents::let_go(before, &after)).await?;
        let mut detail = edit.detail;
        detail["scope"] = json!(edit.scope.as_str());
        detail["path"] = json!(edit.path);
        detail["sha256"] = json!(edit.sha256);
        insert_audit(
            &mut tx,
            actor.audit("artifact.adopt", "service", &edit.service, detail),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upgrade_artifacts(&self, upgrade: ArtifactUpgrade, actor: &Actor) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        if let Some(service) = &upgrade.service {
            // Locks the row (PostgreSQL) so that a concurrent deletion waits for this upgrade.
            let exists = sqlx::query("SELECT 1 FROM services WHERE name = $1")
                .bind(service)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                return Err(StoreError::NotFound {
                    kind: "service",
                    name: service.clone(),
                });
            }
        }
        let owner = owner_key(upgrade.service.as_deref());
        write_generated(&mut tx, owner, &upgrade.writes, &upgrade.removes).await?;
        let event = match &upgrade.service {
            Some(service) => actor.audit("service.upgrade", "service", service, upgrade.detail),
            None => actor.audit(
                "modules.upgrade",
                "modules",
                "terraform/modules",
                upgrade.detail,
            ),
        };
        insert_audit(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_user(&self, new: NewUser, actor: &Actor) -> Result<User> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, email, password_hash, admin, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.name)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(new.admin)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict {
                kind: "user",
                name: new.name,
            });
        }
        insert_audit(
            &mut tx,
            actor.audit(
                "user.create",
                "user",
                &new.name,
                json!({ "admin": new.admin }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(User {
            name: new.name,
            email: new.email,
            admin: new.admin,
            memberships: Vec::new(),
            created_at: at,
        })
    }

    async fn ensure_user(&self, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(ts(common::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_user(&self, name: &str) -> Result<User> {
        let row: Option<(String, Option<String>, bool, DateTime<Utc>)> =
            sqlx::query_as("SELECT name, email, admin, created_at FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        let Some((name, email, admin, created_at)) = row else {
            return Err(StoreError::NotFound {
                kind: "user",
                name: name.to_string(),
            });
        };
        let memberships: Vec<(String, String)> =
            sqlx::query_as("SELECT team, role FROM memberships WHERE username = $1 ORDER BY team")
                .bind(&name)
                .fetch_all(&self.reader)
                .await?;
        Ok(User {
            name,
            email,
            admin,
            memberships: common::memberships(memberships)?,
            created_at,
        })
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        let mut users = Vec::with_capacity(names.len());
        for n in names {
            users.push(self.get_user(&n).await?);
        }
        Ok(users)
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        Ok(hash.flatten())
    }

    async fn set_membership(
        &self,
        user: &str,
        team: &str,
        role: Option<Role>,
        actor: &Actor,
    ) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        for (kind, table, name) in [("user", "users", user), ("team", "teams", team)] {
            if sqlx::query(&format!("SELECT 1 FROM {table} WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound {
                    kind,
                    name: name.to_string(),
                });
            }
        }
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO memberships (username, team, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (username, team) DO UPDATE SET role = excluded.role",
                )
                .bind(user)
                .bind(team)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM memberships WHERE username = $1 AND team = $2")
                    .bind(user)
                    .bind(team)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        insert_audit(
            &mut tx,
            actor.audit(
                "team.member",
                "team",
                team,
                json!({ "user": user, "role": role.map(Role::as_str) }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_memberships(&self, user: &str, memberships: &[Membership]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM memberships WHERE username = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        for m in memberships {
            // Teams that do not exist (yet) are skipped.
            sqlx::query(
                "INSERT INTO memberships (username, team, role) SELECT $1, $2, $3 \
                 WHERE EXISTS (SELECT 1 FROM teams WHERE name = $2) ON CONFLICT (username, team) DO NOTHING",
            )
            .bind(user)
            .bind(&m.team)
            .bind(m.role.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_token(&self, new: NewToken, actor: &Actor) -> Result<ApiToken> {
        let at = common::now();
        let (user, team, role) = common::token_owner_columns(&new.owner);
        let mut tx = self.begin_write().await?;
        let owner_exists = match (&user, &team) {
            (Some(u), _) => sqlx::query("SELECT 1 FROM users WHERE name = $1").bind(u),
            (_, Some(t)) => sqlx::query("SELECT 1 FROM teams WHERE name = $1").bind(t),
            _ => sqlx::query("SELECT 1 WHERE 1 = 0"),
        }
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !owner_exists {
            return Err(StoreError::NotFound {
                kind: if user.is_some() { "user" } else { "team" },
                name: user.clone().or(team.clone()).unwrap_or_default(),
            });
        }
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, name, username, team, team_role, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.id)
        .bind(&new.token_hash)
        .bind(&new.name)
        .bind(&user)
        .bind(&team)
        .bind(role)
        .bind(ts(at))
        .bind(new.expires_at.map(ts))
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            actor.audit(
                "token.create",
                "token",
                &new.id,
                json!({ "name": new.name, "user": user, "team": team }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(ApiToken {
            id: new.id,
            name: new.name,
            owner: new.owner,
            created_at: at,
            expires_at: new.expires_at,
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(ApiToken::try_from).transpose()?)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await?;
        convert(rows)
    }

    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<ApiToken> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                kind: "token",
                name: id.to_string(),
            });
        };
        if revoked == 1 {
            insert_audit(
                &mut tx,
                actor.audit("token.revoke", "token", id, json!({})),
                at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(row.try_into()?)
    }

    async fn create_deployment(
        &self,
        new: NewDeployment,
        actor: &Actor,
    ) -> Result<(Deployment, bool)> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        if let Some(key) = &new.idempotency {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(ts(at - common::IDEMPOTENCY_TTL))
                .execute(&mut *tx)
                .await?;
            let seen: Option<(String, String)> = sqlx::query_as(
                "SELECT fingerprint, deployment_id FROM idempotency_keys WHERE scope = $1 AND key = $2",
            )
            .bind(&key.scope)
            .bind(&key.key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((fingerprint, id)) = seen {
                if fingerprint != key.fingerprint {
                    return Err(StoreError::IdempotencyMismatch(key.key.clone()));
                }
                let d = fetch_deployment(&mut tx, &id).await?;
                return Ok((d, true));
            }
        }
        let (git_ref, release_id, rollback_of) = match &new.source {
            DeploymentSource::Build { git_ref } => (git_ref.clone(), None, None),
            DeploymentSource::Release {
                release_id,
                rollback_of,
            } => (None, Some(release_id.clone()), Some(rollback_of.clone())),
        };
        let reason = common::queued_reason(&new);
        let deployment = Deployment {
            id: uuid::Uuid::now_v7().to_string(),
            service: new.service,
            environment: new.environment,
            git_ref,
            status: DeploymentStatus::Queued,
            status_before_destroy: None,
            trigger: new.trigger,
            release_id,
            rollback_of,
            commit_sha: None,
            url: None,
            reason: Some(reason.clone()),
            replicas: new.replicas,
            resources: new.resources,
            created_at: at,
            updated_at: at,
        };
        if !service_exists(&mut tx, &deployment.service).await? {
            return Err(StoreError::NotFound {
                kind: "service",
                name: deployment.service,
            });
        }
        let env = sqlx::query("SELECT 1 FROM environments WHERE name = $1")
            .bind(&deployment.environment)
            .fetch_optional(&mut *tx)
            .await?;
        if env.is_none() {
            return Err(StoreError::NotFound {
                kind: "environment",
                name: deployment.environment,
            });
        }
        sqlx::query(&format!(
            "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, NULL, NULL, $9, $11, $10, $10, $12, $13)"
        ))
        .bind(&deployment.id)
        .bind(&deployment.service)
        .bind(&deployment.environment)
        .bind(&deployment.git_ref)
        .bind(deployment.status.as_str())
        .bind(&deployment.trigger)
        .bind(&deployment.release_id)
        .bind(&deployment.rollback_of)
        .bind(&reason)
        .bind(ts(at))
        .bind(i32::try_from(deployment.replicas).unwrap_or(1))
        .bind(
            deployment
                .resources
                .memory_mb
                .and_then(|v| i32::try_from(v).ok()),
        )
        .bind(
            deployment
                .resources
                .cpu_millis
                .and_then(|v| i32::try_from(v).ok()),
        )
        .execute(&mut *tx)
        .await?;
        // The newest of its service and environment, and of its service: unless a deployment
        // created later committed first.
        sqlx::query(
            "INSERT INTO latest_deployments (service, environment, deployment_id, created_at) \
             VALUES ($1, $2, $3, $4), ($1, '*', $3, $4) \
             ON CONFLICT (service, environment) DO UPDATE \
             SET deployment_id = excluded.deployment_id, created_at = excluded.created_at \
             WHERE (excluded.created_at, excluded.deployment_id) \
                 > (latest_deployments.created_at, latest_deployments.deployment_id)",
        )
        .bind(&deployment.service)
        .bind(&deployment.environment)
        .bind(&deployment.id)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            &deployment.id,
            DeploymentStatus::Queued,
            &reason,
            at,
        )
        .await?;
        if let Some(key) = &new.idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, deployment_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.scope)
            .bind(&key.key)
            .bind(&key.fingerprint)
            .bind(&deployment.id)
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        }
        insert_job(&mut tx, &common::deploy_job(&deployment), at).await?;
        let detail = json!({
            "service": deployment.service,
            "environment": deployment.environment,
            "ref": deployment.git_ref,
            "release": deployment.release_id,
            "rollback_of": deployment.rollback_of,
            "trigger": deployment.trigger,
        });
        insert_audit(
            &mut tx,
            actor.audit("deployment.create", "deployment", &deployment.id, detail),
            at,
        )
        .await?;
        tx.commit().await?;
        self.wake_workers();
        Ok((deployment, false))
    }

    async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(row.try_into()?),
            None => Err(StoreError::NotFound {
                kind: "deployment",
                name: id.to_string(),
            }),
        }
    }

    async fn list_deployments(&self, query: &DeploymentQuery) -> Result<Page<Deployment>> {
        let conds = common::deployment_conditions(query);
        let (limit, offset) = common::limit_offset(query.limit, query.offset);

        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM deployments");
        common::push_where(&mut count, &conds, "LIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;

        let mut select =
            QueryBuilder::<Sqlite>::new(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments"));
        common::push_where(&mut select, &conds, "LIKE");
        select
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<DeploymentRow> = select.build_query_as().fetch_all(&self.reader).await?;

        Ok(Page {
            items: convert(rows)?,
            total: common::total(total),
        })
    }

    async fn latest_deployment(
        &self,
        service: &str,
        environment: Option<&str>,
    ) -> Result<Option<Deployment>> {
        let env_clause = if environment.is_some() {
            " AND environment = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE service = $1{env_clause} \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let mut select = sqlx::query_as::<_, DeploymentRow>(&sql).bind(service);
        if let Some(environment) = environment {
            select = select.bind(environment);
        }
        let row = select.fetch_optional(&self.reader).await?;
        Ok(row.map(Deployment::try_from).transpose()?)
    }

    async fn record_audit(&self, event: NewAuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_audit(&mut tx, event, common::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let conds = common::audit_conditions(query);
        let (limit, offset) = common::limit_offset(query.limit, query.offset);

        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM audit_events");
        common::push_where(&mut count, &conds, "LIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;

        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT id, at, actor, action, object_kind, object_name, remote_addr, result, detail FROM audit_events",
        );
        common::push_where(&mut select, &conds, "LIKE");
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<AuditRow> = select.build_query_as().fetch_all(&self.reader).await?;

        Ok(Page {
            items: convert(rows)?,
            total: common::total(total),
        })
    }

    async fn transition_deployment(
        &self,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
        update: TransitionUpdate,
    ) -> Result<Deployment> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let current = fetch_deployment(&mut tx, id).await?;
        common::check_transition(id, current.status, to)?;
        move_deployment(&mut tx, &current, to, reason, &update, at).await?;
        let d = fetch_deployment(&mut tx, id).await?;
        tx.commit().await?;
        Ok(d)
    }

    async fn transition_deployment_through(
        &self,
        id: &str,
        steps: &[(DeploymentStatus, String)],
    ) -> Result<Deployment> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let mut current = fetch_deployment(&mut tx, id).await?;
        for (to, reason) in steps {
            common::check_transition(id, current.status, *to)?;
            move_deployment(
                &mut tx,
                &current,
                *to,
                reason,
                &TransitionUpdate::default(),
                at,
            )
            .await?;
            current = fetch_deployment(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(current)
    }

    async fn deployment_events(&self, id: &str) -> Result<Vec<DeploymentEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT seq, at, status, reason FROM deployment_events WHERE deployment_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() {
            self.get_deployment(id).await?;
        }
        convert(rows)
    }

    async fn cancel_deployment(&self, id: &str, actor: &Actor) -> Result<Deployment> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let current = fetch_deployment(&mut tx, id).await?;
        if current.status.is_terminal() {
            return Err(StoreError::Refused(format!(
                "deployment {id} has already ended ({}); there is nothing to cancel",
                current.status
            )));
        }
        cancel_in_tx(&mut tx, &current, &actor.name, at).await?;
        insert_audit(
            &mut tx,
            actor.audit("deployment.cancel", "deployment", id, json!({})),
            at,
        )
        .await?;
        let d = fetch_deployment(&mut tx, id).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(d)
    }

    async fn request_destroy(&self, id: &str, actor: &Actor) -> Result<Deployment> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let current = fetch_deployment(&mut tx, id).await?;
        if current.status == DeploymentStatus::Destroyed {
            return Err(StoreError::Refused(format!(
                "deployment {id} is already destroyed"
            )));
        }
        if !current.status.is_terminal() {
            cancel_in_tx(&mut tx, &current, &actor.name, at).await?;
        }
        insert_job(&mut tx, &common::destroy_job(&current), at).await?;
        insert_audit(
            &mut tx,
            actor.audit("deployment.destroy", "deployment", id, json!({})),
            at,
        )
        .await?;
        let d = fetch_deployment(&mut tx, id).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(d)
    }

    async fn append_logs(&self, deployment_id: &str, lines: &[NewLogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM deployment_logs WHERE deployment_id = $1",
        )
        .bind(deployment_id)
        .fetch_one(&mut *tx)
        .await?;
        // SQLite allows 32766 bound parameters; 5 per row.
        for (chunk_no, chunk) in lines.chunks(1000).enumerate() {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deployment_logs (deployment_id, seq, at, stream, line) ",
            );
            let base = last + (chunk_no as i64) * 1000;
            insert.push_values(chunk.iter().enumerate(), |mut b, (i, l)| {
                b.push_bind(deployment_id)
                    .push_bind(base + i as i64 + 1)
                    .push_bind(ts(l.at))
                    .push_bind(l.stream.as_str())
                    .push_bind(&l.line);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deployment_logs(
        &self,
        deployment_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogLine>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT seq, at, stream, line FROM deployment_logs \
             WHERE deployment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(deployment_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        convert(rows)
    }

    async fn create_release(&self, release: &Release) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO releases (id, service, environment, deployment_id, commit_sha, plan, variables, created_at, healthy_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&release.id)
        .bind(&release.service)
        .bind(&release.environment)
        .bind(&release.deployment_id)
        .bind(&release.commit_sha)
        .bind(release.plan.to_string())
        .bind(serde_json::to_string(&release.variables).unwrap_or_else(|_| "{}".into()))
        .bind(ts(release.created_at))
        .bind(release.healthy_at.map(ts))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_release(&self, id: &str) -> Result<Release> {
        let row: Option<ReleaseRow> = sqlx::query_as(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(r) => Ok(r.try_into()?),
            None => Err(StoreError::NotFound {
                kind: "release",
                name: id.to_string(),
            }),
        }
    }

    async fn mark_release_healthy(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE releases SET healthy_at = $2 WHERE id = $1 AND healthy_at IS NULL")
            .bind(id)
            .bind(ts(common::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_releases(&self, service: &str, environment: &str) -> Result<Vec<Release>> {
        let rows: Vec<ReleaseRow> = sqlx::query_as(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE service = $1 AND environment = $2 \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(service)
        .bind(environment)
        .fetch_all(&self.reader)
        .await?;
        convert(rows)
    }

    async fn set_variables(
        &self,
        service: &str,
        environment: &str,
        variables: &BTreeMap<String, String>,
        actor: &Actor,
    ) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        if !service_exists(&mut tx, service).await? {
            return Err(StoreError::NotFound {
                kind: "service",
                name: service.to_string(),
            });
        }
        if sqlx::query("SELECT 1 FROM environments WHERE name = $1")
            .bind(environment)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                kind: "environment",
                name: environment.to_string(),
            });
        }
        sqlx::query("DELETE FROM service_variables WHERE service = $1 AND environment = $2")
            .bind(service)
            .bind(environment)
            .execute(&mut *tx)
            .await?;
        for (name, value) in variables {
            sqlx::query(
                "INSERT INTO service_variables (service, environment, name, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(service)
            .bind(environment)
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        let names: Vec<&String> = variables.keys().collect();
        insert_audit(
            &mut tx,
            actor.audit(
                "variables.set",
                "service",
                service,
                json!({ "environment": environment, "names": names }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_variables(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, value FROM service_variables WHERE service = $1 AND environment = $2 ORDER BY name",
        )
        .bind(service)
        .bind(environment)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn enqueue_job(&self, job: NewJob) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let id = insert_job(&mut tx, &job, common::now()).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(id)
    }

    async fn get_job(&self, id: i64) -> Result<Job> {
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        match row {
            Some(r) => Ok(r.try_into()?),
            None => Err(StoreError::NotFound {
                kind: "job",
                name: id.to_string(),
            }),
        }
    }

    async fn latest_job_for(&self, subject: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE subject = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(subject)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(Job::try_from).transpose()?)
    }

    async fn claim_job(
        &self,
        queues: &[&str],
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Job>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let mut tx = self.begin_write().await?;
        // Taken after BEGIN: a job committed while this claim waited for the writer is due.
        let now = common::now();
        loop {
            let mut select = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.queue IN ("
            ));
            let mut list = select.separated(", ");
            for q in queues {
                list.push_bind(*q);
            }
            select
                // Repeats what the two cases below say, so that the planner takes the partial index
                // of pending jobs (migration 0011) rather than the queue's whole history.
                .push(") AND j.status IN ('queued', 'running') AND ((j.status = 'queued' AND j.run_at <= ")
                .push_bind(ts(now))
                .push(") OR (j.status = 'running' AND j.lease_until < ")
                .push_bind(ts(now))
                .push(
                    ")) AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.concurrency_key = j.concurrency_key \
                     AND o.status IN ('queued', 'running') AND o.id < j.id) ORDER BY j.id LIMIT 1",
                );
            let Some(row) = select
                .build_query_as::<JobRow>()
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.commit().await?;
                return Ok(None);
            };
            let job = Job::try_from(row)?;
            if job.status == JobStatus::Running && job.attempts >= job.max_attempts {
                sqlx::query(
                    "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, \
                     last_error = $2, updated_at = $3 WHERE id = $1",
                )
                .bind(job.id)
                .bind(common::lease_exhausted_error(&job))
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
                // Its deployment must not stay in the step it was in.
                if job.kind == job_kind::DEPLOY {
                    if let Ok(d) = fetch_deployment(&mut tx, &job.subject).await {
                        if d.status.can_move_to(DeploymentStatus::Failed) {
                            move_deployment(
                                &mut tx,
                                &d,
                                DeploymentStatus::Failed,
                                &common::lease_exhausted_error(&job),
                                &TransitionUpdate::default(),
                                now,
                            )
                            .await?;
                        }
                    }
                }
                continue;
            }
            let row: JobRow = sqlx::query_as(&format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $2, \
                 lease_until = $3, updated_at = $4 WHERE id = $1 RETURNING {JOB_COLUMNS}"
            ))
            .bind(job.id)
            .bind(worker)
            .bind(ts(now + common::chrono_duration(lease)))
            .bind(ts(now))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Some(row.try_into()?));
        }
    }

    async fn heartbeat_job(&self, id: i64, worker: &str, lease: Duration) -> Result<Option<bool>> {
        let now = common::now();
        let mut tx = self.begin_write().await?;
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running' RETURNING cancel_requested",
        )
        .bind(id)
        .bind(worker)
        .bind(ts(now + common::chrono_duration(lease)))
        .bind(ts(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(cancel)
    }

    async fn cancel_job(&self, id: i64) -> Result<Job> {
        let mut tx = self.begin_write().await?;
        let at = ts(common::now());
        sqlx::query(
            "UPDATE jobs SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, \
             cancel_requested = CASE WHEN status = 'running' THEN 1 ELSE cancel_requested END, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_job(id).await
    }

    async fn expire_all_leases(&self) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE status = 'running'")
            .bind(ts(common::now() - chrono::Duration::seconds(1)))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        self.wake_workers();
        Ok(n)
    }

    async fn finish_job(&self, id: i64, worker: &str, outcome: JobOutcome) -> Result<bool> {
        let now = common::now();
        let (status, run_at, error) = common::outcome_columns(&outcome, now);
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = $3, run_at = COALESCE($4, run_at), last_error = COALESCE($5, last_error), \
             lease_owner = NULL, lease_until = NULL, updated_at = $6 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(status)
        .bind(run_at.map(ts))
        .bind(error)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        self.wake_workers();
        Ok(done)
    }

    async fn wait_for_jobs(&self, since: u64, timeout: Duration) {
        let mut rx = self.jobs_enqueued.subscribe();
        if *rx.borrow_and_update() != since {
            return;
        }
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    fn jobs_generation(&self) -> u64 {
        *self.jobs_enqueued.borrow()
    }

    async fn put_secret(&self, x: &SealedSecret, actor: &Actor) -> Result<SecretInfo> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM services WHERE name = $1")
            .bind(&x.service)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                kind: "service",
                name: x.service.clone(),
            });
        }
        if sqlx::query("SELECT 1 FROM environments WHERE name = $1")
            .bind(&x.environment)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                kind: "environment",
                name: x.environment.clone(),
            });
        }
        let version: i32 = sqlx::query_scalar(
            "INSERT INTO secrets (service, environment, name, version, key_id, ciphertext, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5, $6) \
             ON CONFLICT (service, environment, name) DO UPDATE SET version = secrets.version + 1, \
             key_id = excluded.key_id, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at \
             RETURNING version",
        )
        .bind(&x.service)
        .bind(&x.environment)
        .bind(&x.name)
        .bind(&x.key_id)
        .bind(&x.ciphertext)
        .bind(ts(at))
        .fetch_one(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            actor.audit(
                "secret.set",
                "service",
                &x.service,
                json!({ "environment": x.environment, "name": x.name, "version": version }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(SecretInfo {
            name: x.name.clone(),
            version,
            value: SECRET_MASK.to_string(),
            updated_at: at,
        })
    }

    async fn list_secrets(&self, service: &str, environment: &str) -> Result<Vec<SecretInfo>> {
        let rows: Vec<(String, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT name, version, updated_at FROM secrets WHERE service = $1 AND environment = $2 ORDER BY name",
        )
        .bind(service)
        .bind(environment)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, version, updated_at)| SecretInfo {
                name,
                version,
                value: SECRET_MASK.to_string(),
                updated_at,
            })
            .collect())
    }

    async fn delete_secret(
        &self,
        service: &str,
        environment: &str,
        name: &str,
        actor: &Actor,
    ) -> Result<()> {
        let at = common::now();
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query(
            "DELETE FROM secrets WHERE service = $1 AND environment = $2 AND name = $3",
        )
        .bind(service)
        .bind(environment)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone == 0 {
            return Err(StoreError::NotFound {
                kind: "secret",
                name: name.to_string(),
            });
        }
        insert_audit(
            &mut tx,
            actor.audit(
                "secret.delete",
                "service",
                service,
                json!({ "environment": environment, "name": name }),
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sealed_secrets(&self, service_env: Option<(&str, &str)>) -> Result<Vec<SealedSecret>> {
        type Row = (String, String, String, i32, String, Vec<u8>);
        let rows: Vec<Row> =
            match service_env {
                Some((service, environment)) => sqlx::query_as(
                    "SELECT service, environment, name, version, key_id, ciphertext FROM secrets \
                     WHERE service = $1 AND environment = $2 ORDER BY name",
                )
                .bind(service)
                .bind(environment)
                .fetch_all(&self.reader)
                .await?,
                None => sqlx::query_as(
                    "SELECT service, environment, name, version, key_id, ciphertext FROM secrets \
                     ORDER BY service, environment, name",
                )
                .fetch_all(&self.reader)
                .await?,
            };
        Ok(rows
            .into_iter()
            .map(
                |(service, environment, name, version, key_id, ciphertext)| SealedSecret {
                    service,
                    environment,
                    name,
                    version,
                    key_id,
                    ciphertext,
                },
            )
            .collect())
    }

    async fn reseal_secrets(&self, secrets: &[SealedSecret]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for x in secrets {
            sqlx::query(
                "UPDATE secrets SET key_id = $4, ciphertext = $5 \
                 WHERE service = $1 AND environment = $2 AND name = $3",
            )
            .bind(&x.service)
            .bind(&x.environment)
            .bind(&x.name)
            .bind(&x.key_id)
            .bind(&x.ciphertext)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_samples(&self, samples: &[RuntimeSample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for x in samples {
            sqlx::query(
                "INSERT INTO runtime_samples (service, environment, at, instances, cpu_percent, memory_bytes, \
                 requests, errors, latency_p50_ms, latency_p99_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM services WHERE name = $1) \
                 ON CONFLICT (service, environment, at) DO NOTHING",
            )
            .bind(&x.service)
            .bind(&x.environment)
            .bind(ts(x.at))
            .bind(x.instances)
            .bind(x.cpu_percent)
            .bind(x.memory_bytes)
            .bind(x.requests)
            .bind(x.errors)
            .bind(x.latency_p50_ms)
            .bind(x.latency_p99_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn runtime_samples(
        &self,
        service: &str,
        environment: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RuntimeSample>> {
        let rows: Vec<SampleRow> = sqlx::query_as(
            "SELECT service, environment, at, instances, cpu_percent, memory_bytes, requests, errors, \
             latency_p50_ms, latency_p99_ms FROM runtime_samples \
             WHERE service = $1 AND environment = $2 AND at >= $3 ORDER BY at",
        )
        .bind(service)
        .bind(environment)
        .bind(ts(since))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(RuntimeSample::from).collect())
    }

    async fn prune_samples(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM runtime_samples WHERE at < $1")
            .bind(ts(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn active_deployments_of_team(&self, team: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deployments d JOIN services s ON s.name = d.service \
             WHERE s.team = $1 AND d.status NOT IN ('EXPOSED', 'FAILED', 'ROLLED_BACK', 'CANCELLED', 'DESTROYED')",
        )
        .bind(team)
        .fetch_one(&self.reader)
        .await?;
        Ok(common::total(n))
    }

    async fn service_uid(&self, service: &str, first: u32) -> Result<u32> {
        let mut tx = self.begin_write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT uid FROM service_uids WHERE service = $1")
                .bind(service)
                .fetch_optional(&mut *tx)
                .await?;
        let uid = match existing {
            Some(uid) => uid,
            None => {
                if sqlx::query("SELECT 1 FROM services WHERE name = $1")
                    .bind(service)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_none()
                {
                    return Err(StoreError::NotFound {
                        kind: "service",
                        name: service.to_string(),
                    });
                }
                let next: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(uid) + 1, $1) FROM service_uids")
                        .bind(i64::from(first))
                        .fetch_one(&mut *tx)
                        .await?;
                let next = next.max(i64::from(first));
                sqlx::query("INSERT INTO service_uids (service, uid) VALUES ($1, $2)")
                    .bind(service)
                    .bind(next)
                    .execute(&mut *tx)
                    .await?;
                next
            }
        };
        tx.commit().await?;
        u32::try_from(uid).map_err(|_| StoreError::Refused(format!("uid {uid} is out of range")))
    }

    async fn record_scaffold_push(
        &self,
        push: &slipway_core::ScaffoldPush,
        actor: &Actor,
    ) -> Result<slipway_core::ScaffoldPush> {
        use crate::scaffold_push as sp;
        let at = common::now();
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM services WHERE name = $1")
            .bind(&push.service)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                kind: "service",
                name: push.service.clone(),
            });
        }
        let row: sp::Row = sqlx::query_as(sp::UPSERT)
            .bind(&push.service)
            .bind(&push.remote)
            .bind(&push.branch)
            .bind(push.status.as_str())
            .bind(&push.commit)
            .bind(&push.error)
            .bind(ts(at))
            .fetch_one(&mut *tx)
            .await?;
        let stored = slipway_core::ScaffoldPush::try_from(row)?;
        if let Some(event) = sp::audit(&stored, actor) {
            insert_audit(&mut tx, event, at).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn scaffold_push(&self, service: &str) -> Result<Option<slipway_core::ScaffoldPush>> {
        use crate::scaffold_push as sp;
        let row: Option<sp::Row> = sqlx::query_as(&format!(
            "SELECT {} FROM scaffold_pushes WHERE service = $1",
            sp::COLUMNS
        ))
        .bind(service)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(slipway_core::ScaffoldPush::try_from).transpose()?)
    }

    async fn pending_scaffold_pushes(&self) -> Result<Vec<slipway_core::ScaffoldPush>> {
        use crate::scaffold_push as sp;
        let rows: Vec<sp::Row> = sqlx::query_as(sp::PENDING).fetch_all(&self.reader).await?;
        common::convert(rows)
    }

    async fn put_instance(&self, i: &Instance) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (service, environment, release_id, slot) DO UPDATE SET pid = excluded.pid, \
             pid_start = excluded.pid_start, port = excluded.port, state = excluded.state, \
             started_at = excluded.started_at"
        ))
        .bind(&i.service)
        .bind(&i.environment)
        .bind(&i.release_id)
        .bind(i.slot)
        .bind(i.pid)
        .bind(i.pid_start)
        .bind(i.port)
        .bind(&i.state)
        .bind(ts(i.started_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_instance(
        &self,
        service: &str,
        environment: &str,
        release_id: &str,
        slot: i32,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM instances WHERE service = $1 AND environment = $2 AND release_id = $3 AND slot = $4",
        )
        .bind(service)
        .bind(environment)
        .bind(release_id)
        .bind(slot)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_instances(&self, service_env: Option<(&str, &str)>) -> Result<Vec<Instance>> {
        let rows: Vec<InstanceRow> = match service_env {
            Some((service, environment)) => {
                sqlx::query_as(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instances WHERE service = $1 AND environment = $2 \
                     ORDER BY release_id, slot"
                ))
                .bind(service)
                .bind(environment)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY service, environment, release_id, slot"
                ))
                .fetch_all(&self.reader)
                .await?
            }
        };
        Ok(rows.into_iter().map(Instance::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_database_works() {
        let store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("connect");
        store
            .create_environment("staging", &Actor::default())
            .await
            .expect("write");
        let envs = store.list_environments().await.expect("read");
        assert_eq!(envs.len(), 2);
    }

    /// The list and lookup queries the API runs on every page must find their rows through an index:
    /// a catalog holds tens of thousands of services and deployments.
    #[tokio::test]
    async fn hot_queries_use_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = SqliteStore::connect(&url).await.expect("connect");
        let queries = [
            "SELECT name FROM services WHERE team = 'a' ORDER BY name LIMIT 50",
            "SELECT name FROM services WHERE template = 'a' ORDER BY name LIMIT 50",
            "SELECT id FROM deployments WHERE service = 'a' ORDER BY created_at DESC, id DESC LIMIT 1",
            "SELECT id FROM deployments WHERE service = 'a' AND environment = 'dev' \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            "SELECT id FROM deployments WHERE environment = 'dev' ORDER BY created_at DESC, id DESC LIMIT 50",
            "SELECT id FROM deployments WHERE status = 'QUEUED' ORDER BY created_at DESC, id DESC LIMIT 50",
            "SELECT count(*) FROM deployments WHERE environment = 'dev'",
            "SELECT id FROM audit_events WHERE object_kind = 'service' ORDER BY id DESC LIMIT 50",
            "SELECT id FROM audit_events WHERE object_kind = 'service' AND object_name = 'a' ORDER BY id DESC LIMIT 50",
            "SELECT id FROM audit_events WHERE action = 'service.register' ORDER BY id DESC LIMIT 50",
            "SELECT path FROM artifacts WHERE service_name = 'a' AND scope = 'service' ORDER BY scope, path",
            // Artifact contents (migration 0010): read with their artifacts, and still named?
            "SELECT content FROM artifacts JOIN artifact_contents USING (sha256) \
             WHERE service_name = 'a' ORDER BY scope, path",
            "SELECT sha256 FROM artifacts WHERE service_name = 'a'",
            "SELECT 1 FROM artifacts WHERE sha256 = 'x'",
        ];
        for sql in queries {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(&store.reader)
                    .await
                    .expect("explain");
            let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
            assert!(
                plan.iter()
                    .all(|step| step.starts_with("SEARCH ") && step.contains(" INDEX ")),
                "{sql}\n{plan:?}"
            );
        }
    }
}
