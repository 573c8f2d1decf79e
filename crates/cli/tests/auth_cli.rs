//! `slipway up --auth required` on the real binary: the first-start admin token, the CLI finding it,
//! users, members and tokens through the CLI, and refusals with exit code 9.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

fn cli(url: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("SLIPWAY_URL", url)
        .env_remove("SLIPWAY_TOKEN")
        .env_remove("SLIPWAY_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

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
    let mut child = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "required",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("SLIPWAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut url, mut printed) = (None, None);
    while url.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("slipway up did not start");
        if let Some(t) = line.split("admin token: ").nth(1) {
            printed = Some(t.trim().to_string());
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    let url = url.unwrap();
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
    let (code, _, err) = cli(&url, &[], &["service", "list"]);
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("401"), "{err}");
    // The CLI finds the admin token in the data directory.
    let admin = [("SLIPWAY_DATA_DIR", data.to_str().unwrap())];
    let (code, out, err) = cli(&url, &admin, &["whoami"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin (admin)"), "{out}");
    let (code, _, err) = cli(&url, &admin, &["user", "create", "alice"]);
    assert_eq!(code, 0, "{err}");
    for team in ["payments", "search"] {
        let (code, _, err) = cli(
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
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = cli(
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
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = cli(
        &url,
        &admin,
        &["token", "create", "--user", "alice", "--name", "laptop"],
    );
    assert_eq!(code, 0, "{err}");
    let alice = [("SLIPWAY_TOKEN", token.trim())];
    let (code, out, _) = cli(&url, &alice, &["whoami"]);
    assert_eq!(code, 0);
    assert!(out.contains("alice payments:team-member"), "{out}");
    let (code, _, err) = cli(
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
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&url, &alice, &["service", "delete", "search-svc"]);
    assert_eq!(code, 9, "{err}");
    assert!(
        err.contains("team-maintainer role in team \"search\""),
        "{err}"
    );
    let (code, out, err) = cli(&url, &admin, &["-o", "json", "token", "list"]);
    assert_eq!(code, 0, "{err}");
    let tokens: serde_json::Value = serde_json::from_str(&out).unwrap();
    let laptop = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "laptop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!out.contains(token.trim()), "tokens are never listed");
    let (code, _, err) = cli(&url, &admin, &["token", "revoke", &laptop]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&url, &alice, &["whoami"]);
    assert_eq!(code, 9, "{err}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = Path::new(&url);
}
