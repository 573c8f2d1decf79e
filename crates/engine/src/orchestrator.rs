//! The orchestrator: runs `deploy` and `destroy` jobs through the seed-002 state machine.
//!
//! QUEUED → ANALYZING (fetch the ref, plan it) → BUILDING (install + build on the host) →
//! PROVISIONING (ports, directories) → DEPLOYING (start the new release beside the old) → HEALTHY
//! (every instance answers its health check) → EXPOSED (the proxy routes to it; the old release
//! drains and stops). A release that never becomes healthy goes FAILED → ROLLING_BACK → ROLLED_BACK
//! while the previous release keeps serving.
//!
//! Handlers are idempotent: a job taken over after a crash looks at the deployment's status and
//! carries on from the step it was in (redoing that step from a clean start).

use crate::local::{BuildError, BuildSpec, LocalTarget};
use crate::logs::{DeploymentLog, LogHub};
use crate::source::{self, FetchLimits};
use async_trait::async_trait;
use slipway_analyzer::{AnalyzeOptions, BuildPlan};
use slipway_core::{job_kind, Deployment, DeploymentStatus, Job, Release, TransitionUpdate};
use slipway_jobs::{JobContext, JobError, JobHandler, StopReason};
use slipway_store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct Orchestrator {
    pub store: Arc<dyn Store>,
    pub local: Arc<LocalTarget>,
    pub logs: Arc<LogHub>,
    pub fetch_limits: FetchLimits,
    pub metrics: Arc<crate::metrics::EngineMetrics>,
}

/// How far along the happy path a status is, for resuming.
fn progress(s: DeploymentStatus) -> u8 {
    use DeploymentStatus::*;
    match s {
        Queued => 0,
        Analyzing => 1,
        Building => 2,
        Provisioning => 3,
        Deploying => 4,
        Healthy => 5,
        Exposed => 6,
        _ => 7,
    }
}

/// Why a deployment step stopped.
enum Stop {
    /// The deployment failed for this reason (recorded, the job ends).
    Failed(String),
    /// The deployment failed after starting its release: roll back.
    Unhealthy(String),
    Cancelled,
    /// Shutting down or lost the lease: leave everything for whoever resumes.
    Interrupted,
    /// A transient error: the job is retried.
    Retry(String),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } | StoreError::Refused(_) => Stop::Failed(e.to_string()),
            other => Stop::Retry(other.to_string()),
        }
    }
}

#[async_trait]
impl JobHandler for Orchestrator {
    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError> {
        let Some(id) = job.payload["deployment_id"].as_str() else {
            return Err(JobError::Permanent("job has no deployment_id".into()));
        };
        let deployment = match self.store.get_deployment(id).await {
            Ok(d) => d,
            Err(StoreError::NotFound { .. }) => {
                return Err(JobError::Permanent(format!(
                    "deployment {id} no longer exists"
                )))
            }
            Err(e) => return Err(JobError::Transient(e.to_string())),
        };
        let log = DeploymentLog::start(self.store.clone(), self.logs.clone(), id);
        let result = match job.kind.as_str() {
            job_kind::DEPLOY => self.deploy(deployment, job, ctx, &log).await,
            job_kind::DESTROY => self.destroy(deployment, &log).await,
            other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
        };
        log.flush().await;
        if matches!(
            self.store
                .get_deployment(id)
                .await
                .map(|d| d.status.is_terminal()),
            Ok(true)
        ) {
            self.logs.close(id);
        }
        result
    }
}

