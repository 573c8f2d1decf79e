//! Scaffolded repositories: every template that has one produces a git repository whose app code
//! builds and passes its own unit tests with its own toolchain (where this host has it), and whose
//! Dockerfile finds every file it copies.

use crate::common::{
    checker, describe, free_port, http_get, run, wait_until_listening, ScaffoldServer, SAMPLE,
};
use slipway_golden_paths::{create_repository, ScaffoldFile, TemplateSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
        assert!(
            readme.contains("`http_requests_total`") && readme.contains("`code`"),
            "the README names the metrics the alerts read: {readme}"
        );
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
    assert!(out.contains("Ran 6 tests") && out.contains("\nOK"), "{out}");
    // The health check module the ECS task definition runs imports and fails cleanly when
    // nothing listens.
    let output = run(Command::new(&python)
        .args(["-m", "app.healthcheck"])
        .current_dir(&dir)
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

/// The value of the sample `series` (name and labels exactly) in a Prometheus text exposition.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

#[test]
fn node_api_scaffold_builds_passes_its_tests_and_serves_health_metrics_and_json_logs() {
    let Some(npm) = checker("npm", "Node.js 20 with npm", &[]) else {
        return;
    };
    let node = checker("node", "Node.js 20 with npm", &[]).expect("npm comes with node");
    let parent = scaffolded_repository("node-api");
    let dir = parent.path().join("repo");
    // The TypeScript toolchain comes from the registry, exactly the versions the lockfile pins.
    run_in(&dir, &npm, &["ci"]);
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package-lock.json")).unwrap())
            .unwrap();
    assert_eq!(lock["lockfileVersion"], 3);
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    for name in ["typescript", "@types/node"] {
        let pinned = package["devDependencies"][name].as_str().unwrap();
        assert!(
            pinned.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "{name} is not pinned exactly: {pinned}"
        );
        assert_eq!(
            lock["packages"][format!("node_modules/{name}")]["version"],
            pinned
        );
        let installed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("node_modules/{name}/package.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(installed["version"], pinned, "{name}");
    }
    run_in(&dir, &npm, &["run", "build"]);
    for file in ["server.js", "app.js", "config.js", "healthcheck.js"] {
        assert!(dir.join("dist").join(file).is_file(), "dist/{file}");
    }
    assert!(
        !dir.join("dist/app.test.js").exists(),
        "the tests are not part of the build"
    );
    let out = run_in(&dir, &npm, &["test"]);
    assert!(
        out.contains("# pass 10") && out.contains("# fail 0"),
        "{out}"
    );
    // What the build and the tests write is ignored by git.
    let status = run(Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["status", "--porcelain"]));
    assert!(status.stdout.is_empty(), "{}", describe(&status));
    // The Dockerfile runs what the package's start script runs, and both exist after the build.
    let dockerfile = text(&scaffold("node-api"), "Dockerfile");
    assert!(
        dockerfile.contains("\nCMD [\"node\", \"dist/server.js\"]\n"),
        "{dockerfile}"
    );
    assert_eq!(package["scripts"]["start"], "node dist/server.js");

    // The built server on a free port: health, metrics, one JSON object per log line, and a
    // graceful stop on SIGTERM.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = ScaffoldServer::spawn(
        Command::new(&node)
            .arg("dist/server.js")
            .current_dir(&dir)
            .env("PORT", port.to_string()),
    );
    let listening = server.line_where(Duration::from_secs(20), |e| e["message"] == "listening");
    assert_eq!(listening["port"], port);
    assert_eq!(listening["service"], "payments");
    assert_eq!(listening["level"], "info");

    assert_eq!(
        http_get(port, "/health"),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    let logged = server.line_where(Duration::from_secs(5), |e| e["message"] == "request");
    assert_eq!(logged["path"], "/health");
    assert_eq!(logged["status"], 200);
    assert!(logged["time"].as_str().unwrap().ends_with('Z'), "{logged}");
    assert_eq!(http_get(port, "/nowhere").0, 404);
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            r#"http_requests_total{method="GET",path="/health",code="200"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_requests_total{method="GET",path="other",code="404"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_request_duration_seconds_bucket{method="GET",path="/health",code="200",le="+Inf"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "process_resident_memory_bytes").is_some_and(|v| v > 0.0),
        "{metrics}"
    );

    // The health check the ECS task definition runs: 0 against the server, 1 with nothing there.
    let health = |port: u16| {
        run(Command::new(&node)
            .arg("dist/healthcheck.js")
            .current_dir(&dir)
            .env("PORT", port.to_string()))
    };
    let ok = health(port);
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    let down = health(1);
    assert_eq!(down.status.code(), Some(1), "{}", describe(&down));

    let pid = server.child.id().to_string();
    let kill = run(Command::new("kill").args(["-TERM", &pid]));
    assert!(kill.status.success(), "{}", describe(&kill));
    server.line_where(Duration::from_secs(10), |e| e["message"] == "stopped");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0), "a SIGTERM is a clean stop");
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
    assert!(out.contains("test result: ok. 5 passed"), "{out}");
    assert!(out.contains("test result: ok. 1 passed"), "{out}");
    // The health check subcommand the task definition runs fails cleanly when nothing listens.
    let output = run(Command::new(parent.path().join("target/release/service"))
        .arg("healthcheck")
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn go_api_scaffold_passes_vet_and_its_own_tests_without_a_module_proxy() {
    // .ci/run installs Debian's golang-go: required in CI, skipped with a message elsewhere.
    let Some(go) = crate::common::checker("go", "Go 1.19 or newer (Debian golang-go)", &[]) else {
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
    assert_eq!(out.matches("--- PASS").count(), 5, "{out}");
    go_in(&["build", "-o", "bin/service", "."]);
    let output = run(Command::new(dir.join("bin/service"))
        .arg("healthcheck")
        .env("PORT", "1"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

/// The route each crash test adds to its own copy of a scaffold: it raises, throws or panics.
const FAILING_ROUTE: &str = "/boom";

/// The observability contract for a handler that fails, on a running scaffold with
/// [`FAILING_ROUTE`] added: each request to it answers 500, the process keeps serving, the
/// failure is logged as a JSON `error` line, and `/metrics` counts the requests with
/// `code="500"` in the counter and in the latency histogram, by the series and labels the
/// generated alerts read (docs/templates.md, "Metrics a service exports").
fn a_failing_route_is_a_counted_500(template: &str, server: &mut ScaffoldServer, port: u16) {
    wait_until_listening(server, port);
    for _ in 0..2 {
        let (status, body) = http_get(port, FAILING_ROUTE);
        assert_eq!(status, 500, "{template}: {body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"error": "internal error"}),
            "{template}: the cause stays in the log"
        );
    }
    let failed = server.line_where(Duration::from_secs(10), |e| e["level"] == "error");
    assert!(
        failed.to_string().contains("deliberate failure"),
        "{template}: {failed}"
    );
    assert_eq!(http_get(port, "/health").0, 200, "{template}");
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{template}");
    let failed = format!("method=\"GET\",path=\"{FAILING_ROUTE}\",code=\"500\"");
    for series in [
        format!("http_requests_total{{{failed}}}"),
        format!("http_request_duration_seconds_count{{{failed}}}"),
        format!("http_request_duration_seconds_bucket{{{failed},le=\"+Inf\"}}"),
    ] {
        assert_eq!(
            sample(&metrics, &series),
            Some(2.0),
            "{template}: {series} in\n{metrics}"
        );
    }
    // The series and label names the generated alerts and dashboards read, as the python-api
    // scaffold's that `promtool test rules` runs on.
    let samples = crate::observability::parse_exposition(&metrics);
    for &(name, labels) in crate::observability::HTTP_CONTRACT {
        let found: std::collections::BTreeSet<String> = samples
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.labels.iter().map(|(k, _)| k.clone()))
            .collect();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>().join(" "),
            labels,
            "{template}: {name} in\n{metrics}"
        );
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "{template}: the process died"
    );
}

/// Puts `insert` before `anchor` in the file `path` under `dir`. The anchor must occur exactly
/// once, so a change of the scaffold that moves it fails here instead of testing an app without
/// the failing route.
fn insert_before(dir: &Path, path: &str, anchor: &str, insert: &str) {
    let file = dir.join(path);
    let source = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        source.matches(anchor).count(),
        1,
        "{path}: {anchor:?} is not there exactly once"
    );
    std::fs::write(&file, source.replace(anchor, &format!("{insert}{anchor}"))).unwrap();
}

#[test]
fn python_api_scaffold_answers_500_to_a_route_that_raises_and_counts_it() {
    let Some(python) = checker("python3", "Python 3.11 or newer", &[]) else {
        return;
    };
    let parent = scaffolded_repository("python-api");
    let dir = parent.path().join("repo");
    let app = dir.join("app/__init__.py");
    let mut source = std::fs::read_to_string(&app).unwrap();
    source += &format!(
        "\n\ndef _deliberate_failure(handler):\n    raise RuntimeError(\"deliberate failure\")\n\n\nROUTES[{FAILING_ROUTE:?}] = _deliberate_failure\n"
    );
    std::fs::write(&app, source).unwrap();
    let port = free_port();
    let mut server = ScaffoldServer::spawn(
        Command::new(&python)
            .args(["-m", "app"])
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    a_failing_route_is_a_counted_500("python-api", &mut server, port);
}

#[test]
fn node_api_scaffold_answers_500_to_a_route_that_throws_and_counts_it() {
    let Some(npm) = checker("npm", "Node.js 20 with npm", &[]) else {
        return;
    };
    let node = checker("node", "Node.js 20 with npm", &[]).expect("npm comes with node");
    let parent = scaffolded_repository("node-api");
    let dir = parent.path().join("repo");
    let app = dir.join("src/app.ts");
    let mut source = std::fs::read_to_string(&app).unwrap();
    source += &format!(
        "\nROUTES.set({FAILING_ROUTE:?}, () => {{\n  throw new Error(\"deliberate failure\");\n}});\n"
    );
    std::fs::write(&app, source).unwrap();
    run_in(&dir, &npm, &["ci"]);
    run_in(&dir, &npm, &["run", "build"]);
    let port = free_port();
    let mut server = ScaffoldServer::spawn(
        Command::new(&node)
            .arg("dist/server.js")
            .current_dir(&dir)
            .env("PORT", port.to_string()),
    );
    a_failing_route_is_a_counted_500("node-api", &mut server, port);
}

#[test]
fn rust_api_scaffold_answers_500_to_a_route_that_panics_and_counts_it() {
    let Some(cargo) = checker("cargo", "a Rust toolchain (rustup)", &[]) else {
        return;
    };
    let parent = scaffolded_repository("rust-api");
    let dir = parent.path().join("repo");
    insert_before(
        &dir,
        "src/lib.rs",
        "    (\"/health\", |_| {",
        &format!("    ({FAILING_ROUTE:?}, |_| panic!(\"deliberate failure\")),\n"),
    );
    let target = parent.path().join("target");
    run_in(
        &dir,
        &cargo,
        &[
            "build",
            "--locked",
            "--offline",
            "--target-dir",
            target.to_str().unwrap(),
        ],
    );
    let port = free_port();
    let mut server = ScaffoldServer::spawn(
        Command::new(target.join("debug/service"))
            .current_dir(&dir)
            .env("PORT", port.to_string()),
    );
    a_failing_route_is_a_counted_500("rust-api", &mut server, port);
}

#[test]
fn go_api_scaffold_answers_500_to_a_route_that_panics_and_counts_it() {
    // .ci/run installs Debian's golang-go: required in CI, skipped with a message elsewhere.
    let Some(go) = crate::common::checker("go", "Go 1.19 or newer (Debian golang-go)", &[]) else {
        return;
    };
    let parent = scaffolded_repository("go-api");
    let dir = parent.path().join("repo");
    // Package main's variables are initialised before its init functions run.
    std::fs::write(
        dir.join("boom.go"),
        format!(
            "package main\n\nimport \"net/http\"\n\nfunc init() {{\n\troutes[{FAILING_ROUTE:?}] = func(*http.Request, *Metrics) (int, string, string) {{\n\t\tpanic(\"deliberate failure\")\n\t}}\n}}\n"
        ),
    )
    .unwrap();
    let cache = parent.path().join("cache");
    let build = run(Command::new(&go)
        .args(["build", "-o", "bin/service", "."])
        .current_dir(&dir)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", cache.join("build"))
        .env("GOPATH", cache.join("path")));
    assert!(build.status.success(), "go build:\n{}", describe(&build));
    let port = free_port();
    let mut server = ScaffoldServer::spawn(
        Command::new(dir.join("bin/service"))
            .current_dir(&dir)
            .env("PORT", port.to_string()),
    );
    a_failing_route_is_a_counted_500("go-api", &mut server, port);
}
