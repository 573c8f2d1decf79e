//! Deployment figures behind `bench/deploy.sh` (issue 4), against a running `slipway up` whose
//! service SERVICE runs the benchmark app (it answers `GET /healthz`, and `GET /` with
//! `{"pid":…,"first_health":…}`: its process id and the wall-clock time it first answered a health
//! check).
//!
//! - `overhead API PROXY SERVICE [--deploys N]`: deploys N times, one after the other, and for each
//!   takes the platform overhead four ways:
//!   `engine` — the N ms the engine writes in the EXPOSED event's reason (health check passed →
//!   just before EXPOSED is written); `events` — EXPOSED.at − HEALTHY.at from the event timestamps;
//!   `app` — EXPOSED.at − the moment the app first answered its health check (the app's own clock
//!   reading, the same host clock); `traffic` — the first answer through the proxy from the new
//!   release − the moment the app first answered its health check (what a user sees: a watcher polls
//!   the proxy every 2 ms). Prints p50 / p90 / max of each.
//! - `load API PROXY SERVICE [--redeploys N] [--concurrency C] [--max-seconds S] [--tail-ms MS]`:
//!   C keep-alive clients hit the app through the proxy while N redeploys run one after the other
//!   (each waited for until EXPOSED); the load runs on for `--tail-ms` after the last one (the old
//!   release drains and stops after EXPOSED). Prints requests, failures (non-2xx or connection
//!   errors), requests/s and the releases that answered. Bounded by `--max-seconds`.
//!
//! API is `http://127.0.0.1:PORT`, PROXY is `127.0.0.1:PORT`; the app is reached as
//! `http://SERVICE.dev.localhost:PORT/` resolved to PROXY (loopback only).
//! The last line of each mode is `key=value` pairs for the script.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const TERMINAL: &[&str] = &["EXPOSED", "FAILED", "ROLLED_BACK", "CANCELLED", "DESTROYED"];

fn arg<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a value").into()),
        None => Ok(default),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let s = (
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        v.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  {name:<8} p50 {:8.1} ms   p90 {:8.1} ms   max {:8.1} ms   (n={})",
        s.0,
        s.1,
        s.2,
        v.len()
    );
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: redeploy_load overhead|load API PROXY SERVICE [options]";
    let (Some(mode), Some(api), Some(proxy), Some(service)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        return Err(usage.into());
    };
    let target = Target::new(api, proxy, service)?;
    match mode.as_str() {
        "overhead" => overhead(&target, arg(&args, "--deploys", 20)?).await,
        "load" => {
            load(
                &target,
                arg(&args, "--redeploys", 10)?,
                arg(&args, "--concurrency", 16)?,
                Duration::from_secs(arg(&args, "--max-seconds", 300)?),
                Duration::from_millis(arg(&args, "--tail-ms", 2000)?),
            )
            .await
        }
        _ => Err(usage.into()),
    }
}

struct Target {
    api: String,
    service: String,
    /// `http://SERVICE.dev.localhost:PORT/`
    app_url: String,
    host: String,
    proxy: SocketAddr,
    client: reqwest::Client,
}

