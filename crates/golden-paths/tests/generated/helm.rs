//! The Helm chart every template puts at `deploy/helm/<svc>/`, rendered by Helm's own engine
//! (PyPI `helm-python-sdk`, through `helm_render.py`): with its default values it must give the
//! same objects as `deploy/kubernetes/`, pass `kubernetes-validate --strict`, `helm lint
//! --strict`, and `yamllint` (its `Chart.yaml` and `values.yaml`).

use crate::common::{checker, checker_missing, describe, run, SAMPLE, TRICKY_REPO_URL};
use serde::Deserialize;
use slipway_core::model::ArtifactScope;
use slipway_golden_paths::{render_service, ServiceSpec, TemplateSet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str = "pip install helm-python-sdk==0.2.2";

/// Objects by (apiVersion, kind, namespace, name).
type Objects = BTreeMap<(String, String, String, String), serde_json::Value>;

/// python3 with helm-python-sdk importable, or `None` (skipped; a failure under `CI`).
fn helm_python() -> Option<PathBuf> {
    let python = checker("python3", "apt-get install python3", &[])?;
    let out = run(Command::new(&python).arg(script()).arg("probe"));
    match out.status.code() {
        Some(0) => Some(python),
        Some(3) => {
            checker_missing("helm-python-sdk", INSTALL_HINT);
            None
        }
        _ => panic!("helm_render.py probe failed: {}", describe(&out)),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generated/helm_render.py")
}

/// Writes the service-scope files of `template` for `spec` under `dir`.
fn service_tree(spec: &ServiceSpec, template: &str, dir: &Path) {
    let rendered = render_service(spec, template).unwrap();
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

/// `helm template <release> <chart> --namespace default [--set-json …]`: the multi-document YAML.
fn helm_template(
    python: &Path,
    chart: &Path,
    release: &str,
    values: Option<&str>,
) -> Result<String, String> {
    let mut cmd = Command::new(python);
    cmd.arg(script())
        .arg("render")
        .arg(chart)
        .args([release, "default"]);
    cmd.args(values);
    let out = run(&mut cmd);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("Helm writes UTF-8"))
    } else {
        Err(describe(&out))
    }
}

fn parse_objects(yaml: &str, origin: &str) -> Objects {
    let mut objects = Objects::new();
    for document in serde_norway::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document)
            .unwrap_or_else(|e| panic!("{origin}: not YAML: {e}\n{yaml}"));
        if value.is_null() {
            continue;
        }
        let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let key = (
            field(&value["apiVersion"]),
            field(&value["kind"]),
            field(&value["metadata"]["namespace"]),
            field(&value["metadata"]["name"]),
        );
        assert!(!key.1.is_empty(), "{origin}: a document without kind");
        let previous = objects.insert(key.clone(), value);
        assert!(previous.is_none(), "{origin}: {key:?} twice");
    }
    objects
}

fn manifests(dir: &Path) -> Objects {
    let mut all = Objects::new();
    for entry in std::fs::read_dir(dir.join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        all.extend(parse_objects(&text, &path.display().to_string()));
    }
    all
}

/// What differs between two sets of objects, or `None` when they are the same.
fn difference(expected: &Objects, actual: &Objects) -> Option<String> {
    let mut report = String::new();
    for (key, value) in expected {
        match actual.get(key) {
            None => report.push_str(&format!("missing from the chart: {key:?}\n")),
            Some(other) if other != value => report.push_str(&format!(
                "{key:?} differs\n--- deploy/kubernetes ---\n{}\n--- chart ---\n{}\n",
                serde_json::to_string_pretty(value).unwrap(),
                serde_json::to_string_pretty(other).unwrap()
            )),
            Some(_) => {}
        }
    }
    for key in actual.keys().filter(|k| !expected.contains_key(*k)) {
        report.push_str(&format!("only in the chart: {key:?}\n"));
    }
    (!report.is_empty()).then_some(report)
}

fn kubernetes_validate(kv: &Path, file: &Path) -> std::process::Output {
    run(Command::new(kv)
        .args(["--strict", "--kubernetes-version", "1.33", "--quiet"])
        .arg(file))
}

/// The generated chart of the sample service (`default` template) in a fresh directory.
fn sample_chart() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    service_tree(&SAMPLE, "default", dir.path());
    let chart = dir.path().join("deploy/helm").join(SAMPLE.name);
    (dir, chart)
}

#[test]
fn every_template_has_a_chart_with_the_files_helm_expects() {
    for template in TemplateSet::builtin().unwrap().names() {
        let rendered = render_service(&SAMPLE, &template).unwrap();
        let chart: Vec<_> = rendered
            .artifacts
            .iter()
            .filter_map(|a| a.path.strip_prefix("deploy/helm/payments/"))
            .collect();
        assert_eq!(
            chart,
            [
                ".helmignore",
                "Chart.yaml",
                "templates/_helpers.tpl",
                "templates/configmap.yaml",
                "templates/deployment.yaml",
                "templates/hpa.yaml",
                "templates/ingress.yaml",
                "templates/networkpolicy.yaml",
                "templates/pdb.yaml",
                "templates/service.yaml",
                "templates/serviceaccount.yaml",
                "values.yaml",
            ],
            "{template}"
        );
    }
}

