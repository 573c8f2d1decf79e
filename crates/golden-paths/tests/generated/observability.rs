//! The generated alerts and dashboards against the series a scaffolded service really exports:
//! the python-api scaffold (standard library only, nothing to install) is started and scraped,
//! and its label sets — plus the target labels the generated `prometheus.yml` adds — are the
//! input of `promtool test rules`. An alert or a panel that selects a label the services do not
//! export (`code` vs `status`) finds no series and fails here.

use crate::common::{
    describe, free_port, http_get, run, wait_until_listening, ScaffoldServer, SAMPLE,
};
use slipway_golden_paths::TemplateSet;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The labels of one series, in exposition order.
pub type Labels = Vec<(String, String)>;

/// The series of the metrics contract (docs/templates.md, "Metrics a service exports") with the
/// names of the labels the service gives them, sorted: what every scaffold serves on `/metrics`
/// and the generated request alerts and panels read.
pub const HTTP_CONTRACT: &[(&str, &str)] = &[
    ("http_requests_total", "code method path"),
    (
        "http_request_duration_seconds_bucket",
        "code le method path",
    ),
    ("http_request_duration_seconds_sum", "code method path"),
    ("http_request_duration_seconds_count", "code method path"),
];

/// The series Prometheus records itself about each scrape of a target, with the target's labels.
pub const SCRAPE_SERIES: &[&str] = &["up", "scrape_duration_seconds"];

/// One sample line of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
}

/// Parses the sample lines of a Prometheus text exposition (format 0.0.4), values left out.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample line without a value: {line:?}"));
            assert!(
                value == "+Inf" || value.parse::<f64>().is_ok(),
                "not a number in {line:?}"
            );
            match series.split_once('{') {
                Some((name, rest)) => Sample {
                    name: name.to_string(),
                    labels: parse_labels(
                        rest.strip_suffix('}')
                            .unwrap_or_else(|| panic!("unclosed labels: {line:?}")),
                    ),
                },
                None => Sample {
                    name: series.to_string(),
                    labels: Vec::new(),
                },
            }
        })
        .collect()
}

