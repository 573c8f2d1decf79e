//! Golden paths: the files Slipway generates when a service is registered.
//!
//! A registration renders, from templates embedded in the binary:
//! - the service's Terraform environment instantiation (`terraform/envs/<env>/<svc>/`), which
//!   wires the platform-owned modules;
//! - the platform-owned Terraform modules themselves
//!   (`terraform/modules/{network,ecs-cluster,alb,ecr,iam,service}/`),
//!   shared by every service;
//! - the environment's platform stack (`terraform/envs/<env>/_platform/`): one network, ECS
//!   cluster and load balancer per environment, which every service's instantiation reads
//!   from its state;
//! - the service's Kubernetes manifest and Jenkins pipeline.
//!
//! Rendering is pure and deterministic: the same [`ServiceSpec`] gives byte-identical files on
//! every machine (no clock, no randomness, no hash-map iteration, LF line endings). Any change of
//! the output must come with a bump of the template's `version` (its `template.toml`) or of
//! [`MODULES_VERSION`].

pub mod actions;
mod escape;
pub mod scaffold;
mod set;

pub use scaffold::{create_repository, ScaffoldError, ScaffoldFile};
pub use set::{TemplateInfo, TemplateSet};

use sha2::{Digest, Sha256};
use slipway_core::model::{Artifact, ArtifactScope};

/// Version of the shared Terraform modules and of the environments' platform stacks; bump it
/// whenever any byte of them changes. Each service template has its own version in its
/// `template.toml`.
pub const MODULES_VERSION: &str = "4";

/// Directory name of an environment's platform stack, beside its services' directories. A
/// service name is a DNS-1123 label, which cannot contain `_`, so no service can take it.
pub const PLATFORM_STACK: &str = "_platform";

/// The template a service gets when it names none.
pub const DEFAULT_TEMPLATE: &str = "default";

const GENERATOR_PREFIX: &str = "slipway-golden-paths";

/// Region the generated Terraform and pipeline default to; environments override it.
const DEFAULT_AWS_REGION: &str = "us-east-1";

const KUBERNETES_DIR: &str = "app/templates/kubernetes/generated";
const JENKINS_DIR: &str = "app/templates/jenkins/generated";

/// What a registration is rendered from. Names are DNS-1123 labels and the repository URL an
/// `https://`, `ssh://` or `git@` URL (or a local path the operator allowed), as the API
/// validated them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec<'a> {
    pub name: &'a str,
    pub team: &'a str,
    pub repo_url: &'a str,
    /// Environment the Terraform instantiation is for (`dev` at registration).
    pub environment: &'a str,
}

/// The files of one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The service's own files, sorted by path then scope, `service` = `Some(name)`: scope
    /// `Platform` for the platform repository, `Service` for the service's own repository.
    pub artifacts: Vec<Artifact>,
    /// The shared Terraform modules and the environment's platform stack, sorted by path:
    /// scope `Platform`, `service` = `None`. Registering the first service of an environment
    /// brings its platform stack into the platform repository; later ones rewrite the same bytes.
    pub platform_files: Vec<Artifact>,
}

