//! The service: an HTTP API on the standard library with /health, /metrics and JSON logs.

mod config;

pub use config::SERVICE;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Latency buckets of the request histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One (method, path, code) combination: its latency buckets, request count and total time.
#[derive(Default)]
struct Series {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and a latency histogram by method, route and status code in the
/// Prometheus text format: the series the generated alerts and dashboards read.
#[derive(Default)]
pub struct Metrics {
    series: BTreeMap<(String, String, u16), Series>,
}

impl Metrics {
    pub fn observe(&mut self, method: &str, path: &str, code: u16, seconds: f64) {
        let series = self
            .series
            .entry((method.to_string(), path.to_string(), code))
            .or_default();
        for (bucket, bound) in series.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        series.count += 1;
        series.sum += seconds;
    }

    pub fn render(&self) -> String {
        let labels = |(method, path, code): &(String, String, u16)| {
            format!("method=\"{method}\",path=\"{path}\",code=\"{code}\"")
        };
        let mut out = String::from(
            "# HELP http_requests_total HTTP requests served, by method, route and status code.\n\
             # TYPE http_requests_total counter\n",
        );
        for (key, series) in &self.series {
            out += &format!("http_requests_total{{{}}} {}\n", labels(key), series.count);
        }
        out += "# HELP http_request_duration_seconds Time to answer HTTP requests, by method, route and status code.\n\
                # TYPE http_request_duration_seconds histogram\n";
        for (key, series) in &self.series {
            let labels = labels(key);
            for (bound, value) in BUCKETS.iter().zip(series.buckets) {
                out += &format!(
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {value}\n"
                );
            }
            out += &format!(
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
                 http_request_duration_seconds_sum{{{labels}}} {sum}\n\
                 http_request_duration_seconds_count{{{labels}}} {count}\n",
                count = series.count,
                sum = series.sum,
            );
        }
        out
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One log line: a JSON object with the time, level, service and message, then `fields`
/// (already JSON values).
pub fn log_line(level: &str, message: &str, fields: &[(&str, String)]) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut line = format!(
        "{{\"time_unix_ms\":{millis},\"level\":{},\"service\":{},\"message\":{}",
        json_string(level),
        json_string(SERVICE),
        json_string(message)
    );
    for (key, value) in fields {
        line += &format!(",{}:{value}", json_string(key));
    }
    line.push('}');
    line
}

/// What a route answers: (status, content type, body).
pub type Answer = (u16, &'static str, String);

/// A route: answers one GET request.
pub type Route = fn(&Metrics) -> Answer;

/// The routes this service answers (GET). Any other path is a 404 counted as "other", so a scan
/// of random URLs cannot create a metric series per URL.
pub const ROUTES: &[(&str, Route)] = &[
    ("/", |_| {
        (
            200,
            "application/json",
            format!("{{\"service\":{}}}", json_string(SERVICE)),
        )
    }),
    ("/health", |_| {
        (200, "application/json", r#"{"status":"ok"}"#.into())
    }),
    ("/metrics", |metrics| {
        (200, "text/plain; version=0.0.4", metrics.render())
    }),
];

/// The answer to one request and the route it is counted under, with `routes`. A route that
/// panics answers 500 and is counted as one (the generated HighErrorRate alert reads
/// `code="500"`); the panic's message is the third value. Left alone, the panic would end the
/// connection's thread with no answer and nothing counted.
pub fn route_with(
    routes: &[(&str, Route)],
    method: &str,
    path: &str,
    metrics: &Metrics,
) -> (Answer, String, Option<String>) {
    let path = path.split('?').next().unwrap_or("/");
    let found = routes.iter().find(|(p, _)| *p == path);
    match (method, found) {
        ("GET", Some(&(name, route))) => {
            // `metrics` is only read; a panic leaves it as it was.
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(metrics)));
            match answer {
                Ok(answer) => (answer, name.into(), None),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    let answer = (
                        500,
                        "application/json",
                        r#"{"error":"internal error"}"#.into(),
                    );
                    (answer, name.into(), Some(message))
                }
            }
        }
        ("GET", None) => (
            (404, "application/json", r#"{"error":"not found"}"#.into()),
            "other".into(),
            None,
        ),
        _ => (
            (
                405,
                "application/json",
                r#"{"error":"method not allowed"}"#.into(),
            ),
            "other".into(),
            None,
        ),
    }
}

/// The answer to one request with this service's [`ROUTES`].
pub fn route(method: &str, path: &str, metrics: &Metrics) -> (Answer, String, Option<String>) {
    route_with(ROUTES, method, path, metrics)
}

fn handle(stream: TcpStream, metrics: &Mutex<Metrics>, log: &(dyn Fn(String) + Sync)) {
    let started = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Headers are read and ignored: no route takes a body.
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let ((status, content_type, body), route_name, panic) = {
        let metrics = metrics.lock().unwrap_or_else(|e| e.into_inner());
        route(method, path, &metrics)
    };
    if let Some(panic) = panic {
        log(log_line(
            "error",
            "request failed",
            &[
                ("method", json_string(method)),
                ("path", json_string(&route_name)),
                ("error", json_string(&panic)),
            ],
        ));
    }
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        // Clients ignore the reason phrase (RFC 9112), which may be empty.
        _ => "",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Counted and logged before the answer goes out, so a client that reads /metrics next sees it.
    let seconds = started.elapsed().as_secs_f64();
    metrics
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .observe(method, &route_name, status, seconds);
    log(log_line(
        "info",
        "request",
        &[
            ("method", json_string(method)),
            ("path", json_string(&route_name)),
            ("status", status.to_string()),
            ("duration_ms", format!("{:.3}", seconds * 1000.0)),
        ],
    ));
    let _ = (&stream).write_all(response.as_bytes());
}

/// Serves on `listener` until the process ends, a thread per connection; `log` receives each
/// JSON log line.
pub fn serve(listener: TcpListener, log: Arc<dyn Fn(String) + Send + Sync>) {
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    for stream in listener.incoming().flatten() {
        let metrics = Arc::clone(&metrics);
        let log = Arc::clone(&log);
        std::thread::spawn(move || handle(stream, &metrics, &*log));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_answers_ok() {
        let ((status, content_type, body), _, _) = route("GET", "/health", &Metrics::default());
        assert_eq!(
            (status, content_type, body.as_str()),
            (200, "application/json", r#"{"status":"ok"}"#)
        );
    }

    #[test]
    fn unknown_paths_are_404_and_share_one_route() {
        let ((status, _, _), name, _) = route("GET", "/nope?x=1", &Metrics::default());
        assert_eq!((status, name.as_str()), (404, "other"));
    }

    #[test]
    fn a_route_that_panics_answers_500_under_its_own_name() {
        let routes: &[(&str, Route)] = &[("/fail", |_| panic!("deliberate failure"))];
        let ((status, _, body), name, panic) =
            route_with(routes, "GET", "/fail", &Metrics::default());
        assert_eq!(
            (status, body.as_str(), name.as_str()),
            (500, r#"{"error":"internal error"}"#, "/fail")
        );
        assert_eq!(panic.as_deref(), Some("deliberate failure"));
    }

    #[test]
    fn metrics_are_prometheus_text_with_cumulative_buckets() {
        let mut metrics = Metrics::default();
        metrics.observe("GET", "/health", 200, 0.003);
        metrics.observe("GET", "/health", 200, 0.2);
        metrics.observe("GET", "/health", 500, 0.7);
        let text = metrics.render();
        // The labels the generated alerts and dashboards select on: method, path and code.
        let ok = "method=\"GET\",path=\"/health\",code=\"200\"";
        let failed = "method=\"GET\",path=\"/health\",code=\"500\"";
        for want in [
            "# TYPE http_requests_total counter\n".to_string(),
            format!("http_requests_total{{{ok}}} 2\n"),
            format!("http_requests_total{{{failed}}} 1\n"),
            "# TYPE http_request_duration_seconds histogram\n".to_string(),
            format!("http_request_duration_seconds_bucket{{{ok},le=\"0.005\"}} 1\n"),
            format!("http_request_duration_seconds_bucket{{{ok},le=\"0.25\"}} 2\n"),
            format!("http_request_duration_seconds_bucket{{{ok},le=\"+Inf\"}} 2\n"),
            format!("http_request_duration_seconds_count{{{ok}}} 2\n"),
            format!("http_request_duration_seconds_bucket{{{failed},le=\"0.5\"}} 0\n"),
            format!("http_request_duration_seconds_bucket{{{failed},le=\"1\"}} 1\n"),
        ] {
            assert!(text.contains(&want), "{want} in {text}");
        }
    }

    #[test]
    fn log_lines_are_single_line_json_objects() {
        let line = log_line("info", "a \"quoted\"\nmessage", &[("status", "200".into())]);
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("{\"time_unix_ms\":") && line.ends_with(",\"status\":200}"),
            "{line}"
        );
        assert!(
            line.contains(r#""message":"a \"quoted\"\nmessage""#),
            "{line}"
        );
    }
}