fn parse_labels(mut rest: &str) -> Labels {
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("a label without a quoted value: {rest:?}"));
        let mut value = String::new();
        let mut end = None;
        let mut chars = after.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("an unterminated label value: {rest:?}"));
        labels.push((name.to_string(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The python-api scaffold's `/metrics` after a few requests (`/health`, an unknown path and
/// `/metrics` itself), or None when python3 is absent (a failure under `CI`).
pub fn scrape_python_scaffold() -> Option<String> {
    let python = crate::common::checker("python3", "Python 3.11 or newer", &[])?;
    let dir = tempfile::tempdir().unwrap();
    let files = TemplateSet::builtin()
        .unwrap()
        .scaffold(&SAMPLE, "python-api")
        .unwrap();
    for file in files {
        let path = dir.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &file.content).unwrap();
    }
    let port = free_port();
    let mut server = ScaffoldServer::spawn(
        Command::new(python)
            .args(["-m", "app"])
            .current_dir(dir.path())
            .env("PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    wait_until_listening(&mut server, port);
    assert_eq!(http_get(port, "/health").0, 200);
    assert_eq!(http_get(port, "/no-such-route").0, 404);
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    Some(metrics)
}

/// The labels Prometheus attaches to every series it scrapes from the service, as the generated
/// `prometheus.yml` configures them: `job` (the first scrape job), `instance` and the
/// `relabel_configs` that set a constant label.
pub fn target_labels(prometheus_yml: &str, instance: &str) -> Labels {
    let config: serde_norway::Value = serde_norway::from_str(prometheus_yml).unwrap();
    let job = &config["scrape_configs"][0];
    let mut labels = vec![
        (
            "job".to_string(),
            job["job_name"].as_str().unwrap().to_string(),
        ),
        ("instance".to_string(), instance.to_string()),
    ];
    for relabel in job["relabel_configs"].as_sequence().unwrap() {
        labels.push((
            relabel["target_label"].as_str().unwrap().to_string(),
            relabel["replacement"].as_str().unwrap().to_string(),
        ));
    }
    labels
}

/// `name{a="b",…}` as promtool's `input_series` reads it.
fn series(name: &str, labels: &[(String, String)]) -> String {
    let labels: Vec<_> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// `labels` with `name` set to `value` (replaced where present, else added).
fn with(labels: &[(String, String)], name: &str, value: &str) -> Labels {
    let mut out: Labels = labels.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.to_string(), value.to_string()));
    out
}

fn yaml(s: &str) -> String {
    // A JSON string is a YAML double-quoted scalar.
    serde_json::Value::from(s).to_string()
}

fn yaml_map<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let pairs: Vec<_> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", yaml(v)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// What the scrape showed, with the target labels added: the first series of each metric name,
/// as the scaffold labels it.
pub struct ScaffoldSeries {
    pub samples: Vec<Sample>,
    pub target: Labels,
}

impl ScaffoldSeries {
    pub fn new(exposition: &str, target: Labels) -> Self {
        Self {
            samples: parse_exposition(exposition),
            target,
        }
    }

    /// The scaffold's labels of `name`'s series (with the target's), the first one that `keep`
    /// accepts.
    fn labels_where(&self, name: &str, keep: impl Fn(&Labels) -> bool) -> Labels {
        let found = self
            .samples
            .iter()
            .find(|s| s.name == name && keep(&s.labels))
            .unwrap_or_else(|| panic!("the scaffold exports no matching {name}"));
        found.labels.iter().chain(&self.target).cloned().collect()
    }

    /// Every label name a series of `name` carries once scraped.
    pub fn label_names(&self, name: &str) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.target.iter().map(|(k, _)| k.clone()).collect();
        let mut found = false;
        for s in self.samples.iter().filter(|s| s.name == name) {
            found = true;
            names.extend(s.labels.iter().map(|(k, _)| k.clone()));
        }
        assert!(found, "the scaffold exports no {name}");
        names
    }

    pub fn metric_names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// The `/health` 200 counter of the scrape, as a starting point for the scenarios.
    fn request_labels(&self) -> Labels {
        self.labels_where("http_requests_total", |l| {
            l.iter().any(|(k, v)| k == "path" && v == "/health")
        })
    }

    /// The labels of the first histogram series of the scrape (with the target's, without
    /// `le`) and its `le` values.
    fn histogram(&self) -> (Labels, Vec<String>) {
        let buckets: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == "http_request_duration_seconds_bucket")
            .collect();
        let without_le = |s: &Sample| -> Labels {
            s.labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect()
        };
        let base = without_le(buckets.first().expect("the scaffold exports no histogram"));
        let les = buckets
            .iter()
            .filter(|s| without_le(s) == base)
            .filter_map(|s| s.labels.iter().find(|(k, _)| k == "le"))
            .map(|(_, v)| v.clone())
            .collect();
        (base.into_iter().chain(self.target.clone()).collect(), les)
    }

    /// Request counters: `per_minute` requests a minute for each status code, 30 minutes long.
    /// The status code goes into the label in which the scaffold put the `/health` answer's
    /// `200`, whatever its name: the alerts must find it there.
    fn requests(&self, per_minute: &[(&str, u32)]) -> String {
        let base = self.request_labels();
        let holding_200: Vec<_> = base.iter().filter(|(_, v)| v == "200").collect();
        assert_eq!(
            holding_200.len(),
            1,
            "which label is the status code? {base:?}"
        );
        let status_label = holding_200[0].0.clone();
        per_minute
            .iter()
            .map(|(code, n)| {
                input(
                    &series("http_requests_total", &with(&base, &status_label, code)),
                    &format!("0+{n}x30"),
                )
            })
            .collect()
    }

    /// A latency histogram in which every request of the 10 a minute takes `seconds`.
    fn latencies(&self, seconds: f64) -> String {
        let (base, les) = self.histogram();
        assert!(les.len() > 2 && les.iter().any(|l| l == "+Inf"), "{les:?}");
        les.iter()
            .map(|le| {
                let bound: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                let rate = if seconds <= bound { 10 } else { 0 };
                input(
                    &series(
                        "http_request_duration_seconds_bucket",
                        &with(&base, "le", le),
                    ),
                    &format!("0+{rate}x30"),
                )
            })
            .collect()
    }

    /// `up` for the scaffold's target.
    fn up(&self, values: &str) -> String {
        input(&series("up", &self.target), values)
    }
}

fn input(series: &str, values: &str) -> String {
    format!(
        "      - series: {}\n        values: {}\n",
        yaml(series),
        yaml(values)
    )
}

/// The generated alerts' `summary` annotations and rule labels, by alert name.
fn alert_rules(alerts_yml: &str) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let rules: serde_norway::Value = serde_norway::from_str(alerts_yml).unwrap();
    let mut out = BTreeMap::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let labels = rule["labels"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_string(),
                    v.as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.insert(
            rule["alert"].as_str().unwrap().to_string(),
            (
                rule["annotations"]["summary"].as_str().unwrap().to_string(),
                labels,
            ),
        );
    }
    out
}

