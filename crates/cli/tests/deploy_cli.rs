//! The deployment commands of the real `slipway` binary against a real engine: `deploy --follow`,
//! `env`, `logs`, `rollback`, `destroy`, `deployment logs`, one-off `--repo-url` apps, and
//! `analyze`. The apps are Python standard-library servers in local git repositories.

mod common;

use common::{cli, ok, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const APP: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello " + os.environ.get("GREETING", "world") + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const BROKEN_APP: &str =
    "import sys\nprint(\"boom: no configuration\", file=sys.stderr)\nsys.exit(3)\n";

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository holding `app.py`, committed on `main`.
fn app_repo(dir: &Path, app: &str) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    commit_app(dir, app);
}

fn commit_app(dir: &Path, app: &str) {
    std::fs::write(dir.join("app.py"), app).unwrap();
    git(dir, &["add", "app.py"]);
    git(dir, &["commit", "-q", "-m", "app"]);
}

/// The `url:` line of `deploy --follow`'s summary.
fn printed_url(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("url:"))
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| panic!("no url in:\n{out}"))
}

fn printed_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("deployment:"))
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| panic!("no deployment id in:\n{out}"))
}

/// GET `app_url` (`http://<service>.<env>.localhost:<proxy port>/`) through the proxy on
/// loopback; `None` when the connection fails.
fn fetch(app_url: &str) -> Option<(u16, String)> {
    let authority = app_url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap();
    let port = authority.rsplit(':').next().unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        conn,
        "GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Polls `check` until it returns `Some`, or fails after `limit` with `what`.
fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers(app_url: &str, body: &str) {
    eventually(
        &format!("{app_url} to answer {body:?}"),
        Duration::from_secs(30),
        || fetch(app_url).filter(|(s, b)| *s == 200 && b == body),
    );
}

#[test]
fn deploy_follow_env_logs_rollback_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--allow-local-repos"]);
    let url = server.url.as_str();
    let repo = dir.path().join("hello");
    app_repo(&repo, APP);
    ok(
        url,
        &[
            "service",
            "create",
            "hello",
            "--team",
            "core",
            "--repo-url",
            repo.to_str().unwrap(),
        ],
    );

    // First deployment, followed to its end.
    let first = ok(url, &["deploy", "hello", "-f"]);
    assert!(first.stdout.contains("EXPOSED"), "{}", first.all());
    assert!(
        first.stdout.contains("[system] BUILDING"),
        "the log is streamed: {}",
        first.all()
    );
    let app_url = printed_url(&first.stdout);
    assert!(
        app_url.starts_with("http://hello.dev.localhost:"),
        "{app_url}"
    );
    let first_id = printed_id(&first.stdout);
    answers(&app_url, "hello world\n");

    // Variables: set, list, unset; the next deployment runs with them.
    let out = ok(url, &["env", "set", "hello", "GREETING=there", "EXTRA=a=b"]);
    assert!(out.stdout.contains("GREETING"), "{}", out.all());
    let out = ok(url, &["env", "unset", "hello", "EXTRA"]);
    assert!(out.stdout.contains("EXTRA"), "{}", out.all());
    // Unsetting what is not set says so and claims no change.
    let out = ok(url, &["env", "unset", "hello", "NOTTHERE"]);
    assert!(
        out.stderr.contains("not set in hello (dev): NOTTHERE"),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("unset NOTTHERE"), "{}", out.all());
    let out = ok(url, &["-o", "json", "env", "list", "hello"]);
    let vars: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        vars,
        serde_json::json!({"variables": {"GREETING": "there"}})
    );
    let out = ok(url, &["env", "list", "hello"]);
    assert!(
        out.stdout.starts_with("NAME") && out.stdout.contains("GREETING  there"),
        "{}",
        out.stdout
    );

    let second = ok(url, &["-o", "json", "deploy", "hello", "--follow"]);
    let d: Value = serde_json::from_str(&second.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout is the final deployment:\n{}", second.all()));
    assert_eq!(d["status"], "EXPOSED");
    assert_eq!(d["url"].as_str(), Some(app_url.as_str()));
    let second_id = d["id"].as_str().unwrap().to_string();
    assert!(
        second.stderr.contains("[system] EXPOSED"),
        "with -o json the log goes to stderr: {}",
        second.all()
    );
    answers(&app_url, "hello there\n");

    // The app's own output: http.server logs each request on stderr.
    let logs = eventually("the app's request log", Duration::from_secs(30), || {
        let out = ok(url, &["logs", "hello", "--lines", "50"]);
        out.stdout
            .contains("\"GET / HTTP/1.1\" 200")
            .then_some(out.stdout)
    });
    assert!(logs.contains("stderr"), "{logs}");

    // The deployment's log, after the fact.
    let out = ok(url, &["deployment", "logs", &first_id]);
    assert!(
        out.stdout.contains("[system] EXPOSED: serving at"),
        "{}",
        out.stdout
    );
    let out = ok(url, &["deployment", "logs", &first_id, "--follow"]);
    assert!(out.stdout.contains("[system] HEALTHY"), "{}", out.stdout);
    assert!(out.stderr.contains("ended EXPOSED"), "{}", out.stderr);

    // Rollback to the first release, which runs with the variables it was built with.
    let back = ok(url, &["rollback", &second_id, "--follow"]);
    assert!(back.stdout.contains("EXPOSED"), "{}", back.all());
    let back_id = printed_id(&back.stdout);
    assert_ne!(back_id, second_id);
    answers(&app_url, "hello world\n");

    // Nothing to cancel once it has ended.
    let out = cli(url, &["cancel", &back_id]);
    assert_eq!(out.code, 5, "{}", out.all());

    // Destroy what serves: the record stays as DESTROYED and the route goes.
    let out = ok(url, &["destroy", &back_id]);
    assert!(out.stdout.contains(&back_id), "{}", out.all());
    eventually(
        "the deployment to be DESTROYED",
        Duration::from_secs(30),
        || {
            let out = ok(url, &["-o", "json", "deployment", "show", &back_id]);
            let d: Value = serde_json::from_str(&out.stdout).unwrap();
            (d["status"] == "DESTROYED").then_some(())
        },
    );
    eventually("the route to go", Duration::from_secs(30), || {
        match fetch(&app_url) {
            Some((200, _)) => None,
            _ => Some(()),
        }
    });

    assert_eq!(
        cli(url, &["rollback", "0192c7e4-0000-0000-0000-000000000000"]).code,
        4
    );
    assert_eq!(cli(url, &["destroy", "not a uuid"]).code, 2);
    drop(server);
}