impl Target {
    fn new(api: &str, proxy: &str, service: &str) -> Result<Self> {
        let proxy: SocketAddr = proxy.parse()?;
        let host = format!("{service}.dev.localhost");
        Ok(Self {
            api: api.trim_end_matches('/').to_string(),
            service: service.to_string(),
            app_url: format!("http://{host}:{}/", proxy.port()),
            host,
            proxy,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// A keep-alive client of its own (one connection) that reaches the app through the proxy.
    fn app_client(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .resolve(&self.host, self.proxy)
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(5))
            .build()?)
    }

    /// Starts a deployment and waits for it to end; the deployment as the API shows it.
    async fn deploy(&self, deadline: Duration) -> Result<Value> {
        let resp = self
            .client
            .post(format!("{}/api/v1/deployments", self.api))
            .json(&json!({ "service": self.service }))
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            let status = resp.status();
            return Err(
                format!("POST /api/v1/deployments: {status}: {}", resp.text().await?).into(),
            );
        }
        let id = resp.json::<Value>().await?["id"]
            .as_str()
            .ok_or("no id in the answer")?
            .to_string();
        let until = Instant::now() + deadline;
        loop {
            let d: Value = self
                .client
                .get(format!("{}/api/v1/deployments/{id}", self.api))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let status = d["status"].as_str().unwrap_or("");
            if TERMINAL.contains(&status) {
                if status != "EXPOSED" {
                    let reason = d["events"]
                        .as_array()
                        .and_then(|e| e.last())
                        .map(|e| e["reason"].to_string())
                        .unwrap_or_default();
                    return Err(format!("deployment {id} ended {status}: {reason}").into());
                }
                return Ok(d);
            }
            if Instant::now() >= until {
                return Err(format!("deployment {id} still {status} after {deadline:?}").into());
            }
            // The figures come from the events' timestamps, not from this poll.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The app's answer to `GET /`.
#[derive(Clone, Copy, Debug)]
struct Answer {
    pid: u64,
    /// Seconds since the epoch, host clock.
    first_health: f64,
}

fn parse_answer(body: &str) -> Option<Answer> {
    let v: Value = serde_json::from_str(body).ok()?;
    Some(Answer {
        pid: v["pid"].as_u64()?,
        first_health: v["first_health"].as_f64()?,
    })
}

fn epoch_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

fn event_at(d: &Value, status: &str) -> Option<DateTime<Utc>> {
    d["events"]
        .as_array()?
        .iter()
        .rev()
        .find(|e| e["status"] == status)
        .and_then(|e| e["at"].as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The "N ms" of "serving at URL (N ms after the health check passed)".
fn engine_ms(d: &Value) -> Option<f64> {
    let reason = d["events"]
        .as_array()?
        .iter()
        .rev()
        .find(|e| e["status"] == "EXPOSED")?["reason"]
        .as_str()?;
    let head = reason.split(" ms after the health check").next()?;
    head.rsplit(['(', ' ']).next()?.parse().ok()
}

/// First time (host clock, seconds since the epoch) each release (pid) answered through the proxy.
type FirstSeen = Arc<Mutex<BTreeMap<u64, f64>>>;

/// Polls the app through the proxy every 2 ms and records when each pid first answered.
fn watch(
    target: &Target,
    stop: Arc<AtomicBool>,
) -> Result<(FirstSeen, tokio::task::JoinHandle<()>)> {
    let client = target.app_client()?;
    let url = target.app_url.clone();
    let seen: FirstSeen = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(resp) = client.get(&url).send().await {
                if let Ok(body) = resp.text().await {
                    let at = epoch_seconds(Utc::now());
                    if let Some(a) = parse_answer(&body) {
                        if let Ok(mut m) = seen.lock() {
                            m.entry(a.pid).or_insert(at);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    Ok((out, task))
}

async fn current_answer(target: &Target, client: &reqwest::Client) -> Result<Answer> {
    let body = client
        .get(&target.app_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    parse_answer(&body).ok_or_else(|| format!("unexpected answer from the app: {body}").into())
}

async fn overhead(target: &Target, deploys: usize) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, watcher) = watch(target, stop.clone())?;
    let client = target.app_client()?;
    let (mut engine, mut events, mut app, mut traffic, mut detect) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    println!(
        "  {:>3} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "#", "engine_ms", "events_ms", "app_ms", "traffic_ms", "probe_ms"
    );
    for i in 1..=deploys {
        let d = target.deploy(Duration::from_secs(120)).await?;
        let answer = current_answer(target, &client).await?;
        // The watcher may not have polled since the swap yet.
        let until = Instant::now() + Duration::from_secs(2);
        let first_seen = loop {
            let got = seen.lock().ok().and_then(|m| m.get(&answer.pid).copied());
            if got.is_some() || Instant::now() >= until {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let healthy = event_at(&d, "HEALTHY").map(epoch_seconds);
        let exposed = event_at(&d, "EXPOSED").map(epoch_seconds);
        let e = engine_ms(&d).unwrap_or(f64::NAN);
        let ev = match (healthy, exposed) {
            (Some(h), Some(x)) => (x - h) * 1000.0,
            _ => f64::NAN,
        };
        let a = exposed.map_or(f64::NAN, |x| (x - answer.first_health) * 1000.0);
        let t = first_seen.map_or(f64::NAN, |s| (s - answer.first_health) * 1000.0);
        let p = healthy.map_or(f64::NAN, |h| (h - answer.first_health) * 1000.0);
        println!("  {i:>3} {e:>9.0} {ev:>9.1} {a:>9.1} {t:>10.1} {p:>10.1}");
        engine.push(e);
        events.push(ev);
        app.push(a);
        traffic.push(t);
        detect.push(p);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    println!("platform overhead over {deploys} deployments:");
    let e = summary("engine", &engine);
    let ev = summary("events", &events);
    let a = summary("app", &app);
    let t = summary("traffic", &traffic);
    let p = summary("probe", &detect);
    println!(
        "deploys={deploys} engine_p50={:.1} engine_p90={:.1} engine_max={:.1} events_p50={:.1} events_p90={:.1} \
         events_max={:.1} app_p50={:.1} app_p90={:.1} app_max={:.1} traffic_p50={:.1} traffic_p90={:.1} \
         traffic_max={:.1} probe_p50={:.1} probe_max={:.1}",
        e.0, e.1, e.2, ev.0, ev.1, ev.2, a.0, a.1, a.2, t.0, t.1, t.2, p.0, p.2
    );
    Ok(())
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    non_2xx: AtomicU64,
    errors: AtomicU64,
}

async fn load(
    target: &Target,
    redeploys: usize,
    concurrency: usize,
    max: Duration,
    tail: Duration,
) -> Result<()> {
    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let pids: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let samples: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..concurrency.max(1) {
        let client = target.app_client()?;
        let url = target.app_url.clone();
        let (stop, counts, pids, samples) =
            (stop.clone(), counts.clone(), pids.clone(), samples.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let failure = match client.get(&url).send().await {
                    Ok(resp) if resp.status().is_success() => match resp.text().await {
                        Ok(body) => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                            if let (Some(a), Ok(mut p)) = (parse_answer(&body), pids.lock()) {
                                *p.entry(a.pid).or_default() += 1;
                            }
                            None
                        }
                        Err(e) => {
                            counts.errors.fetch_add(1, Ordering::Relaxed);
                            Some(format!("body: {e}"))
                        }
                    },
                    Ok(resp) => {
                        counts.non_2xx.fetch_add(1, Ordering::Relaxed);
                        let status = resp.status();
                        let body = resp.text().await.unwrap_or_default();
                        Some(format!(
                            "{status}: {}",
                            body.chars().take(200).collect::<String>()
                        ))
                    }
                    Err(e) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        Some(format!("{e:?}").chars().take(300).collect())
                    }
                };
                latencies.push(t0.elapsed());
                if let Some(f) = failure {
                    if let Ok(mut s) = samples.lock() {
                        if s.len() < 10 {
                            s.push(format!("{:.3}s {f}", began.elapsed().as_secs_f64()));
                        }
                    }
                }
            }
            latencies
        }));
    }
    // Load first, so the clients' connections are open when the first swap comes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut deploy_error = None;
    let mut engine = Vec::new();
    for i in 1..=redeploys {
        let left = max.saturating_sub(began.elapsed());
        let t0 = Instant::now();
        match target.deploy(left).await {
            Ok(d) => {
                let e = engine_ms(&d).unwrap_or(f64::NAN);
                engine.push(e);
                println!(
                    "  redeploy {i:>2}: EXPOSED after {:.2} s (engine overhead {e:.0} ms), requests so far {}, failures {}",
                    t0.elapsed().as_secs_f64(),
                    counts.ok.load(Ordering::Relaxed),
                    counts.non_2xx.load(Ordering::Relaxed) + counts.errors.load(Ordering::Relaxed)
                );
            }
            Err(e) => {
                deploy_error = Some(format!("redeploy {i}: {e}"));
                break;
            }
        }
    }
    tokio::time::sleep(tail).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for c in clients {
        latencies.extend(c.await?);
    }
    let elapsed = began.elapsed();
    latencies.sort();
    let ok = counts.ok.load(Ordering::Relaxed);
    let non_2xx = counts.non_2xx.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed);
    let total = ok + non_2xx + errors;
    let pct = |p: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
        }
    };
    let releases = pids.lock().map(|p| p.len()).unwrap_or(0);
    for s in samples.lock().map(|s| s.clone()).unwrap_or_default() {
        println!("  failure sample: {s}");
    }
    if let Some(e) = &deploy_error {
        println!("  deployment problem: {e}");
    }
    let mut engine_sorted = engine.clone();
    engine_sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "redeploys={} concurrency={concurrency} seconds={:.1} requests={total} ok={ok} non_2xx={non_2xx} \
         errors={errors} failures={} rps={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} releases_answered={releases} \
         engine_p50={:.0} deploy_error={}",
        engine.len(),
        elapsed.as_secs_f64(),
        non_2xx + errors,
        total as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        percentile(&engine_sorted, 0.5),
        deploy_error.is_some(),
    );
    if deploy_error.is_some() {
        return Err("a redeploy did not reach EXPOSED".into());
    }
    Ok(())
}
