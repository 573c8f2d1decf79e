//! Monorepos: every app directory, from declared workspaces and from sub-directories with their
//! own manifest.

use std::collections::BTreeMap;

use crate::fs::{join, EntryKind, RepoFs};
use crate::plan::AppCandidate;

const MANIFESTS: &[&str] = &[
    "slipway.toml",
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "manage.py",
    "app.py",
    "main.py",
    "server.py",
    "go.mod",
    "Cargo.toml",
    "Gemfile",
    "composer.json",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "Procfile",
    "score.yaml",
];
const SKIP: &[&str] = &[
    "node_modules",
    "vendor",
    "target",
    "dist",
    "build",
    "venv",
    "__pycache__",
    "test",
    "tests",
    "fixtures",
    "testdata",
    "docs",
    "examples",
    "coverage",
];
/// Directories deeper than this are not searched for undeclared apps.
const SCAN_DEPTH: usize = 2;
const MAX_APPS: usize = 100;

/// Every candidate app directory below the root, with why it is one and whether it is deployable.
pub(crate) fn list_apps(fs: &dyn RepoFs) -> Vec<AppCandidate> {
    let mut dirs: BTreeMap<String, String> = BTreeMap::new();
    for (dir, source) in declared(fs) {
        dirs.entry(dir).or_insert(source);
    }
    scan(fs, "", 1, &mut dirs);
    dirs.into_iter()
        .take(MAX_APPS)
        .map(|(dir, source)| match crate::analyze_app(fs, &dir, false) {
            Ok(plan) => AppCandidate {
                reason: match (&plan.start, &plan.static_dir) {
                    (Some(s), _) => format!("start: {s}"),
                    (None, Some(d)) => format!("static files in {d}"),
                    (None, None) => "nothing to start".into(),
                },
                deployable: true,
                language: plan.language,
                dir,
                source,
            },
            Err(e) => AppCandidate {
                language: None,
                deployable: false,
                reason: e.to_string(),
                dir,
                source,
            },
        })
        .collect()
}

fn scan(fs: &dyn RepoFs, dir: &str, depth: usize, out: &mut BTreeMap<String, String>) {
    if depth > SCAN_DEPTH || out.len() >= MAX_APPS {
        return;
    }
    for e in fs.list(dir).unwrap_or_default() {
        if e.kind != EntryKind::Dir || e.name.starts_with('.') || SKIP.contains(&e.name.as_str()) {
            continue;
        }
        let sub = join(dir, &e.name);
        if let Some(m) = MANIFESTS.iter().find(|m| fs.is_file(&join(&sub, m))) {
            out.entry(sub.clone()).or_insert_with(|| join(&sub, m));
        }
        scan(fs, &sub, depth + 1, out);
    }
}

/// Workspace declarations: package.json `workspaces`, pnpm-workspace.yaml, Cargo `[workspace]`,
/// uv `[tool.uv.workspace]`, go.work.
fn declared(fs: &dyn RepoFs) -> Vec<(String, String)> {
    let mut patterns: Vec<(String, &str)> = Vec::new();
    if let Some(pkg) = fs
        .read_text("package.json")
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        let ws = pkg.get("workspaces");
        let list = ws.and_then(|w| w.as_array()).or_else(|| {
            ws.and_then(|w| w.get("packages"))
                .and_then(|p| p.as_array())
        });
        for p in list.into_iter().flatten().filter_map(|p| p.as_str()) {
            patterns.push((p.to_owned(), "package.json workspaces"));
        }
    }
    if let Some(ws) = fs
        .read_text("pnpm-workspace.yaml")
        .ok()
        .flatten()
        .and_then(|t| serde_norway::from_str::<serde_json::Value>(&t).ok())
    {
        for p in ws
            .get("packages")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
        {
            patterns.push((p.to_owned(), "pnpm-workspace.yaml packages"));
        }
    }
    if let Some(cargo) = fs
        .read_text("Cargo.toml")
        .ok()
        .flatten()
        .and_then(|t| t.parse::<toml::Table>().ok())
    {
        let members = cargo
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array());
        for p in members.into_iter().flatten().filter_map(|p| p.as_str()) {
            patterns.push((p.to_owned(), "Cargo.toml [workspace] members"));
        }
    }
    if let Some(py) = fs
        .read_text("pyproject.toml")
        .ok()
        .flatten()
        .and_then(|t| t.parse::<toml::Table>().ok())
    {
        let members = py
            .get("tool")
            .and_then(|t| t.get("uv"))
            .and_then(|u| u.get("workspace"))
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array());
        for p in members.into_iter().flatten().filter_map(|p| p.as_str()) {
            patterns.push((p.to_owned(), "pyproject.toml [tool.uv.workspace] members"));
        }
    }
    if let Some(work) = fs.read_text("go.work").ok().flatten() {
        let mut in_block = false;
        for l in work.lines() {
            let t = l.trim();
            if t.starts_with("use (") {
                in_block = true;
            } else if in_block && t == ")" {
                in_block = false;
            } else if in_block || t.starts_with("use ") {
                let p = t.trim_start_matches("use ").trim();
                if !p.is_empty() && p != "(" {
                    patterns.push((p.to_owned(), "go.work use"));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (pattern, source) in patterns {
        if pattern.starts_with('!') {
            continue;
        }
        let Ok(pattern) = crate::fs::normalize(&pattern) else {
            continue;
        };
        match pattern.split_once('*') {
            Some((prefix, _)) => {
                let base = prefix.trim_end_matches('/');
                for e in fs.list(base).unwrap_or_default() {
                    if e.kind == EntryKind::Dir && !e.name.starts_with('.') {
                        out.push((join(base, &e.name), source.to_owned()));
                    }
                }
            }
            None if !pattern.is_empty() && fs.is_dir(&pattern) => {
                out.push((pattern, source.to_owned()))
            }
            None => {}
        }
    }
    out
}
