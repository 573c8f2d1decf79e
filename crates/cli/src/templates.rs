//! `slipway templates …`: the golden-path templates the server uses.

use crate::client::{enc, exit, CliError, Client};
use crate::output;
use crate::Format;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};

#[derive(Subcommand)]
pub enum TemplatesCmd {
    /// List the templates
    List,
    /// Show a template: version, language, port, probes and the files it generates
    Show { name: String },
    /// Render a template for a service without registering it, into a directory
    Render {
        template: String,
        /// Service name
        #[arg(long)]
        name: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        repo_url: String,
        #[arg(long, default_value = "dev")]
        environment: String,
        /// Directory to write the files into: `platform/…` and `service/…` (created; existing files are overwritten)
        #[arg(long)]
        out: PathBuf,
    },
    /// Regenerate services whose files differ from what the templates render now; files a team
    /// edited are reported as conflicts and left as they are (exit 10 when any remain)
    Upgrade {
        /// Show each service's diff and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Only this service (repeatable); every service and the shared modules otherwise
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
    },
}

/// `templates upgrade` left files a team edited as they were (docs/cli.md).
pub const CONFLICTS_LEFT: i32 = 10;

pub async fn run(client: &Client, format: Format, cmd: TemplatesCmd) -> Result<(), CliError> {
    match cmd {
        TemplatesCmd::List => {
            let v: Value = client.get("/api/v1/templates").await?;
            match format {
                Format::Json => print_json(&v),
                Format::Table => {
                    let rows: Vec<Vec<String>> = v
                        .as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|t| {
                            vec![
                                s(t, "name"),
                                t["version"].to_string(),
                                s(t, "language"),
                                s(t, "description"),
                            ]
                        })
                        .collect();
                    output::table(&["NAME", "VERSION", "LANGUAGE", "DESCRIPTION"], &rows);
                }
            }
        }
        TemplatesCmd::Show { name } => {
            crate::label("template", &name)?;
            let t: Value = client
                .get(&format!("/api/v1/templates/{}", enc(&name)))
                .await?;
            match format {
                Format::Json => print_json(&t),
                Format::Table => {
                    outln!("name:        {}", s(&t, "name"));
                    outln!("version:     {}", t["version"]);
                    outln!("generator:   {}", s(&t, "generator"));
                    outln!("language:    {}", s(&t, "language"));
                    outln!("port:        {}", t["port"]);
                    outln!("health:      {}", s(&t, "health_path"));
                    outln!("ready:       {}", s(&t, "ready_path"));
                    outln!("description: {}", s(&t, "description"));
                    outln!("platform repository files:");
                    for f in t["platform_files"].as_array().into_iter().flatten() {
                        outln!("  {}", f.as_str().unwrap_or_default());
                    }
                    outln!("service repository files:");
                    for f in t["service_files"].as_array().into_iter().flatten() {
                        outln!("  {}", f.as_str().unwrap_or_default());
                    }
                }
            }
        }
        TemplatesCmd::Render {
            template,
            name,
            team,
            repo_url,
            environment,
            out,
        } => {
            crate::label("template", &template)?;
            let body = json!({
                "name": name, "team": team, "repo_url": repo_url, "environment": environment,
            });
            let v: Value = client
                .post(
                    &format!("/api/v1/templates/{}/render", enc(&template)),
                    &body,
                )
                .await?;
            let mut written = Vec::new();
            for f in v["files"].as_array().into_iter().flatten() {
                let scope = f["scope"].as_str().unwrap_or_default();
                let path = f["path"].as_str().unwrap_or_default();
                let dest = out.join(safe_relative(scope)?).join(safe_relative(path)?);
                write(&dest, f["content"].as_str().unwrap_or_default())?;
                written.push(format!("{scope}/{path}"));
            }
            output::message(
                format,
                &json!({ "template": template, "out": out, "files": written }),
                &format!(
                    "wrote {} files of template {template} to {}",
                    written.len(),
                    out.display()
                ),
            );
        }
        TemplatesCmd::Upgrade { dry_run, services } => {
            for name in &services {
                crate::label("service", name)?;
            }
            let mut body = json!({ "dry_run": dry_run });
            if !services.is_empty() {
                body["services"] = json!(services);
            }
            let v: Value = client.post("/api/v1/templates/upgrade", &body).await?;
            match format {
                Format::Json => print_json(&v),
                Format::Table => print_upgrade(&v),
            }
            let conflicts = v["conflicts"].as_u64().unwrap_or(0);
            let failed = v["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["status"] == "failed")
                .count();
            if failed > 0 {
                return Err(CliError {
                    code: exit::ERROR,
                    message: format!("{failed} upgrade(s) failed; see the errors above"),
                });
            }
            if !dry_run && conflicts > 0 {
                return Err(CliError {
                    code: CONFLICTS_LEFT,
                    message: format!(
                        "{conflicts} file(s) a team edited were left as they are (listed above); \
                         take the change over by hand, or give the file its stored content back \
                         and upgrade again"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// One block per service: status and versions, each file (with its diff in a dry run), each
/// conflict with its reason.
fn print_upgrade(v: &Value) {
    let dry_run = v["dry_run"] == true;
    for r in v["results"].as_array().into_iter().flatten() {
        let who = r["service"]
            .as_str()
            .map_or("shared modules".to_string(), |s| format!("service {s}"));
        let from: Vec<&str> = r["from"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let status = s(r, "status");
        let mut line = format!("{who}: {status}");
        if status != "current" {
            line.push_str(&format!(" ({} -> {})", from.join(", "), s(r, "to")));
        }
        if let Some(commit) = r["commit"].as_str() {
            line.push_str(&format!(", commit {}", &commit[..commit.len().min(12)]));
        }
        outln!("{line}");
        if let Some(e) = r["error"].as_str() {
            outln!("  error: {e}");
        }
        for f in r["files"].as_array().into_iter().flatten() {
            outln!("  {:<8} {}/{}", s(f, "change"), s(f, "scope"), s(f, "path"));
            if dry_run {
                out!("{}", s(f, "diff"));
            }
        }
        for c in r["conflicts"].as_array().into_iter().flatten() {
            outln!(
                "  conflict {}/{}: {}",
                s(c, "scope"),
                s(c, "path"),
                s(c, "reason")
            );
            if dry_run {
                out!("{}", s(c, "diff"));
            }
        }
    }
    let verb = if dry_run { "to upgrade" } else { "upgraded" };
    outln!(
        "{} {verb}, {} conflict(s)",
        v["upgraded"].as_u64().unwrap_or(0),
        v["conflicts"].as_u64().unwrap_or(0)
    );
}

/// A path from the server must stay inside the output directory.
fn safe_relative(path: &str) -> Result<&Path, CliError> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(CliError {
            code: exit::ERROR,
            message: format!("the server sent an unsafe path {path:?}"),
        });
    }
    Ok(p)
}

fn write(dest: &Path, content: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError {
        code: exit::ERROR,
        message: format!("cannot write {}: {e}", dest.display()),
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(dest, content).map_err(fail)
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