/// The `promtool test rules` file for the generated `alerts_yml` (at `rules_path`): each alert
/// fires on what a scaffold exports when it should, and stays quiet when it should not.
///
/// `expected` names the alerts the file must have, sorted; only theirs are tested (a service
/// without the HTTP series has no request alerts, and its scaffold series no requests).
pub fn alert_tests(
    scaffold: &ScaffoldSeries,
    alerts_yml: &str,
    rules_path: &Path,
    expected: &[&str],
) -> String {
    let rules = alert_rules(alerts_yml);
    assert_eq!(
        rules.keys().collect::<Vec<_>>(),
        expected,
        "an alert was added or removed: test it here"
    );
    let has = |alert: &str| rules.contains_key(alert);
    let firing = |alert: &str, extra: &[(String, String)]| {
        let (summary, labels) = &rules[alert];
        let mut labels = labels.clone();
        for (k, v) in extra {
            // The rule's own labels win over the series' (`team` is on both).
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let summary = (String::from("summary"), summary.clone());
        format!(
            "          - exp_labels: {}\n            exp_annotations: {}\n",
            yaml_map(&labels),
            yaml_map([(&summary.0, &summary.1)])
        )
    };
    let check = |alert: &str, minutes: u32, expected: &str| {
        if expected.is_empty() {
            format!("      - eval_time: {minutes}m\n        alertname: {alert}\n        exp_alerts: []\n")
        } else {
            format!(
                "      - eval_time: {minutes}m\n        alertname: {alert}\n        exp_alerts:\n{expected}"
            )
        }
    };
    let case = |name: &str, inputs: String, checks: Vec<String>| {
        format!(
            "  - name: {}\n    interval: 1m\n    input_series:\n{inputs}    alert_rule_test:\n{}",
            yaml(name),
            checks.concat()
        )
    };
    let crash_labels: Labels = [
        ("container", SAMPLE.name),
        ("namespace", SAMPLE.environment),
        ("pod", "payments-5d8f7c9b4-x2x7q"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let crash = series("kube_pod_container_status_restarts_total", &crash_labels);
    // The local target: Slipway's counter, from Slipway's own scrape job.
    let local_labels = |service: &str| -> Labels {
        [
            ("service", service),
            ("environment", SAMPLE.environment),
            ("job", "slipway"),
            ("instance", "127.0.0.1:7700"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let local_crash_labels = local_labels(SAMPLE.name);
    let local_crash = series("slipway_instance_restarts_total", &local_crash_labels);
    let other_crash = series("slipway_instance_restarts_total", &local_labels("orders"));
    let mut cases = Vec::new();
    if has("HighErrorRate") {
        cases.push(case(
            "10 % of requests are 5xx: HighErrorRate fires once it lasted its for: (10m)",
            scaffold.requests(&[("200", 90), ("500", 10)]),
            vec![
                check("HighErrorRate", 5, ""),
                check("HighErrorRate", 15, &firing("HighErrorRate", &[])),
                check("HighErrorRate", 30, &firing("HighErrorRate", &[])),
            ],
        ));
        cases.push(case(
            "1 % of requests are 5xx and 20 % are 404: no HighErrorRate",
            scaffold.requests(&[("200", 79), ("404", 20), ("500", 1)]),
            vec![
                check("HighErrorRate", 15, ""),
                check("HighErrorRate", 30, ""),
            ],
        ));
    }
    if has("HighLatencyP95") {
        cases.push(case(
            "every request takes 0.7 s: HighLatencyP95 fires",
            scaffold.latencies(0.7),
            vec![
                check("HighLatencyP95", 5, ""),
                check("HighLatencyP95", 15, &firing("HighLatencyP95", &[])),
            ],
        ));
        cases.push(case(
            "every request takes 3 ms: no HighLatencyP95",
            scaffold.latencies(0.003),
            vec![check("HighLatencyP95", 15, "")],
        ));
    }
    if has("ServiceDown") {
        cases.push(case(
            "the target is down: ServiceDown fires after 2m",
            scaffold.up("0x10"),
            vec![
                check("ServiceDown", 1, ""),
                check("ServiceDown", 3, &firing("ServiceDown", &scaffold.target)),
            ],
        ));
        cases.push(case(
            "the target is up, or down for one scrape: no ServiceDown",
            scaffold.up("1 1 0 1 1 1 1 1 1 1"),
            vec![check("ServiceDown", 2, ""), check("ServiceDown", 8, "")],
        ));
    }
    if has("CrashLooping") {
        cases.push(case(
            "a restart a minute: CrashLooping fires",
            input(&crash, "0+1x30"),
            vec![
                check("CrashLooping", 3, ""),
                check("CrashLooping", 25, &firing("CrashLooping", &crash_labels)),
            ],
        ));
        cases.push(case(
            "a local instance restarted a minute: CrashLooping fires",
            input(&local_crash, "0+1x30"),
            vec![
                check("CrashLooping", 3, ""),
                check(
                    "CrashLooping",
                    25,
                    &firing("CrashLooping", &local_crash_labels),
                ),
            ],
        ));
        cases.push(case(
            "another service's local instances restart: no CrashLooping",
            input(&other_crash, "0+1x30"),
            vec![check("CrashLooping", 25, "")],
        ));
    }
    format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n{}",
        yaml(rules_path.to_str().unwrap()),
        cases.concat()
    )
}

/// A `promtool test rules` file that evaluates every dashboard `exprs` (with its variables
/// replaced) on a scaffold's series under load with 10 % 5xx and slow requests, and expects each
/// to give at least one series with a value above 0 — a panel that selects a label the services
/// do not export gives nothing.
pub fn dashboard_tests(scaffold: &ScaffoldSeries, exprs: &[(String, String)]) -> String {
    let mut inputs = scaffold.requests(&[("200", 90), ("404", 5), ("500", 10)]);
    inputs += &scaffold.latencies(0.7);
    dashboard_tests_on(&inputs, exprs)
}

/// Like [`dashboard_tests`], for a service whose only series are Prometheus's own about its
/// scrapes: an instance that answers every scrape in 12 ms.
pub fn scrape_only_dashboard_tests(
    scaffold: &ScaffoldSeries,
    exprs: &[(String, String)],
) -> String {
    let mut inputs = scaffold.up("1+0x30");
    inputs += &input(
        &series("scrape_duration_seconds", &scaffold.target),
        "0.012+0x30",
    );
    dashboard_tests_on(&inputs, exprs)
}

fn dashboard_tests_on(inputs: &str, exprs: &[(String, String)]) -> String {
    let mut checks = String::new();
    for (title, expr) in exprs {
        checks += &format!(
            "      # {title}\n      - expr: {}\n        eval_time: 10m\n        exp_samples:\n          - labels: '{{}}'\n            value: 1\n",
            yaml(&format!("count(({expr}) > 0) > bool 0"))
        );
    }
    format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - name: dashboard queries on a scaffold's series\n    interval: 1m\n    input_series:\n{inputs}    promql_expr_test:\n{checks}"
    )
}

/// Runs `promtool test rules` on `file` and fails with its output when a test fails.
pub fn promtool_test(promtool: &Path, file: &Path) {
    let out = run(Command::new(promtool).args(["test", "rules"]).arg(file));
    assert!(
        out.status.success(),
        "{}\n--- {} ---\n{}",
        describe(&out),
        file.display(),
        std::fs::read_to_string(file).unwrap()
    );
}

/// The label names a PromQL expression relies on: those of its selectors' matchers, its
/// `by (…)`/`on (…)` groupings and `label_values(metric, label)`, with the metric each selector
/// names (None for a grouping, which spans the expression).
pub fn labels_used(expr: &str) -> Vec<(Option<String>, String)> {
    let mut used = Vec::new();
    let bytes = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && i > 0 && ident(bytes[i - 1]) {
            let start = (0..i)
                .rev()
                .take_while(|&j| ident(bytes[j]))
                .last()
                .unwrap();
            let metric = &expr[start..i];
            let end = i + expr[i..].find('}').unwrap();
            for matcher in split_matchers(&expr[i + 1..end]) {
                let name: String = matcher
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.push((Some(metric.to_string()), name));
            }
            i = end;
        } else if let Some(rest) = ["by (", "on (", "by(", "on("]
            .iter()
            .find_map(|kw| expr[i..].starts_with(kw).then(|| &expr[i + kw.len()..]))
        {
            let list = &rest[..rest.find(')').unwrap()];
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                used.push((None, name.to_string()));
            }
        }
        i += 1;
    }
    if let Some(rest) = expr.strip_prefix("label_values(") {
        let (metric, label) = rest.trim_end_matches(')').rsplit_once(',').unwrap();
        let metric = metric.split('{').next().unwrap();
        used.push((Some(metric.trim().to_string()), label.trim().to_string()));
    }
    used
}

/// The metric names a PromQL expression (or a Grafana `label_values(…)` query) reads: its
/// identifiers that are not functions, aggregations, keywords, label names or numbers.
pub fn metrics_used(expr: &str) -> BTreeSet<String> {
    // Aggregations are among them: `sum by (le) (…)` puts its grouping before the parenthesis.
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut used = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening bracket to its closing one, over quoted strings.
    let skip_to = |mut i: usize, close: char| {
        let mut quoted = false;
        while i < chars.len() {
            match chars[i] {
                '\\' if quoted => i += 1,
                '"' => quoted = !quoted,
                c if c == close && !quoted => return i,
                _ => {}
            }
            i += 1;
        }
        panic!("{close:?} missing in {expr}")
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i = skip_to(i + 1, '"');
        } else if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number: 0.95, 1e-9.
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric()
                    || chars[i + 1] == '.'
                    || (matches!(chars[i + 1], '-' | '+') && matches!(chars[i], 'e' | 'E')))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric() || matches!(chars[i + 1], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..=i].iter().collect();
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace()).copied();
            if LABEL_LISTS.contains(&word.as_str()) {
                // by (le, job): label names, not metrics.
                if next == Some('(') {
                    let open = i + 1 + chars[i + 1..].iter().position(|&c| c == '(').unwrap();
                    i = skip_to(open + 1, ')');
                }
            } else if word == "label_values" {
                // label_values(metric{…}, label): the metric, not the label.
                let open = i + 1 + chars[i + 1..].iter().position(|&c| c == '(').unwrap();
                let close = skip_to(open + 1, ')');
                let inside: String = chars[open + 1..close].iter().collect();
                let (selector, _label) = inside.rsplit_once(',').unwrap();
                used.extend(metrics_used(selector));
                i = close;
            } else if next != Some('(') && !KEYWORDS.contains(&word.as_str()) {
                used.insert(word);
            }
        }
        i += 1;
    }
    used
}

