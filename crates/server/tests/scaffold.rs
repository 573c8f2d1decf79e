//! `"scaffold": true` at registration: Slipway creates the service's repository under its data
//! directory, registers it with that path as `repo_url` (or pushes it to the `repo_url` given),
//! and the engine deploys it.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_scaffolded_service_gets_a_committed_repository_as_its_repo_url() {
    // AppState::new: --allow-local-repos is off, and a scaffold is accepted all the same.
    let s = TestServer::start().await;
    assert!(!s.state.allow_local_repos);
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dir = s.dir.path().join("scaffolds/ledger");
    assert_eq!(body["repo_url"], dir.to_str().unwrap());
    assert_eq!(body["template"], "python-api");

    assert_eq!(
        git(&dir, &["log", "--format=%an|%s"]).trim(),
        "Slipway|Scaffold ledger from the python-api golden path"
    );
    let files = git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
    for path in [
        "Dockerfile",
        ".dockerignore",
        "README.md",
        "app/__init__.py",
        "tests/test_app.py",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not committed:\n{files}"
        );
    }
    // The Dockerfile is the one registered as the service's artifact.
    let (st, _, dockerfile) = s
        .get_text("/api/v1/services/ledger/artifacts/Dockerfile?scope=service")
        .await;
    assert_eq!(st, 200);
    assert_eq!(dockerfile, git(&dir, &["show", "HEAD:Dockerfile"]));

    // Taken name: 409, and the existing repository is left alone.
    let (status, problem) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(dir.join(".git").is_dir());
    s.stop().await;
}