impl Orchestrator {
    async fn deploy(
        &self,
        d: Deployment,
        job: &Job,
        ctx: &JobContext,
        log: &DeploymentLog,
    ) -> Result<(), JobError> {
        if d.status.is_terminal() {
            return Ok(());
        }
        if job.attempts > 1 {
            log.system(format!(
                "resuming at {} (attempt {} of {})",
                d.status, job.attempts, job.max_attempts
            ));
        }
        let cancel = CancellationToken::new();
        let watcher = {
            let ctx = ctx.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                ctx.stopped().await;
                cancel.cancel();
            })
        };
        let outcome = self.deploy_steps(&d, log, &cancel).await;
        watcher.abort();
        let outcome = match outcome {
            Err(Stop::Cancelled) | Err(Stop::Interrupted) => match ctx.stop_reason() {
                Some(StopReason::Cancelled) | None => Err(Stop::Cancelled),
                Some(_) => Err(Stop::Interrupted),
            },
            // The last attempt: the deployment ends here rather than stay in its step.
            Err(Stop::Retry(e)) if job.attempts >= job.max_attempts => Err(Stop::Failed(format!(
                "gave up after {} attempts: {e}",
                job.attempts
            ))),
            other => other,
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(Stop::Interrupted) => {
                log.system("interrupted; the deployment resumes when its job runs again");
                Err(JobError::Transient("interrupted".into()))
            }
            Err(Stop::Retry(e)) => {
                log.system(format!("transient error, will retry: {e}"));
                Err(JobError::Transient(e))
            }
            Err(Stop::Cancelled) => {
                self.cleanup_unfinished(&d).await;
                let by = "cancelled by request";
                self.move_to(&d.id, DeploymentStatus::Cancelled, by, Default::default())
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))?;
                log.system(by);
                Err(JobError::Cancelled)
            }
            Err(Stop::Failed(reason)) => {
                self.cleanup_unfinished(&d).await;
                log.system(format!("FAILED: {reason}"));
                self.move_to(&d.id, DeploymentStatus::Failed, &reason, Default::default())
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))?;
                Ok(())
            }
            Err(Stop::Unhealthy(reason)) => {
                self.rollback_automatically(&d, &reason, log)
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))?;
                Ok(())
            }
        }
    }

    async fn deploy_steps(
        &self,
        d: &Deployment,
        log: &DeploymentLog,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let service = self.store.get_service(&d.service).await?;
        let variables = self.store.get_variables(&d.service, &d.environment).await?;
        // Secrets are opened now (a wrong key fails the deployment with the reason), injected into
        // the app's environment only, and masked in this log.
        let secrets = self
            .local
            .secret_env(&d.service, &d.environment)
            .await
            .map_err(Stop::Failed)?;
        // The repository's credentials serve the fetch alone.
        let credentials = self
            .local
            .git_credentials(&d.service, &d.environment)
            .await
            .map_err(Stop::Failed)?;
        let log = log.redacting(
            variables
                .values()
                .chain(secrets.values())
                .cloned()
                .chain(credentials.secret_values())
                .collect(),
        );
        let log = &log;
        let mut status = d.status;
        let sandbox = self.local.sandbox(&d.service).await.map_err(Stop::Retry)?;

        // ANALYZING + BUILDING: a release to run, built now or taken from an earlier deployment.
        let release = if let Some(release_id) = d.rollback_of.as_ref().and(d.release_id.clone()) {
            let release = self.store.get_release(&release_id).await?;
            let dir = self
                .local
                .release_dir(&d.service, &d.environment, &release.id);
            if !dir.exists() {
                return Err(Stop::Failed(format!(
                    "release {release_id} was cleaned up from disk; it cannot be rolled back to"
                )));
            }
            let why = format!(
                "rolling back to release {release_id} (commit {}): no analysis",
                short_sha(&release.commit_sha)
            );
            self.advance(d, &mut status, DeploymentStatus::Analyzing, &why, log)
                .await?;
            self.advance(
                d,
                &mut status,
                DeploymentStatus::Building,
                "release already built; no rebuild",
                log,
            )
            .await?;
            release
        } else {
            let why = match &d.git_ref {
                Some(r) => format!("fetching {} at {r}", service.repo_url),
                None => format!("fetching {} at its default branch", service.repo_url),
            };
            self.advance(d, &mut status, DeploymentStatus::Analyzing, &why, log)
                .await?;
            // The release is this deployment's build: a fresh directory each time the step runs.
            let root = self.local.release_dir(&d.service, &d.environment, &d.id);
            crate::process::remove_dir(&root).await;
            let sha = tokio::select! {
                r = source::fetch_with(&service.repo_url, d.git_ref.as_deref(), &root, &self.fetch_limits, &credentials) => r,
                _ = cancel.cancelled() => return Err(Stop::Cancelled),
            };
            let sha = match sha {
                Ok(sha) => sha,
                Err(e) if e.is_transient() => return Err(Stop::Retry(e.to_string())),
                Err(e) => return Err(Stop::Failed(format!("ANALYZING: {e}"))),
            };
            log.system(format!("fetched commit {sha}"));
            let mut plan = analyze(root.clone()).await?;
            // The resources the release runs with: the request's, else the repository's, else
            // the defaults — recorded in its plan, so a rollback or restart runs with the same.
            let resources = d.resources.or(self.local.resources_of(&plan));
            self.local
                .check_deployment_resources(d.replicas, resources)
                .map_err(|e| Stop::Failed(format!("ANALYZING: {e}")))?;
            plan.resources = Some(slipway_analyzer::ResourcesHint {
                memory_mb: resources.memory_mb.unwrap_or_default(),
                cpu: f64::from(resources.cpu_millis.unwrap_or_default()) / 1000.0,
            });
            plan.evidence.push(slipway_analyzer::Evidence {
                field: "resources".into(),
                value: format!(
                    "{} MiB, {}m CPU",
                    resources.memory_mb.unwrap_or_default(),
                    resources.cpu_millis.unwrap_or_default()
                ),
                source: None,
                line: None,
                rule: crate::local::RESOURCES_RULE.into(),
            });
            for line in slipway_analyzer::render_table(&plan).lines() {
                log.system(line);
            }
            for notice in &plan.notices {
                log.system(format!("note: {notice}"));
            }
            let commands: Vec<String> = plan
                .install
                .iter()
                .chain(plan.build.iter())
                .cloned()
                .collect();
            let what = [plan.language.as_deref(), plan.framework.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let summary = format!(
                "{} at {}: {}",
                if what.is_empty() { "app" } else { &what },
                short_sha(&sha),
                if commands.is_empty() {
                    "nothing to build".to_string()
                } else {
                    commands.join(" && ")
                }
            );
            self.advance_with(
                d,
                &mut status,
                DeploymentStatus::Building,
                &summary,
                TransitionUpdate {
                    release_id: Some(d.id.clone()),
                    commit_sha: Some(sha.clone()),
                    url: None,
                },
                log,
            )
            .await?;
            let app_dir = app_dir(&root, &plan);
            let started = Instant::now();
            match self
                .local
                .build(
                    BuildSpec {
                        service: &d.service,
                        environment: &d.environment,
                        dir: &app_dir,
                        commands: &commands,
                        variables: &variables,
                        sandbox,
                    },
                    log,
                    cancel,
                )
                .await
            {
                Ok(()) => {
                    self.metrics.build_finished(started.elapsed());
                    log.system(format!(
                        "build finished in {:.1} s",
                        started.elapsed().as_secs_f64()
                    ))
                }
                Err(BuildError::Cancelled) => return Err(Stop::Cancelled),
                Err(e) => return Err(Stop::Failed(format!("BUILDING: {e}"))),
            }
            let release = Release {
                id: d.id.clone(),
                service: d.service.clone(),
                environment: d.environment.clone(),
                deployment_id: d.id.clone(),
                commit_sha: sha,
                plan: serde_json::to_value(&plan).map_err(|e| Stop::Failed(e.to_string()))?,
                variables: variables.clone(),
                created_at: chrono::Utc::now(),
                healthy_at: None,
            };
            match self.store.create_release(&release).await {
                Ok(()) => release,
                // Resumed after the release was recorded: the record stands (releases are immutable).
                Err(_) => self.store.get_release(&release.id).await?,
            }
        };

        // PROVISIONING
        let Some(mut spec) = self.local.spec_for(&release) else {
            return Err(Stop::Failed(
                "the plan has no start command and no static directory to serve".into(),
            ));
        };
        spec.variables.extend(secrets.clone());
        spec.redact = secrets.values().cloned().collect();
        spec.sandbox = sandbox;
        let replicas = if spec.fixed_port.is_some() {
            1
        } else {
            d.replicas.max(1)
        };
        self.local
            .check_deployment_resources(replicas, spec.resources)
            .map_err(|e| Stop::Failed(format!("PROVISIONING: {e}")))?;
        let how = match spec.fixed_port {
            Some(p) => format!("1 instance on fixed port {p} (the app ignores PORT: the old release stops before the new one starts, so this swap is not zero-downtime)"),
            None => format!("{replicas} instance(s) on loopback ports assigned through PORT"),
        };
        log.system(format!(
            "each instance: {} MiB of memory, {} CPU; {}",
            spec.resources
                .memory_mb
                .map_or("unlimited".into(), |m| m.to_string()),
            spec.resources
                .cpu_millis
                .map_or("unlimited".into(), |c| format!("{c}m")),
            self.local.limits_note()
        ));
        self.advance(d, &mut status, DeploymentStatus::Provisioning, &how, log)
            .await?;

        // DEPLOYING
        // A previous attempt's instances of this release are not trusted: start clean.
        self.local
            .destroy_release(&d.service, &d.environment, &release.id)
            .await;
        if spec.fixed_port.is_some() {
            let old = self.local.serving(&d.service, &d.environment);
            self.local.stop(&old).await;
        }
        self.advance(
            d,
            &mut status,
            DeploymentStatus::Deploying,
            &format!("starting `{}`", spec.start),
            log,
        )
        .await?;
        let health_path = spec.health_path.clone();
        let new = self
            .local
            .start(spec, replicas, None, Some(log.clone()))
            .await
            .map_err(|e| Stop::Retry(format!("cannot start instances: {e}")))?;
        let healthy_at = match self
            .local
            .wait_healthy(&new, health_path.as_deref(), log, cancel)
            .await
        {
            Ok(at) => at,
            Err(_) if cancel.is_cancelled() => {
                self.local.stop(&new).await;
                return Err(Stop::Cancelled);
            }
            Err(reason) => {
                self.local.stop(&new).await;
                return Err(Stop::Unhealthy(reason));
            }
        };

        // HEALTHY → EXPOSED
        self.advance(
            d,
            &mut status,
            DeploymentStatus::Healthy,
            &format!("{} instance(s) healthy", new.len()),
            log,
        )
        .await?;
        let old = self.local.swap(&d.service, &d.environment, &new).await;
        let url = self.local.url(&d.service, &d.environment);
        self.store.mark_release_healthy(&release.id).await?;
        self.advance_with(
            d,
            &mut status,
            DeploymentStatus::Exposed,
            &format!(
                "serving at {url} ({} ms after the health check passed)",
                healthy_at.elapsed().as_millis()
            ),
            TransitionUpdate {
                release_id: Some(release.id.clone()),
                commit_sha: Some(release.commit_sha.clone()),
                url: Some(url.clone()),
            },
            log,
        )
        .await?;
        if !old.is_empty() {
            log.system(format!(
                "draining {} instance(s) of release {}",
                old.len(),
                old[0].release_id
            ));
        }
        // Draining and cleaning up happen after EXPOSED, outside the job.
        let local = self.local.clone();
        let store = self.store.clone();
        let (service_name, env) = (d.service.clone(), d.environment.clone());
        tokio::spawn(async move {
            local.retire(old).await;
            clean_releases(&local, store.as_ref(), &service_name, &env).await;
        });
        Ok(())
    }

    /// The new release never became healthy: it is stopped (already) and the previous one keeps
    /// serving.
    async fn rollback_automatically(
        &self,
        d: &Deployment,
        reason: &str,
        log: &DeploymentLog,
    ) -> Result<(), StoreError> {
        log.system(format!("FAILED: {reason}"));
        let previous = self.local.serving_release(&d.service, &d.environment);
        let why = match &previous {
            Some(r) => format!("release {r} keeps serving; the new release was stopped"),
            None => "no earlier release was serving; the new release was stopped".to_string(),
        };
        // FAILED and ROLLING_BACK land together: no reader sees FAILED as the end of this one.
        self.store
            .transition_deployment_through(
                &d.id,
                &[
                    (DeploymentStatus::Failed, reason.to_string()),
                    (DeploymentStatus::RollingBack, why.clone()),
                ],
            )
            .await?;
        log.system(&why);
        clean_releases(&self.local, self.store.as_ref(), &d.service, &d.environment).await;
        let done = format!("rolled back: {reason}");
        self.move_to(
            &d.id,
            DeploymentStatus::RolledBack,
            &done,
            Default::default(),
        )
        .await?;
        Ok(())
    }

    /// Stops what an unfinished deployment started (its own release's instances that do not serve).
    async fn cleanup_unfinished(&self, d: &Deployment) {
        if d.rollback_of.is_some() {
            // A rollback's release may be the one serving; only stop it when it is not.
            if let Some(r) = &d.release_id {
                if self
                    .local
                    .serving_release(&d.service, &d.environment)
                    .as_deref()
                    != Some(r)
                {
                    self.local
                        .destroy_release(&d.service, &d.environment, r)
                        .await;
                }
            }
            return;
        }
        if self
            .local
            .serving_release(&d.service, &d.environment)
            .as_deref()
            != Some(&d.id)
        {
            self.local
                .destroy_release(&d.service, &d.environment, &d.id)
                .await;
            // A build that never became a release leaves nothing worth keeping.
            if matches!(
                self.store.get_release(&d.id).await,
                Err(StoreError::NotFound { .. })
            ) {
                crate::process::remove_dir(&self.local.release_dir(
                    &d.service,
                    &d.environment,
                    &d.id,
                ))
                .await;
            }
        }
    }

    async fn destroy(&self, d: Deployment, log: &DeploymentLog) -> Result<(), JobError> {
        if d.status == DeploymentStatus::Destroyed {
            return Ok(());
        }
        if !d.status.is_terminal() {
            // The deployment was asked to stop; its own job ends it first (this job runs after it).
            return Err(JobError::Transient(format!(
                "deployment {} is still {}; destroying after it ends",
                d.id, d.status
            )));
        }
        let ran = match &d.release_id {
            Some(r) => {
                self.local
                    .destroy_release(&d.service, &d.environment, r)
                    .await
            }
            None => false,
        };
        let reason = if ran {
            "destroyed: its instances were stopped and its route removed"
        } else {
            "destroyed: nothing of it was running"
        };
        log.system(reason);
        self.move_to(
            &d.id,
            DeploymentStatus::Destroyed,
            reason,
            Default::default(),
        )
        .await
        .map_err(|e| JobError::Transient(e.to_string()))?;
        Ok(())
    }

    /// Moves forward to `to` unless the deployment is already there or beyond (a resumed job).
    async fn advance(
        &self,
        d: &Deployment,
        status: &mut DeploymentStatus,
        to: DeploymentStatus,
        reason: &str,
        log: &DeploymentLog,
    ) -> Result<(), Stop> {
        self.advance_with(d, status, to, reason, TransitionUpdate::default(), log)
            .await
    }

    async fn advance_with(
        &self,
        d: &Deployment,
        status: &mut DeploymentStatus,
        to: DeploymentStatus,
        reason: &str,
        update: TransitionUpdate,
        log: &DeploymentLog,
    ) -> Result<(), Stop> {
        if progress(*status) >= progress(to) {
            return Ok(());
        }
        log.system(format!("{to}: {reason}"));
        let moved = self.move_to(&d.id, to, reason, update).await;
        match moved {
            Ok(next) => {
                *status = next.status;
                Ok(())
            }
            // Someone else ended it (a cancel that raced us): stop quietly.
            Err(StoreError::Refused(_)) => Err(Stop::Interrupted),
            Err(e) => Err(e.into()),
        }
    }

    async fn move_to(
        &self,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
        update: TransitionUpdate,
    ) -> Result<Deployment, StoreError> {
        let d = self
            .store
            .transition_deployment(id, to, reason, update)
            .await?;
        // A deployment is counted once, by how it ended; destroying it later is not another end.
        if to.is_terminal() && to != DeploymentStatus::Destroyed {
            self.metrics
                .deployment_ended(&d.service, &d.environment, to.as_str());
        }
        Ok(d)
    }
}

