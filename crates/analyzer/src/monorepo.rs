//! Monorepos: every app directory, from declared workspaces and from sub-directories with their
//! own manifest.

use std::collections::BTreeMap;

use crate::detect::node;
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
    scan(fs, "", 1, false, &mut dirs);
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

/// Files that make a directory a Python app.
const PYTHON_MANIFESTS: &[&str] = &[
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
    "manage.py",
    "app.py",
    "main.py",
    "server.py",
];
/// Manifests that are only a Python script, which a package of an app also has.
const PYTHON_SCRIPTS: &[&str] = &["manage.py", "app.py", "main.py", "server.py"];

/// `in_python_app`: `dir` is, or is inside, a Python app directory (the root included).
fn scan(
    fs: &dyn RepoFs,
    dir: &str,
    depth: usize,
    in_python_app: bool,
    out: &mut BTreeMap<String, String>,
) {
    if depth > SCAN_DEPTH || out.len() >= MAX_APPS {
        return;
    }
    let in_python_app = in_python_app || PYTHON_MANIFESTS.iter().any(|m| fs.is_file(&join(dir, m)));
    for e in fs.list(dir).unwrap_or_default() {
        if e.kind != EntryKind::Dir || e.name.starts_with('.') || SKIP.contains(&e.name.as_str()) {
            continue;
        }
        let sub = join(dir, &e.name);
        let found: Vec<&str> = MANIFESTS
            .iter()
            .copied()
            .filter(|m| fs.is_file(&join(&sub, m)))
            .collect();
        if let Some(m) = found.first() {
            if !(in_python_app && python_package(fs, &sub, &e.name, &found)) {
                out.entry(sub.clone()).or_insert_with(|| join(&sub, m));
            }
        }
        scan(fs, &sub, depth + 1, in_python_app, out);
    }
}

/// Whether `dir` (named `name`, holding the manifests `found`), inside a Python app, is that
/// app's importable package rather than an app of its own: it has nothing but Python scripts
/// (`main.py`, `app.py`, ...) and is a package — an `__init__.py`, or scripts importing the
/// directory as a package (`from app.core import …`, `from . import …`), which work only when
/// run from the directory above (`uvicorn app.main:app` in fastapi/full-stack-fastapi-template's
/// `backend/`).
fn python_package(fs: &dyn RepoFs, dir: &str, name: &str, found: &[&str]) -> bool {
    if !found.iter().all(|m| PYTHON_SCRIPTS.contains(m)) {
        return false;
    }
    if fs.is_file(&join(dir, "__init__.py")) {
        return true;
    }
    let own = [format!("from {name}."), format!("import {name}.")];
    found.iter().any(|m| {
        fs.read_text(&join(dir, m))
            .ok()
            .flatten()
            .is_some_and(|text| {
                text.lines().map(str::trim_start).any(|l| {
                    l.starts_with("from .") || own.iter().any(|p| l.starts_with(p.as_str()))
                })
            })
    })
}

/// Workspace declarations: package.json `workspaces`, pnpm-workspace.yaml, Cargo `[workspace]`,
/// uv `[tool.uv.workspace]`, go.work.
fn declared(fs: &dyn RepoFs) -> Vec<(String, String)> {
    let mut patterns: Vec<(String, &str)> = Vec::new();
    let npm = fs
        .read_text("package.json")
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|pkg| node::package_json_workspaces(&pkg));
    for p in npm.into_iter().flatten() {
        patterns.push((p, "package.json workspaces"));
    }
    let pnpm = fs.read_text("pnpm-workspace.yaml").ok().flatten();
    for p in pnpm.iter().flat_map(|t| node::pnpm_workspace_packages(t)) {
        patterns.push((p, "pnpm-workspace.yaml packages"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFs;

    fn dirs(files: &[(&str, &str)]) -> Vec<String> {
        list_apps(&MemFs::from_files(files.iter().copied()))
            .into_iter()
            .map(|a| a.dir)
            .collect()
    }

    const FASTAPI: &str = "from fastapi import FastAPI\n\napp = FastAPI()\n";

    #[test]
    fn a_python_apps_own_package_is_not_another_app() {
        // fastapi/full-stack-fastapi-template: backend/ is the app, backend/app/ its package.
        let backend = [
            (
                "pyproject.toml",
                "[tool.uv.workspace]\nmembers = [\"backend\"]\n",
            ),
            (
                "backend/pyproject.toml",
                "[project]\nname = \"app\"\ndependencies = [\"fastapi\"]\n",
            ),
            ("backend/app/__init__.py", ""),
            ("backend/app/main.py", FASTAPI),
        ];
        assert_eq!(dirs(&backend), ["backend"]);
        // Without __init__.py (a namespace package), the script importing its own directory as
        // a package (`from app.core import …`) says the same: it runs from the directory above.
        let namespace = [
            ("backend/requirements.txt", "fastapi\n"),
            (
                "backend/app/main.py",
                "from fastapi import FastAPI\nfrom app.core.config import settings\n\napp = FastAPI()\n",
            ),
        ];
        assert_eq!(dirs(&namespace), ["backend"]);
        // The repository root as the Python app: its package is not listed either.
        let root = [
            ("pyproject.toml", "[project]\nname = \"svc\"\n"),
            ("svc/__init__.py", ""),
            ("svc/main.py", FASTAPI),
        ];
        assert!(dirs(&root).is_empty(), "{:?}", dirs(&root));
    }

    #[test]
    fn nested_apps_of_their_own_stay_listed() {
        let files = [
            ("backend/requirements.txt", "fastapi\n"),
            ("backend/main.py", FASTAPI),
            // Its own manifest: a separate project inside the app.
            ("backend/worker/__init__.py", ""),
            ("backend/worker/requirements.txt", "celery\n"),
            ("backend/worker/main.py", "print(1)\n"),
            // Another ecosystem inside a Python app.
            (
                "backend/frontend/package.json",
                r#"{"scripts":{"start":"node a.js"}}"#,
            ),
            // A script directory that is not a package, inside a Python app.
            ("backend/tools/app.py", "print(1)\n"),
            // A package with a script, but not inside a Python app.
            ("scripts/__init__.py", ""),
            ("scripts/main.py", "print(1)\n"),
        ];
        assert_eq!(
            dirs(&files),
            [
                "backend",
                "backend/frontend",
                "backend/tools",
                "backend/worker",
                "scripts"
            ]
        );
    }
}
