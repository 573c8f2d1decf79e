//! The build plan and the evidence behind each of its values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How to install, build and run one app, and why.
///
/// Commands are shell strings for `sh -c`, run in `app_dir` with `PORT` set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildPlan {
    /// `python`, `node`, `go`, `rust`, `ruby`, `php`, `java` or `static`.
    pub language: Option<String>,
    pub framework: Option<String>,
    /// The runtime version the repository asks for (`3.11`, `20`, `>=18`, `1.22.3`).
    pub version: Option<String>,
    pub package_manager: Option<String>,
    pub install: Option<String>,
    pub build: Option<String>,
    /// `None` only for static sites.
    pub start: Option<String>,
    /// The port the app listens on when it does not read `PORT` (or its default when it does).
    pub port: Option<u16>,
    /// The app honours `$PORT`: the engine assigns one.
    pub reads_port_env: bool,
    pub health_path: Option<String>,
    pub env_required: Vec<String>,
    pub env_optional: Vec<String>,
    /// Variables the repository sets itself (score.yaml `variables`), name to value.
    pub env: BTreeMap<String, String>,
    /// The directory to serve, relative to `app_dir`, for static sites and static builds.
    pub static_dir: Option<String>,
    /// `.` or a sub-directory of the repository.
    pub app_dir: String,
    /// What the app is likely to need; a hint, not a limit.
    pub resources: Option<ResourcesHint>,
    /// The Dockerfile found in the app directory, if any. The local target cannot build images.
    pub dockerfile: Option<String>,
    /// Things the operator should know (a Dockerfile that was not used, a missing server, ...).
    pub notices: Vec<String>,
    /// Every app directory found in the repository (monorepos), the chosen one included.
    pub apps: Vec<AppCandidate>,
    /// Which file and line, or which rule, decided each value.
    pub evidence: Vec<Evidence>,
    /// What was considered and lost, and why.
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub field: String,
    pub value: String,
    /// The file, relative to the repository root, when a file decided it.
    pub source: Option<String>,
    /// 1-based line in `source`.
    pub line: Option<u32>,
    /// The rule that turned the file's content into the value.
    pub rule: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alternative {
    pub field: String,
    pub value: String,
    pub source: Option<String>,
    /// Why it lost.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourcesHint {
    pub memory_mb: u32,
    pub cpu: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppCandidate {
    /// Relative to the repository root.
    pub dir: String,
    pub language: Option<String>,
    /// Has something to start or serve.
    pub deployable: bool,
    /// The manifest or rule that made this directory a candidate.
    pub source: String,
    /// Why it is (not) deployable.
    pub reason: String,
}

/// Options for [`crate::analyze`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Analyze this sub-directory instead of choosing one.
    pub app_dir: Option<String>,
}

/// A citation for a value: which file and line, and the rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cite {
    pub source: Option<String>,
    pub line: Option<u32>,
    pub rule: String,
}

impl Cite {
    pub fn file(source: impl Into<String>, line: Option<u32>, rule: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            line,
            rule: rule.into(),
        }
    }

    pub fn rule(rule: impl Into<String>) -> Self {
        Self {
            source: None,
            line: None,
            rule: rule.into(),
        }
    }
}

/// The string-valued fields that carry evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Language,
    Framework,
    Version,
    PackageManager,
    Install,
    Build,
    Start,
    HealthPath,
    StaticDir,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Language => "language",
            Field::Framework => "framework",
            Field::Version => "version",
            Field::PackageManager => "package_manager",
            Field::Install => "install",
            Field::Build => "build",
            Field::Start => "start",
            Field::HealthPath => "health_path",
            Field::StaticDir => "static_dir",
        }
    }
}

impl BuildPlan {
    fn slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Language => &mut self.language,
            Field::Framework => &mut self.framework,
            Field::Version => &mut self.version,
            Field::PackageManager => &mut self.package_manager,
            Field::Install => &mut self.install,
            Field::Build => &mut self.build,
            Field::Start => &mut self.start,
            Field::HealthPath => &mut self.health_path,
            Field::StaticDir => &mut self.static_dir,
        }
    }

    /// Sets a field and records why. `None` records an explicit "nothing".
    pub(crate) fn set(&mut self, field: Field, value: Option<String>, cite: Cite) {
        self.cite(field.name(), value.as_deref().unwrap_or(""), cite);
        *self.slot(field) = value;
    }

    /// Sets a field from a higher-precedence source (`who`): the value it replaces and that
    /// value's evidence become an alternative.
    pub(crate) fn override_with(
        &mut self,
        field: Field,
        value: Option<String>,
        cite: Cite,
        who: &str,
    ) {
        self.demote(field.name(), value.as_deref().unwrap_or(""), who);
        self.set(field, value, cite);
    }

    pub(crate) fn set_port(&mut self, port: u16, cite: Cite) {
        self.cite("port", &port.to_string(), cite);
        self.port = Some(port);
    }

    pub(crate) fn override_port(&mut self, port: u16, cite: Cite, who: &str) {
        self.demote("port", &port.to_string(), who);
        self.set_port(port, cite);
    }

    pub(crate) fn set_reads_port_env(&mut self, reads: bool, cite: Cite) {
        self.evidence.retain(|e| e.field != "reads_port_env");
        self.cite("reads_port_env", if reads { "true" } else { "false" }, cite);
        self.reads_port_env = reads;
    }

    /// Moves the evidence of `field` into the alternatives when its value differs from `new`.
    fn demote(&mut self, field: &str, new: &str, who: &str) {
        let (old, keep): (Vec<Evidence>, Vec<Evidence>) = std::mem::take(&mut self.evidence)
            .into_iter()
            .partition(|e| e.field == field);
        self.evidence = keep;
        for e in old {
            if e.value != new {
                let from = e.source.clone().unwrap_or_else(|| e.rule.clone());
                self.alternatives.push(Alternative {
                    field: e.field,
                    value: e.value,
                    source: e.source,
                    reason: format!("{who} outranks {from}"),
                });
            }
        }
    }

    pub(crate) fn cite(&mut self, field: &str, value: &str, cite: Cite) {
        self.evidence.retain(|e| e.field != field);
        self.evidence.push(Evidence {
            field: field.to_owned(),
            value: value.to_owned(),
            source: cite.source,
            line: cite.line,
            rule: cite.rule,
        });
    }

    /// Evidence for one value of a list field (`env_required`, `env_optional`).
    pub(crate) fn cite_item(&mut self, field: &str, value: &str, cite: Cite) {
        self.evidence.push(Evidence {
            field: field.to_owned(),
            value: value.to_owned(),
            source: cite.source,
            line: cite.line,
            rule: cite.rule,
        });
    }

    pub(crate) fn lose(&mut self, field: &str, value: &str, source: Option<&str>, reason: String) {
        if self.evidence_for(field).is_some_and(|e| e.value == value) {
            return;
        }
        self.alternatives.push(Alternative {
            field: field.to_owned(),
            value: value.to_owned(),
            source: source.map(str::to_owned),
            reason,
        });
    }

    /// The evidence recorded for a field, if any.
    pub fn evidence_for(&self, field: &str) -> Option<&Evidence> {
        self.evidence.iter().find(|e| e.field == field)
    }
}
