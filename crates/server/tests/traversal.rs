//! Every way we could think of to make Slipway write or read outside its data directory through
//! names: path segments, encodings, absolute paths, NUL and control characters, in every place a
//! name reaches a path, a template or a command. Each is refused (4xx), and nothing appears outside.

mod common;

use common::TestServer;
use serde_json::json;
use std::path::Path;

const HOSTILE: &[&str] = &[
    "..",
    "../sentinel",
    "../../sentinel",
    "..%2Fsentinel",
    "%2e%2e%2fsentinel",
    "a/../../sentinel",
    "/tmp/sentinel",
    "sentinel\u{0}x",
    "sentinel\nx",
    "-rf",
    ".hidden",
    "UPPER",
    "a b",
    "$(touch pwned)",
    "`touch pwned`",
    "name;touch pwned",
];

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                out.push(p.display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_are_refused_everywhere_and_nothing_lands_outside() {
    let outside = tempfile::tempdir().unwrap();
    let sentinel = outside.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    let s = TestServer::start_engine().await;
    let (status, body) = s
        .post(
            "/platform/services",
            json!({ "service_name": "ok", "team_name": "core", "repo_url": "https://git.example.com/ok" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let before = files_under(outside.path());
    let cwd_before = files_under(&std::env::current_dir().unwrap());

    for bad in HOSTILE {
        let enc: String = bad
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let repo = format!("https://git.example.com/{enc}");
        let attempts: Vec<(&str, String, Option<serde_json::Value>)> = vec![
            (
                "POST",
                "/platform/services".into(),
                Some(json!({ "service_name": bad, "team_name": "core", "repo_url": repo })),
            ),
            (
                "POST",
                "/platform/services".into(),
                Some(json!({ "service_name": "x1", "team_name": bad, "repo_url": repo })),
            ),
            (
                "POST",
                "/api/v1/services".into(),
                Some(json!({ "name": bad, "team": "core", "repo_url": repo })),
            ),
            ("POST", "/api/v1/teams".into(), Some(json!({ "name": bad }))),
            (
                "POST",
                "/api/v1/environments".into(),
                Some(json!({ "name": bad })),
            ),
            (
                "POST",
                "/api/v1/deployments".into(),
                Some(json!({ "service": "ok", "environment": bad })),
            ),
            (
                "POST",
                "/api/v1/deployments".into(),
                Some(json!({ "service": bad })),
            ),
            (
                "POST",
                "/api/v1/deployments".into(),
                Some(json!({ "service": "ok", "ref": format!("-{bad}") })),
            ),
            (
                "PUT",
                format!("/api/v1/services/ok/environments/dev/secrets/{enc}"),
                Some(json!({ "value": "v" })),
            ),
            (
                "PUT",
                format!("/api/v1/services/ok/environments/{enc}/variables"),
                Some(json!({ "variables": {} })),
            ),
            (
                "PUT",
                "/api/v1/services/ok/environments/dev/variables".into(),
                Some(json!({ "variables": { *bad: "v" } })),
            ),
            ("GET", format!("/api/v1/services/ok/artifacts/{enc}"), None),
            ("GET", format!("/api/v1/services/{enc}/logs"), None),
            ("GET", format!("/api/v1/templates/{enc}"), None),
            (
                "POST",
                "/api/v1/analyze".into(),
                Some(json!({ "repo_url": sentinel.display().to_string(), "app_dir": bad })),
            ),
        ];
        for (method, path, body) in attempts {
            // Upper-case names are valid environment variable names.
            if *bad == "UPPER" && (path.contains("/secrets/") || path.ends_with("/variables")) {
                continue;
            }
            let mut req = s
                .http
                .request(method.parse().unwrap(), format!("{}{path}", s.url));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{method} {path} with {bad:?} answered {status}: {}",
                res.text().await.unwrap()
            );
        }
    }
    assert_eq!(
        files_under(outside.path()),
        before,
        "nothing appears outside the data dir"
    );
    assert_eq!(
        files_under(&std::env::current_dir().unwrap()),
        cwd_before,
        "nothing appears in the working directory"
    );
    assert!(!Path::new("pwned").exists());
    s.stop().await;
}
