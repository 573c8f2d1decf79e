//! The set of templates: the built-in ones embedded from `templates/`, optionally overlaid by a
//! platform team's directory of the same layout.
//!
//! Layout (paths relative to the templates root):
//! - `paths/<name>/template.toml` declares a golden path (description, version, port, probes,
//!   build and test commands);
//! - `service/**` are the files every service gets in its own repository; `paths/<name>/service/**`
//!   adds to them or replaces one of the same path for that template;
//! - `terraform/`, `kubernetes/`, `jenkins/` hold the platform-repository files;
//! - a file ending in `.j2` is a minijinja template rendered to the path without `.j2`; any other
//!   file is copied as it is (Helm's own templates, which use the same braces, and Helm's
//!   `_helpers.tpl`); a `.j2` file whose name, or the name of a directory above it, starts with
//!   `_` is a partial and produces no output; `__service__` in a path stands for the service's
//!   name (and does not make a partial).

use crate::{
    escape, generator, modules_generator, seed_artifact_dirs, RenderError, Rendered, ServiceSpec,
    DEFAULT_AWS_REGION, GENERATOR_PREFIX,
};
use serde::{Deserialize, Serialize};
use slipway_core::model::ArtifactScope;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Stands for the service's name in an output path.
const SERVICE_PLACEHOLDER: &str = "__service__";

/// The image tag of the placeholder image (the Helm chart's `appVersion`).
const IMAGE_TAG_PLACEHOLDER: &str = "unset";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    description: String,
    version: u32,
    language: String,
    port: u16,
    health_path: String,
    ready_path: String,
    build_command: String,
    test_command: String,
    #[serde(default)]
    jenkins_contract: Vec<String>,
    /// Container health-check command (ECS `healthCheck.command`).
    healthcheck: Vec<String>,
    /// Present when the template can scaffold a new repository (`paths/<name>/scaffold/`).
    #[serde(default)]
    scaffold: Option<ScaffoldCommands>,
    /// Whether the service serves the HTTP series of the metrics contract on `/metrics`
    /// (`http_requests_total`, `http_request_duration_seconds`; docs/templates.md). Without
    /// them the generated alerts keep only what Prometheus records about its scrapes of the
    /// service (`up`) and the template must bring its own `service.json` (static-site's), so
    /// that no alert or panel waits for a series that never comes.
    #[serde(default = "exports_http_metrics_by_default")]
    http_metrics: bool,
}

/// A template's service exports the contract's series unless its manifest says otherwise: the
/// contract is what a service is asked to export.
fn exports_http_metrics_by_default() -> bool {
    true
}

/// How a scaffolded repository is run and tested on a developer's machine (its README says so).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaffoldCommands {
    run: String,
    test: String,
}

/// What a template is, as the API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub name: String,
    pub version: u32,
    /// Recorded on every artifact the template produces (`slipway-golden-paths/<name>@<version>`).
    pub generator: String,
    pub description: String,
    pub language: String,
    /// Port the service listens on in its container.
    pub port: u16,
    pub health_path: String,
    pub ready_path: String,
    /// Files for the service's own repository; `<service>` stands for the service's name.
    pub service_files: Vec<String>,
    /// Files for the platform repository (besides the shared modules).
    pub platform_files: Vec<String>,
}