#[derive(thiserror::Error, Debug)]
pub enum RenderError {
    #[error("{field} {value:?} is not a DNS-1123 label: {reason}")]
    InvalidName {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("repository URL is not usable: {reason}")]
    InvalidRepoUrl { reason: &'static str },
    #[error("unknown template {name:?}; known templates: {}", known.join(", "))]
    UnknownTemplate { name: String, known: Vec<String> },
    #[error("template {template} failed to render: {source:#}")]
    Template {
        template: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("template {name:?} has no scaffold; templates with one: {}", known.join(", "))]
    NoScaffold { name: String, known: Vec<String> },
    #[error("{path}: {reason}")]
    Manifest { path: String, reason: String },
    #[error("cannot read the templates directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Paths returned in the seed-000 registration response: the service's Terraform
/// instantiation, then the directories of its Kubernetes manifest and of its Jenkins pipeline.
pub fn seed_artifact_dirs(name: &str, environment: &str) -> (String, String, String) {
    (
        format!("terraform/envs/{environment}/{name}"),
        KUBERNETES_DIR.to_string(),
        JENKINS_DIR.to_string(),
    )
}

/// Directory of an environment's platform stack in the platform repository.
pub fn platform_stack_dir(environment: &str) -> String {
    format!("terraform/envs/{environment}/{PLATFORM_STACK}")
}

fn platform_state_key(environment: &str) -> String {
    format!("envs/{environment}/{PLATFORM_STACK}/terraform.tfstate")
}

/// Renders every file of a service registration with the `default` template.
pub fn render_registration(spec: &ServiceSpec) -> Result<Rendered, RenderError> {
    render_service(spec, DEFAULT_TEMPLATE)
}

/// Renders every file of a service registration with the named template of the active set.
pub fn render_service(spec: &ServiceSpec, template: &str) -> Result<Rendered, RenderError> {
    active_templates()?.render(spec, template)
}

/// Sets are leaked when installed: a rendering may hold the previous one while it is replaced,
/// and there is one per process (a few in tests).
static ACTIVE: std::sync::RwLock<Option<&'static TemplateSet>> = std::sync::RwLock::new(None);

/// Makes `set` (the built-in templates with a platform team's overrides) the one every later
/// rendering in this process uses. Once per process, at start-up: `false` means a set was
/// installed already and this one was dropped.
pub fn install_templates(set: TemplateSet) -> bool {
    let mut active = ACTIVE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if active.is_some() {
        return false;
    }
    *active = Some(Box::leak(Box::new(set)));
    true
}

/// Makes `set` the active one even if a set was installed: new templates without a restart
/// (tests of `slipway templates upgrade` swap the set this way). Services keep their files until
/// they are upgraded.
pub fn replace_templates(set: TemplateSet) {
    *ACTIVE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::leak(Box::new(set)));
}

/// The installed template set, or the built-in one.
pub fn active_templates() -> Result<&'static TemplateSet, RenderError> {
    let active = *ACTIVE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match active {
        Some(set) => Ok(set),
        None => TemplateSet::builtin(),
    }
}

/// The generator recorded on every artifact a template produced.
pub fn generator(template: &str, version: u32) -> String {
    format!("{GENERATOR_PREFIX}/{template}@{version}")
}

fn modules_generator() -> String {
    format!("{GENERATOR_PREFIX}/modules@{MODULES_VERSION}")
}

