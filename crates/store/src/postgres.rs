//! The store for multi-replica installs: PostgreSQL.
//!
//! Transactions run at READ COMMITTED. Inserts that may race (`ON CONFLICT DO NOTHING`) settle
//! conflicts without raising errors, and rows a transaction depends on are locked explicitly
//! (`FOR KEY SHARE` on the service and environment of a new deployment, `FOR UPDATE` on what is changed
//! or deleted), so concurrent replicas see the same outcomes as the single SQLite writer.

use crate::common::{
    self, convert, owner_key, ArtifactInfoRow, ArtifactRow, AuditRow, DeploymentRow,
    EnvironmentRow, ServiceRow, TeamRow,
};
use crate::{Result, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::json;
use slipway_core::{
    Actor, Artifact, ArtifactInfo, ArtifactScope, AuditEvent, AuditQuery, Deployment,
    DeploymentQuery, DeploymentStatus, Environment, NewAuditEvent, NewDeployment, NewService, Page,
    Service, ServiceQuery, ServiceUpdate, Team,
};
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder};
use std::time::Duration;

const MAX_CONNECTIONS: u32 = 10;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://…`) and runs its migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

async fn insert_audit(
    conn: &mut PgConnection,
    event: NewAuditEvent,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, object_kind, object_name, remote_addr, result, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
    )
    .bind(at)
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
/// creating the same team all succeed: the later ones wait for the first to commit, then do nothing.
async fn ensure_team(
    conn: &mut PgConnection,
    team: &str,
    at: DateTime<Utc>,
    actor: &Actor,
    via: &str,
) -> Result<()> {
    let created = sqlx::query(
        "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(team)
    .bind(at)
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

async fn insert_artifacts(
    conn: &mut PgConnection,
    service: &str,
    artifacts: &[Artifact],
) -> Result<()> {
    for a in artifacts {
        sqlx::query(
            "INSERT INTO artifacts (service_name, scope, path, content, sha256, generator) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(service)
        .bind(a.scope.as_str())
        .bind(&a.path)
        .bind(&a.content)
        .bind(&a.sha256)
        .bind(&a.generator)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn upsert_platform_files(conn: &mut PgConnection, files: &[Artifact]) -> Result<()> {
    for f in common::sorted_files(files) {
        sqlx::query(
            "INSERT INTO artifacts (service_name, scope, path, content, sha256, generator) \
             VALUES ('', $1, $2, $3, $4, $5) \
             ON CONFLICT (service_name, scope, path) DO UPDATE \
             SET content = excluded.content, sha256 = excluded.sha256, generator = excluded.generator \
             WHERE artifacts.sha256 <> excluded.sha256 OR artifacts.generator <> excluded.generator",
        )
        .bind(f.scope.as_str())
        .bind(&f.path)
        .bind(&f.content)
        .bind(&f.sha256)
        .bind(&f.generator)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const SERVICE_COLUMNS: &str = "name, team, repo_url, template, description, created_at, updated_at";
const DEPLOYMENT_COLUMNS: &str =
    "id, service, environment, git_ref, status, status_before_destroy, \"trigger\", created_at, updated_at";
const ARTIFACT_COLUMNS: &str = "service_name, scope, path, content, sha256, generator";
const ARTIFACT_INFO_COLUMNS: &str =
    "scope, path, sha256, octet_length(content)::bigint AS size, generator";

async fn service_exists(conn: &mut PgConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM services WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// A service's artifacts; `NotFound` when there are none because the service does not exist.
async fn require_service_if_empty<T>(
    conn: &mut PgConnection,
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
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_team(&self, name: &str, actor: &Actor) -> Result<Team> {
        let at = common::now();
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(at)
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
            .fetch_optional(&self.pool)
            .await?
            .map(Team::from)
            .ok_or_else(|| StoreError::NotFound {
                kind: "team",
                name: name.to_string(),
            })
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows = sqlx::query_as::<_, TeamRow>("SELECT name, created_at FROM teams ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    async fn register_service(&self, new: NewService, actor: &Actor) -> Result<Service> {
        let at = common::now();
        let service = common::new_service_record(&new, at);
        let mut tx = self.pool.begin().await?;
        ensure_team(&mut tx, &new.team, at, actor, "service.register").await?;
        // A concurrent registration of the same name makes this wait for it, then do nothing.
        let inserted = sqlx::query(
            "INSERT INTO services (name, team, repo_url, template, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&service.name)
        .bind(&service.team)
        .bind(&service.repo_url)
        .bind(&service.template)
        .bind(&service.description)
        .bind(at)
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
        insert_artifacts(&mut tx, &new.name, &new.artifacts).await?;
        upsert_platform_files(&mut tx, &new.platform_files).await?;
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
        sqlx::query_as::<_, ServiceRow>(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .map(Service::from)
        .ok_or_else(|| StoreError::NotFound {
            kind: "service",
            name: name.to_string(),
        })
    }

    async fn list_services(&self, query: &ServiceQuery) -> Result<Page<Service>> {
        let conds = common::service_conditions(query);
        let (limit, offset) = common::limit_offset(query.limit, query.offset);

        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM services");
        common::push_where(&mut count, &conds, "ILIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut select =
            QueryBuilder::<Postgres>::new(format!("SELECT {SERVICE_COLUMNS} FROM services"));
        common::push_where(&mut select, &conds, "ILIKE");
        select
            .push(" ORDER BY name LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<ServiceRow> = select.build_query_as().fetch_all(&self.pool).await?;

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
        let mut tx = self.pool.begin().await?;
        let mut service: Service = sqlx::query_as::<_, ServiceRow>(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE name = $1 FOR UPDATE"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .map(Service::from)
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
            .bind(at)
            .execute(&mut *tx)
            .await?;
        if let Some(artifacts) = &update.artifacts {
            sqlx::query("DELETE FROM artifacts WHERE service_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            insert_artifacts(&mut tx, name, artifacts).await?;
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
        let mut tx = self.pool.begin().await?;
        // Locking the row first holds off new deployments of it (they take FOR KEY SHARE), so the count
        // below is what the cascade deletes.
        let locked = sqlx::query("SELECT 1 FROM services WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if locked.is_none() {
            return Err(StoreError::NotFound {
                kind: "service",
                name: name.to_string(),
            });
        }
        let deployments: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deployments WHERE service = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        // Deployments go with the service (ON DELETE CASCADE); artifacts have no foreign key.
        sqlx::query("DELETE FROM services WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let artifacts = sqlx::query("DELETE FROM artifacts WHERE service_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
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
        let mut tx = self.pool.begin().await?;
        let created =
            sqlx::query("INSERT INTO environments (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(at)
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
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Environment::from).collect())
    }

    async fn delete_environment(&self, name: &str, actor: &Actor) -> Result<()> {
        let at = common::now();
        let mut tx = self.pool.begin().await?;
        // The lock holds off new deployments to it (they take FOR KEY SHARE) until this commits.
        let locked = sqlx::query("SELECT 1 FROM environments WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if locked.is_none() {
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
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {ARTIFACT_INFO_COLUMNS} FROM artifacts WHERE service_name = $1{} ORDER BY scope, path",
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
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service_name = $1 AND scope = $2 AND path = $3"
        ))
        .bind(service)
        .bind(scope.as_str())
        .bind(path)
        .fetch_optional(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service_name = $1{} ORDER BY scope, path",
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
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service_name = $1 ORDER BY path, scope"
        ))
        .bind(owner_key(None))
        .fetch_all(&self.pool)
        .await?;
        convert(rows)
    }

    async fn visit_platform_artifacts(
        &self,
        visit: &mut (dyn FnMut(Artifact) + Send),
    ) -> Result<()> {
        // One snapshot for both reads.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let shared = format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service_name = '' AND scope = 'platform' ORDER BY path"
        );
        for sql in [
            shared.as_str(),
            "SELECT a.service_name, a.scope, a.path, a.content, a.sha256, a.generator \
             FROM services s JOIN artifacts a ON a.service_name = s.name AND a.scope = 'platform' \
             ORDER BY s.created_at, s.name, a.path",
        ] {
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

    async fn create_deployment(&self, new: NewDeployment, actor: &Actor) -> Result<Deployment> {
        let at = common::now();
        let deployment = Deployment {
            id: uuid::Uuid::now_v7().to_string(),
            service: new.service,
            environment: new.environment,
            git_ref: new.git_ref,
            status: DeploymentStatus::Queued,
            status_before_destroy: None,
            trigger: new.trigger,
            created_at: at,
            updated_at: at,
        };
        let mut tx = self.pool.begin().await?;
        // FOR KEY SHARE keeps the service and environment from being deleted until this commits.
        let service = sqlx::query("SELECT 1 FROM services WHERE name = $1 FOR KEY SHARE")
            .bind(&deployment.service)
            .fetch_optional(&mut *tx)
            .await?;
        if service.is_none() {
            return Err(StoreError::NotFound {
                kind: "service",
                name: deployment.service,
            });
        }
        let env = sqlx::query("SELECT 1 FROM environments WHERE name = $1 FOR KEY SHARE")
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
            "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7)"
        ))
        .bind(&deployment.id)
        .bind(&deployment.service)
        .bind(&deployment.environment)
        .bind(&deployment.git_ref)
        .bind(deployment.status.as_str())
        .bind(&deployment.trigger)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let detail = json!({
            "service": deployment.service,
            "environment": deployment.environment,
            "ref": deployment.git_ref,
            "trigger": deployment.trigger,
        });
        insert_audit(
            &mut tx,
            actor.audit("deployment.create", "deployment", &deployment.id, detail),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
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

        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM deployments");
        common::push_where(&mut count, &conds, "ILIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut select =
            QueryBuilder::<Postgres>::new(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments"));
        common::push_where(&mut select, &conds, "ILIKE");
        select
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<DeploymentRow> = select.build_query_as().fetch_all(&self.pool).await?;

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
        let row = select.fetch_optional(&self.pool).await?;
        Ok(row.map(Deployment::try_from).transpose()?)
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let conds = common::audit_conditions(query);
        let (limit, offset) = common::limit_offset(query.limit, query.offset);

        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM audit_events");
        common::push_where(&mut count, &conds, "ILIKE");
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut select = QueryBuilder::<Postgres>::new(
            "SELECT id, at, actor, action, object_kind, object_name, remote_addr, result, detail::text AS detail \
             FROM audit_events",
        );
        common::push_where(&mut select, &conds, "ILIKE");
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<AuditRow> = select.build_query_as().fetch_all(&self.pool).await?;

        Ok(Page {
            items: convert(rows)?,
            total: common::total(total),
        })
    }
}