#[test]
fn helm_renders_a_broken_chart_as_an_error() {
    let Some(python) = helm_python() else {
        return;
    };
    let (_dir, chart) = sample_chart();
    helm_template(&python, &chart, "payments", None).expect("the generated chart renders");
    std::fs::write(
        chart.join("templates/broken.yaml"),
        "kind: ConfigMap\nname: {{ .Values.nope.deeper }}\n{{ end }}\n",
    )
    .unwrap();
    let err = helm_template(&python, &chart, "payments", None)
        .expect_err("Helm rendered a chart with an unmatched {{ end }}");
    assert!(err.contains("broken.yaml"), "{err}");
}

#[test]
fn the_comparison_sees_a_changed_value() {
    let Some(python) = helm_python() else {
        return;
    };
    let (dir, chart) = sample_chart();
    let expected = manifests(dir.path());
    let values = r#"{"autoscaling": {"enabled": false}, "image": {"tag": "0123abc"}}"#;
    let yaml = helm_template(&python, &chart, "payments", Some(values)).unwrap();
    let actual = parse_objects(&yaml, "chart");
    let report = difference(&expected, &actual).expect("the objects differ");
    assert!(
        report.contains("missing from the chart: (\"autoscaling/v2\""),
        "{report}"
    );
    let deployment = actual.values().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["replicas"], 2,
        "replicaCount without HPA"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.invalid/slipway/dev/payments:0123abc"
    );
}

#[test]
fn every_chart_renders_the_objects_of_deploy_kubernetes() {
    let Some(python) = helm_python() else {
        return;
    };
    let tricky = ServiceSpec {
        repo_url: TRICKY_REPO_URL,
        ..SAMPLE
    };
    let cases = TemplateSet::builtin()
        .unwrap()
        .names()
        .into_iter()
        .map(|t| (t, SAMPLE))
        .chain([("default".to_string(), tricky)]);
    for (template, spec) in cases {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&spec, &template, dir.path());
        let chart = dir.path().join("deploy/helm").join(spec.name);
        let yaml = helm_template(&python, &chart, spec.name, None)
            .unwrap_or_else(|e| panic!("{template}: {e}"));
        let expected = manifests(dir.path());
        assert_eq!(expected.len(), 9, "{template}");
        if let Some(report) = difference(&expected, &parse_objects(&yaml, "chart")) {
            panic!("{template} ({}): {report}", spec.repo_url);
        }
    }
}

#[test]
fn rendered_charts_pass_kubernetes_validate_strict() {
    let Some(python) = helm_python() else {
        return;
    };
    let Some(kv) = checker(
        "kubernetes-validate",
        "pip install kubernetes-validate",
        &[],
    ) else {
        return;
    };
    // A chart that renders but whose Deployment has a misspelt field must be refused.
    let (dir, chart) = sample_chart();
    let deployment = chart.join("templates/deployment.yaml");
    let source = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(
        &deployment,
        source.replace("revisionHistoryLimit:", "revisionHistoryLimits:"),
    )
    .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        helm_template(&python, &chart, "payments", None).unwrap(),
    )
    .unwrap();
    let out = kubernetes_validate(&kv, &broken);
    assert!(
        !out.status.success(),
        "kubernetes-validate accepted an unknown field: {}",
        describe(&out)
    );

    for template in TemplateSet::builtin().unwrap().names() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&SAMPLE, &template, dir.path());
        let chart = dir.path().join("deploy/helm/payments");
        let rendered = dir.path().join("rendered.yaml");
        std::fs::write(
            &rendered,
            helm_template(&python, &chart, "payments", None).unwrap(),
        )
        .unwrap();
        let out = kubernetes_validate(&kv, &rendered);
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}

#[test]
fn charts_pass_helm_lint_strict() {
    let Some(python) = helm_python() else {
        return;
    };
    let lint = |chart: &Path| run(Command::new(&python).arg(script()).arg("lint").arg(chart));
    let (_dir, chart) = sample_chart();
    let chart_yaml = chart.join("Chart.yaml");
    let source = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, source.replace("\nversion:", "\n# version:")).unwrap();
    let out = lint(&chart);
    assert!(
        !out.status.success(),
        "helm lint accepted a chart without a version: {}",
        describe(&out)
    );

    for template in TemplateSet::builtin().unwrap().names() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&SAMPLE, &template, dir.path());
        let out = lint(&dir.path().join("deploy/helm/payments"));
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}

#[test]
fn chart_and_values_pass_yamllint() {
    let Some(yamllint) = checker("yamllint", "pip install yamllint", &[]) else {
        return;
    };
    let config = "{extends: default, rules: {line-length: disable, document-start: disable, truthy: {check-keys: false}}}";
    let (_dir, chart) = sample_chart();
    let chart_yaml = chart.join("Chart.yaml");
    let source = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, format!("{source}name: again\n")).unwrap();
    let out = run(Command::new(&yamllint)
        .args(["-s", "-d", config])
        .arg(&chart_yaml));
    assert!(
        !out.status.success(),
        "yamllint accepted a duplicate key: {}",
        describe(&out)
    );

    for template in TemplateSet::builtin().unwrap().names() {
        let dir = tempfile::tempdir().unwrap();
        service_tree(&SAMPLE, &template, dir.path());
        let out = run(Command::new(&yamllint)
            .args(["-s", "-d", config, "Chart.yaml", "values.yaml"])
            .current_dir(dir.path().join("deploy/helm/payments")));
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
}