#[test]
fn a_broken_app_is_rolled_back_and_deploy_follow_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--allow-local-repos"]);
    let url = server.url.as_str();
    let repo = dir.path().join("flaky");
    app_repo(&repo, APP);
    ok(
        url,
        &[
            "service",
            "create",
            "flaky",
            "--team",
            "core",
            "--repo-url",
            repo.to_str().unwrap(),
        ],
    );
    let good = ok(url, &["deploy", "flaky", "-f"]);
    let app_url = printed_url(&good.stdout);
    answers(&app_url, "hello world\n");

    commit_app(&repo, BROKEN_APP);
    let bad = cli(url, &["deploy", "flaky", "-f"]);
    assert_eq!(bad.code, 8, "{}", bad.all());
    assert!(bad.stdout.contains("ROLLED_BACK"), "{}", bad.all());
    assert!(
        bad.stderr.contains("ended ROLLED_BACK"),
        "the error says how it ended: {}",
        bad.stderr
    );
    assert!(
        bad.stdout.contains("boom: no configuration"),
        "the app's own words are in the streamed log: {}",
        bad.stdout
    );
    let bad_id = printed_id(&bad.stdout);
    // The release that served keeps serving.
    answers(&app_url, "hello world\n");

    let out = ok(url, &["-o", "json", "deployment", "show", &bad_id]);
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["status"], "ROLLED_BACK");
    let statuses: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert!(
        statuses.ends_with(&["FAILED", "ROLLING_BACK", "ROLLED_BACK"]),
        "{statuses:?}"
    );
    // The human view shows the same state changes, one line each, with their reasons.
    let out = ok(url, &["deployment", "show", &bad_id]);
    assert!(
        out.stdout.contains("status:      ROLLED_BACK"),
        "{}",
        out.stdout
    );
    let event_lines: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("AT "))
        .skip(1)
        .collect();
    assert_eq!(event_lines.len(), statuses.len(), "{}", out.stdout);
    for (line, (status, event)) in event_lines
        .iter()
        .zip(statuses.iter().zip(d["events"].as_array().unwrap()))
    {
        assert!(line.contains(status), "{line}");
        let reason = event["reason"].as_str().unwrap();
        assert!(
            line.contains(reason.lines().next().unwrap_or("")),
            "{line} / {reason}"
        );
    }
    drop(server);
}

