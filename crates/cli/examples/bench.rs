//! Load generator behind `bench/run.sh` (`cargo run --release -p slipway-cli --example bench -- …`):
//! figures for the foundation issue, against a running `slipway up`.
//!
//! - `register URL COUNT [--concurrency N] [--prefix P]`: registers COUNT services, prints latency percentiles;
//! - `register-pair URL_A URL_B COUNT`: alternates registrations between two servers so that machine
//!   noise hits both alike, prints both servers' percentiles and the p99 ratio B/A;
//! - `health URL NAME --seconds S --concurrency C`: hammers the health route, prints requests/s;
//! - `rss PID`: prints the resident set size.

use anyhow::{bail, Context};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg_value(args: &[String], flag: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("register") => {
            let url = args.get(2).context("register URL COUNT")?;
            let count: usize = args.get(3).context("register URL COUNT")?.parse()?;
            let concurrency: usize = arg_value(&args, "--concurrency", "1").parse()?;
            let prefix = arg_value(&args, "--prefix", "svc");
            register(url, count, concurrency, &prefix).await
        }
        Some("register-pair") => {
            let a = args.get(2).context("register-pair URL_A URL_B COUNT")?;
            let b = args.get(3).context("register-pair URL_A URL_B COUNT")?;
            let count: usize = args.get(4).context("register-pair URL_A URL_B COUNT")?.parse()?;
            let prefix = arg_value(&args, "--prefix", "pair");
            register_pair(a, b, count, &prefix).await
        }
        Some("health") => {
            let url = args.get(2).context("health URL NAME")?;
            let name = args.get(3).context("health URL NAME")?;
            let seconds: u64 = arg_value(&args, "--seconds", "10").parse()?;
            let concurrency: usize = arg_value(&args, "--concurrency", "32").parse()?;
            health(url, name, seconds, concurrency).await
        }
        Some("rss") => {
            let pid = args.get(2).context("rss PID")?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
            let kb: u64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
            println!("rss_mib={:.1}", kb as f64 / 1024.0);
            Ok(())
        }
        _ => bail!("usage: bench register URL COUNT [--concurrency N] [--prefix P] | health URL NAME [--seconds S] [--concurrency C] | rss PID"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn register(url: &str, count: usize, concurrency: usize, prefix: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let next = next.clone();
        let url = format!("{url}/platform/services");
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    break;
                }
                let name = format!("{prefix}-{i}");
                let body = json!({"service_name": name, "team_name": format!("team-{}", i % 50), "repo_url": format!("https://github.com/bench/{name}")});
                let start = Instant::now();
                let res = client.post(&url).json(&body).send().await?;
                let status = res.status();
                let _ = res.bytes().await?;
                latencies.push(start.elapsed());
                if status.as_u16() != 201 {
                    bail!("registration of {name} answered {status}");
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    println!(
        "registrations={} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    );
    Ok(())
}

fn summary(label: &str, latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    let p99 = percentile(latencies, 0.99);
    println!(
        "{label}: registrations={} p50_ms={:.2} p90_ms={:.2} p99_ms={p99:.2} max_ms={:.2}",
        latencies.len(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.90),
        percentile(latencies, 1.0)
    );
    p99
}

async fn register_pair(a: &str, b: &str, count: usize, prefix: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut lat = [Vec::new(), Vec::new()];
    for i in 0..count {
        for (side, url) in [a, b].iter().enumerate() {
            let name = format!("{prefix}-{i}");
            let body = json!({"service_name": name, "team_name": "pair", "repo_url": format!("https://github.com/bench/{name}")});
            let start = Instant::now();
            let res = client
                .post(format!("{url}/platform/services"))
                .json(&body)
                .send()
                .await?;
            let status = res.status();
            let _ = res.bytes().await?;
            lat[side].push(start.elapsed());
            if status.as_u16() != 201 {
                bail!("registration of {name} at {url} answered {status}");
            }
        }
    }
    let [mut la, mut lb] = lat;
    let pa = summary("A", &mut la);
    let pb = summary("B", &mut lb);
    println!("p99_ratio_b_over_a={:.2}", pb / pa);
    Ok(())
}

async fn health(url: &str, name: &str, seconds: u64, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let target = format!("{url}/platform/services/{name}/health");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, target, ok, failed) =
            (client.clone(), target.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match client.get(&target).send().await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    println!(
        "health_requests={n} failed={} seconds={elapsed:.1} req_per_s={:.0}",
        failed.load(Ordering::Relaxed),
        n as f64 / elapsed
    );
    Ok(())
}
