//! Per-route counters: plain atomics, written once per request, read by `stats` and the
//! Prometheus rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in microseconds (the last bucket, `+Inf`, is
/// implicit).
const BUCKETS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The same bounds as Prometheus writes them in `le`.
const BUCKET_LABELS: [&str; 14] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10",
];

const CLASS_LABELS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A snapshot of one route's counters since the proxy started.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteStats {
    /// Requests answered (by the app or by the proxy on the app's behalf), counted when the
    /// response body has been sent or abandoned.
    pub requests: u64,
    /// Answers with a 5xx status, including the proxy's own 502, 503 and 504.
    pub errors: u64,
    /// Requests being handled right now.
    pub in_flight: u64,
    /// Answers per status class: index 0 is 1xx, …, index 4 is 5xx.
    pub by_class: [u64; 5],
    /// Sum of request durations (first byte of the request handled → response body done).
    pub latency_sum: Duration,
    /// Cumulative histogram: `(upper bound in seconds, requests at or under it)`, the last bound
    /// being `f64::INFINITY`.
    pub latency_buckets: Vec<(f64, u64)>,
}

/// A route's counters, one shard per pool slot (see `backend::pool_slot`): a request only
/// writes to its own thread's shard, so the proxy's worker threads never contend for a cache
/// line here. Readers add the shards up.
pub(crate) struct RouteMetrics {
    shards: Box<[Shard]>,
}

// Two cache lines, so that neighbouring shards never share one (also with adjacent-line
// prefetching).
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    by_class: [AtomicU64; 5],
    in_flight: AtomicI64,
    latency_sum_micros: AtomicU64,
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
}

/// The sums over all shards.
struct Totals {
    by_class: [u64; 5],
    in_flight: i64,
    latency_sum_micros: u64,
    buckets: [u64; BUCKETS_MICROS.len() + 1],
}

impl RouteMetrics {
    pub(crate) fn new(shards: usize) -> Self {
        RouteMetrics {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self) -> &Shard {
        &self.shards[crate::backend::pool_slot() % self.shards.len()]
    }

    pub(crate) fn start(&self) {
        self.shard().in_flight.fetch_add(1, Relaxed);
    }

    /// Ends a request started with `start` (on the same thread).
    pub(crate) fn finish(&self, status: u16, elapsed: Duration) {
        let shard = self.shard();
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        shard.by_class[class].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        shard.latency_sum_micros.fetch_add(micros, Relaxed);
        let bucket = BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BUCKETS_MICROS.len());
        shard.buckets[bucket].fetch_add(1, Relaxed);
        shard.in_flight.fetch_sub(1, Relaxed);
    }

    fn totals(&self) -> Totals {
        let mut t = Totals {
            by_class: [0; 5],
            in_flight: 0,
            latency_sum_micros: 0,
            buckets: [0; BUCKETS_MICROS.len() + 1],
        };
        for shard in &self.shards {
            for (sum, c) in t.by_class.iter_mut().zip(&shard.by_class) {
                *sum += c.load(Relaxed);
            }
            t.in_flight += shard.in_flight.load(Relaxed);
            t.latency_sum_micros += shard.latency_sum_micros.load(Relaxed);
            for (sum, c) in t.buckets.iter_mut().zip(&shard.buckets) {
                *sum += c.load(Relaxed);
            }
        }
        t
    }

    pub(crate) fn snapshot(&self) -> RouteStats {
        let t = self.totals();
        let mut cumulative = 0;
        let latency_buckets = t
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                cumulative += count;
                let bound = BUCKETS_MICROS
                    .get(i)
                    .map_or(f64::INFINITY, |micros| *micros as f64 / 1e6);
                (bound, cumulative)
            })
            .collect();
        RouteStats {
            requests: t.by_class.iter().sum(),
            errors: t.by_class[4],
            in_flight: u64::try_from(t.in_flight).unwrap_or(0),
            by_class: t.by_class,
            latency_sum: Duration::from_micros(t.latency_sum_micros),
            latency_buckets,
        }
    }
}