#[tokio::test]
async fn a_directory_already_there_is_moved_aside_and_replaced() {
    let s = TestServer::start().await;
    // What a crash between creating the repository and registering the service leaves.
    let dir = s.dir.path().join("scaffolds/ledger");
    std::fs::create_dir_all(dir.join("half")).unwrap();
    std::fs::write(dir.join("half/written"), "x").unwrap();
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "go-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!dir.join("half").exists());
    // Moved aside, never deleted: it could be a deleted service's repository with real work.
    let aside: Vec<_> = std::fs::read_dir(s.dir.path().join("scaffolds/.replaced"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].join("half/written").is_file());
    assert!(aside[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("ledger-"));
    let files = git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(files.lines().any(|l| l == "main.go"), "{files}");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    s.stop().await;
}

#[tokio::test]
async fn bad_scaffold_requests_change_nothing() {
    let s = TestServer::start().await;
    for (body, field) in [
        (json!({"name": "a", "team": "t"}), "repo_url"),
        (
            json!({"name": "a", "team": "t", "scaffold": true}),
            "template",
        ),
        (
            json!({"name": "a", "team": "t", "template": "static-site", "scaffold": true}),
            "template",
        ),
        // A remote must pass the rules of any repository URL, before anything is created.
        (
            json!({"name": "a", "team": "t", "template": "python-api", "scaffold": true,
                   "repo_url": "http://github.com/o/a"}),
            "repo_url",
        ),
        (
            json!({"name": "a", "team": "t", "template": "python-api", "scaffold": true,
                   "repo_url": "https://10.0.0.1/o/a"}),
            "repo_url",
        ),
        (
            json!({"name": "a", "team": "t", "template": "python-api", "scaffold": true,
                   "repo_url": "ssh://git@169.254.169.254/o/a"}),
            "repo_url",
        ),
        // Local paths only with --allow-local-repos (off here).
        (
            json!({"name": "a", "team": "t", "template": "python-api", "scaffold": true,
                   "repo_url": "/srv/git/a.git"}),
            "repo_url",
        ),
        (
            json!({"name": "A", "team": "t", "template": "python-api", "scaffold": true}),
            "name",
        ),
    ] {
        let (status, problem) = s.post("/api/v1/services", body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {problem}"
        );
    }
    assert!(!s.dir.path().join("scaffolds").join("a").exists());
    assert!(!s.dir.path().join("scaffolds").exists());
    let (_, list) = s.get("/api/v1/services").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    s.stop().await;
}

/// An empty bare repository outside the data directory, as a team's new remote.
fn bare_remote(root: &std::path::Path) -> std::path::PathBuf {
    let bare = root.join("ledger.git");
    git(root, &["init", "--quiet", "--bare", "ledger.git"]);
    bare
}

fn remote_heads(bare: &std::path::Path) -> String {
    git(bare, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

#[tokio::test]
async fn a_scaffold_with_a_remote_is_pushed_there_and_the_remote_becomes_its_repo_url() {
    // The engine's settings: local repositories allowed (as `--allow-local-repos`).
    let s = TestServer::start_engine().await;
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_remote(remotes.path());
    let url = bare.to_str().unwrap();
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api",
                   "scaffold": true, "repo_url": url}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["repo_url"], url);
    assert_eq!(body["scaffold"]["status"], "pushed", "{body}");
    assert_eq!(body["scaffold"]["branch"], "main");
    assert_eq!(body["scaffold"]["attempts"], 1);
    assert!(body["scaffold"]["error"].is_null(), "{body}");

    // The working copy stays under the data directory; the remote has its commit and files,
    // on main only.
    let dir = s.dir.path().join("scaffolds/ledger");
    let head = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(body["scaffold"]["commit"], head.as_str());
    assert_eq!(
        remote_heads(&bare).trim(),
        format!("refs/heads/main {head}")
    );
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    for path in [
        "Dockerfile",
        "README.md",
        "app/__init__.py",
        "tests/test_app.py",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not pushed:\n{files}"
        );
    }
    let (status, detail) = s.get("/api/v1/services/ledger").await;
    assert_eq!(status, 200);
    assert_eq!(detail["scaffold"], body["scaffold"]);

    // A retry of a pushed scaffold changes nothing and says so.
    let (status, again) = s
        .post("/api/v1/services/ledger/scaffold/push", json!(null))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["status"].as_str(), again["commit"].as_str()),
        (Some("pushed"), Some(head.as_str()))
    );
    assert_eq!(
        remote_heads(&bare).trim(),
        format!("refs/heads/main {head}")
    );

    // A service that was not scaffolded with a remote has nothing to push.
    let (status, _) = s
        .post(
            "/api/v1/services",
            json!({"name": "plain", "team": "finance", "template": "go-api", "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, problem) = s
        .post("/api/v1/services/plain/scaffold/push", json!(null))
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = s
        .post("/api/v1/services/ghost/scaffold/push", json!(null))
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test]
async fn a_refused_push_keeps_the_service_shows_the_error_and_a_retry_works() {
    let s = TestServer::start_engine().await;
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_remote(remotes.path());
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'ledger: pushes are frozen' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "node-api",
                   "scaffold": true, "repo_url": bare.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scaffold"]["status"], "failed", "{body}");
    let error = body["scaffold"]["error"].as_str().unwrap();
    assert!(error.contains("ledger: pushes are frozen"), "{error}");
    assert!(error.contains("pre-receive hook declined"), "{error}");
    assert_eq!(remote_heads(&bare), "", "nothing reached the remote");

    // Registered all the same, and the detail shows the failure.
    let (status, detail) = s.get("/api/v1/services/ledger").await;
    assert_eq!(status, 200);
    assert_eq!(detail["scaffold"]["status"], "failed");
    assert_eq!(detail["scaffold"]["error"], error);
    // Audited, with the reason.
    let (_, audit) = s.get("/api/v1/audit?action=service.scaffold_push").await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["result"], "failed");
    assert_eq!(items[0]["detail"]["error"], error);
    // Kept in the database, so a restarted Slipway (another connection to the file) shows it too.
    let reopened = slipway_store::connect(&format!(
        "sqlite://{}",
        s.dir.path().join("slipway.db").display()
    ))
    .await
    .unwrap();
    let kept = reopened.scaffold_push("ledger").await.unwrap().unwrap();
    assert_eq!(
        (kept.status.as_str(), kept.error.as_deref()),
        ("failed", Some(error))
    );
    drop(reopened);

    // The remote opens up; the retry pushes.
    std::fs::remove_file(&hook).unwrap();
    let (status, pushed) = s
        .post("/api/v1/services/ledger/scaffold/push", json!(null))
        .await;
    assert_eq!(status, 200, "{pushed}");
    assert_eq!(pushed["status"], "pushed", "{pushed}");
    assert_eq!(pushed["attempts"], 2);
    assert!(pushed["error"].is_null());
    let head = git(
        &s.dir.path().join("scaffolds/ledger"),
        &["rev-parse", "HEAD"],
    );
    assert_eq!(
        remote_heads(&bare).trim(),
        format!("refs/heads/main {}", head.trim())
    );
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(files.lines().any(|l| l == "src/app.ts"), "{files}");
    let (_, detail) = s.get("/api/v1/services/ledger").await;
    assert_eq!(detail["scaffold"], pushed);
    let (_, audit) = s.get("/api/v1/audit?action=service.scaffold_push").await;
    assert_eq!(audit["items"][0]["result"], "success", "{audit}");
    s.stop().await;
}

#[tokio::test]
async fn a_remote_branch_with_other_commits_is_never_force_pushed() {
    let s = TestServer::start_engine().await;
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_remote(remotes.path());
    // The remote's main already has someone's work.
    let theirs = remotes.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    git(&theirs, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(theirs.join("NOTES"), "ours\n").unwrap();
    git(&theirs, &["add", "NOTES"]);
    git(
        &theirs,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "theirs",
        ],
    );
    git(
        &theirs,
        &["push", "--quiet", bare.to_str().unwrap(), "main"],
    );
    let before = remote_heads(&bare);

    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "go-api",
                   "scaffold": true, "repo_url": bare.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scaffold"]["status"], "failed", "{body}");
    let error = body["scaffold"]["error"].as_str().unwrap();
    assert!(error.contains("never force-pushes"), "{error}");
    // A retry is refused the same way; the remote is untouched.
    let (status, again) = s
        .post("/api/v1/services/ledger/scaffold/push", json!(null))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["status"], "failed", "{again}");
    assert_eq!(remote_heads(&bare), before);
    s.stop().await;
}

