//! Scaffolded repositories: every template that has one produces a git repository whose app code
//! builds and passes its own unit tests with its own toolchain (where this host has it), and whose
//! Dockerfile finds every file it copies.

use crate::common::{checker, describe, run, SAMPLE};
use slipway_golden_paths::{create_repository, ScaffoldFile, TemplateSet};
use std::path::Path;
use std::process::Command;

fn scaffold(template: &str) -> Vec<ScaffoldFile> {
    TemplateSet::builtin()
        .unwrap()
        .scaffold(&SAMPLE, template)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn text(files: &[ScaffoldFile], path: &str) -> String {
    let file = files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(file.content.clone()).unwrap()
}

fn scaffolded_repository(template: &str) -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("repo");
    create_repository(&dir, &scaffold(template), "scaffold").unwrap();
    parent
}

#[test]
fn templates_with_a_scaffold() {
    let set = TemplateSet::builtin().unwrap();
    let with: Vec<_> = set
        .names()
        .into_iter()
        .filter(|n| set.can_scaffold(n))
        .collect();
    assert_eq!(with, ["go-api", "node-api", "python-api", "rust-api"]);
    let err = set.scaffold(&SAMPLE, "default").unwrap_err().to_string();
    assert!(
        err.contains("go-api, node-api, python-api, rust-api"),
        "{err}"
    );
}

#[test]
fn a_scaffold_has_app_code_tests_dockerfile_and_readme_and_is_deterministic() {
    for template in ["go-api", "node-api", "python-api", "rust-api"] {
        let files = scaffold(template);
        assert_eq!(files, scaffold(template), "{template} is deterministic");
        for path in ["Dockerfile", ".dockerignore", "README.md", "slipway.toml"] {
            assert!(
                files.iter().any(|f| f.path == path),
                "{template} lacks {path}"
            );
        }
        let readme = text(&files, "README.md");
        assert!(readme.starts_with("# payments\n"), "{readme}");
        assert!(readme.contains("/metrics"), "{readme}");
        // Every file the Dockerfile copies from the build context is in the repository.
        let dockerfile = text(&files, "Dockerfile");
        for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
            let words: Vec<_> = line.split_whitespace().skip(1).collect();
            if words.iter().any(|w| w.starts_with("--from")) {
                continue;
            }
            for source in &words[..words.len() - 1] {
                let source = source.trim_end_matches('/');
                if source == "." {
                    continue;
                }
                assert!(
                    files
                        .iter()
                        .any(|f| f.path == source || f.path.starts_with(&format!("{source}/"))),
                    "{template}: the Dockerfile copies {source}, which the scaffold lacks"
                );
            }
        }
    }
}

#[test]
fn the_repository_has_one_commit_with_every_file() {
    let parent = scaffolded_repository("python-api");
    let dir = parent.path().join("repo");
    let log = run(Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["log", "--format=%an %s"]));
    assert_eq!(String::from_utf8_lossy(&log.stdout), "Slipway scaffold\n");
    let tree =
        run(Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["ls-tree", "-r", "--name-only", "HEAD"]));
    let committed: Vec<_> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<_> = scaffold("python-api").into_iter().map(|f| f.path).collect();
    assert_eq!(committed, expected);
    let status = run(Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["status", "--porcelain"]));
    assert!(status.stdout.is_empty(), "{}", describe(&status));

    // An existing directory is refused and left alone.
    let err = create_repository(&dir, &scaffold("python-api"), "again").unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    assert!(dir.join(".git").is_dir());
}

#[test]
fn a_path_that_leaves_the_repository_is_refused_and_nothing_stays() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("repo");
    for bad in ["../escape", "/etc/x", "", "a/../../b"] {
        let files = [ScaffoldFile {
            path: bad.to_string(),
            content: b"x".to_vec(),
        }];
        assert!(create_repository(&dir, &files, "m").is_err(), "{bad:?}");
        assert!(!dir.exists(), "{bad:?} left the directory behind");
    }
    assert!(!parent.path().join("escape").exists());
}

