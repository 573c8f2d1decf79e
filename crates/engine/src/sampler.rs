//! Samples what runs every interval into the database: instances, CPU and memory from `/proc`,
//! requests, errors and latency from the proxy's counters (the difference since the last sample).

use crate::local::LocalTarget;
use slipway_core::RuntimeSample;
use slipway_proxy::RouteStats;
use slipway_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(local: Arc<LocalTarget>, store: Arc<dyn Store>, every: Duration, keep: Duration) {
    let mut previous: HashMap<(String, String), RouteStats> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let samples = sample(&local, &mut previous);
        if let Err(e) = store.record_samples(&samples).await {
            tracing::warn!(error = %e, "cannot record runtime samples");
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
        if let Err(e) = store.prune_samples(cutoff).await {
            tracing::warn!(error = %e, "cannot prune runtime samples");
        }
    }
}

/// One sample per serving app.
pub fn sample(
    local: &LocalTarget,
    previous: &mut HashMap<(String, String), RouteStats>,
) -> Vec<RuntimeSample> {
    let at = chrono::Utc::now();
    let mut out = Vec::new();
    for (service, environment) in local.serving_apps() {
        let Some(usage) = local.usage(&service, &environment) else {
            continue;
        };
        let stats = local.proxy().stats(&service, &environment);
        let key = (service.clone(), environment.clone());
        let (requests, errors, p50, p99) = match &stats {
            Some(now) => {
                let before = previous.get(&key);
                let requests = now.requests - before.map_or(0, |b| b.requests.min(now.requests));
                let errors = now.errors - before.map_or(0, |b| b.errors.min(now.errors));
                let delta = bucket_delta(now, before);
                (
                    requests,
                    errors,
                    quantile_ms(&delta, 0.5),
                    quantile_ms(&delta, 0.99),
                )
            }
            None => (0, 0, None, None),
        };
        if let Some(now) = stats {
            previous.insert(key, now);
        }
        out.push(RuntimeSample {
            service,
            environment,
            at,
            instances: i32::try_from(usage.instances).unwrap_or(i32::MAX),
            cpu_percent: (usage.cpu_percent * 10.0).round() / 10.0,
            memory_bytes: i64::try_from(usage.memory_bytes).unwrap_or(i64::MAX),
            requests: i64::try_from(requests).unwrap_or(i64::MAX),
            errors: i64::try_from(errors).unwrap_or(i64::MAX),
            latency_p50_ms: p50,
            latency_p99_ms: p99,
        });
    }
    out
}

/// The interval's cumulative histogram: `now − before`, bucket by bucket.
fn bucket_delta(now: &RouteStats, before: Option<&RouteStats>) -> Vec<(f64, u64)> {
    now.latency_buckets
        .iter()
        .enumerate()
        .map(|(i, (bound, count))| {
            let earlier = before
                .and_then(|b| b.latency_buckets.get(i))
                .map_or(0, |(_, c)| *c);
            (*bound, count.saturating_sub(earlier))
        })
        .collect()
}

/// The upper bound (ms) of the bucket holding quantile `q`; `None` without requests. A bucket
/// bound, so an upper estimate; `+Inf` reports the last finite bound.
fn quantile_ms(cumulative: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil() as u64;
    let mut last_finite = 0.0;
    for (bound, count) in cumulative {
        if bound.is_finite() {
            last_finite = *bound;
        }
        if *count >= rank {
            let b = if bound.is_finite() {
                *bound
            } else {
                last_finite
            };
            return Some(b * 1000.0);
        }
    }
    Some(last_finite * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_bucket_bounds() {
        let h = vec![(0.001, 50), (0.005, 90), (0.01, 99), (f64::INFINITY, 100)];
        assert_eq!(quantile_ms(&h, 0.5), Some(1.0));
        assert_eq!(quantile_ms(&h, 0.9), Some(5.0));
        assert_eq!(quantile_ms(&h, 0.99), Some(10.0));
        assert_eq!(quantile_ms(&h, 1.0), Some(10.0));
        assert_eq!(quantile_ms(&[(0.001, 0), (f64::INFINITY, 0)], 0.5), None);
    }
}
