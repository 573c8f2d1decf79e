//! The Terraform files: valid HCL, `terraform fmt` clean, modules wired to what they declare,
//! and IAM policies without wildcards.

use crate::common::{
    all_files, checker, describe, file, optional_checker, run, sample, text, write_tree,
};
use hcl::{Block, Body, Expression};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const TERRAFORM_HINT: &str = "a terraform binary (>= 1.5) on PATH or in /usr/local/bin";

/// Every generated `.tf` file, parsed, by path.
fn terraform_files() -> BTreeMap<String, Body> {
    let rendered = sample();
    let files: BTreeMap<_, _> = all_files(&rendered)
        .filter(|a| a.path.ends_with(".tf"))
        .map(|a| {
            let body =
                hcl::parse(text(a)).unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", a.path));
            (a.path.clone(), body)
        })
        .collect();
    assert_eq!(
        files.len(),
        23,
        "2 files of the service's stack, 3 of the environment's platform stack, 6 x 3 module files"
    );
    files
}

fn blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier() == ident)
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// An expression's HCL text on one line, for comparisons (no string compared here has spaces).
fn compact(expr: &Expression) -> String {
    expr.to_string().split_whitespace().collect()
}

fn object_field<'a>(expr: &'a Expression, key: &str) -> Option<&'a Expression> {
    let Expression::Object(object) = expr else {
        panic!("expected an object, found {expr}");
    };
    object
        .iter()
        .find(|(k, _)| k.to_string() == key)
        .map(|(_, v)| v)
}

fn string_list(expr: &Expression) -> Vec<&Expression> {
    match expr {
        Expression::Array(items) => items.iter().collect(),
        other => panic!("expected a list, found {other}"),
    }
}

/// Files grouped by directory: one Terraform module per directory.
fn modules(files: &BTreeMap<String, Body>) -> BTreeMap<&str, Vec<&Body>> {
    let mut dirs: BTreeMap<&str, Vec<&Body>> = BTreeMap::new();
    for (path, body) in files {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        dirs.entry(dir).or_default().push(body);
    }
    dirs
}

#[test]
fn every_tf_file_parses_as_hcl() {
    terraform_files();
}

