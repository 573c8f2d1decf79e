use slipway_core::model::Artifact;
use slipway_golden_paths::{render_registration, Rendered, ServiceSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The service of seed 000's example request.
pub const SAMPLE: ServiceSpec<'static> = ServiceSpec {
    name: "payments",
    team: "core-platform",
    repo_url: "https://github.com/org/payments",
    environment: "dev",
};

/// A repository URL that passed the API's validation but is full of characters that mean
/// something in HCL templates, YAML, Groovy and shell.
pub const TRICKY_REPO_URL: &str = "https://example.com/o/r$x{y}%z${x}%{if}'q'\\b";

pub fn sample() -> Rendered {
    render_registration(&SAMPLE).expect("sample renders")
}

pub fn all_files(rendered: &Rendered) -> impl Iterator<Item = &Artifact> {
    rendered.artifacts.iter().chain(&rendered.platform_files)
}

pub fn text(artifact: &Artifact) -> &str {
    std::str::from_utf8(&artifact.content).expect("generated files are UTF-8")
}

pub fn file<'a>(rendered: &'a Rendered, path: &str) -> &'a str {
    all_files(rendered)
        .find(|a| a.path == path)
        .map(text)
        .unwrap_or_else(|| panic!("no generated file {path}"))
}

/// Writes every file under `dir` at its repository path.
pub fn write_tree(rendered: &Rendered, dir: &Path) {
    for artifact in all_files(rendered) {
        let path = dir.join(&artifact.path);
        std::fs::create_dir_all(path.parent().expect("paths have a parent")).unwrap();
        std::fs::write(&path, &artifact.content).unwrap();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds an external checker on `PATH` (or in `extra_dirs`). When it is absent the check is
/// skipped with a message, but under `CI` a missing checker is a failure: CI must install it.
pub fn checker(name: &str, install_hint: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    find_checker(name, install_hint, extra_dirs, in_ci())
}

/// Like [`checker`], for a tool no reachable package registry provides (Terraform): its check is
/// skipped with a message when it is absent, in CI too.
pub fn optional_checker(name: &str, install_hint: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    find_checker(name, install_hint, extra_dirs, false)
}

fn find_checker(
    name: &str,
    install_hint: &str,
    extra_dirs: &[&str],
    required: bool,
) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate));
    if found.is_none() {
        if required {
            panic!(
                "{name} is required when CI is set but was not found; install it: {install_hint}"
            );
        }
        eprintln!(
            "SKIPPED: {name} not found on PATH; install it to run this check: {install_hint}"
        );
    }
    found
}

/// For a checker that is not an executable (a Python module): skips its check with a message,
/// but under `CI` a missing checker is a failure.
pub fn checker_missing(name: &str, install_hint: &str) {
    if in_ci() {
        panic!("{name} is required when CI is set but was not found; install it: {install_hint}");
    }
    eprintln!("SKIPPED: {name} not found; install it to run this check: {install_hint}");
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a checker and returns its output; a checker that cannot start is a failure.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
