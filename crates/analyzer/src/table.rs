//! The CLI's human output: a short table with the evidence beside each value.

use crate::plan::BuildPlan;

/// Renders the plan as `field  value  evidence` rows, then notices and alternatives.
pub fn render_table(plan: &BuildPlan) -> String {
    let why = |field: &str| {
        plan.evidence_for(field)
            .map(|e| match (&e.source, e.line) {
                (Some(s), Some(l)) => format!("{s}:{l} ({})", e.rule),
                (Some(s), None) => format!("{s} ({})", e.rule),
                (None, _) => e.rule.clone(),
            })
            .unwrap_or_default()
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows: Vec<(String, String, String)> = vec![
        ("app_dir".into(), plan.app_dir.clone(), why("app_dir")),
        ("language".into(), opt(&plan.language), why("language")),
        ("framework".into(), opt(&plan.framework), why("framework")),
        ("version".into(), opt(&plan.version), why("version")),
        (
            "package_manager".into(),
            opt(&plan.package_manager),
            why("package_manager"),
        ),
        ("install".into(), opt(&plan.install), why("install")),
        ("build".into(), opt(&plan.build), why("build")),
        ("start".into(), opt(&plan.start), why("start")),
        (
            "port".into(),
            plan.port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            why("port"),
        ),
        (
            "reads PORT".into(),
            if plan.reads_port_env { "yes" } else { "no" }.into(),
            why("reads_port_env"),
        ),
        (
            "health_path".into(),
            opt(&plan.health_path),
            why("health_path"),
        ),
        (
            "static_dir".into(),
            opt(&plan.static_dir),
            why("static_dir"),
        ),
    ];
    // Evidence for the decisions behind `start` (which ASGI server, which subproject or module).
    for field in ["asgi_server", "subproject", "module"] {
        if let Some(e) = plan.evidence_for(field) {
            rows.push((field.into(), e.value.clone(), why(field)));
        }
    }
    if !plan.env_required.is_empty() {
        rows.push((
            "env required".into(),
            plan.env_required.join(", "),
            String::new(),
        ));
    }
    if !plan.env_optional.is_empty() {
        rows.push((
            "env optional".into(),
            plan.env_optional.join(", "),
            String::new(),
        ));
    }
    if let Some(r) = &plan.resources {
        rows.push((
            "resources".into(),
            format!("{} MiB, {} CPU", r.memory_mb, r.cpu),
            why("resources"),
        ));
    }
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    let mut out = String::new();
    for (k, v, e) in rows {
        let line = format!("{k:<w0$}  {v:<w1$}  {e}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !plan.notices.is_empty() {
        out.push_str("\nnotices:\n");
        for n in &plan.notices {
            out.push_str(&format!("  - {n}\n"));
        }
    }
    if !plan.alternatives.is_empty() {
        out.push_str("\nconsidered and not used:\n");
        for a in &plan.alternatives {
            out.push_str(&format!("  - {} = {}: {}\n", a.field, a.value, a.reason));
        }
    }
    if plan.apps.len() > 1 {
        out.push_str("\napps in this repository:\n");
        for a in &plan.apps {
            let mark = if a.dir == plan.app_dir { "*" } else { " " };
            out.push_str(&format!(
                " {mark} {} ({}): {}\n",
                a.dir,
                a.language.as_deref().unwrap_or("?"),
                a.reason
            ));
        }
    }
    out
}
