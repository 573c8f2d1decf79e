//! A repository URL full of characters that mean something in HCL, YAML, Groovy and shell
//! (it passed the API's validation) comes out of every file exactly as it went in.

use crate::common::{file, TRICKY_REPO_URL};
use crate::jenkins::{check_secrets, check_structure, environment_entries, groovy_lint};
use crate::kubernetes::{assert_validated_every_document, documents, kubernetes_validate};
use hcl::eval::{Context, Evaluate};
use slipway_golden_paths::{render_registration, Rendered, ServiceSpec};

fn tricky() -> Rendered {
    render_registration(&ServiceSpec {
        name: "payments",
        team: "core-platform",
        repo_url: TRICKY_REPO_URL,
        environment: "dev",
    })
    .unwrap()
}

#[test]
fn terraform_keeps_the_url_literal() {
    let rendered = tricky();
    let main = hcl::parse(file(&rendered, "terraform/envs/dev/payments/main.tf")).unwrap();
    let locals = main.blocks().find(|b| b.identifier() == "locals").unwrap();
    let repository = locals
        .body()
        .attributes()
        .find(|a| a.key() == "repository")
        .unwrap();
    // Evaluation would fail on an unescaped `${x}` (no such variable) or `%{if}`.
    let value = repository.expr().evaluate(&Context::new()).unwrap();
    assert_eq!(value, hcl::Value::from(TRICKY_REPO_URL));

    hcl::parse(file(&rendered, "terraform/envs/dev/payments/outputs.tf")).unwrap();
}

#[test]
fn yaml_keeps_the_url_literal() {
    let rendered = tricky();
    let yaml = file(
        &rendered,
        "app/templates/kubernetes/generated/payments-deployment.yaml",
    );
    let docs = documents(yaml);
    assert_eq!(docs.len(), 4);
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["annotations"]["slipway.dev/repo-url"],
            TRICKY_REPO_URL
        );
    }
    assert_eq!(
        docs[1]["spec"]["template"]["metadata"]["annotations"]["slipway.dev/repo-url"],
        TRICKY_REPO_URL
    );
    if let Some(output) = kubernetes_validate(yaml) {
        assert!(
            output.status.success(),
            "{}",
            crate::common::describe(&output)
        );
        assert_validated_every_document(&output);
    }
}

#[test]
fn groovy_keeps_the_url_literal() {
    let rendered = tricky();
    let source = file(
        &rendered,
        "app/templates/jenkins/generated/payments.Jenkinsfile",
    );
    let tokens = check_structure(source);
    check_secrets(&tokens);
    let environment = environment_entries(&tokens);
    let repo_url = environment
        .iter()
        .find(|(k, _)| k == "REPO_URL")
        .map(|(_, v)| v.as_str());
    assert_eq!(repo_url, Some(TRICKY_REPO_URL));
    // The shell reads it from the environment, double-quoted, so it is never re-parsed.
    assert!(source.contains(r#"org.opencontainers.image.source=$REPO_URL""#));
    assert!(
        !source.contains(TRICKY_REPO_URL),
        "the URL must appear escaped"
    );

    if let Some(output) = groovy_lint(source, "error") {
        assert!(
            output.status.success(),
            "{}",
            crate::common::describe(&output)
        );
    }
}
