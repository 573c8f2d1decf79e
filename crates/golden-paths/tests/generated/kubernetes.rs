//! The Kubernetes manifest: every document deserializes into its k8s-openapi type with no
//! unknown field, carries the platform's runtime standards, and passes a strict schema check.

use crate::common::{checker, describe, file, run, sample, SAMPLE};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::Command;

const MANIFEST: &str = "app/templates/kubernetes/generated/payments-deployment.yaml";
/// The Kubernetes version k8s-openapi's `latest` feature (0.25) models.
const KUBERNETES_VERSION: &str = "1.33.0";
const KUBERNETES_VALIDATE_HINT: &str = "pip install kubernetes-validate";

pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML document"))
        .collect()
}

/// Deserializes a document and checks that serializing it again gives the same document: a
/// field k8s-openapi does not know (a typo, a wrong level) would be dropped and show up here.
fn typed<T: DeserializeOwned + Serialize>(doc: &serde_json::Value) -> T {
    let value: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("not a {}: {e}\n{doc:#}", std::any::type_name::<T>()));
    let again = serde_json::to_value(&value).unwrap();
    assert_eq!(
        &again, doc,
        "fields were dropped or changed on the way through k8s-openapi"
    );
    value
}

struct Manifest {
    service_account: ServiceAccount,
    deployment: Deployment,
    disruption_budget: PodDisruptionBudget,
    service: Service,
}

fn manifest() -> Manifest {
    let docs = documents(file(&sample(), MANIFEST));
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Deployment",
            "PodDisruptionBudget",
            "Service"
        ]
    );
    Manifest {
        service_account: typed(&docs[0]),
        deployment: typed(&docs[1]),
        disruption_budget: typed(&docs[2]),
        service: typed(&docs[3]),
    }
}

fn expected_labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "payments"),
        ("app.kubernetes.io/instance", "payments"),
        ("app.kubernetes.io/part-of", "payments"),
        ("app.kubernetes.io/managed-by", "slipway"),
        ("slipway.dev/team", "core-platform"),
        ("slipway.dev/environment", "dev"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn quantity(resources: &BTreeMap<String, Quantity>, key: &str) -> String {
    resources
        .get(key)
        .unwrap_or_else(|| panic!("no {key}"))
        .0
        .clone()
}

#[test]
fn every_object_carries_the_standard_metadata() {
    let m = manifest();
    let metas = [
        &m.service_account.metadata,
        &m.deployment.metadata,
        &m.disruption_budget.metadata,
        &m.service.metadata,
    ];
    for meta in metas {
        assert_eq!(meta.name.as_deref(), Some(SAMPLE.name));
        assert_eq!(meta.namespace.as_deref(), Some(SAMPLE.environment));
        assert_eq!(meta.labels.as_ref(), Some(&expected_labels()));
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations["slipway.dev/owner"], SAMPLE.team);
        assert_eq!(annotations["slipway.dev/repo-url"], SAMPLE.repo_url);
        assert_eq!(
            annotations["slipway.dev/generator"],
            "slipway-golden-paths/default@8"
        );
    }
}

#[test]
fn the_deployment_follows_the_runtime_standards() {
    let Manifest {
        service_account,
        deployment,
        disruption_budget,
        service,
    } = manifest();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));

    // The selector picks exactly the pods of this service, and the Service and the
    // disruption budget select the same pods.
    let selector = spec.selector.match_labels.clone().unwrap();
    let pod_meta = spec.template.metadata.clone().unwrap();
    let pod_labels = pod_meta.labels.unwrap();
    assert_eq!(pod_labels, expected_labels());
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    assert_eq!(service.spec.unwrap().selector, Some(selector.clone()));
    assert_eq!(
        disruption_budget
            .spec
            .unwrap()
            .selector
            .unwrap()
            .match_labels,
        Some(selector)
    );
    assert_eq!(
        pod_meta.annotations.unwrap()["slipway.dev/owner"],
        SAMPLE.team
    );

    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name, service_account.metadata.name,
        "pods run as the service's own service account"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(service_account.automount_service_account_token, Some(false));

    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(10001));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );

    let [container]: [Container; 1] = pod.containers.try_into().expect("one container");
    assert_eq!(container.name, SAMPLE.name);
    let image = container.image.unwrap();
    assert!(
        image.starts_with("registry.invalid/") && image.contains("/payments:"),
        "{image}"
    );

    let security = container.security_context.unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.privileged, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_string()])
    );

    let resources = container.resources.unwrap();
    let requests = resources.requests.unwrap();
    let limits = resources.limits.unwrap();
    assert_eq!(quantity(&requests, "cpu"), "100m");
    assert_eq!(quantity(&requests, "memory"), "128Mi");
    assert_eq!(quantity(&limits, "cpu"), "500m");
    assert_eq!(quantity(&limits, "memory"), "256Mi");

    let port_names: Vec<_> = container
        .ports
        .unwrap()
        .into_iter()
        .map(|p| p.name.unwrap())
        .collect();
    let probes = [
        ("liveness", container.liveness_probe, "/healthz"),
        ("readiness", container.readiness_probe, "/readyz"),
        ("startup", container.startup_probe, "/healthz"),
    ];
    for (kind, probe, path) in probes {
        let get = probe
            .unwrap_or_else(|| panic!("no {kind} probe"))
            .http_get
            .unwrap_or_else(|| panic!("{kind} probe is not httpGet"));
        assert_eq!(get.path.as_deref(), Some(path), "{kind}");
        let IntOrString::String(port) = get.port else {
            panic!("{kind} probe should name its port");
        };
        assert!(port_names.contains(&port), "{kind} probe port {port}");
    }

    // The root filesystem is read-only, so /tmp is an emptyDir.
    let mounts = container.volume_mounts.unwrap();
    let tmp = mounts
        .iter()
        .find(|m| m.mount_path == "/tmp")
        .expect("/tmp mount");
    let volumes = pod.volumes.unwrap();
    let volume = volumes.iter().find(|v| v.name == tmp.name).unwrap();
    assert!(volume.empty_dir.is_some());
}

#[test]
fn the_service_targets_the_named_container_port() {
    let m = manifest();
    let spec = m.service.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports = spec.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 80);
    assert_eq!(
        ports[0].target_port,
        Some(IntOrString::String("http".into()))
    );
}

/// Runs `kubernetes-validate --strict` on a file; `None` when the tool is absent.
pub fn kubernetes_validate(yaml: &str) -> Option<std::process::Output> {
    let tool = checker("kubernetes-validate", KUBERNETES_VALIDATE_HINT, &[])?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, yaml).unwrap();
    Some(run(Command::new(tool)
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(&path)))
}

#[test]
fn the_manifest_passes_a_strict_schema_check() {
    let yaml = file(&sample(), MANIFEST).to_string();

    // The checker must be able to fail: an unknown field is rejected in strict mode.
    let typo = yaml.replacen("revisionHistoryLimit:", "revisionHistoryLimt:", 1);
    assert_ne!(typo, yaml);
    let Some(control) = kubernetes_validate(&typo) else {
        return;
    };
    assert!(
        !control.status.success(),
        "kubernetes-validate accepted an unknown field:\n{}",
        describe(&control)
    );

    let output = kubernetes_validate(&yaml).unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_validated_every_document(&output);
}

/// kubernetes-validate reports one "passed" line per document it checked.
pub fn assert_validated_every_document(output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(passed, 4, "{}", describe(output));
}