fn artifact(
    service: Option<&str>,
    scope: ArtifactScope,
    path: String,
    content: String,
    generator: &str,
) -> Artifact {
    let content = content.into_bytes();
    Artifact {
        service: service.map(str::to_string),
        scope,
        path,
        sha256: sha256_hex(&content),
        content,
        generator: generator.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Names become paths, Kubernetes names and AWS resource names. The API validates them
/// already; checking again here keeps a bad caller from writing outside the generated tree.
fn validate_label(field: &'static str, value: &str) -> Result<(), RenderError> {
    let invalid = |reason| {
        Err(RenderError::InvalidName {
            field,
            value: value.to_string(),
            reason,
        })
    };
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => return invalid("it is empty"),
        _ if bytes.len() > 63 => return invalid("it is longer than 63 characters"),
        (Some(first), _) if !first.is_ascii_lowercase() => {
            return invalid("it must start with a lowercase letter")
        }
        (_, Some(last)) if !(last.is_ascii_lowercase() || last.is_ascii_digit()) => {
            return invalid("it must end with a lowercase letter or a digit")
        }
        _ => {}
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return invalid("it may only contain lowercase letters, digits and '-'");
    }
    Ok(())
}

fn validate_repo_url(url: &str) -> Result<(), RenderError> {
    let invalid = |reason| Err(RenderError::InvalidRepoUrl { reason });
    if url.is_empty() {
        return invalid("it is empty");
    }
    if url.len() > 2048 {
        return invalid("it is longer than 2048 bytes");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return invalid("it contains whitespace or control characters");
    }
    // Local repositories (an absolute path or file://) are accepted only when the operator allows
    // them; the server checks that before rendering.
    if !["https://", "ssh://", "git@", "file:///", "/"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return invalid("it must start with https://, ssh://, git@ or be a local path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec<'static> {
        ServiceSpec {
            name: "payments",
            team: "core-platform",
            repo_url: "https://github.com/org/payments",
            environment: "dev",
        }
    }

    #[test]
    fn seed_dirs_match_the_seed_response() {
        assert_eq!(
            seed_artifact_dirs("payments", "dev"),
            (
                "terraform/envs/dev/payments".to_string(),
                "app/templates/kubernetes/generated".to_string(),
                "app/templates/jenkins/generated".to_string(),
            )
        );
    }

    #[test]
    fn renders_the_seed_paths() {
        let rendered = render_registration(&spec()).unwrap();
        let paths: Vec<_> = rendered
            .artifacts
            .iter()
            .filter(|a| a.scope == ArtifactScope::Platform)
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "app/templates/jenkins/generated/payments.Jenkinsfile",
                "app/templates/kubernetes/generated/payments-deployment.yaml",
                "terraform/envs/dev/payments/main.tf",
                "terraform/envs/dev/payments/outputs.tf",
            ]
        );
        let modules: Vec<_> = rendered
            .platform_files
            .iter()
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(
            modules,
            [
                "terraform/envs/dev/_platform/main.tf",
                "terraform/envs/dev/_platform/outputs.tf",
                "terraform/envs/dev/_platform/variables.tf",
                "terraform/modules/alb/main.tf",
                "terraform/modules/alb/outputs.tf",
                "terraform/modules/alb/variables.tf",
                "terraform/modules/ecr/main.tf",
                "terraform/modules/ecr/outputs.tf",
                "terraform/modules/ecr/variables.tf",
                "terraform/modules/ecs-cluster/main.tf",
                "terraform/modules/ecs-cluster/outputs.tf",
                "terraform/modules/ecs-cluster/variables.tf",
                "terraform/modules/iam/main.tf",
                "terraform/modules/iam/outputs.tf",
                "terraform/modules/iam/variables.tf",
                "terraform/modules/network/main.tf",
                "terraform/modules/network/outputs.tf",
                "terraform/modules/network/variables.tf",
                "terraform/modules/service/main.tf",
                "terraform/modules/service/outputs.tf",
                "terraform/modules/service/variables.tf",
            ]
        );
    }

    #[test]
    fn artifacts_carry_owner_scope_generator_and_hash() {
        let rendered = render_registration(&spec()).unwrap();
        for a in &rendered.artifacts {
            assert_eq!(a.service.as_deref(), Some("payments"), "{}", a.path);
            assert_eq!(a.generator, "slipway-golden-paths/default@8");
            assert_eq!(a.sha256, sha256_hex(&a.content));
        }
        for a in &rendered.platform_files {
            assert_eq!(a.service, None, "{}", a.path);
            assert_eq!(a.scope, ArtifactScope::Platform);
            assert_eq!(a.generator, "slipway-golden-paths/modules@4");
            assert_eq!(a.sha256, sha256_hex(&a.content));
        }
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn files_are_lf_and_end_with_one_newline() {
        let rendered = render_registration(&spec()).unwrap();
        for a in rendered.artifacts.iter().chain(&rendered.platform_files) {
            let text = std::str::from_utf8(&a.content).unwrap();
            assert!(!text.contains('\r'), "{} has a CR", a.path);
            assert!(text.ends_with('\n'), "{} lacks a final newline", a.path);
            assert!(!text.ends_with("\n\n"), "{} ends with a blank line", a.path);
            assert!(
                !text.lines().any(|l| l.ends_with(' ') || l.ends_with('\t')),
                "{} has trailing whitespace",
                a.path
            );
            assert!(!text.contains('\t'), "{} has a tab", a.path);
        }
    }

    #[test]
    fn module_files_do_not_depend_on_the_service() {
        let a = render_registration(&spec()).unwrap();
        let b = render_registration(&ServiceSpec {
            name: "ledger",
            team: "finance",
            repo_url: "git@github.com:org/ledger.git",
            environment: "dev",
        })
        .unwrap();
        assert_eq!(a.platform_files, b.platform_files);

        // Another environment: the same modules, its own platform stack.
        let prod = render_registration(&ServiceSpec {
            environment: "prod",
            ..spec()
        })
        .unwrap();
        let modules = |r: &Rendered| -> Vec<Artifact> {
            r.platform_files
                .iter()
                .filter(|a| a.path.starts_with("terraform/modules/"))
                .cloned()
                .collect()
        };
        assert_eq!(modules(&a), modules(&prod));
        let stack: Vec<_> = prod
            .platform_files
            .iter()
            .filter(|a| !a.path.starts_with("terraform/modules/"))
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(
            stack,
            [
                "terraform/envs/prod/_platform/main.tf",
                "terraform/envs/prod/_platform/outputs.tf",
                "terraform/envs/prod/_platform/variables.tf",
            ]
        );
    }

    #[test]
    fn no_service_can_take_the_platform_stack_directory() {
        let err = render_registration(&ServiceSpec {
            name: PLATFORM_STACK,
            ..spec()
        })
        .unwrap_err();
        assert!(matches!(err, RenderError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn rejects_names_that_are_not_labels() {
        for (name, reason) in [
            ("", "empty"),
            ("../etc", "start"),
            ("Payments", "start"),
            ("pay/ments", "only contain"),
            ("payments-", "end"),
            ("pay.ments", "only contain"),
        ] {
            let err = render_registration(&ServiceSpec { name, ..spec() }).unwrap_err();
            assert!(
                matches!(
                    &err,
                    RenderError::InvalidName {
                        field: "service name",
                        ..
                    }
                ),
                "{name:?}: {err}"
            );
            assert!(err.to_string().contains(reason), "{name:?}: {err}");
        }
        let long = "a".repeat(64);
        assert!(render_registration(&ServiceSpec {
            name: &long,
            ..spec()
        })
        .is_err());
        assert!(render_registration(&ServiceSpec {
            name: &long[..63],
            ..spec()
        })
        .is_ok());
        assert!(render_registration(&ServiceSpec {
            environment: "dev/../..",
            ..spec()
        })
        .is_err());
        assert!(render_registration(&ServiceSpec {
            team: "Core",
            ..spec()
        })
        .is_err());
    }

    #[test]
    fn rejects_repo_urls_that_could_break_out() {
        for url in [
            "",
            "https://example.com/a\nb",
            "https://example.com/a b",
            "ftp://example.com/a",
            "relative/path",
        ] {
            let err = render_registration(&ServiceSpec {
                repo_url: url,
                ..spec()
            })
            .unwrap_err();
            assert!(
                matches!(err, RenderError::InvalidRepoUrl { .. }),
                "{url:?}: {err}"
            );
        }
    }

    #[test]
    fn errors_can_cross_threads_and_become_anyhow_errors() {
        fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<RenderError>();
    }

    #[test]
    fn the_builtin_templates() {
        let set = TemplateSet::builtin().unwrap();
        assert_eq!(
            set.names(),
            [
                "default",
                "go-api",
                "node-api",
                "python-api",
                "rust-api",
                "static-site"
            ]
        );
        for info in set.list() {
            assert_eq!(info.generator, generator(&info.name, info.version));
            let rendered = render_service(&spec(), &info.name).unwrap();
            for a in &rendered.artifacts {
                assert_eq!(a.generator, info.generator, "{}: {}", info.name, a.path);
            }
        }
        set.check().unwrap();
    }

    #[test]
    fn an_unknown_template_names_the_known_ones() {
        let err = render_service(&spec(), "cobol-api").unwrap_err();
        let RenderError::UnknownTemplate { name, known } = &err else {
            panic!("{err}");
        };
        assert_eq!(name, "cobol-api");
        assert!(known.contains(&"node-api".to_string()));
        assert!(err.to_string().contains("default, go-api"), "{err}");
    }

    #[test]
    fn templates_differ_in_their_probes_and_commands() {
        let node = render_service(&spec(), "node-api").unwrap();
        let manifest = node
            .artifacts
            .iter()
            .find(|a| a.path.ends_with("payments-deployment.yaml"))
            .unwrap();
        let text = std::str::from_utf8(&manifest.content).unwrap();
        assert!(text.contains("path: \"/health\""), "{text}");
        assert!(!text.contains("/healthz"));
    }

    #[test]
    fn every_template_compiles() {
        TemplateSet::builtin().unwrap();
    }
}