/// Plans the checkout (the analyzer reads files; off the async threads).
async fn analyze(root: PathBuf) -> Result<BuildPlan, Stop> {
    tokio::task::spawn_blocking(move || {
        slipway_analyzer::analyze_dir(&root, &AnalyzeOptions::default())
    })
    .await
    .map_err(|e| Stop::Retry(format!("the analyzer stopped: {e}")))?
    .map_err(|e| Stop::Failed(format!("ANALYZING: {e}")))
}

fn app_dir(root: &std::path::Path, plan: &BuildPlan) -> PathBuf {
    if plan.app_dir.is_empty() || plan.app_dir == "." {
        root.to_path_buf()
    } else {
        root.join(&plan.app_dir)
    }
}

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Removes release directories beyond the newest `keep_releases` that became healthy, never the
/// serving release or its rollback target.
async fn clean_releases(local: &LocalTarget, store: &dyn Store, service: &str, env: &str) {
    let Ok(releases) = store.list_releases(service, env).await else {
        return;
    };
    let serving = local.serving_release(service, env);
    let target = serving
        .as_deref()
        .and_then(|s| rollback_target(&releases, s))
        .map(|r| r.id.clone());
    let healthy: Vec<String> = releases
        .iter()
        .filter(|r| r.healthy_at.is_some())
        .map(|r| r.id.clone())
        .collect();
    let all: Vec<String> = releases.iter().map(|r| r.id.clone()).collect();
    let keep: Vec<String> = serving.into_iter().chain(target).collect();
    local
        .clean_releases(service, env, &all, &healthy, &keep)
        .await;
}

/// The release a rollback from `current` goes to: the newest release that became healthy before
/// it. `releases` is newest first.
pub fn rollback_target<'a>(releases: &'a [Release], current: &str) -> Option<&'a Release> {
    let current_at = releases
        .iter()
        .find(|r| r.id == current)
        .map(|r| r.created_at);
    releases.iter().find(|r| {
        r.id != current && r.healthy_at.is_some() && current_at.is_none_or(|at| r.created_at < at)
    })
}
