//! Queue pick-up latency behind `bench/queue.sh` (issue 4: enqueue → worker start, PostgreSQL p99 < 50 ms).
//!
//! `pickup_latency DATABASE_URL [--jobs N] [--interval-ms MS] [--burst N] [--concurrency C]
//! [--enqueuer same|separate] [--label TEXT] [--dump CSV] [--poll-ms MS]`
//!
//! Connects to the store the URL names (`postgres://…` or `sqlite://…`; the database must exist and
//! be empty of jobs), runs `run_workers` with a handler that only reports which job started and when,
//! and enqueues jobs two ways:
//! - steady: `--jobs` jobs, one every `--interval-ms` (the figure the issue asks for);
//! - burst: `--burst` jobs back to back, as fast as one enqueuer can commit them (queueing shows).
//!
//! Latency is measured with one monotonic clock: an `Instant` is taken just before `enqueue_job`
//! is called, and the handler sends the job's sequence number back with its own `Instant`. The
//! enqueue call itself (its transaction and commit) is inside the figure, as a caller sees it.
//!
//! `--enqueuer separate` enqueues through a second store connection, so the workers are woken only by
//! PostgreSQL's `NOTIFY` (as when the API runs on another replica); `same` (default) shares the
//! store, as one `slipway up` does, where the store also wakes its own workers in-process.
//! Prints one `key=value` line per phase for the script to tabulate.

use async_trait::async_trait;
use slipway_core::{Job, NewJob};
use slipway_jobs::{run_workers, JobContext, JobError, JobHandler, WorkerConfig};
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const QUEUE: &str = "bench";

/// Reports `(sequence number, when the handler started)`.
struct Report(mpsc::UnboundedSender<(usize, Instant)>);

#[async_trait]
impl JobHandler for Report {
    async fn run(&self, job: &Job, _ctx: &JobContext) -> std::result::Result<(), JobError> {
        let started = Instant::now();
        let seq = job.payload["seq"]
            .as_u64()
            .ok_or_else(|| JobError::Permanent("no seq in the payload".into()))?;
        let _ = self.0.send((seq as usize, started));
        Ok(())
    }
}

fn arg<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a value").into()),
        None => Ok(default),
    }
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

struct Phase<'a> {
    name: &'a str,
    count: usize,
    /// Between two enqueues; zero for a burst.
    interval: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: pickup_latency DATABASE_URL [--jobs N] [--interval-ms MS] [--burst N] [--concurrency C] [--enqueuer same|separate] [--label TEXT] [--dump CSV] [--poll-ms MS]";
    let url = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .ok_or(usage)?
        .clone();
    let jobs: usize = arg(&args, "--jobs", 2000)?;
    let interval_ms: f64 = arg(&args, "--interval-ms", 5.0)?;
    let burst: usize = arg(&args, "--burst", 500)?;
    let concurrency: usize = arg(&args, "--concurrency", 4)?;
    let enqueuer: String = arg(&args, "--enqueuer", "same".to_string())?;
    let label: String = arg(&args, "--label", String::new())?;
    let dump: String = arg(&args, "--dump", String::new())?;
    let mut dump_rows = String::new();

    let store = slipway_store::connect(&url).await?;
    let enqueue_store = match enqueuer.as_str() {
        "same" => store.clone(),
        "separate" => slipway_store::connect(&url).await?,
        other => return Err(format!("--enqueuer {other}: same or separate").into()),
    };

    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut config = WorkerConfig::new(&[QUEUE]);
    config.concurrency = concurrency;
    config.poll = Duration::from_millis(arg(&args, "--poll-ms", 1000)?);
    let workers = tokio::spawn(run_workers(
        store.clone(),
        Arc::new(Report(tx)),
        config,
        stop.clone().cancelled_owned(),
    ));

    // A few jobs first so connections, prepared statements and the LISTEN are warm.
    let warm = Phase {
        name: "warm-up",
        count: 50,
        interval: Duration::from_millis(5),
    };
    let steady = Phase {
        name: "steady",
        count: jobs,
        interval: Duration::from_secs_f64(interval_ms / 1000.0),
    };
    let burst = Phase {
        name: "burst",
        count: burst,
        interval: Duration::ZERO,
    };
    let mut seq_base = 0;
    for phase in [warm, steady, burst] {
        if phase.count == 0 {
            continue;
        }
        let r = run_phase(&*enqueue_store, &mut rx, &phase, seq_base).await?;
        seq_base += phase.count;
        for (at, latency) in &r.timeline {
            dump_rows.push_str(&format!("{},{at:.3},{latency:.3}\n", phase.name));
        }
        if phase.name == "warm-up" {
            continue;
        }
        let mut lat = r.latencies;
        lat.sort();
        let mut after_commit = r.after_commit;
        after_commit.sort();
        let mut enqueue = r.enqueue;
        enqueue.sort();
        println!(
            "label={label} phase={} jobs={} interval_ms={} workers={concurrency} enqueuer={enqueuer} \
             p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} \
             after_commit_p50_ms={:.2} after_commit_p99_ms={:.2} enqueue_p50_ms={:.2} enqueue_p99_ms={:.2} \
             enqueued_per_s={:.0} done_per_s={:.0}",
            phase.name,
            phase.count,
            phase.interval.as_secs_f64() * 1000.0,
            percentile_ms(&lat, 0.50),
            percentile_ms(&lat, 0.90),
            percentile_ms(&lat, 0.99),
            percentile_ms(&lat, 1.0),
            percentile_ms(&after_commit, 0.50),
            percentile_ms(&after_commit, 0.99),
            percentile_ms(&enqueue, 0.50),
            percentile_ms(&enqueue, 0.99),
            phase.count as f64 / r.enqueue_span.as_secs_f64(),
            phase.count as f64 / r.total_span.as_secs_f64(),
        );
    }
    stop.cancel();
    if !dump.is_empty() {
        std::fs::write(
            &dump,
            format!("phase,enqueued_at_ms,latency_ms\n{dump_rows}"),
        )?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), workers).await;
    Ok(())
}