/// One output file of a template.
#[derive(Debug, Clone)]
struct OutputFile {
    /// Output path, with `__service__` for the service's name.
    path: String,
    scope: ArtifactScope,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// A minijinja template of this name.
    Template(String),
    /// Copied byte for byte.
    Verbatim(Cow<'static, str>),
}

struct Template {
    manifest: Manifest,
    files: Vec<OutputFile>,
    /// The app code of a new repository: (path, source), from `paths/<name>/scaffold/`. Names
    /// starting with `_` are kept here (Python's `__init__.py`); `.j2` files are rendered.
    scaffold: Vec<(String, Source)>,
}

/// Parsed templates, ready to render. Building one parses every template, so a broken
/// template is found when Slipway starts, not when a service is registered.
pub struct TemplateSet {
    env: minijinja::Environment<'static>,
    templates: BTreeMap<String, Template>,
    /// Shared Terraform modules: (template name, output path).
    modules: Vec<(String, String)>,
    /// The environment's platform stack: (template name, file name under
    /// `terraform/envs/<env>/_platform/`).
    platform_stack: Vec<(String, String)>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("templates", &self.templates.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Platform-repository files every template produces: (template name, output path).
fn platform_outputs(service: &str, environment: &str) -> [(&'static str, String); 4] {
    let (terraform_dir, kubernetes_dir, jenkins_dir) = seed_artifact_dirs(service, environment);
    [
        ("terraform/env/main.tf", format!("{terraform_dir}/main.tf")),
        (
            "terraform/env/outputs.tf",
            format!("{terraform_dir}/outputs.tf"),
        ),
        (
            "kubernetes/deployment.yaml",
            format!("{kubernetes_dir}/{service}-deployment.yaml"),
        ),
        (
            "jenkins/Jenkinsfile",
            format!("{jenkins_dir}/{service}.Jenkinsfile"),
        ),
    ]
}

impl TemplateSet {
    /// The templates embedded in the binary, parsed once per process.
    pub fn builtin() -> Result<&'static TemplateSet, RenderError> {
        static SET: std::sync::OnceLock<TemplateSet> = std::sync::OnceLock::new();
        if let Some(set) = SET.get() {
            return Ok(set);
        }
        let set = Self::from_sources(embedded_sources())?;
        Ok(SET.get_or_init(|| set))
    }

    /// The built-in templates with the files of `dir` laid over them: a file at the same path
    /// replaces the built-in one, a new `paths/<name>/template.toml` adds a template. Every
    /// template is parsed and rendered once for a sample service, so an error names its file and
    /// line now rather than at a registration.
    pub fn with_overrides(dir: &Path) -> Result<TemplateSet, RenderError> {
        let mut sources = embedded_sources();
        read_overrides(dir, dir, &mut sources)?;
        let set = Self::from_sources(sources)?;
        set.check()?;
        Ok(set)
    }

    fn from_sources(
        sources: BTreeMap<String, Cow<'static, str>>,
    ) -> Result<TemplateSet, RenderError> {
        let mut env = minijinja::Environment::new();
        // Every value is escaped explicitly for its output language by a filter; HTML-style
        // auto-escaping would only get in the way.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("hcl_string", escape::hcl_string);
        env.add_filter("yaml_string", escape::yaml_string);
        env.add_filter("groovy_sq", escape::groovy_single_quoted);
        env.add_filter("json_string", escape::json_string);
        env.add_filter("tojson", |value: minijinja::Value| {
            serde_json::to_string(&value).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
            })
        });
        for (path, source) in &sources {
            if let Some(name) = path.strip_suffix(".j2") {
                env.add_template_owned(name.to_string(), source.clone())
                    .map_err(|source| RenderError::Template {
                        template: path.clone(),
                        source,
                    })?;
            }
        }

        let mut modules = Vec::new();
        for path in sources.keys() {
            if let Some(name) = path.strip_suffix(".j2") {
                if let Some(rest) = name.strip_prefix("terraform/modules/") {
                    if !rest.split('/').any(|part| part.starts_with('_')) {
                        modules.push((name.to_string(), name.to_string()));
                    }
                }
            }
        }

        let mut platform_stack = Vec::new();
        for path in sources.keys() {
            if let Some(name) = path.strip_suffix(".j2") {
                if let Some(file) = name.strip_prefix("terraform/platform/") {
                    if !file.split('/').any(|part| part.starts_with('_')) {
                        platform_stack.push((name.to_string(), file.to_string()));
                    }
                }
            }
        }

        let mut templates = BTreeMap::new();
        for (path, source) in &sources {
            let Some(name) = path
                .strip_prefix("paths/")
                .and_then(|p| p.strip_suffix("/template.toml"))
            else {
                continue;
            };
            let manifest: Manifest = toml::from_str(source).map_err(|e| RenderError::Manifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            validate_template_name(path, name)?;
            let mut files: BTreeMap<String, OutputFile> = BTreeMap::new();
            let own = format!("paths/{name}/service/");
            for prefix in ["service/", own.as_str()] {
                for (key, source) in sources.range(prefix.to_string()..) {
                    let Some(rel) = key.strip_prefix(prefix) else {
                        break;
                    };
                    if is_partial(rel) {
                        continue;
                    }
                    let (out, source) = match rel.strip_suffix(".j2") {
                        Some(out) => (out, Source::Template(key[..key.len() - 3].to_string())),
                        None => (rel, Source::Verbatim(source.clone())),
                    };
                    files.insert(
                        out.to_string(),
                        OutputFile {
                            path: out.to_string(),
                            scope: ArtifactScope::Service,
                            source,
                        },
                    );
                }
            }
            let mut scaffold = Vec::new();
            let prefix = format!("paths/{name}/scaffold/");
            for (key, source) in sources.range(prefix.clone()..) {
                let Some(rel) = key.strip_prefix(&prefix) else {
                    break;
                };
                scaffold.push(match rel.strip_suffix(".j2") {
                    Some(out) => (
                        out.to_string(),
                        Source::Template(key[..key.len() - 3].to_string()),
                    ),
                    None => (rel.to_string(), Source::Verbatim(source.clone())),
                });
            }
            if manifest.scaffold.is_some() == scaffold.is_empty() {
                return Err(RenderError::Manifest {
                    path: path.clone(),
                    reason: "a template has a [scaffold] table exactly when it has scaffold/ files"
                        .into(),
                });
            }
            templates.insert(
                name.to_string(),
                Template {
                    manifest,
                    files: files.into_values().collect(),
                    scaffold,
                },
            );
        }
        Ok(TemplateSet {
            env,
            templates,
            modules,
            platform_stack,
        })
    }

    /// Renders every template (and its scaffold) for a sample service, so that an error shows
    /// up now.
    pub fn check(&self) -> Result<(), RenderError> {
        let sample = ServiceSpec {
            name: "sample",
            team: "platform",
            repo_url: "https://example.com/platform/sample",
            environment: "dev",
        };
        for name in self.templates.keys() {
            self.render(&sample, name)?;
            if self.can_scaffold(name) {
                self.scaffold(&sample, name)?;
            }
        }
        Ok(())
    }

    /// Whether the template can create a new repository with app code.
    pub fn can_scaffold(&self, name: &str) -> bool {
        self.templates
            .get(name)
            .is_some_and(|t| !t.scaffold.is_empty())
    }

    /// The files of a new service repository: the template's app code (with `/health`,
    /// `/metrics`, JSON logs and unit tests), its `Dockerfile` and `.dockerignore`, and a README;
    /// sorted by path.
    pub fn scaffold(
        &self,
        spec: &ServiceSpec,
        template: &str,
    ) -> Result<Vec<crate::ScaffoldFile>, RenderError> {
        let t = self
            .templates
            .get(template)
            .ok_or_else(|| self.unknown(template))?;
        if t.scaffold.is_empty() {
            return Err(RenderError::NoScaffold {
                name: template.to_string(),
                known: self
                    .templates
                    .keys()
                    .filter(|n| self.can_scaffold(n))
                    .cloned()
                    .collect(),
            });
        }
        let rendered = self.render(spec, template)?;
        let generator = generator(template, t.manifest.version);
        let context = Context::new(spec, template, &t.manifest, &generator);
        let mut files = BTreeMap::new();
        for (path, source) in &t.scaffold {
            let content = match source {
                Source::Template(name) => self.render_one(name, &context)?,
                Source::Verbatim(text) => normalize(text.to_string()),
            };
            files.insert(path.clone(), content.into_bytes());
        }
        files.insert(
            "README.md".to_string(),
            self.render_one("scaffold/README.md", &context)?
                .into_bytes(),
        );
        for artifact in rendered.artifacts {
            if artifact.scope == ArtifactScope::Service
                && ["Dockerfile", ".dockerignore"].contains(&artifact.path.as_str())
            {
                files.insert(artifact.path, artifact.content);
            }
        }
        Ok(files
            .into_iter()
            .map(|(path, content)| crate::ScaffoldFile { path, content })
            .collect())
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.templates.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.templates.contains_key(name)
    }

    pub fn list(&self) -> Vec<TemplateInfo> {
        self.templates.keys().filter_map(|n| self.get(n)).collect()
    }

    pub fn get(&self, name: &str) -> Option<TemplateInfo> {
        let t = self.templates.get(name)?;
        let m = &t.manifest;
        Some(TemplateInfo {
            name: name.to_string(),
            version: m.version,
            generator: generator(name, m.version),
            description: m.description.clone(),
            language: m.language.clone(),
            port: m.port,
            health_path: m.health_path.clone(),
            ready_path: m.ready_path.clone(),
            service_files: t
                .files
                .iter()
                .map(|f| f.path.replace(SERVICE_PLACEHOLDER, "<service>"))
                .collect(),
            platform_files: platform_outputs("<service>", "<env>")
                .into_iter()
                .map(|(_, path)| path)
                .collect(),
        })
    }

    fn unknown(&self, name: &str) -> RenderError {
        RenderError::UnknownTemplate {
            name: name.to_string(),
            known: self.names(),
        }
    }

    /// Renders every file of a service with the named template.
    pub fn render(&self, spec: &ServiceSpec, template: &str) -> Result<Rendered, RenderError> {
        crate::validate_label("service name", spec.name)?;
        crate::validate_label("team", spec.team)?;
        crate::validate_label("environment", spec.environment)?;
        crate::validate_repo_url(spec.repo_url)?;
        let t = self
            .templates
            .get(template)
            .ok_or_else(|| self.unknown(template))?;
        let generator = generator(template, t.manifest.version);
        let context = Context::new(spec, template, &t.manifest, &generator);

        let mut artifacts = Vec::new();
        for (name, path) in platform_outputs(spec.name, spec.environment) {
            let content = self.render_one(name, &context)?;
            artifacts.push(crate::artifact(
                Some(spec.name),
                ArtifactScope::Platform,
                path,
                content,
                &generator,
            ));
        }
        for file in &t.files {
            let content = match &file.source {
                Source::Template(name) => self.render_one(name, &context)?,
                Source::Verbatim(text) => normalize(text.to_string()),
            };
            artifacts.push(crate::artifact(
                Some(spec.name),
                file.scope,
                file.path.replace(SERVICE_PLACEHOLDER, spec.name),
                content,
                &generator,
            ));
        }
        artifacts.sort_by(|a, b| (&a.path, a.scope).cmp(&(&b.path, b.scope)));

        let modules_generator = modules_generator();
        let modules_context = ModulesContext {
            generator: &modules_generator,
        };
        let mut platform_files = self
            .modules
            .iter()
            .map(|(name, path)| {
                let content = self.render_one(name, &modules_context)?;
                Ok(crate::artifact(
                    None,
                    ArtifactScope::Platform,
                    path.clone(),
                    content,
                    &modules_generator,
                ))
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        let stack_context = PlatformStackContext::new(spec.environment, &modules_generator);
        for (name, file) in &self.platform_stack {
            let content = self.render_one(name, &stack_context)?;
            platform_files.push(crate::artifact(
                None,
                ArtifactScope::Platform,
                format!("{}/{file}", crate::platform_stack_dir(spec.environment)),
                content,
                &modules_generator,
            ));
        }
        platform_files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Rendered {
            artifacts,
            platform_files,
        })
    }

    fn render_one(&self, template: &str, context: &impl Serialize) -> Result<String, RenderError> {
        let to_error = |source| RenderError::Template {
            template: format!("{template}.j2"),
            source,
        };
        let content = self
            .env
            .get_template(template)
            .map_err(to_error)?
            .render(context)
            .map_err(to_error)?;
        Ok(normalize(content))
    }
}

/// A `.j2` file only included by others. Verbatim files are always output: Helm needs its
/// `templates/_helpers.tpl` under that very name.
fn is_partial(rel: &str) -> bool {
    rel.ends_with(".j2")
        && rel
            .split('/')
            .any(|part| part.starts_with('_') && part != SERVICE_PLACEHOLDER)
}

/// A checkout with CRLF line endings must not change a single output byte.
fn normalize(content: String) -> String {
    if content.contains('\r') {
        content.replace("\r\n", "\n")
    } else {
        content
    }
}

fn embedded_sources() -> BTreeMap<String, Cow<'static, str>> {
    EMBEDDED
        .iter()
        .map(|&(path, source)| (path.to_string(), Cow::Borrowed(source)))
        .collect()
}

fn read_overrides(
    root: &Path,
    dir: &Path,
    sources: &mut BTreeMap<String, Cow<'static, str>>,
) -> Result<(), RenderError> {
    let io = |source| RenderError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if file_name == ".git" || file_name == ".gitattributes" {
            continue;
        }
        if path.is_dir() {
            read_overrides(root, &path, sources)?;
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| RenderError::Manifest {
                path: path.display().to_string(),
                reason: "template paths must be UTF-8".into(),
            })?
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Io {
            path: path.display().to_string(),
            source,
        })?;
        sources.insert(rel, Cow::Owned(text));
    }
    Ok(())
}

