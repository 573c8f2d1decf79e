//! Files that state the answer explicitly, in rising precedence: Dockerfile (recorded only),
//! Procfile, score.yaml, slipway.toml.

use serde::Deserialize;

use crate::detect::{line_of, parse_toml, sh_quote, Ctx};
use crate::error::AnalyzeError;
use crate::fs::RepoFs;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

/// `slipway.toml`: the app's own, documented statement of how to build and run it (see
/// docs/analyzer.md). Every key is optional; what it sets wins over everything else.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlipwayToml {
    /// Only read from the repository root: the app directory to analyze.
    pub app_dir: Option<String>,
    pub language: Option<String>,
    pub framework: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub env: EnvSection,
    pub resources: Option<ResourcesSection>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// An empty string means "no step".
    pub install: Option<String>,
    pub build: Option<String>,
    pub start: Option<String>,
    pub static_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    pub port: Option<u16>,
    pub reads_port_env: Option<bool>,
    pub health_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSection {
    pub memory_mb: Option<u32>,
    pub cpu: Option<f64>,
}

/// Reads and checks `<dir>/slipway.toml`.
pub(crate) fn read_slipway_toml(
    fs: &dyn RepoFs,
    dir: &str,
) -> Result<Option<(SlipwayToml, String)>, AnalyzeError> {
    let path = crate::fs::join(dir, "slipway.toml");
    let Some(text) = fs.read_text(&path)? else {
        return Ok(None);
    };
    // Parse once untyped for syntax errors, then typed for schema errors; both carry the line.
    parse_toml(&text, &path)?;
    match toml::from_str::<SlipwayToml>(&text) {
        Ok(cfg) => Ok(Some((cfg, text))),
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| crate::detect::line_col(&text, s.start))
                .unwrap_or((None, None));
            Err(AnalyzeError::Malformed {
                file: path,
                line,
                column,
                message: format!("does not match the slipway.toml schema: {}", e.message()),
            })
        }
    }
}

const SLIPWAY: &str = "slipway.toml";

pub(crate) fn apply_slipway_toml(plan: &mut BuildPlan, ctx: &Ctx) -> Result<(), AnalyzeError> {
    let Some((cfg, text)) = read_slipway_toml(ctx.fs, &ctx.dir)? else {
        return Ok(());
    };
    let src = ctx.path(SLIPWAY);
    let line = |table: Option<&str>, key: &str| crate::detect::toml_key_line(&text, table, key);
    let cite = |table: Option<&str>, key: &str| {
        Cite::file(
            &src,
            line(table, key),
            format!(
                "explicit in slipway.toml ({}{key})",
                table.map(|t| format!("[{t}] ")).unwrap_or_default()
            ),
        )
    };
    let blank = |s: String| (!s.trim().is_empty()).then_some(s);
    for (field, value, table, key) in [
        (Field::Language, cfg.language, None, "language"),
        (Field::Framework, cfg.framework, None, "framework"),
        (Field::Version, cfg.version, None, "version"),
        (Field::Install, cfg.build.install, Some("build"), "install"),
        (Field::Build, cfg.build.build, Some("build"), "build"),
        (Field::Start, cfg.build.start, Some("build"), "start"),
        (
            Field::StaticDir,
            cfg.build.static_dir,
            Some("build"),
            "static_dir",
        ),
        (
            Field::HealthPath,
            cfg.run.health_path,
            Some("run"),
            "health_path",
        ),
    ] {
        if let Some(v) = value {
            plan.override_with(field, blank(v), cite(table, key), SLIPWAY);
        }
    }
    if let Some(p) = cfg.run.port {
        plan.override_port(p, cite(Some("run"), "port"), SLIPWAY);
    }
    if let Some(r) = cfg.run.reads_port_env {
        plan.set_reads_port_env(r, cite(Some("run"), "reads_port_env"));
    }
    for (list, names, key) in [
        ("env_required", cfg.env.required, "required"),
        ("env_optional", cfg.env.optional, "optional"),
    ] {
        for n in names {
            plan.env_required.retain(|x| *x != n);
            plan.env_optional.retain(|x| *x != n);
            plan.evidence
                .retain(|e| !(e.value == n && e.field.starts_with("env_")));
            plan.cite_item(list, &n, cite(Some("env"), key));
            if list == "env_required" {
                plan.env_required.push(n);
            } else {
                plan.env_optional.push(n);
            }
        }
    }
    if let Some(r) = cfg.resources {
        let old = plan.resources.clone().unwrap_or(ResourcesHint {
            memory_mb: 256,
            cpu: 0.25,
        });
        let hint = ResourcesHint {
            memory_mb: r.memory_mb.unwrap_or(old.memory_mb),
            cpu: r.cpu.unwrap_or(old.cpu),
        };
        plan.cite(
            "resources",
            &format!("{} MiB", hint.memory_mb),
            cite(Some("resources"), "memory_mb"),
        );
        plan.resources = Some(hint);
    }
    Ok(())
}

