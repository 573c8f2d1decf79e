//! Workers against a real store: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set.

use async_trait::async_trait;
use slipway_core::{Job, JobStatus, NewJob};
use slipway_jobs::{run_workers, JobContext, JobError, JobHandler, WorkerConfig};
use slipway_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct SqliteDb {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn sqlite() -> SqliteDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    SqliteDb {
        store: slipway_store::connect(&url).await.expect("open"),
        _dir: dir,
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::sqlite().await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = slipway_test_support::PgDb::create().await else { return };
                    let store = slipway_store::connect(&db.url).await.expect("open");
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_both_backends!(
    runs_retries_and_fails_jobs,
    a_dead_workers_job_is_taken_over,
    running_jobs_can_be_cancelled,
);

/// Test config: short lease and heartbeat, fast retries.
fn config(name: &str) -> WorkerConfig {
    WorkerConfig {
        name: name.into(),
        concurrency: 2,
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(100),
        poll: Duration::from_millis(50),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..WorkerConfig::new(&["q"])
    }
}

fn new_job(kind: &str, max_attempts: i32) -> NewJob {
    NewJob {
        queue: "q".into(),
        kind: kind.into(),
        subject: kind.into(),
        payload: serde_json::json!({}),
        concurrency_key: None,
        max_attempts,
    }
}

/// Polls until the job reaches a finished status.
async fn finished(store: &Arc<dyn Store>, id: i64) -> Job {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = store.get_job(id).await.expect("get job");
        if matches!(
            job.status,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        ) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails transiently until the third attempt (`flaky`), always permanently (`broken`), transiently
/// forever (`hopeless`); records which worker ran what.
#[derive(Default)]
struct Scripted {
    runs: Mutex<HashMap<i64, Vec<(String, i32)>>>,
}

#[async_trait]
impl JobHandler for Scripted {
    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError> {
        self.runs
            .lock()
            .unwrap()
            .entry(job.id)
            .or_default()
            .push((job.lease_owner.clone().unwrap_or_default(), job.attempts));
        match job.kind.as_str() {
            "ok" => Ok(()),
            "flaky" if job.attempts < 3 => Err(JobError::Transient("busy".into())),
            "flaky" => Ok(()),
            "broken" => Err(JobError::Permanent("bad input: no such thing".into())),
            "hopeless" => Err(JobError::Transient("still down".into())),
            "hang" => {
                // Ignores cancellation, as a handler stuck in a system call would.
                std::future::pending::<()>().await;
                Ok(())
            }
            "wait-for-cancel" => {
                ctx.stopped().await;
                Err(JobError::Cancelled)
            }
            other => Err(JobError::Permanent(format!("unknown kind {other}"))),
        }
    }
}

async fn runs_retries_and_fails_jobs(store: Arc<dyn Store>) {
    let handler = Arc::new(Scripted::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(run_workers(
        store.clone(),
        handler.clone(),
        config("w"),
        async {
            let _ = stopped.await;
        },
    ));
    let ok = store.enqueue_job(new_job("ok", 3)).await.expect("enqueue");
    let flaky = store
        .enqueue_job(new_job("flaky", 5))
        .await
        .expect("enqueue");
    let broken = store
        .enqueue_job(new_job("broken", 5))
        .await
        .expect("enqueue");
    let hopeless = store
        .enqueue_job(new_job("hopeless", 3))
        .await
        .expect("enqueue");

    assert_eq!(finished(&store, ok).await.status, JobStatus::Succeeded);
    let flaky = finished(&store, flaky).await;
    assert_eq!((flaky.status, flaky.attempts), (JobStatus::Succeeded, 3));
    let broken = finished(&store, broken).await;
    assert_eq!(
        (broken.status, broken.attempts),
        (JobStatus::Failed, 1),
        "a permanent error is not retried"
    );
    assert_eq!(
        broken.last_error.as_deref(),
        Some("bad input: no such thing")
    );
    let hopeless = finished(&store, hopeless).await;
    assert_eq!((hopeless.status, hopeless.attempts), (JobStatus::Failed, 3));
    assert!(
        hopeless
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("gave up after 3 attempts: still down"),
        "{hopeless:?}"
    );
    let _ = stop.send(());
    workers.await.expect("workers stop");
}

async fn a_dead_workers_job_is_taken_over(store: Arc<dyn Store>) {
    // Worker `a` claims the job and hangs; then it dies (its task is aborted, so no heartbeat and no
    // goodbye). Worker `b` takes the job over once the lease runs out.
    let id = store
        .enqueue_job(new_job("hang", 5))
        .await
        .expect("enqueue");
    let a_handler = Arc::new(Scripted::default());
    let a = tokio::spawn(run_workers(
        store.clone(),
        a_handler.clone(),
        config("a"),
        std::future::pending::<()>(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get_job(id).await.expect("get").status != JobStatus::Running {
        assert!(Instant::now() < deadline, "a never claimed the job");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.abort();
    let _ = a.await;

    struct Finisher;
    #[async_trait]
    impl JobHandler for Finisher {
        async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<(), JobError> {
            Ok(())
        }
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let b = tokio::spawn(run_workers(
        store.clone(),
        Arc::new(Finisher),
        config("b"),
        async {
            let _ = stopped.await;
        },
    ));
    let job = finished(&store, id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.attempts, 2, "a's claim and b's takeover");
    let runs = a_handler.runs.lock().unwrap().clone();
    assert!(runs[&id][0].0.starts_with("a-"), "{runs:?}");
    let _ = stop.send(());
    b.await.expect("b stops");
}

async fn running_jobs_can_be_cancelled(store: Arc<dyn Store>) {
    let handler = Arc::new(Scripted::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(run_workers(
        store.clone(),
        handler.clone(),
        config("w"),
        async {
            let _ = stopped.await;
        },
    ));
    let id = store
        .enqueue_job(new_job("wait-for-cancel", 3))
        .await
        .expect("enqueue");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get_job(id).await.expect("get").status != JobStatus::Running {
        assert!(Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = store.cancel_job(id).await.expect("cancel");
    assert!(asked.cancel_requested);
    assert_eq!(finished(&store, id).await.status, JobStatus::Cancelled);

    // A queued job is cancelled at once and never runs.
    let _ = stop.send(());
    workers.await.expect("stop");
    let queued = store.enqueue_job(new_job("ok", 3)).await.expect("enqueue");
    assert_eq!(
        store.cancel_job(queued).await.expect("cancel").status,
        JobStatus::Cancelled
    );
}