fn run_in(dir: &Path, program: &Path, args: &[&str]) -> String {
    let output = run(Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("npm_config_offline", "true")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_update_notifier", "false"));
    assert!(
        output.status.success(),
        "{} {args:?} failed in {}:\n{}",
        program.display(),
        dir.display(),
        describe(&output)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn python_api_scaffold_passes_its_own_tests() {
    let Some(python) = checker("python3", "Python 3.11 or newer", &[]) else {
        return;
    };
    let parent = scaffolded_repository("python-api");
    let dir = parent.path().join("repo");
    let out = run_in(
        &dir,
        &python,
        &["-m", "unittest", "discover", "-s", "tests", "-v"],
    );
    assert!(out.contains("Ran 5 tests") && out.contains("\nOK"), "{out}");
    // The health check module the ECS task definition runs imports and fails cleanly when
    // nothing listens.
    let output = run(Command::new(&python)
        .args(["-m", "app.healthcheck"])
        .current_dir(&dir)
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn node_api_scaffold_builds_and_passes_its_own_tests() {
    let Some(npm) = checker("npm", "Node.js 20 with npm", &[]) else {
        return;
    };
    let parent = scaffolded_repository("node-api");
    let dir = parent.path().join("repo");
    run_in(&dir, &npm, &["ci"]);
    run_in(&dir, &npm, &["run", "build"]);
    let out = run_in(&dir, &npm, &["test"]);
    assert!(
        out.contains("# pass 5") && out.contains("# fail 0"),
        "{out}"
    );
    assert!(dir.join("dist/index.js").is_file());
    assert!(dir.join("dist/healthcheck.js").is_file());
}

#[test]
fn rust_api_scaffold_builds_and_passes_its_own_tests() {
    let Some(cargo) = checker("cargo", "a Rust toolchain (rustup)", &[]) else {
        return;
    };
    let parent = scaffolded_repository("rust-api");
    let dir = parent.path().join("repo");
    let target = parent.path().join("target");
    let target = target.to_str().unwrap();
    // --locked: the committed Cargo.lock is complete; --offline: nothing is downloaded.
    run_in(
        &dir,
        &cargo,
        &[
            "build",
            "--release",
            "--locked",
            "--offline",
            "--target-dir",
            target,
        ],
    );
    let out = run_in(
        &dir,
        &cargo,
        &["test", "--locked", "--offline", "--target-dir", target],
    );
    assert!(out.contains("test result: ok. 4 passed"), "{out}");
    assert!(out.contains("test result: ok. 1 passed"), "{out}");
    // The health check subcommand the task definition runs fails cleanly when nothing listens.
    let output = run(Command::new(parent.path().join("target/release/service"))
        .arg("healthcheck")
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn go_api_scaffold_passes_vet_and_its_own_tests_without_a_module_proxy() {
    // Go is not a checker CI installs: without it the test is skipped, in CI too.
    let Some(go) =
        crate::common::optional_checker("go", "Go 1.19 or newer (Debian golang-go)", &[])
    else {
        return;
    };
    let parent = scaffolded_repository("go-api");
    let dir = parent.path().join("repo");
    let cache = parent.path().join("cache");
    let go_in = |args: &[&str]| {
        let output = run(Command::new(&go)
            .args(args)
            .current_dir(&dir)
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", cache.join("build"))
            .env("GOPATH", cache.join("path")));
        assert!(
            output.status.success(),
            "go {args:?}:\n{}",
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    // gofmt ships next to go: every file is formatted.
    let gofmt = std::fs::canonicalize(&go).unwrap().with_file_name("gofmt");
    let unformatted = run(Command::new(&gofmt).args(["-l", "."]).current_dir(&dir));
    assert!(
        unformatted.status.success() && unformatted.stdout.is_empty(),
        "gofmt -l:\n{}",
        describe(&unformatted)
    );
    go_in(&["vet", "./..."]);
    let out = go_in(&["test", "-v", "./..."]);
    assert_eq!(out.matches("--- PASS").count(), 4, "{out}");
    go_in(&["build", "-o", "bin/service", "."]);
    let output = run(Command::new(dir.join("bin/service"))
        .arg("healthcheck")
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}
