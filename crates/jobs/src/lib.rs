//! Workers for the durable job queue kept by the store (see `Store::claim_job`).
//!
//! A worker claims a job with a lease and keeps the lease alive with heartbeats while its handler
//! runs. When the worker dies, the lease runs out and another worker (in this process after a
//! restart, or on another replica) takes the job over, so handlers must be idempotent: they look at
//! the state they left behind and carry on. A handler's error says whether trying again may help
//! ([`JobError::Transient`], retried with exponential backoff and jitter up to the job's attempt
//! limit) or not ([`JobError::Permanent`], failed at once with the reason). A user may cancel a job:
//! the heartbeat brings the request back and the handler's [`JobContext`] is cancelled.

use async_trait::async_trait;
use chrono::Utc;
use slipway_core::{Job, JobOutcome};
use slipway_store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Trying again later may succeed (a network error, a busy resource).
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help (bad input, a missing object); fail now with this reason.
    #[error("{0}")]
    Permanent(String),
    /// The handler stopped because its context was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// What a running handler can ask about its job.
#[derive(Clone)]
pub struct JobContext {
    cancel: CancellationToken,
    why: Arc<std::sync::Mutex<Option<StopReason>>>,
}

/// Why a handler was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A user cancelled the job.
    Cancelled,
    /// This worker lost its lease (another took the job over); stop without writing anything.
    LeaseLost,
    /// The process is shutting down; the job is handed back to the queue.
    Shutdown,
}

impl JobContext {
    fn new() -> Self {
        Self {
            cancel: CancellationToken::new(),
            why: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// A context that is never stopped, for calling handlers directly in tests.
    pub fn detached() -> Self {
        Self::new()
    }

    fn stop(&self, reason: StopReason) {
        if let Ok(mut why) = self.why.lock() {
            why.get_or_insert(reason);
        }
        self.cancel.cancel();
    }

    /// Resolves when the handler should stop.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await
    }

    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Why the handler was asked to stop, if it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.why.lock().ok().and_then(|w| *w)
    }
}

/// Runs jobs of some kinds.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError>;
}

/// How workers behave.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this process's workers in leases (`<host>-<pid>-<n>` by default).
    pub name: String,
    pub queues: Vec<String>,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How often a running job's lease is renewed (well inside `lease`).
    pub heartbeat: Duration,
    /// The longest a worker waits for a wake-up before it looks for due jobs (retries, expired leases).
    pub poll: Duration,
    /// Retry delay after the first failure; doubles per attempt, with jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl WorkerConfig {
    pub fn new(queues: &[&str]) -> Self {
        Self {
            name: default_worker_name(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            concurrency: 4,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
        }
    }
}

fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".to_string());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// The delay before retry number `attempt` (1 = after the first failure): `base * 2^(attempt-1)`,
/// capped at `max`, then "equal jitter" — a uniform pick in its upper half — so that jobs failing
/// together do not all retry together.
pub fn backoff(attempt: i32, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Runs workers until `shutdown` resolves; in-flight jobs are then stopped and handed back.
pub async fn run_workers(
    store: Arc<dyn Store>,
    handler: Arc<dyn JobHandler>,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let stop = CancellationToken::new();
    let mut slots = JoinSet::new();
    for n in 0..config.concurrency.max(1) {
        let worker = Worker {
            store: store.clone(),
            handler: handler.clone(),
            name: format!("{}-{n}", config.name),
            config: config.clone(),
            stop: stop.clone(),
        };
        slots.spawn(worker.run());
    }
    shutdown.await;
    stop.cancel();
    while slots.join_next().await.is_some() {}
}

struct Worker {
    store: Arc<dyn Store>,
    handler: Arc<dyn JobHandler>,
    name: String,
    config: WorkerConfig,
    stop: CancellationToken,
}

impl Worker {
    async fn run(self) {
        let queues: Vec<&str> = self.config.queues.iter().map(String::as_str).collect();
        while !self.stop.is_cancelled() {
            // Read before claiming: a wake-up that arrives during the claim is not lost.
            let generation = self.store.jobs_generation();
            match self
                .store
                .claim_job(&queues, &self.name, self.config.lease)
                .await
            {
                Ok(Some(job)) => self.run_job(job).await,
                Ok(None) => {
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = self.store.wait_for_jobs(generation, self.config.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "claiming a job failed");
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = tokio::time::sleep(self.config.poll) => {}
                    }
                }
            }
        }
    }

    async fn run_job(&self, job: Job) {
        let ctx = JobContext::new();
        if job.cancel_requested {
            ctx.stop(StopReason::Cancelled);
        }
        tracing::info!(worker = %self.name, job = job.id, kind = %job.kind, subject = %job.subject, attempt = job.attempts, "job started");
        let heartbeat = self.heartbeat(job.id, ctx.clone());
        let result = {
            let run = self.handler.run(&job, &ctx);
            tokio::pin!(run);
            tokio::pin!(heartbeat);
            let shutdown = self.stop.cancelled();
            tokio::pin!(shutdown);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = &mut heartbeat => {}
                    _ = &mut shutdown, if !shutting_down => {
                        shutting_down = true;
                        ctx.stop(StopReason::Shutdown);
                    }
                }
            }
        };
        let outcome = match (&result, ctx.stop_reason()) {
            (_, Some(StopReason::LeaseLost)) => {
                tracing::warn!(worker = %self.name, job = job.id, "lost the lease; another worker owns the job now");
                return;
            }
            (Err(_), Some(StopReason::Shutdown)) => {
                // Handed back: the next worker picks it up at once.
                JobOutcome::Retry {
                    at: Utc::now(),
                    error: "interrupted by a shutdown".into(),
                }
            }
            (Ok(()), _) => JobOutcome::Succeeded,
            (Err(JobError::Cancelled), _) => JobOutcome::Cancelled,
            (Err(JobError::Permanent(e)), _) => JobOutcome::Failed { error: e.clone() },
            (Err(JobError::Transient(e)), _) if job.attempts >= job.max_attempts => {
                JobOutcome::Failed {
                    error: format!("gave up after {} attempts: {e}", job.attempts),
                }
            }
            (Err(JobError::Transient(e)), _) => {
                let delay = backoff(
                    job.attempts,
                    self.config.backoff_base,
                    self.config.backoff_max,
                );
                JobOutcome::Retry {
                    at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                    error: e.clone(),
                }
            }
        };
        tracing::info!(worker = %self.name, job = job.id, outcome = ?outcome, "job finished");
        match self.store.finish_job(job.id, &self.name, outcome).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(worker = %self.name, job = job.id, "the lease ran out before the job finished")
            }
            Err(e) => {
                tracing::error!(worker = %self.name, job = job.id, error = %e, "recording a job's end failed; its lease will run out and it will run again")
            }
        }
    }

    /// Renews the lease until the handler ends; stops the handler when the lease is lost or the job
    /// is cancelled. Never resolves on its own.
    async fn heartbeat(&self, id: i64, ctx: JobContext) {
        let mut tick = tokio::time::interval(self.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self
                .store
                .heartbeat_job(id, &self.name, self.config.lease)
                .await
            {
                Ok(Some(false)) => {}
                Ok(Some(true)) => ctx.stop(StopReason::Cancelled),
                Ok(None) => ctx.stop(StopReason::LeaseLost),
                Err(e) => {
                    tracing::warn!(worker = %self.name, job = id, error = %e, "heartbeat failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for _ in 0..200 {
            let first = backoff(1, base, max);
            assert!(
                first >= Duration::from_secs(1) && first <= base,
                "{first:?}"
            );
            let third = backoff(3, base, max);
            assert!(
                third >= Duration::from_secs(4) && third <= Duration::from_secs(8),
                "{third:?}"
            );
            let late = backoff(40, base, max);
            assert!(late >= max / 2 && late <= max, "{late:?}");
        }
        // Jitter: not every pick is the same.
        let picks: std::collections::BTreeSet<_> = (0..50).map(|_| backoff(5, base, max)).collect();
        assert!(picks.len() > 1);
    }
}