fn validate_template_name(path: &str, name: &str) -> Result<(), RenderError> {
    crate::validate_label("template", name).map_err(|e| RenderError::Manifest {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Values the templates see. Everything a template prints comes from here, already derived,
/// so the templates hold no naming logic of their own.
#[derive(Serialize)]
struct Context<'a> {
    generator: &'a str,
    generator_prefix: &'static str,
    template: &'a str,
    template_version: u32,
    language: &'a str,
    service: &'a str,
    team: &'a str,
    repo_url: &'a str,
    environment: &'a str,
    /// Kubernetes namespace the service runs in: one namespace per environment.
    namespace: &'a str,
    aws_region: &'static str,
    state_key: String,
    /// State key of the environment's platform stack, which the service's stack reads.
    platform_state_key: String,
    kms_key_alias: String,
    eks_cluster_name: String,
    ecs_cluster_name: String,
    /// The platform's access-log bucket of the environment (load balancer and S3 access logs).
    access_logs_bucket: String,
    kubernetes_namespace: &'a str,
    kubernetes_service_account: &'a str,
    /// Must match the repository name the `ecr` module derives.
    ecr_repository: String,
    /// Must match the role name the `iam` module derives (for names that fit 64 characters).
    iam_role_name: String,
    log_group: String,
    /// The image the manifests carry until the pipeline substitutes the one it built. The
    /// `.invalid` top-level domain never resolves, so an unsubstituted manifest cannot pull
    /// anything by accident.
    image_placeholder: String,
    /// The placeholder image without its tag (the Helm chart's `image.repository`).
    image_repository: String,
    /// The placeholder image's tag (the Helm chart's `appVersion`).
    image_tag: &'static str,
    manifest_path: String,
    container_port: u16,
    health_path: &'a str,
    ready_path: &'a str,
    build_command: &'a str,
    test_command: &'a str,
    jenkins_contract: &'a [String],
    healthcheck: &'a [String],
    scaffold_run: &'a str,
    scaffold_test: &'a str,
    /// The manifest's `http_metrics`: the request alerts are generated only with it.
    http_metrics: bool,
    /// The uid of the service dashboard (`observability/grafana/dashboards/service.json`),
    /// which the catalog links to: one for services with the HTTP series, one for those with
    /// only `up`, so both dashboards can live in one Grafana.
    service_dashboard_uid: &'static str,
    git_credentials_id: String,
    aws_credentials_id: String,
    kubeconfig_credentials_id: String,
    /// `uses:` of every pinned GitHub Action, by action name (`crate::actions`).
    actions: BTreeMap<&'static str, String>,
}

impl<'a> Context<'a> {
    fn new(
        spec: &ServiceSpec<'a>,
        template: &'a str,
        manifest: &'a Manifest,
        generator: &'a str,
    ) -> Self {
        let ServiceSpec {
            name,
            team,
            repo_url,
            environment,
        } = *spec;
        let ecr_repository = format!("slipway/{environment}/{name}");
        let (_, kubernetes_dir, _) = seed_artifact_dirs(name, environment);
        Self {
            generator,
            generator_prefix: GENERATOR_PREFIX,
            template,
            template_version: manifest.version,
            language: &manifest.language,
            service: name,
            team,
            repo_url,
            environment,
            namespace: environment,
            aws_region: DEFAULT_AWS_REGION,
            state_key: format!("envs/{environment}/{name}/terraform.tfstate"),
            platform_state_key: crate::platform_state_key(environment),
            kms_key_alias: format!("alias/slipway-{environment}"),
            eks_cluster_name: format!("slipway-{environment}"),
            ecs_cluster_name: format!("slipway-{environment}"),
            access_logs_bucket: format!("slipway-{environment}-access-logs"),
            kubernetes_namespace: environment,
            kubernetes_service_account: name,
            image_placeholder: format!("registry.invalid/{ecr_repository}:{IMAGE_TAG_PLACEHOLDER}"),
            image_repository: format!("registry.invalid/{ecr_repository}"),
            image_tag: IMAGE_TAG_PLACEHOLDER,
            ecr_repository,
            iam_role_name: format!("slipway-{environment}-{name}"),
            log_group: format!("/slipway/{environment}/{name}"),
            manifest_path: format!("{kubernetes_dir}/{name}-deployment.yaml"),
            container_port: manifest.port,
            health_path: &manifest.health_path,
            ready_path: &manifest.ready_path,
            build_command: &manifest.build_command,
            test_command: &manifest.test_command,
            jenkins_contract: &manifest.jenkins_contract,
            healthcheck: &manifest.healthcheck,
            scaffold_run: manifest.scaffold.as_ref().map_or("", |s| s.run.as_str()),
            scaffold_test: manifest.scaffold.as_ref().map_or("", |s| s.test.as_str()),
            http_metrics: manifest.http_metrics,
            service_dashboard_uid: if manifest.http_metrics {
                "slipway-service"
            } else {
                "slipway-availability"
            },
            git_credentials_id: "slipway-git".to_string(),
            aws_credentials_id: format!("slipway-{environment}-aws"),
            kubeconfig_credentials_id: format!("slipway-{environment}-kubeconfig"),
            actions: crate::actions::uses_by_action(),
        }
    }
}

#[derive(Serialize)]
struct ModulesContext<'a> {
    generator: &'a str,
}

/// Values the environment's platform stack (`terraform/platform/`) sees: it belongs to the
/// environment, not to a service, so nothing of a service is here.
#[derive(Serialize)]
struct PlatformStackContext<'a> {
    generator: &'a str,
    environment: &'a str,
    aws_region: &'static str,
    state_key: String,
    kms_key_alias: String,
    ecs_cluster_name: String,
    access_logs_bucket: String,
    /// The services of the environment are served at `<service>.<domain>`; the same names as
    /// the Kubernetes ingress hosts.
    domain: String,
}

impl<'a> PlatformStackContext<'a> {
    fn new(environment: &'a str, generator: &'a str) -> Self {
        Self {
            generator,
            environment,
            aws_region: DEFAULT_AWS_REGION,
            state_key: crate::platform_state_key(environment),
            kms_key_alias: format!("alias/slipway-{environment}"),
            ecs_cluster_name: format!("slipway-{environment}"),
            access_logs_bucket: format!("slipway-{environment}-access-logs"),
            domain: format!("{environment}.internal"),
        }
    }
}
