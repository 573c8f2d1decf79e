//! Human tables and machine JSON for the CLI's results.

use crate::Format;
use serde_json::Value;

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes a command's result to standard output. When nobody reads it any more
/// (`slipway service list | head -1`) the command ends at once with exit code 0, as Unix tools do,
/// instead of panicking; any other write error ends it with an error.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(crate::client::exit::OK);
        }
        drop(out);
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(crate::client::exit::ERROR);
    }
}

/// Writes `text` and a newline to standard output at once; `false` once nobody reads it any more
/// (`slipway logs -f | head`), so a stream can stop instead of panicking.
pub fn line(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
}

/// Writes `text` as it is to standard output; a reader that went away is not an error.
pub fn text(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints rows as aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

pub fn message(format: Format, v: &Value, text: &str) {
    match format {
        Format::Json => json(v),
        Format::Table => outln!("{text}"),
    }
}

pub fn service_detail(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    outln!("name:        {}", s(v, "name"));
    outln!("team:        {}", s(v, "team"));
    outln!("repo_url:    {}", s(v, "repo_url"));
    outln!("template:    {}", s(v, "template"));
    if !v["description"].is_null() {
        outln!("description: {}", s(v, "description"));
    }
    outln!("registered:  {}", s(v, "created_at"));
    match &v["latest_deployment"] {
        Value::Object(_) => {
            let d = &v["latest_deployment"];
            outln!(
                "deployment:  {} {} ({})",
                s(d, "id"),
                s(d, "status"),
                s(d, "environment")
            );
        }
        _ => outln!("deployment:  never deployed"),
    }
    if v["scaffold"].is_object() {
        outln!("scaffold:    {}", scaffold_line(&v["scaffold"]));
    }
    if let Some(arts) = v["artifacts"].as_array() {
        outln!("artifacts:");
        let rows: Vec<Vec<String>> = arts
            .iter()
            .map(|a| {
                vec![
                    s(a, "scope"),
                    s(a, "path"),
                    s(a, "size"),
                    s(a, "sha256").chars().take(12).collect(),
                ]
            })
            .collect();
        table(&["SCOPE", "PATH", "BYTES", "SHA256"], &rows);
    }
}

pub fn service_list(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    vec![
                        s(i, "name"),
                        s(i, "team"),
                        s(i, "template"),
                        s(i, "repo_url"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["NAME", "TEAM", "TEMPLATE", "REPO"], &rows);
    eprintln!("{} of {} services", rows.len(), s(v, "total"));
}

pub fn deployment(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    table(
        &["ID", "SERVICE", "ENV", "REF", "STATUS", "CREATED"],
        &[vec![
            s(v, "id"),
            s(v, "service"),
            s(v, "environment"),
            s(v, "ref"),
            s(v, "status"),
            s(v, "created_at"),
        ]],
    );
}

/// One deployment in full (`deployment show`): its fields, then every state change.
pub fn deployment_detail(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    outln!("deployment:  {}", s(v, "id"));
    outln!("service:     {} ({})", s(v, "service"), s(v, "environment"));
    outln!("ref:         {}", s(v, "ref"));
    outln!("status:      {}", s(v, "status"));
    for (label, key) in [
        ("trigger:     ", "trigger"),
        ("url:         ", "url"),
        ("release:     ", "release_id"),
        ("rollback of: ", "rollback_of"),
        ("commit:      ", "commit_sha"),
        ("replicas:    ", "replicas"),
    ] {
        if !v[key].is_null() {
            outln!("{label}{}", s(v, key));
        }
    }
    outln!("created:     {}", s(v, "created_at"));
    outln!("reason:      {}", s(v, "reason"));
    let rows: Vec<Vec<String>> = v["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    // One line per event; a long reason (a build log's tail) is in full above
                    // when it is the deployment's, and in `-o json`.
                    let reason = s(e, "reason");
                    let mut lines = reason.lines();
                    let first = lines.next().unwrap_or_default().to_owned();
                    let more = if lines.next().is_some() { " …" } else { "" };
                    vec![s(e, "at"), s(e, "status"), format!("{first}{more}")]
                })
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        outln!();
        table(&["AT", "STATUS", "REASON"], &rows);
    }
}

pub fn deployment_list(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    vec![
                        s(d, "id"),
                        s(d, "service"),
                        s(d, "environment"),
                        s(d, "ref"),
                        s(d, "status"),
                        s(d, "created_at"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["ID", "SERVICE", "ENV", "REF", "STATUS", "CREATED"], &rows);
}

/// How a followed deployment ended.
pub fn deployment_outcome(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    outln!("deployment: {}", s(v, "id"));
    outln!("status:     {}", s(v, "status"));
    if !v["url"].is_null() {
        outln!("url:        {}", s(v, "url"));
    }
    if !v["release_id"].is_null() {
        outln!("release:    {}", s(v, "release_id"));
    }
    if !v["commit_sha"].is_null() {
        outln!("commit:     {}", s(v, "commit_sha"));
    }
    outln!("reason:     {}", s(v, "reason"));
}

/// A service's variables in one environment.
pub fn variables(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    let rows: Vec<Vec<String>> = v["variables"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    vec![name.clone(), value]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["NAME", "VALUE"], &rows);
}

/// `pushed main at 1a2b3c4d5e to URL`, `failed (attempt 2) pushing to URL: why`, or `pending`.
fn scaffold_line(p: &Value) -> String {
    match p["status"].as_str() {
        Some("pushed") => format!(
            "pushed {} at {} to {}",
            s(p, "branch"),
            s(p, "commit").chars().take(10).collect::<String>(),
            s(p, "remote")
        ),
        Some("failed") => format!(
            "push failed (attempt {}) to {}: {}",
            s(p, "attempts"),
            s(p, "remote"),
            s(p, "error")
        ),
        _ => format!("push to {} pending", s(p, "remote")),
    }
}

/// The outcome of `slipway service push-scaffold`.
pub fn scaffold_push(format: Format, v: &Value) {
    if format == Format::Json {
        return json(v);
    }
    outln!("{}: {}", s(v, "service"), scaffold_line(v));
}