/// Writes the Prometheus text exposition (format 0.0.4) of `routes`, given as
/// `(service, environment, metrics)` in the order they should appear.
pub(crate) fn render(out: &mut String, routes: &[(&str, &str, &RouteMetrics)], unrouted: u64) {
    // `write!` to a String cannot fail; the results are ignored for that reason.
    out.push_str(
        "# HELP slipway_proxy_requests_total Requests answered through the proxy, per route and status class.\n\
         # TYPE slipway_proxy_requests_total counter\n",
    );
    let totals: Vec<Totals> = routes.iter().map(|(_, _, m)| m.totals()).collect();
    for ((service, environment, _), metrics) in routes.iter().zip(&totals) {
        for (class, label) in CLASS_LABELS.iter().enumerate() {
            let _ = writeln!(
                out,
                "slipway_proxy_requests_total{{service=\"{}\",environment=\"{}\",code_class=\"{label}\"}} {}",
                Escaped(service),
                Escaped(environment),
                metrics.by_class[class]
            );
        }
    }
    out.push_str(
        "# HELP slipway_proxy_request_duration_seconds Time from receiving a request to the end of its response body.\n\
         # TYPE slipway_proxy_request_duration_seconds histogram\n",
    );
    for ((service, environment, _), metrics) in routes.iter().zip(&totals) {
        let (service, environment) = (Escaped(service), Escaped(environment));
        let mut cumulative = 0;
        for (i, count) in metrics.buckets.iter().enumerate() {
            cumulative += count;
            let le = BUCKET_LABELS.get(i).copied().unwrap_or("+Inf");
            let _ = writeln!(
                out,
                "slipway_proxy_request_duration_seconds_bucket{{service=\"{service}\",environment=\"{environment}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = metrics.latency_sum_micros as f64 / 1e6;
        let _ = writeln!(
            out,
            "slipway_proxy_request_duration_seconds_sum{{service=\"{service}\",environment=\"{environment}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "slipway_proxy_request_duration_seconds_count{{service=\"{service}\",environment=\"{environment}\"}} {cumulative}"
        );
    }
    out.push_str(
        "# HELP slipway_proxy_requests_in_flight Requests being handled right now, per route.\n\
         # TYPE slipway_proxy_requests_in_flight gauge\n",
    );
    for ((service, environment, _), metrics) in routes.iter().zip(&totals) {
        let _ = writeln!(
            out,
            "slipway_proxy_requests_in_flight{{service=\"{}\",environment=\"{}\"}} {}",
            Escaped(service),
            Escaped(environment),
            metrics.in_flight.max(0)
        );
    }
    let _ = write!(
        out,
        "# HELP slipway_proxy_unrouted_requests_total Requests whose Host matched no deployed app (answered 404).\n\
         # TYPE slipway_proxy_unrouted_requests_total counter\n\
         slipway_proxy_unrouted_requests_total {unrouted}\n"
    );
}

/// A label value with `\`, `"` and newlines escaped as the exposition format wants. Route names
/// are DNS-1123 labels, so this never changes anything today; it keeps the output valid if that
/// ever changes.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_agree_with_labels() {
        for (micros, label) in BUCKETS_MICROS.iter().zip(BUCKET_LABELS) {
            assert_eq!(*micros as f64 / 1e6, label.parse::<f64>().unwrap());
        }
        let m = RouteMetrics::new(3);
        for (status, ms) in [(200, 0), (200, 3), (404, 30), (502, 20_000)] {
            m.start();
            m.finish(status, Duration::from_millis(ms));
        }
        m.start();
        let s = m.snapshot();
        assert_eq!(s.requests, 4);
        assert_eq!(s.errors, 1);
        assert_eq!(s.in_flight, 1);
        assert_eq!(s.by_class, [0, 2, 0, 1, 1]);
        assert_eq!(s.latency_sum, Duration::from_millis(20_033));
        assert_eq!(s.latency_buckets.len(), 15);
        assert_eq!(s.latency_buckets[0], (0.0005, 1));
        assert_eq!(s.latency_buckets[3], (0.005, 2));
        assert_eq!(s.latency_buckets[13], (10.0, 3));
        assert_eq!(s.latency_buckets[14], (f64::INFINITY, 4));
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }
}