#[test]
fn terraform_fmt_leaves_every_file_unchanged() {
    let Some(terraform) = optional_checker("terraform", TERRAFORM_HINT, &["/usr/local/bin"]) else {
        return;
    };
    let fmt_check = |dir: &std::path::Path| {
        run(Command::new(&terraform)
            .args(["fmt", "-check", "-diff", "-recursive", "-no-color"])
            .arg(dir)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1"))
    };

    // The checker must be able to fail: a misaligned file is reported.
    let control = tempfile::tempdir().unwrap();
    std::fs::write(
        control.path().join("main.tf"),
        "locals {\n  a = 1\n  bbb = 2\n}\n",
    )
    .unwrap();
    assert!(
        !fmt_check(control.path()).status.success(),
        "terraform fmt -check accepted a misformatted file"
    );

    let dir = tempfile::tempdir().unwrap();
    write_tree(&sample(), dir.path());
    let output = fmt_check(&dir.path().join("terraform"));
    assert!(
        output.status.success(),
        "terraform fmt would change generated files:\n{}",
        describe(&output)
    );
}

#[test]
fn no_wildcard_appears_in_any_iam_policy() {
    let files = terraform_files();
    for path in files.keys() {
        // No policy may be written as a JSON string where the checks below cannot see it.
        let source = file(&sample(), path).to_string();
        assert!(!source.contains("\"*\""), "{path} contains a bare \"*\"");
        assert!(
            !source.contains("\"Action\"") && !source.contains("Action ="),
            "{path} writes a policy by hand instead of with aws_iam_policy_document"
        );
        assert!(
            !source.contains("aws_iam_role_policy_attachment"),
            "{path} attaches a managed policy"
        );
    }

    let mut statements = 0;
    for (path, body) in &files {
        for data in blocks(body, "data") {
            if labels(data)[0] != "aws_iam_policy_document" {
                continue;
            }
            for statement in blocks(data.body(), "statement") {
                statements += 1;
                let where_ = format!("{path}: {:?}", labels(data));
                for forbidden in ["not_actions", "not_resources", "not_principals"] {
                    assert!(
                        attr(statement.body(), forbidden).is_none(),
                        "{where_} uses {forbidden}"
                    );
                }
                assert_eq!(
                    attr(statement.body(), "effect"),
                    Some(&Expression::from("Allow")),
                    "{where_}: statements must say effect = \"Allow\" explicitly"
                );
                let actions = attr(statement.body(), "actions")
                    .unwrap_or_else(|| panic!("{where_} has no explicit actions"));
                for action in string_list(actions) {
                    let Expression::String(action) = action else {
                        panic!("{where_}: action {action} is not a literal");
                    };
                    assert!(
                        !action.contains('*') && !action.contains('?'),
                        "{where_}: wildcard action {action}"
                    );
                    assert!(action.contains(':'), "{where_}: malformed action {action}");
                }
                if let Some(resources) = attr(statement.body(), "resources") {
                    for resource in string_list(resources) {
                        check_resource(&where_, resource);
                    }
                } else {
                    // Only a trust policy may leave resources out: it has principals.
                    assert!(
                        blocks(statement.body(), "principals").next().is_some(),
                        "{where_}: a permission statement without resources means all resources"
                    );
                }
            }
        }
    }
    assert_eq!(
        statements, 4,
        "the trust statement and the three permission statements"
    );
}

/// A resource is one named ARN: a variable holding exactly one ARN (the iam module's variables
/// validate that), never a pattern.
fn check_resource(where_: &str, resource: &Expression) {
    let rendered = resource.to_string();
    let allowed = [
        "var.ecr_repository_arn",
        "var.log_group_arn",
        "var.log_stream_arn",
    ];
    assert!(
        allowed.contains(&rendered.as_str()),
        "{where_}: resource {rendered} is not one of the service's own ARNs"
    );
}

#[test]
fn the_role_trusts_only_the_service_account_through_pod_identity() {
    let files = terraform_files();
    let iam = &files["terraform/modules/iam/main.tf"];
    let trust = blocks(iam, "data")
        .find(|b| labels(b) == ["aws_iam_policy_document", "assume_role"])
        .expect("trust policy document");
    let statement = blocks(trust.body(), "statement").next().unwrap();
    let principals = blocks(statement.body(), "principals").next().unwrap();
    assert_eq!(
        attr(principals.body(), "type"),
        Some(&Expression::from("Service"))
    );
    assert_eq!(
        attr(principals.body(), "identifiers").map(compact),
        Some(r#"["pods.eks.amazonaws.com"]"#.to_string())
    );
    let conditions: BTreeMap<String, String> = blocks(statement.body(), "condition")
        .map(|c| {
            assert_eq!(
                attr(c.body(), "test"),
                Some(&Expression::from("StringEquals"))
            );
            (
                compact(attr(c.body(), "variable").unwrap()),
                compact(attr(c.body(), "values").unwrap()),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        BTreeMap::from([
            (
                r#""aws:RequestTag/eks-cluster-name""#.to_string(),
                "[var.eks_cluster_name]".to_string()
            ),
            (
                r#""aws:RequestTag/kubernetes-namespace""#.to_string(),
                "[var.kubernetes_namespace]".to_string()
            ),
            (
                r#""aws:RequestTag/kubernetes-service-account""#.to_string(),
                "[var.kubernetes_service_account]".to_string()
            ),
        ])
    );
}

#[test]
fn the_environment_pins_the_aws_provider_and_wires_its_own_names() {
    let files = terraform_files();
    let main = &files["terraform/envs/dev/payments/main.tf"];
    let terraform = blocks(main, "terraform").next().unwrap();
    assert!(attr(terraform.body(), "required_version").is_some());
    let providers = blocks(terraform.body(), "required_providers")
        .next()
        .unwrap();
    let aws = attr(providers.body(), "aws").unwrap();
    assert_eq!(
        object_field(aws, "version"),
        Some(&Expression::from("~> 5.0"))
    );
    assert_eq!(
        object_field(aws, "source"),
        Some(&Expression::from("hashicorp/aws"))
    );

    let locals = blocks(main, "locals").next().unwrap();
    for (key, value) in [
        ("service_name", "payments"),
        ("team", "core-platform"),
        ("environment", "dev"),
        ("repository", "https://github.com/org/payments"),
    ] {
        assert_eq!(
            attr(locals.body(), key),
            Some(&Expression::from(value)),
            "{key}"
        );
    }
    let sources = |body: &Body| -> BTreeSet<String> {
        blocks(body, "module")
            .map(|m| attr(m.body(), "source").unwrap().to_string())
            .collect()
    };
    // The service's stack creates only what is the service's own ...
    assert_eq!(
        sources(main),
        BTreeSet::from([
            r#""../../../modules/ecr""#.to_string(),
            r#""../../../modules/iam""#.to_string(),
            r#""../../../modules/service""#.to_string(),
        ])
    );
    for module in blocks(main, "module") {
        for key in ["service_name", "team", "environment"] {
            assert_eq!(
                attr(module.body(), key).map(ToString::to_string),
                Some(format!("local.{key}")),
                "module {:?} must get the service's {key}",
                labels(module)
            );
        }
    }
    // ... and the environment's platform stack what all its services share, once.
    let platform = &files["terraform/envs/dev/_platform/main.tf"];
    assert_eq!(
        sources(platform),
        BTreeSet::from([
            r#""../../../modules/alb""#.to_string(),
            r#""../../../modules/ecs-cluster""#.to_string(),
            r#""../../../modules/network""#.to_string(),
        ])
    );
    for module in blocks(platform, "module") {
        assert_eq!(
            attr(module.body(), "environment").map(ToString::to_string),
            Some("local.environment".to_string())
        );
        for key in ["service_name", "team"] {
            assert!(attr(module.body(), key).is_none(), "{key}");
        }
    }
    let platform_locals = blocks(platform, "locals").next().unwrap();
    assert_eq!(
        attr(platform_locals.body(), "environment"),
        Some(&Expression::from("dev"))
    );

    // Each stack has its own state; the service's reads the platform's by that key.
    let backend_key = |body: &Body| {
        let terraform = blocks(body, "terraform").next().unwrap();
        let backend = blocks(terraform.body(), "backend").next().unwrap();
        assert_eq!(labels(backend), ["s3"]);
        attr(backend.body(), "key").unwrap().clone()
    };
    assert_eq!(
        backend_key(main),
        Expression::from("envs/dev/payments/terraform.tfstate")
    );
    assert_eq!(
        backend_key(platform),
        Expression::from("envs/dev/_platform/terraform.tfstate")
    );
    let remote = blocks(main, "data")
        .find(|d| labels(d) == ["terraform_remote_state", "platform"])
        .expect("the service reads the platform stack's state");
    assert_eq!(
        attr(remote.body(), "backend"),
        Some(&Expression::from("s3"))
    );
    let config = attr(remote.body(), "config").unwrap();
    assert_eq!(object_field(config, "key"), Some(&backend_key(platform)));
    assert_eq!(
        object_field(config, "bucket").map(ToString::to_string),
        Some("var.state_bucket".to_string())
    );
    let terraform = blocks(platform, "terraform").next().unwrap();
    let providers = blocks(terraform.body(), "required_providers")
        .next()
        .unwrap();
    assert_eq!(
        object_field(attr(providers.body(), "aws").unwrap(), "version"),
        Some(&Expression::from("~> 5.0"))
    );
}

/// Declarations of one Terraform module (one directory).
#[derive(Default)]
struct Declared {
    /// Variable name -> whether it has a default.
    variables: BTreeMap<String, bool>,
    outputs: BTreeSet<String>,
    locals: BTreeSet<String>,
    /// `type.name` of resources, `data.type.name` of data sources.
    objects: BTreeSet<String>,
    /// Module call name -> source directory, resolved against the calling directory.
    modules: BTreeMap<String, String>,
    /// `terraform_remote_state` name -> the directory whose state its `key` names.
    remote_states: BTreeMap<String, String>,
    /// Locals that stand for a remote state's outputs (`local.x = data.terraform_remote_state.n.outputs`).
    remote_outputs_locals: BTreeMap<String, String>,
}

fn declarations(dir: &str, bodies: &[&Body]) -> Declared {
    let mut declared = Declared::default();
    for body in bodies {
        for block in body.blocks() {
            let l = labels(block);
            match block.identifier() {
                "variable" => {
                    let has_default = attr(block.body(), "default").is_some();
                    declared.variables.insert(l[0].to_string(), has_default);
                }
                "output" => {
                    declared.outputs.insert(l[0].to_string());
                }
                "locals" => {
                    for attribute in block.body().attributes() {
                        declared.locals.insert(attribute.key().to_string());
                        let value = attribute.expr().to_string();
                        if let Some(name) = value
                            .strip_prefix("data.terraform_remote_state.")
                            .and_then(|rest| rest.strip_suffix(".outputs"))
                        {
                            declared
                                .remote_outputs_locals
                                .insert(attribute.key().to_string(), name.to_string());
                        }
                    }
                }
                "resource" => {
                    declared.objects.insert(format!("{}.{}", l[0], l[1]));
                }
                "data" => {
                    declared.objects.insert(format!("data.{}.{}", l[0], l[1]));
                    if l[0] == "terraform_remote_state" {
                        // The state key names the stack: envs/<env>/<stack>/terraform.tfstate.
                        let config = attr(block.body(), "config").expect("a config");
                        let Some(Expression::String(key)) = object_field(config, "key") else {
                            panic!("remote state {l:?} in {dir} has no literal key");
                        };
                        let stack = key
                            .strip_suffix("/terraform.tfstate")
                            .unwrap_or_else(|| panic!("{dir}: unexpected state key {key}"));
                        declared
                            .remote_states
                            .insert(l[1].to_string(), format!("terraform/{stack}"));
                    }
                }
                "module" => {
                    let Some(Expression::String(source)) = attr(block.body(), "source") else {
                        panic!("module {l:?} in {dir} has no literal source");
                    };
                    declared
                        .modules
                        .insert(l[0].to_string(), resolve(dir, source));
                }
                _ => {}
            }
        }
    }
    declared
}

fn resolve(dir: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').collect();
    for part in relative.split('/') {
        match part {
            ".." => {
                parts.pop().expect("module source escapes the repository");
            }
            "." => {}
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Every attribute expression in a body, recursively, rendered back to HCL text (so that
/// comments are not searched).
fn expressions(body: &Body, out: &mut Vec<String>) {
    for attribute in body.attributes() {
        out.push(attribute.expr().to_string());
    }
    for block in body.blocks() {
        expressions(block.body(), out);
    }
}

/// References such as `var.x`, `local.y`, `module.m.out`, `data.t.n.attr` and `t.n.attr` in an
/// expression's text, split on dots.
fn references(expression: &str) -> Vec<Vec<&str>> {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|run| run.contains('.') && !run.starts_with('.'))
        .map(|run| run.split('.').collect::<Vec<_>>())
        .filter(|parts| parts.len() >= 2 && parts.iter().all(|p| !p.is_empty()))
        .filter(|parts| {
            parts[0]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
        })
        .collect()
}

#[test]
fn every_reference_and_module_input_resolves() {
    let files = terraform_files();
    let dirs = modules(&files);
    let declared: BTreeMap<&str, Declared> = dirs
        .iter()
        .map(|(dir, bodies)| (*dir, declarations(dir, bodies)))
        .collect();

    let mut checked = 0;
    let mut remote_outputs_checked = 0;
    for (dir, bodies) in &dirs {
        let here = &declared[dir];
        let mut exprs = Vec::new();
        for body in bodies {
            expressions(body, &mut exprs);
        }
        // Every variable a module declares is used in it (its own validation does not count).
        let mut uses = Vec::new();
        for body in bodies {
            for attribute in body.attributes() {
                uses.push(attribute.expr().to_string());
            }
            for block in body.blocks().filter(|b| b.identifier() != "variable") {
                expressions(block.body(), &mut uses);
            }
        }
        for variable in here.variables.keys() {
            let used = uses
                .iter()
                .flat_map(|e| references(e))
                .any(|parts| parts[0] == "var" && parts[1] == variable);
            assert!(
                used,
                "{dir}: variable {variable} is declared but never used"
            );
        }
        for expr in &exprs {
            for parts in references(expr) {
                // A remote state's outputs are the outputs its stack declares.
                let remote_output = match parts[..] {
                    ["data", "terraform_remote_state", name, "outputs", output, ..] => {
                        Some((name, output))
                    }
                    ["local", alias, output, ..] => here
                        .remote_outputs_locals
                        .get(alias)
                        .map(|name| (name.as_str(), output)),
                    _ => None,
                };
                if let Some((name, output)) = remote_output {
                    let stack = here
                        .remote_states
                        .get(name)
                        .unwrap_or_else(|| panic!("{dir}: no remote state {name}"));
                    let target = declared.get(stack.as_str()).unwrap_or_else(|| {
                        panic!("{dir}: remote state {name} names no stack: {stack}")
                    });
                    assert!(
                        target.outputs.contains(output),
                        "{dir}: {stack} has no output {output} ({expr})"
                    );
                    remote_outputs_checked += 1;
                }
                let ok = match parts[0] {
                    "var" => here.variables.contains_key(parts[1]),
                    "local" => here.locals.contains(parts[1]),
                    "module" => here.modules.get(parts[1]).is_some_and(|source| {
                        parts.len() >= 3 && declared[source.as_str()].outputs.contains(parts[2])
                    }),
                    "data" => {
                        parts.len() >= 3
                            && here
                                .objects
                                .contains(&format!("data.{}.{}", parts[1], parts[2]))
                    }
                    kind if kind.starts_with("aws_") => {
                        here.objects.contains(&format!("{}.{}", parts[0], parts[1]))
                    }
                    // Literal text inside strings, such as "pods.eks.amazonaws.com".
                    _ => continue,
                };
                assert!(
                    ok,
                    "{dir}: unresolved reference {} in {expr}",
                    parts.join(".")
                );
                checked += 1;
            }
        }

        // Module calls pass only declared inputs, and every required one.
        for body in bodies {
            for call in blocks(body, "module") {
                let name = labels(call)[0];
                let target = &declared[here.modules[name].as_str()];
                let passed: BTreeSet<&str> = call
                    .body()
                    .attributes()
                    .map(|a| a.key())
                    .filter(|k| *k != "source")
                    .collect();
                for input in &passed {
                    assert!(
                        target.variables.contains_key(*input),
                        "{dir}: module {name} has no variable {input}"
                    );
                }
                for (variable, has_default) in &target.variables {
                    assert!(
                        *has_default || passed.contains(variable.as_str()),
                        "{dir}: module {name} needs {variable}"
                    );
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} references were checked");
    assert!(
        remote_outputs_checked >= 8,
        "only {remote_outputs_checked} outputs of the platform stack were checked"
    );
}

#[test]
fn modules_set_the_platform_defaults() {
    let files = terraform_files();
    let resource = |path: &str, kind: &str| -> Body {
        blocks(&files[path], "resource")
            .find(|b| labels(b)[0] == kind)
            .unwrap_or_else(|| panic!("{path} has no {kind}"))
            .body()
            .clone()
    };
    let literal = |body: &Body, key: &str| attr(body, key).map(ToString::to_string);

    let ecr = resource("terraform/modules/ecr/main.tf", "aws_ecr_repository");
    assert_eq!(
        literal(&ecr, "image_tag_mutability").as_deref(),
        Some("\"IMMUTABLE\"")
    );
    let scanning = blocks(&ecr, "image_scanning_configuration").next().unwrap();
    assert_eq!(
        literal(scanning.body(), "scan_on_push").as_deref(),
        Some("true")
    );
    let encryption = blocks(&ecr, "encryption_configuration").next().unwrap();
    assert_eq!(
        literal(encryption.body(), "encryption_type").as_deref(),
        Some("\"KMS\"")
    );
    assert_eq!(
        literal(encryption.body(), "kms_key").as_deref(),
        Some("var.kms_key_arn")
    );
    resource("terraform/modules/ecr/main.tf", "aws_ecr_lifecycle_policy");

    let logs = resource(
        "terraform/modules/service/main.tf",
        "aws_cloudwatch_log_group",
    );
    assert_eq!(
        literal(&logs, "name").as_deref(),
        Some("\"/slipway/${var.environment}/${var.service_name}\"")
    );
    assert_eq!(
        literal(&logs, "kms_key_id").as_deref(),
        Some("var.kms_key_arn")
    );
    assert_eq!(
        literal(&logs, "retention_in_days").as_deref(),
        Some("var.log_retention_days")
    );

    // Everything that can carry tags carries the ownership tags: a service's modules name the
    // service and its team, the environment's shared ones say they belong to the environment.
    for (module, ownership) in [
        ("alb", &["Environment", "ManagedBy", "Scope"][..]),
        ("ecr", &["Service", "Team", "Environment", "ManagedBy"][..]),
        ("ecs-cluster", &["Environment", "ManagedBy", "Scope"][..]),
        ("iam", &["Service", "Team", "Environment", "ManagedBy"][..]),
        ("network", &["Environment", "ManagedBy", "Scope"][..]),
        (
            "service",
            &["Service", "Team", "Environment", "ManagedBy"][..],
        ),
    ] {
        let path = format!("terraform/modules/{module}/main.tf");
        let body = &files[&path];
        let tags = blocks(body, "locals")
            .find_map(|l| attr(l.body(), "tags"))
            .unwrap_or_else(|| panic!("{path} has no local.tags"))
            .to_string();
        for tag in ownership {
            assert!(tags.contains(tag), "{path}: local.tags lacks {tag}");
        }
        if ownership.contains(&"Scope") {
            let variables = &files[&format!("terraform/modules/{module}/variables.tf")];
            assert!(
                blocks(variables, "variable")
                    .all(|v| !["service_name", "team"].contains(&labels(v)[0])),
                "{module} is the environment's: it knows no service"
            );
        }
        for block in blocks(body, "resource") {
            let kind = labels(block)[0];
            // Resources that take no tags in the AWS provider.
            if UNTAGGABLE.contains(&kind) {
                continue;
            }
            let tags = literal(block.body(), "tags");
            assert!(
                tags.as_deref() == Some("local.tags")
                    || tags
                        .as_deref()
                        .is_some_and(|t| t.starts_with("merge(local.tags,")),
                "{path}: {kind} is not tagged with local.tags"
            );
        }
    }
}

const UNTAGGABLE: &[&str] = &[
    "aws_cloudwatch_log_stream",
    "aws_ecr_lifecycle_policy",
    "aws_ecs_cluster_capacity_providers",
    "aws_iam_role_policy",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
];

#[test]
fn reference_scanner_finds_references() {
    assert_eq!(
        references(r#""${var.a}:*" == module.m.out ? "pods.eks.amazonaws.com" : local.b"#),
        vec![
            vec!["var", "a"],
            vec!["module", "m", "out"],
            vec!["pods", "eks", "amazonaws", "com"],
            vec!["local", "b"],
        ]
    );
}

/// Every `*` in an IAM policy of a body: in `aws_iam_policy_document` data sources, in any
/// `policy`-like attribute of a resource (inline JSON included), and in resources that are
/// policies by nature (bucket, repository and key policies).
fn iam_wildcards(path: &str, body: &Body) -> Vec<String> {
    let mut found = Vec::new();
    let scan = |found: &mut Vec<String>, what: String, body: &Body| {
        let mut exprs = Vec::new();
        expressions(body, &mut exprs);
        found.extend(
            exprs
                .into_iter()
                .filter(|e| e.contains('*'))
                .map(|e| format!("{path}: {what}: {e}")),
        );
    };
    for block in body.blocks() {
        let l = labels(block);
        match block.identifier() {
            "data" if l[0] == "aws_iam_policy_document" => {
                scan(&mut found, format!("data {l:?}"), block.body())
            }
            "resource" if l[0].ends_with("_policy") && l[0] != "aws_ecr_lifecycle_policy" => {
                scan(&mut found, format!("resource {l:?}"), block.body())
            }
            "resource" => {
                for attribute in block.body().attributes() {
                    if attribute.key().contains("policy")
                        && attribute.expr().to_string().contains('*')
                    {
                        found.push(format!("{path}: resource {l:?}: {}", attribute.key()));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

#[test]
fn no_star_in_any_iam_policy_document() {
    // The check must be able to fail: the old log-stream pattern, an inline JSON policy and a
    // bucket policy are all caught.
    let control = hcl::parse(
        r#"
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["logs:PutLogEvents"]
    resources = ["${var.log_group_arn}:*"]
  }
}
resource "aws_iam_role" "r" {
  assume_role_policy = jsonencode({ Statement = [{ Action = "sts:*" }] })
}
resource "aws_s3_bucket_policy" "b" {
  policy = jsonencode({ Statement = [{ Resource = "arn:aws:s3:::b/*" }] })
}
"#,
    )
    .unwrap();
    assert_eq!(iam_wildcards("control.tf", &control).len(), 3);

    let files = terraform_files();
    let mut policies = 0;
    for (path, body) in &files {
        let found = iam_wildcards(path, body);
        assert!(
            found.is_empty(),
            "wildcards in IAM policies:\n{}",
            found.join("\n")
        );
        policies += blocks(body, "data")
            .filter(|b| labels(b)[0] == "aws_iam_policy_document")
            .count();
    }
    assert_eq!(policies, 2, "the trust policy and the permission policy");

    // Not even in comments or validations of the iam module: no `*` at all.
    let rendered = sample();
    for a in all_files(&rendered).filter(|a| a.path.starts_with("terraform/modules/iam/")) {
        assert!(!text(a).contains('*'), "{} contains a '*'", a.path);
    }
}

fn resource_body<'a>(files: &'a BTreeMap<String, Body>, path: &str, kind: &str) -> &'a Body {
    blocks(&files[path], "resource")
        .find(|b| labels(b)[0] == kind)
        .unwrap_or_else(|| panic!("{path} has no {kind}"))
        .body()
}

fn literal_of(body: &Body, key: &str) -> Option<String> {
    attr(body, key).map(compact)
}

fn nested<'a>(body: &'a Body, path: &[&'a str]) -> &'a Body {
    path.iter().fold(body, |body, ident| {
        blocks(body, ident)
            .next()
            .unwrap_or_else(|| panic!("no {ident} block"))
            .body()
    })
}

#[test]
fn network_cluster_and_load_balancer_are_encrypted_and_logged() {
    let files = terraform_files();
    let network = "terraform/modules/network/main.tf";

    // Flow logs of all traffic, to an encrypted, versioned, private, logged bucket.
    let flow = resource_body(&files, network, "aws_flow_log");
    assert_eq!(
        literal_of(flow, "traffic_type").as_deref(),
        Some(r#""ALL""#)
    );
    assert_eq!(
        literal_of(flow, "log_destination_type").as_deref(),
        Some(r#""s3""#)
    );
    assert_eq!(
        literal_of(flow, "log_destination").as_deref(),
        Some("aws_s3_bucket.flow_logs.arn")
    );
    let sse = resource_body(
        &files,
        network,
        "aws_s3_bucket_server_side_encryption_configuration",
    );
    let default = nested(sse, &["rule", "apply_server_side_encryption_by_default"]);
    assert_eq!(
        literal_of(default, "sse_algorithm").as_deref(),
        Some(r#""aws:kms""#)
    );
    assert_eq!(
        literal_of(default, "kms_master_key_id").as_deref(),
        Some("var.kms_key_arn")
    );
    let public = resource_body(&files, network, "aws_s3_bucket_public_access_block");
    for key in [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ] {
        assert_eq!(literal_of(public, key).as_deref(), Some("true"), "{key}");
    }
    let versioning = resource_body(&files, network, "aws_s3_bucket_versioning");
    assert_eq!(
        literal_of(nested(versioning, &["versioning_configuration"]), "status").as_deref(),
        Some(r#""Enabled""#)
    );
    let logging = resource_body(&files, network, "aws_s3_bucket_logging");
    assert_eq!(
        literal_of(logging, "target_bucket").as_deref(),
        Some("var.access_logs_bucket")
    );
    // The default security group has no rules; subnets hand out no public addresses.
    let default_sg = resource_body(&files, network, "aws_default_security_group");
    assert!(blocks(default_sg, "ingress").next().is_none());
    assert!(blocks(default_sg, "egress").next().is_none());
    for subnet in blocks(&files[network], "resource").filter(|b| labels(b)[0] == "aws_subnet") {
        assert_eq!(
            literal_of(subnet.body(), "map_public_ip_on_launch").as_deref(),
            Some("false")
        );
    }
    // The shared load balancer's group reaches only unprivileged ports inside the VPC.
    let alb_sg = blocks(&files[network], "resource")
        .find(|b| labels(b) == ["aws_security_group", "alb"])
        .unwrap();
    let egress: Vec<_> = blocks(alb_sg.body(), "egress").collect();
    assert_eq!(egress.len(), 1);
    assert_eq!(
        literal_of(egress[0].body(), "cidr_blocks").as_deref(),
        Some("[var.cidr_block]")
    );
    assert_eq!(
        literal_of(egress[0].body(), "from_port").as_deref(),
        Some("1024")
    );
    // A service's tasks accept traffic only from that group, on the service's port.
    let service_path = "terraform/modules/service/main.tf";
    let service_sg = resource_body(&files, service_path, "aws_security_group");
    let ingress: Vec<_> = blocks(service_sg, "ingress").collect();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        literal_of(ingress[0].body(), "security_groups").as_deref(),
        Some("[var.alb_security_group_id]")
    );
    assert_eq!(
        literal_of(ingress[0].body(), "from_port").as_deref(),
        Some("var.container_port")
    );
    assert!(attr(ingress[0].body(), "cidr_blocks").is_none());

    // Container Insights on, ECS Exec encrypted and logged.
    let cluster_path = "terraform/modules/ecs-cluster/main.tf";
    let cluster = resource_body(&files, cluster_path, "aws_ecs_cluster");
    let setting = nested(cluster, &["setting"]);
    assert_eq!(
        literal_of(setting, "name").as_deref(),
        Some(r#""containerInsights""#)
    );
    assert_eq!(
        literal_of(setting, "value").as_deref(),
        Some(r#""enabled""#)
    );
    let exec = nested(cluster, &["configuration", "execute_command_configuration"]);
    assert_eq!(
        literal_of(exec, "kms_key_id").as_deref(),
        Some("var.kms_key_arn")
    );
    assert_eq!(
        literal_of(
            nested(exec, &["log_configuration"]),
            "cloud_watch_encryption_enabled"
        )
        .as_deref(),
        Some("true")
    );
    let exec_logs = resource_body(&files, cluster_path, "aws_cloudwatch_log_group");
    assert_eq!(
        literal_of(exec_logs, "kms_key_id").as_deref(),
        Some("var.kms_key_arn")
    );

    // Load balancer: access logs on, invalid headers dropped, an HTTP listener always and an
    // HTTPS one with a certificate, both answering 404 for host names no service claimed.
    let alb_path = "terraform/modules/alb/main.tf";
    let alb = resource_body(&files, alb_path, "aws_lb");
    assert_eq!(
        literal_of(alb, "drop_invalid_header_fields").as_deref(),
        Some("true")
    );
    let logs = nested(alb, &["access_logs"]);
    assert_eq!(literal_of(logs, "enabled").as_deref(), Some("true"));
    assert_eq!(
        literal_of(logs, "bucket").as_deref(),
        Some("var.access_logs_bucket")
    );
    let listeners: BTreeMap<String, &Body> = blocks(&files[alb_path], "resource")
        .filter(|b| labels(b)[0] == "aws_lb_listener")
        .map(|b| (labels(b)[1].to_string(), b.body()))
        .collect();
    assert_eq!(
        listeners.keys().map(String::as_str).collect::<Vec<_>>(),
        ["http", "https"]
    );
    assert_eq!(
        literal_of(listeners["https"], "protocol").as_deref(),
        Some(r#""HTTPS""#)
    );
    assert_eq!(
        literal_of(listeners["https"], "count").as_deref(),
        Some("local.https?1:0")
    );
    assert!(literal_of(listeners["https"], "ssl_policy").is_some());
    let https_default = nested(listeners["https"], &["default_action"]);
    assert_eq!(
        literal_of(https_default, "type").as_deref(),
        Some(r#""fixed-response""#)
    );
    assert_eq!(
        literal_of(nested(https_default, &["fixed_response"]), "status_code").as_deref(),
        Some(r#""404""#)
    );
    assert!(
        blocks(&files[alb_path], "resource").all(|b| labels(b)[0] != "aws_lb_target_group"),
        "target groups are the services'"
    );

    // Each service: a health-checked target group of its tasks and a host rule on the shared
    // listener, with the template's own health path and port.
    let target_group = resource_body(&files, service_path, "aws_lb_target_group");
    let health = nested(target_group, &["health_check"]);
    assert_eq!(literal_of(health, "enabled").as_deref(), Some("true"));
    assert_eq!(
        literal_of(health, "path").as_deref(),
        Some("var.health_check_path")
    );
    assert_eq!(
        literal_of(target_group, "target_type").as_deref(),
        Some(r#""ip""#)
    );
    let rule = resource_body(&files, service_path, "aws_lb_listener_rule");
    assert_eq!(
        literal_of(rule, "listener_arn").as_deref(),
        Some("var.listener_arn")
    );
    assert_eq!(
        literal_of(nested(rule, &["condition", "host_header"]), "values").as_deref(),
        Some("[var.host_name]")
    );
    let forward = nested(rule, &["action"]);
    assert_eq!(literal_of(forward, "type").as_deref(), Some(r#""forward""#));
    assert_eq!(
        literal_of(forward, "target_group_arn").as_deref(),
        Some("aws_lb_target_group.this.arn")
    );
    let main = &files["terraform/envs/dev/payments/main.tf"];
    let service_call = blocks(main, "module")
        .find(|m| labels(m) == ["service"])
        .unwrap();
    assert_eq!(
        literal_of(service_call.body(), "health_check_path").as_deref(),
        Some(r#""/healthz""#)
    );
    assert_eq!(
        literal_of(service_call.body(), "container_port").as_deref(),
        Some("8080")
    );
    assert_eq!(
        literal_of(service_call.body(), "listener_arn").as_deref(),
        Some("local.platform.listener_arn")
    );
    let locals = blocks(main, "locals").next().unwrap();
    assert_eq!(
        literal_of(locals.body(), "host_name").as_deref(),
        Some(r#""${local.service_name}.${local.platform.domain}""#)
    );
}

#[test]
fn the_environment_can_point_at_an_emulator() {
    let files = terraform_files();
    for (stack, variables) in [
        ("payments", "terraform/envs/dev/payments/main.tf"),
        ("_platform", "terraform/envs/dev/_platform/variables.tf"),
    ] {
        let main = &files[&format!("terraform/envs/dev/{stack}/main.tf")];
        endpoints_are_wired(main, &files[variables]);
    }
    // The service's stack reads the platform's state through the same S3 endpoint.
    let main = &files["terraform/envs/dev/payments/main.tf"];
    let remote = blocks(main, "data")
        .find(|d| labels(d) == ["terraform_remote_state", "platform"])
        .unwrap();
    let config = attr(remote.body(), "config").unwrap();
    let endpoints = object_field(config, "endpoints").unwrap();
    for service in ["s3", "sts"] {
        assert_eq!(
            object_field(endpoints, service).map(compact),
            Some(format!(r#"lookup(var.endpoints,"{service}",null)"#))
        );
    }
    for key in [
        "use_path_style",
        "skip_credentials_validation",
        "skip_requesting_account_id",
    ] {
        assert_eq!(
            object_field(config, key).map(compact),
            Some("length(var.endpoints)>0".to_string()),
            "{key}"
        );
    }
}

/// The `endpoints` variable (declared in `variables`) reaches every endpoint of the provider of
/// `main`.
fn endpoints_are_wired(main: &Body, variables: &Body) {
    let variable = blocks(variables, "variable")
        .find(|v| labels(v) == ["endpoints"])
        .expect("an endpoints variable");
    assert_eq!(
        literal_of(variable.body(), "type").as_deref(),
        Some("map(string)")
    );
    assert_eq!(
        literal_of(variable.body(), "default").as_deref(),
        Some("{}")
    );
    let provider = blocks(main, "provider").next().unwrap();
    let endpoints = nested(provider.body(), &["endpoints"]);
    let mut names = Vec::new();
    for attribute in endpoints.attributes() {
        assert_eq!(
            compact(attribute.expr()),
            format!(r#"lookup(var.endpoints,"{}",null)"#, attribute.key()),
            "an endpoint that is not set must fall back to AWS's"
        );
        names.push(attribute.key().to_string());
    }
    // Every service the modules use can be redirected, and the validation names the same ones.
    for service in [
        "ec2", "ecr", "ecs", "eks", "elbv2", "iam", "kms", "logs", "s3", "sts",
    ] {
        assert!(
            names.iter().any(|n| n == service),
            "no endpoint for {service}"
        );
    }
    let validation = compact(attr(nested(variable.body(), &["validation"]), "condition").unwrap());
    for name in &names {
        assert!(validation.contains(&format!("\"{name}\"")), "{validation}");
    }
}

/// Where `.ci/run` installs checkov: a virtual environment of its own, because from PyPI into the
/// system Python it replaces the `botocore` the host's awscli needs.
const CHECKOV_VENV_BIN: &str = "/var/tmp/slipway-checkov-venv/bin";

/// `SLIPWAY_CHECKOV` (the path of a checkov executable), else checkov on `PATH` or in `.ci/run`'s
/// virtual environment; required when `CI` is set.
fn checkov() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("SLIPWAY_CHECKOV") {
        let path = std::path::PathBuf::from(path);
        assert!(
            path.is_file(),
            "SLIPWAY_CHECKOV={} is not a file",
            path.display()
        );
        return Some(path);
    }
    checker(
        "checkov",
        "python3 -m venv /var/tmp/slipway-checkov-venv && /var/tmp/slipway-checkov-venv/bin/pip install checkov==3.3.30 (what .ci/run does), or set SLIPWAY_CHECKOV",
        &[CHECKOV_VENV_BIN],
    )
}

#[test]
fn checkov_finds_no_failed_check() {
    let Some(checkov) = checkov() else {
        return;
    };
    let scan = |dir: &std::path::Path| {
        run(Command::new(&checkov)
            .args([
                "--framework",
                "terraform",
                "--quiet",
                "--compact",
                "--skip-download",
            ])
            .args(["-o", "cli", "-d"])
            .arg(dir)
            .env("BC_SKIP_MAPPING", "TRUE")
            .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false"))
    };

    // The checker must be able to fail: an unencrypted, public-readable bucket is reported.
    let control = tempfile::tempdir().unwrap();
    std::fs::write(
        control.path().join("main.tf"),
        "resource \"aws_s3_bucket\" \"b\" {\n  bucket = \"b\"\n}\n",
    )
    .unwrap();
    let output = scan(control.path());
    assert!(
        !output.status.success(),
        "checkov accepted a bare bucket:\n{}",
        describe(&output)
    );

    let dir = tempfile::tempdir().unwrap();
    write_tree(&sample(), dir.path());
    let output = scan(&dir.path().join("terraform"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("Failed checks: 0,"),
        "checkov reports failed checks:\n{}",
        describe(&output)
    );
    for summary in stdout.lines().filter(|l| l.contains("Passed checks:")) {
        eprintln!("checkov: {}", summary.trim());
    }
    // Every skip carries its reason in the module, next to the resource.
    let rendered = sample();
    for a in all_files(&rendered) {
        for line in text(a).lines().filter(|l| l.contains("checkov:skip=")) {
            let reason = line.split_once("checkov:skip=").unwrap().1;
            let (id, why) = reason.split_once(':').unwrap_or((reason, ""));
            assert!(id.starts_with("CKV"), "{}: {line}", a.path);
            assert!(
                why.trim().len() > 20,
                "{}: a skip without a reason: {line}",
                a.path
            );
        }
    }
}