#[test]
fn a_one_off_app_from_a_repository_url() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--allow-local-repos"]);
    let url = server.url.as_str();
    let repo = dir.path().join("one-off");
    app_repo(&repo, APP);
    let repo_url = format!("file://{}", repo.display());
    let out = ok(
        url,
        &[
            "-o",
            "json",
            "deploy",
            "--repo-url",
            &repo_url,
            "--service",
            "scratch",
            "--ref",
            "main",
            "-f",
        ],
    );
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["status"], "EXPOSED", "{}", out.all());
    assert_eq!(d["service"], "scratch");
    answers(d["url"].as_str().unwrap(), "hello world\n");
    let out = ok(url, &["-o", "json", "service", "show", "scratch"]);
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["team"], "adhoc");
    // The same repository written another way (a bare path with a trailing slash) is the same
    // service's, not a conflict; another repository under that name is one.
    let out = ok(
        url,
        &[
            "-o",
            "json",
            "deploy",
            "--repo-url",
            &format!("{}/", repo.display()),
            "--service",
            "scratch",
        ],
    );
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["service"], "scratch", "{}", out.all());
    let other = dir.path().join("other");
    app_repo(&other, APP);
    let out = cli(
        url,
        &[
            "deploy",
            "--repo-url",
            other.to_str().unwrap(),
            "--service",
            "scratch",
        ],
    );
    assert_eq!(out.code, 5, "{}", out.all());

    // An unknown ref fails the deployment (exit 8) with the reason.
    let out = cli(url, &["deploy", "scratch", "--ref", "no-such-branch", "-f"]);
    assert_eq!(out.code, 8, "{}", out.all());
    assert!(out.stdout.contains("FAILED"), "{}", out.all());
    drop(server);
}

#[test]
fn analyze_a_directory_and_a_repository_url() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("hello");
    app_repo(&repo, APP);
    // No server: analyze runs in the CLI.
    let nowhere = "http://127.0.0.1:9";

    let out = ok(nowhere, &["analyze", repo.to_str().unwrap(), "-o", "json"]);
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    for key in [
        "language",
        "framework",
        "version",
        "install",
        "build",
        "start",
        "port",
        "app_dir",
        "health_path",
        "evidence",
    ] {
        assert!(plan.get(key).is_some(), "{key} missing from {plan}");
    }
    assert_eq!(plan["language"], "python");
    assert_eq!(plan["start"], "python3 app.py");
    assert!(plan["evidence"].as_array().is_some_and(|e| !e.is_empty()));

    let out = ok(nowhere, &["analyze", repo.to_str().unwrap()]);
    assert!(
        out.stdout.contains("python3 app.py") && out.stdout.contains("app.py"),
        "{}",
        out.stdout
    );

    let file_url = format!("file://{}", repo.display());
    let out = ok(
        nowhere,
        &["-o", "json", "analyze", &file_url, "--ref", "main"],
    );
    let fetched: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(fetched["start"], plan["start"]);
    assert!(out.stderr.contains("analyzing"), "{}", out.stderr);
    let out = cli(nowhere, &["analyze", &file_url, "--ref", "nope"]);
    assert_eq!(out.code, 4, "{}", out.all());
    // Other schemes are refused as URLs (exit 6), not looked for as directories (exit 4).
    for refused in ["ftp://x/y", "ext::sh -c id", "http://github.com/o/x"] {
        let out = cli(nowhere, &["analyze", refused]);
        assert_eq!(out.code, 6, "{refused}: {}", out.all());
        assert!(!out.stderr.contains("not a directory"), "{}", out.all());
    }

    // Nothing to plan: the error names what was checked.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("docs")).unwrap();
    std::fs::write(empty.join("docs/notes.txt"), "notes").unwrap();
    let out = cli(nowhere, &["analyze", empty.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("could not tell how to build and run"),
        "{}",
        out.stderr
    );
    let out = cli(
        nowhere,
        &["analyze", repo.to_str().unwrap(), "--app-dir", "nope"],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(cli(nowhere, &["analyze", "http://example.com/x"]).code, 6);
    assert_eq!(
        cli(
            nowhere,
            &["analyze", dir.path().join("missing").to_str().unwrap()]
        )
        .code,
        4
    );
}

#[test]
fn usage_errors_are_caught_before_the_server_is_asked() {
    let nowhere = "http://127.0.0.1:9";
    let out = cli(nowhere, &["env", "set", "hello", "GREETING"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("NAME=value"), "{}", out.stderr);
    assert_eq!(cli(nowhere, &["env", "set", "hello", "1X=y"]).code, 2);
    assert_eq!(cli(nowhere, &["env", "unset", "hello", "A-B"]).code, 2);
    assert_eq!(cli(nowhere, &["deploy"]).code, 2);
    assert_eq!(cli(nowhere, &["deploy", "--service", "x"]).code, 2);
    // Valid commands reach for the server, which is not there.
    assert_eq!(cli(nowhere, &["env", "list", "hello"]).code, 3);
    assert_eq!(cli(nowhere, &["logs", "hello"]).code, 3);
}