/// The matchers of a selector, split at the commas outside quoted values.
fn split_matchers(inside: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in inside.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(inside[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(inside[start..].trim());
    out.into_iter().filter(|m| !m.is_empty()).collect()
}

#[test]
fn the_exposition_and_promql_parsers_read_what_they_must() {
    let samples = parse_exposition(
        "# TYPE x counter\nx{a=\"1\",b=\"q\\\"u,o\"} 2\ny 3.5\nz_bucket{le=\"+Inf\"} 1\n",
    );
    assert_eq!(samples.len(), 3);
    assert_eq!(
        samples[0].labels,
        [("a".into(), "1".into()), ("b".into(), "q\"u,o".into())]
    );
    assert!(samples[1].labels.is_empty());
    let used = labels_used(
        "sum by (le, job) (rate(m_bucket{job=~\"a,b\",code=~\"5..\"}[5m])) / on(job) n{x!=\"\"}",
    );
    let m = Some("m_bucket".to_string());
    assert_eq!(
        used,
        [
            (None, "le".to_string()),
            (None, "job".to_string()),
            (m.clone(), "job".to_string()),
            (m, "code".to_string()),
            (None, "job".to_string()),
            (Some("n".to_string()), "x".to_string()),
        ]
    );
    assert_eq!(
        labels_used("label_values(http_requests_total, job)"),
        [(Some("http_requests_total".into()), "job".into())]
    );
    assert_eq!(
        labels_used("label_values(up{service!=\"\"}, job)"),
        [
            (Some("up".into()), "service".into()),
            (Some("up".into()), "job".into())
        ]
    );
    let names = |expr: &str| metrics_used(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names("histogram_quantile(0.95, sum by (le, job) (rate(m_bucket{job=~\"a,b\",code=~\"5..\"}[5m]))) > 0.5"),
        ["m_bucket"]
    );
    assert_eq!(
        names("sum(rate(a{x=\"rate(b)\"}[5m])) / on (job) group_left (team) clamp_min(sum(c), 1e-9) > bool 0"),
        ["a", "c"]
    );
    assert_eq!(names("sum by (job) (up)"), ["up"]);
    assert_eq!(names("label_values(up{service!=\"\"}, job)"), ["up"]);
    assert_eq!(names("avg_over_time(up[1h]) offset 5m"), ["up"]);
}