struct PhaseResult {
    /// Enqueue call → handler start, per job.
    latencies: Vec<Duration>,
    /// Enqueue call returned (committed) → handler start; zero when the handler started first.
    after_commit: Vec<Duration>,
    /// How long each enqueue call took.
    enqueue: Vec<Duration>,
    enqueue_span: Duration,
    total_span: Duration,
    /// (enqueue call, ms since the phase began; latency, ms) per job, for `--dump`.
    timeline: Vec<(f64, f64)>,
}

async fn run_phase(
    store: &dyn slipway_store::Store,
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    phase: &Phase<'_>,
    seq_base: usize,
) -> Result<PhaseResult> {
    let n = phase.count;
    let mut called = vec![None; n];
    let mut returned = vec![None; n];
    let mut started: Vec<Option<Instant>> = vec![None; n];
    let mut seen = 0;
    let begin = Instant::now();
    for i in 0..n {
        // Steady pacing against the phase's start, so a slow enqueue does not shift the rest.
        let due = begin + phase.interval.mul_f64(i as f64);
        loop {
            while let Ok(msg) = rx.try_recv() {
                seen += take(msg, seq_base, &mut started);
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            tokio::select! {
                Some(msg) = rx.recv() => seen += take(msg, seq_base, &mut started),
                _ = tokio::time::sleep(due - now) => {}
            }
        }
        let job = NewJob {
            queue: QUEUE.to_string(),
            kind: "bench".to_string(),
            subject: format!("bench-{}", seq_base + i),
            payload: serde_json::json!({ "seq": seq_base + i }),
            concurrency_key: None,
            max_attempts: 1,
        };
        called[i] = Some(Instant::now());
        store.enqueue_job(job).await?;
        returned[i] = Some(Instant::now());
    }
    let enqueue_span = begin.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(msg)) => seen += take(msg, seq_base, &mut started),
            _ => {
                return Err(format!(
                    "{}: only {seen} of {n} jobs started within 60 s",
                    phase.name
                )
                .into())
            }
        }
    }
    let total_span = begin.elapsed();
    let mut r = PhaseResult {
        latencies: Vec::with_capacity(n),
        after_commit: Vec::with_capacity(n),
        enqueue: Vec::with_capacity(n),
        enqueue_span,
        total_span,
        timeline: Vec::with_capacity(n),
    };
    for i in 0..n {
        let (Some(c), Some(ret), Some(s)) = (called[i], returned[i], started[i]) else {
            continue;
        };
        r.latencies.push(s.saturating_duration_since(c));
        r.timeline.push((
            c.saturating_duration_since(begin).as_secs_f64() * 1000.0,
            s.saturating_duration_since(c).as_secs_f64() * 1000.0,
        ));
        r.after_commit.push(s.saturating_duration_since(ret));
        r.enqueue.push(ret.saturating_duration_since(c));
    }
    Ok(r)
}

/// Records a handler's start; 1 when it is the first report of that job.
fn take((seq, at): (usize, Instant), seq_base: usize, started: &mut [Option<Instant>]) -> usize {
    match seq.checked_sub(seq_base).and_then(|i| started.get_mut(i)) {
        Some(slot) if slot.is_none() => {
            *slot = Some(at);
            1
        }
        _ => 0,
    }
}