/// Procfile: `web:` is the start command; `release:` is reported.
pub(crate) fn apply_procfile(plan: &mut BuildPlan, ctx: &Ctx) -> Result<(), AnalyzeError> {
    let Some(text) = ctx.text("Procfile")? else {
        return Ok(());
    };
    let src = ctx.path("Procfile");
    let mut web = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let line = u32::try_from(i + 1).ok();
        let Some((name, cmd)) = t.split_once(':') else {
            return Err(AnalyzeError::Malformed {
                file: src,
                line,
                column: Some(1),
                message: "expected `<process type>: <command>`".into(),
            });
        };
        let (name, cmd) = (name.trim(), cmd.trim());
        match name {
            "web" => web = Some((cmd.to_owned(), line)),
            "release" => plan.notices.push(format!(
                "Procfile line {}: release command `{cmd}` should run before each deployment",
                line.unwrap_or(0)
            )),
            other => plan.notices.push(format!(
                "Procfile line {}: process type `{other}` is not run by the web deployment",
                line.unwrap_or(0)
            )),
        }
    }
    match web {
        Some((cmd, line)) => plan.override_with(
            Field::Start,
            Some(cmd),
            Cite::file(&src, line, "Procfile `web` process"),
            "Procfile",
        ),
        None => plan
            .notices
            .push("Procfile has no `web` process; it did not set the start command".into()),
    }
    Ok(())
}

/// The names a container build file goes by, in the order they are looked for.
pub(crate) const DOCKERFILES: [&str; 3] = ["Dockerfile", "Containerfile", "dockerfile"];

/// Dockerfile: recorded, never used; the local target cannot build images.
pub(crate) fn record_dockerfile(plan: &mut BuildPlan, ctx: &Ctx) {
    let Some(name) = ctx.first_file(&DOCKERFILES) else {
        return;
    };
    let src = ctx.path(name);
    plan.dockerfile = Some(src.clone());
    plan.notices.push(format!(
        "{src} found; the local target cannot build images, so the plan runs the app with the host's toolchain instead"
    ));
    let text = ctx.text_opt(name).unwrap_or_default();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        let upper = t.to_ascii_uppercase();
        let line = u32::try_from(i + 1).ok();
        if upper.starts_with("CMD ") || upper.starts_with("ENTRYPOINT ") {
            let cmd = t.split_once(' ').map(|(_, c)| c.trim()).unwrap_or("");
            let cmd = exec_form(cmd).unwrap_or_else(|| cmd.to_owned());
            plan.alternatives.push(crate::plan::Alternative {
                field: "start".into(),
                value: cmd,
                source: Some(src.clone()),
                reason: format!(
                    "line {}: the local target cannot build images; the command may rely on the image's file system",
                    line.unwrap_or(0)
                ),
            });
        } else if let Some(p) = upper.strip_prefix("EXPOSE ") {
            if let Some(port) = crate::code::first_port(p) {
                plan.alternatives.push(crate::plan::Alternative {
                    field: "port".into(),
                    value: port.to_string(),
                    source: Some(src.clone()),
                    reason: format!(
                        "line {}: EXPOSE in a Dockerfile that is not used",
                        line.unwrap_or(0)
                    ),
                });
            }
        }
    }
}

/// `["a", "b"]` → `a b`.
fn exec_form(s: &str) -> Option<String> {
    let v: Vec<String> = serde_json::from_str(s).ok()?;
    Some(v.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" "))
}

