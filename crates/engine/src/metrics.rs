//! The engine's own Prometheus metrics: deployments that ended, by status, and build durations
//! (what the generated `platform.json` Grafana dashboard charts), and the local target's instance
//! restarts (what the generated `CrashLooping` alert reads). Counted by this process since it
//! started, as Prometheus counters are.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the build-duration histogram, in seconds.
const BUILD_BUCKETS: [f64; 11] = [
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
];

#[derive(Default)]
pub struct EngineMetrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (service, environment, status) → deployments that ended so.
    deployments: BTreeMap<(String, String, &'static str), u64>,
    /// Non-cumulative bucket counts (the last is +Inf), sum and count.
    build_buckets: [u64; BUILD_BUCKETS.len() + 1],
    build_sum: f64,
    build_count: u64,
    /// (service, environment) → instances that exited and were restarted by their supervisor.
    restarts: BTreeMap<(String, String), u64>,
}

impl EngineMetrics {
    pub fn deployment_ended(&self, service: &str, environment: &str, status: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.deployments
            .entry((service.to_string(), environment.to_string(), status))
            .or_default() += 1;
    }

    pub fn instance_restarted(&self, service: &str, environment: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.restarts
            .entry((service.to_string(), environment.to_string()))
            .or_default() += 1;
    }

    pub fn build_finished(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let i = BUILD_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUILD_BUCKETS.len());
        m.build_buckets[i] += 1;
        m.build_sum += secs;
        m.build_count += 1;
    }

    /// Appends the Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP slipway_deployments_total Deployments that ended, by final status."
        );
        let _ = writeln!(out, "# TYPE slipway_deployments_total counter");
        for ((service, environment, status), n) in &m.deployments {
            let _ = writeln!(
                out,
                "slipway_deployments_total{{service=\"{service}\",environment=\"{environment}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP slipway_build_duration_seconds Time the install and build commands of a release took.");
        let _ = writeln!(out, "# TYPE slipway_build_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, bound) in BUILD_BUCKETS.iter().enumerate() {
            cumulative += m.build_buckets[i];
            let _ = writeln!(
                out,
                "slipway_build_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += m.build_buckets[BUILD_BUCKETS.len()];
        let _ = writeln!(
            out,
            "slipway_build_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "slipway_build_duration_seconds_sum {}", m.build_sum);
        let _ = writeln!(
            out,
            "slipway_build_duration_seconds_count {}",
            m.build_count
        );
        let _ = writeln!(
            out,
            "# HELP slipway_instance_restarts_total Instances that exited and were restarted by their supervisor."
        );
        let _ = writeln!(out, "# TYPE slipway_instance_restarts_total counter");
        for ((service, environment), n) in &m.restarts {
            let _ = writeln!(
                out,
                "slipway_instance_restarts_total{{service=\"{service}\",environment=\"{environment}\"}} {n}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = EngineMetrics::default();
        m.deployment_ended("api", "dev", "EXPOSED");
        m.deployment_ended("api", "dev", "EXPOSED");
        m.deployment_ended("api", "dev", "ROLLED_BACK");
        m.build_finished(Duration::from_millis(700));
        m.build_finished(Duration::from_secs(45));
        let mut out = String::new();
        m.render_prometheus(&mut out);
        assert!(out.contains(
            r#"slipway_deployments_total{service="api",environment="dev",status="EXPOSED"} 2"#
        ));
        assert!(out.contains(
            r#"slipway_deployments_total{service="api",environment="dev",status="ROLLED_BACK"} 1"#
        ));
        assert!(out.contains(r#"slipway_build_duration_seconds_bucket{le="1"} 1"#));
        assert!(out.contains(r#"slipway_build_duration_seconds_bucket{le="60"} 2"#));
        assert!(out.contains(r#"slipway_build_duration_seconds_bucket{le="+Inf"} 2"#));
        assert!(out.contains("slipway_build_duration_seconds_count 2"));
    }
}
