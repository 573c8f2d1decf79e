//! `slipway up --auth required` on the real binary: the first-start admin token, the CLI finding it,
//! users, members and tokens through the CLI, and refusals with exit code 9.

mod common;

use common::{cli, cli_with, Server, BIN};
use std::process::Command;

#[test]
fn a_bad_auth_value_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "maybe",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use required or off"));
}

#[test]
fn required_auth_with_the_first_start_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().data_dir(&data).auth(true).start();
    let url = server.url.clone();
    let printed = server
        .log()
        .lines()
        .find_map(|l| l.split("admin token: ").nth(1))
        .map(|t| t.trim().to_string());
    let token_file = data.join("admin-token");
    let saved = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        Some(saved.clone()),
        printed,
        "printed once, saved to the file"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Without a credential: exit 9.
    let out = cli(&url, &["service", "list"]);
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    // The CLI finds the admin token in the data directory.
    let admin = [("SLIPWAY_DATA_DIR", data.to_str().unwrap())];
    let out = cli_with(&url, &admin, &["whoami"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("admin (admin)"), "{}", out.stdout);
    let out = cli_with(&url, &admin, &["user", "create", "alice"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for team in ["payments", "search"] {
        let out = cli_with(
            &url,
            &admin,
            &[
                "service",
                "create",
                &format!("{team}-svc"),
                "--team",
                team,
                "--repo-url",
                "https://git.example.com/x",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = cli_with(
        &url,
        &admin,
        &[
            "team",
            "add-member",
            "payments",
            "alice",
            "--role",
            "team-member",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli_with(
        &url,
        &admin,
        &["token", "create", "--user", "alice", "--name", "laptop"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout;
    let alice = [("SLIPWAY_TOKEN", token.trim())];
    let out = cli_with(&url, &alice, &["whoami"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("alice payments:team-member"),
        "{}",
        out.stdout
    );
    let out = cli_with(
        &url,
        &alice,
        &[
            "service",
            "create",
            "pay2",
            "--team",
            "payments",
            "--repo-url",
            "https://git.example.com/p",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli_with(&url, &alice, &["service", "delete", "search-svc"]);
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("team-maintainer role in team \"search\""),
        "{}",
        out.stderr
    );
    let out = cli_with(&url, &admin, &["-o", "json", "token", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tokens: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let laptop = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "laptop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !out.stdout.contains(token.trim()),
        "tokens are never listed"
    );
    let out = cli_with(&url, &admin, &["token", "revoke", &laptop]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli_with(&url, &alice, &["whoami"]);
    assert_eq!(out.code, 9, "{}", out.stderr);
}