/// score.yaml (Score workload spec): container command/args, variables, service port, probes,
/// resource limits.
pub(crate) fn apply_score(plan: &mut BuildPlan, ctx: &Ctx) -> Result<(), AnalyzeError> {
    let Some(name) = ctx.first_file(&["score.yaml", "score.yml"]) else {
        return Ok(());
    };
    let src = ctx.path(name);
    let text = ctx.text(name)?.unwrap_or_default();
    let doc: serde_json::Value = serde_norway::from_str(&text).map_err(|e| {
        let loc = e.location();
        AnalyzeError::Malformed {
            file: src.clone(),
            line: loc.as_ref().and_then(|l| u32::try_from(l.line()).ok()),
            column: loc.as_ref().and_then(|l| u32::try_from(l.column()).ok()),
            message: format!("not valid YAML: {e}"),
        }
    })?;
    const WHO: &str = "score.yaml";
    let containers = doc.get("containers").and_then(|c| c.as_object());
    let Some((cname, container)) = containers.and_then(|c| c.iter().next()) else {
        plan.notices.push(format!("{src} has no containers"));
        return Ok(());
    };
    if containers.is_some_and(|c| c.len() > 1) {
        plan.notices.push(format!(
            "{src} has several containers; the plan uses the first, `{cname}`"
        ));
    }
    let words = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => sh_quote(s),
                    other => other.to_string(),
                })
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let mut cmd = words(container.get("command"));
    cmd.extend(words(container.get("args")));
    if !cmd.is_empty() {
        plan.override_with(
            Field::Start,
            Some(cmd.join(" ")),
            Cite::file(
                &src,
                line_of(&text, "command:").or_else(|| line_of(&text, "args:")),
                format!("containers.{cname}.command/args"),
            ),
            WHO,
        );
    }
    if let Some(vars) = container.get("variables").and_then(|v| v.as_object()) {
        for (k, v) in vars {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let cite = Cite::file(
                &src,
                line_of(&text, &format!("{k}:")),
                format!("containers.{cname}.variables"),
            );
            plan.cite_item("env", k, cite);
            plan.env.insert(k.clone(), value);
        }
    }
    let probe_path = ["readinessProbe", "livenessProbe"].iter().find_map(|p| {
        container
            .get(*p)
            .and_then(|x| x.get("httpGet"))
            .and_then(|h| h.get("path"))
            .and_then(|p| p.as_str())
            .map(|path| (*p, path.to_owned()))
    });
    if let Some((probe, path)) = probe_path {
        plan.override_with(
            Field::HealthPath,
            Some(path),
            Cite::file(
                &src,
                line_of(&text, "path:"),
                format!("containers.{cname}.{probe}.httpGet.path"),
            ),
            WHO,
        );
    }
    let port = doc
        .get("service")
        .and_then(|s| s.get("ports"))
        .and_then(|p| p.as_object())
        .and_then(|p| p.values().next())
        .and_then(|p| p.get("targetPort").or_else(|| p.get("port")))
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    if let Some(port) = port {
        plan.override_port(
            port,
            Cite::file(
                &src,
                line_of(&text, "targetPort:").or_else(|| line_of(&text, "port:")),
                "service.ports (targetPort, else port)",
            ),
            WHO,
        );
    }
    let limits = container
        .get("resources")
        .and_then(|r| r.get("limits").or_else(|| r.get("requests")));
    if let Some(limits) = limits {
        let memory = limits
            .get("memory")
            .and_then(|m| m.as_str())
            .and_then(parse_memory_mb);
        let cpu = limits.get("cpu").and_then(|c| match c {
            serde_json::Value::String(s) => parse_cpu(s),
            other => other.as_f64(),
        });
        if memory.is_some() || cpu.is_some() {
            let old = plan.resources.clone().unwrap_or(ResourcesHint {
                memory_mb: 256,
                cpu: 0.25,
            });
            let hint = ResourcesHint {
                memory_mb: memory.unwrap_or(old.memory_mb),
                cpu: cpu.unwrap_or(old.cpu),
            };
            plan.cite(
                "resources",
                &format!("{} MiB", hint.memory_mb),
                Cite::file(
                    &src,
                    line_of(&text, "limits:").or_else(|| line_of(&text, "requests:")),
                    format!("containers.{cname}.resources"),
                ),
            );
            plan.resources = Some(hint);
        }
    }
    Ok(())
}

/// `512Mi`, `1Gi`, `256M` → MiB.
fn parse_memory_mb(s: &str) -> Option<u32> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mb = match &s[split..] {
        "Mi" => n,
        "M" => n * 1_000_000.0 / 1_048_576.0,
        "Gi" => n * 1024.0,
        "G" => n * 1_000_000_000.0 / 1_048_576.0,
        "Ki" => n / 1024.0,
        "" => n / 1_048_576.0,
        _ => return None,
    };
    // Saturating: absurd values still give a bounded hint.
    Some(mb.round().clamp(0.0, f64::from(u32::MAX)) as u32)
}

/// `500m` → 0.5, `2` → 2.0.
fn parse_cpu(s: &str) -> Option<f64> {
    match s.trim().strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => s.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_memory_mb("512Mi"), Some(512));
        assert_eq!(parse_memory_mb("1Gi"), Some(1024));
        assert_eq!(parse_cpu("250m"), Some(0.25));
        assert_eq!(parse_cpu("2"), Some(2.0));
        assert_eq!(
            exec_form(r#"["npm", "start"]"#).as_deref(),
            Some("npm start")
        );
    }
}