/// A push a stopped process left `pending` (its record is written by the registration) is made
/// by `resume_scaffold_pushes`, which `slipway up` runs at start: recorded, audited as Slipway's.
/// One whose repository is not in this data directory stays pending. (`crates/cli/tests/
/// scaffold_push_cli.rs` kills a real process between the registration and its push.)
#[tokio::test]
async fn a_push_left_pending_is_resumed_and_one_without_its_repository_stays_pending() {
    use slipway_core::{ScaffoldPush, ScaffoldPushStatus};
    let s = TestServer::start_engine().await;
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_remote(remotes.path());
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = remotes.path().join("billing.git");
    git(
        remotes.path(),
        &["init", "--quiet", "--bare", "billing.git"],
    );
    for (name, remote) in [("ledger", &bare), ("billing", &other)] {
        let (status, body) = s
            .post(
                "/api/v1/services",
                json!({"name": name, "team": "finance", "template": "go-api",
                       "scaffold": true, "repo_url": remote.to_str().unwrap()}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(remote_heads(&bare), "", "the hook refused ledger's push");
    // What a process stopped during the pushes leaves: both pending (as the registrations wrote
    // them), and billing's repository gone from this data directory.
    for (name, remote) in [("ledger", &bare), ("billing", &other)] {
        s.state
            .store
            .record_scaffold_push(
                &ScaffoldPush {
                    service: name.into(),
                    remote: remote.to_str().unwrap().into(),
                    branch: "main".into(),
                    status: ScaffoldPushStatus::Pending,
                    commit: None,
                    error: None,
                    attempts: 0,
                    updated_at: chrono::Utc::now(),
                },
                &slipway_core::Actor {
                    name: "test".into(),
                    remote_addr: None,
                },
            )
            .await
            .unwrap();
    }
    std::fs::rename(
        s.dir.path().join("scaffolds/billing"),
        remotes.path().join("billing-moved"),
    )
    .unwrap();
    std::fs::remove_file(&hook).unwrap();
    let pending = s.state.store.pending_scaffold_pushes().await.unwrap();
    assert_eq!(pending.len(), 2);

    slipway_server::catalog::resume_scaffold_pushes(&s.state, pending).await;

    let (_, ledger) = s.get("/api/v1/services/ledger").await;
    assert_eq!(ledger["scaffold"]["status"], "pushed", "{ledger}");
    let head = git(
        &s.dir.path().join("scaffolds/ledger"),
        &["rev-parse", "HEAD"],
    );
    assert_eq!(ledger["scaffold"]["commit"], head.trim());
    assert_eq!(
        remote_heads(&bare).trim(),
        format!("refs/heads/main {}", head.trim())
    );
    let (_, audit) = s
        .get("/api/v1/audit?action=service.scaffold_push&object_name=ledger")
        .await;
    assert_eq!(audit["items"][0]["result"], "success", "{audit}");
    assert_eq!(audit["items"][0]["actor"], "slipway", "{audit}");
    let (_, billing) = s.get("/api/v1/services/billing").await;
    assert_eq!(billing["scaffold"]["status"], "pending", "{billing}");
    let pending = s.state.store.pending_scaffold_pushes().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].service, "billing");
    s.stop().await;
}

/// Registers `ledger` scaffolded from `template`, deploys it with the engine and waits (at most
/// `limit`) for the deployment to end; returns it and its log.
async fn deploy_scaffold(s: &TestServer, template: &str, limit: Duration) -> (Value, String) {
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": template, "scaffold": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let (status, d) = s
        .post("/api/v1/deployments", json!({"service": "ledger"}))
        .await;
    assert_eq!(status, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + limit;
    let d: Value = loop {
        let (status, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(status, 200, "{d}");
        if matches!(
            d["status"].as_str(),
            Some("EXPOSED" | "FAILED" | "ROLLED_BACK" | "CANCELLED" | "DESTROYED")
        ) {
            break d;
        }
        assert!(Instant::now() < deadline, "deployment did not end: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, _, log) = s.get_text(&format!("/api/v1/deployments/{id}/logs")).await;
    (d, log)
}

/// `GET path` of `ledger` in dev through the engine's proxy: (status, body).
async fn through_proxy(s: &TestServer, path: &str) -> (u16, String) {
    let proxy = s.state.engine.as_ref().unwrap().proxy_addr;
    let res = s
        .http
        .get(format!("http://{proxy}{path}"))
        .header("host", "ledger.dev.localhost")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scaffolded_python_api_deploys_to_exposed_and_serves_health_and_metrics() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 not found");
        return;
    }
    let s = TestServer::start_engine().await;
    let (d, log) = deploy_scaffold(&s, "python-api", Duration::from_secs(180)).await;
    assert_eq!(d["status"], "EXPOSED", "{d}\n{log}");

    let (status, body) = through_proxy(&s, "/health").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status": "ok"}"#));
    let (status, metrics) = through_proxy(&s, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",path="/health",code="200"}"#),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scaffolded_node_api_is_compiled_deployed_to_exposed_and_serves_health_and_metrics() {
    if Command::new("npm").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "npm is required in CI (install Node.js 20 and npm)"
        );
        eprintln!("SKIPPED: npm not found");
        return;
    }
    let s = TestServer::start_engine().await;
    // npm ci fetches TypeScript from the registry; tsc compiles on a loaded 2-core host.
    let (d, log) = deploy_scaffold(&s, "node-api", Duration::from_secs(300)).await;
    assert_eq!(d["status"], "EXPOSED", "{d}\n{log}");
    // The plan is the scaffold's: locked install, the TypeScript build, the compiled server.
    for step in ["$ npm ci", "$ npm run build", "tsc -p tsconfig.build.json"] {
        assert!(log.contains(step), "no {step:?} in the log:\n{log}");
    }

    let (status, body) = through_proxy(&s, "/health").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, metrics) = through_proxy(&s, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE http_request_duration_seconds histogram\n"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with(r#"http_requests_total{method="GET",path="/health",code="200"} "#)),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_service_page_shows_a_failed_push_and_its_retry_button_pushes() {
    let s = TestServer::start_engine().await;
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_remote(remotes.path());
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'no <pushes> today' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": "ledger", "team": "finance", "template": "python-api",
                   "scaffold": true, "repo_url": bare.to_str().unwrap()}),
        )
        .await;
    assert_eq!(
        (status, body["scaffold"]["status"].as_str()),
        (201, Some("failed"))
    );

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser
        .get(format!("{}/services/ledger", s.url))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("slipway_csrf=")
        .unwrap()
        .to_string();
    let page = res.text().await.unwrap();
    assert!(page.contains("push failed"), "{page}");
    // git's message, escaped like any text.
    assert!(page.contains("no &lt;pushes&gt; today"), "{page}");
    assert!(
        page.contains(r#"<form method="post" action="/services/ledger/scaffold/push">"#),
        "{page}"
    );

    // Without its CSRF token the form is refused and nothing is pushed.
    std::fs::remove_file(&hook).unwrap();
    let res = browser
        .post(format!("{}/services/ledger/scaffold/push", s.url))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(remote_heads(&bare), "");

    let res = browser
        .post(format!("{}/services/ledger/scaffold/push", s.url))
        .header("cookie", format!("slipway_csrf={token}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/services/ledger#scaffold");
    assert!(remote_heads(&bare).starts_with("refs/heads/main "));
    let page = browser
        .get(format!("{}/services/ledger", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">pushed</span>"), "{page}");
    assert!(!page.contains("Retry push"), "{page}");
    s.stop().await;
}

/// The analyzer plans the node-api scaffold as what it is: from its `slipway.toml`, and from its
/// `package.json` and code alone when a team removes that file.
#[test]
fn the_analyzer_plans_the_node_api_scaffold_with_and_without_its_slipway_toml() {
    use slipway_analyzer::{analyze, AnalyzeOptions, MemFs};
    let spec = slipway_golden_paths::ServiceSpec {
        name: "ledger",
        team: "finance",
        repo_url: "https://github.com/o/ledger",
        environment: "dev",
    };
    let files = slipway_golden_paths::TemplateSet::builtin()
        .unwrap()
        .scaffold(&spec, "node-api")
        .unwrap();
    for with_toml in [true, false] {
        let fs = MemFs::from_files(
            files
                .iter()
                .filter(|f| with_toml || f.path != "slipway.toml")
                .map(|f| (f.path.as_str(), f.content.as_slice())),
        );
        let plan = analyze(&fs, &AnalyzeOptions::default()).unwrap();
        let start = if with_toml {
            "node dist/server.js"
        } else {
            "npm start"
        };
        let install = if with_toml {
            "npm ci --no-audit --no-fund"
        } else {
            "npm ci"
        };
        assert_eq!(
            (
                plan.language.as_deref(),
                plan.package_manager.as_deref(),
                plan.install.as_deref(),
                plan.build.as_deref(),
                plan.start.as_deref(),
                plan.reads_port_env,
                plan.health_path.as_deref(),
            ),
            (
                Some("node"),
                Some("npm"),
                Some(install),
                Some("npm run build"),
                Some(start),
                true,
                Some("/health"),
            ),
            "with slipway.toml: {with_toml}; {plan:?}"
        );
        // No port number taken from elsewhere in the code (the health check's timeout is 2000).
        assert_eq!(plan.port, None, "{plan:?}");
    }
}
