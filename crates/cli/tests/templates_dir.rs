//! `slipway up --templates-dir`: a platform team's override is used for new registrations, and a
//! broken one stops the start with the file named.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");
const JENKINSFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../golden-paths/templates/jenkins/Jenkinsfile.j2"
);

#[test]
fn overrides_are_used_and_broken_ones_stop_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let overrides = tmp.path().join("templates");
    std::fs::create_dir_all(overrides.join("jenkins")).unwrap();
    let original = std::fs::read_to_string(JENKINSFILE).unwrap();
    std::fs::write(
        overrides.join("jenkins/Jenkinsfile.j2"),
        format!("{original}// reviewed by the platform team\n"),
    )
    .unwrap();

    let mut child = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
        ])
        .arg("--templates-dir")
        .arg(&overrides)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("SLIPWAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slipway up did not start");
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline);
    };
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new("curl")
        .args(["-fsS", "-X", "POST", &format!("{url}/platform/services")])
        .args(["-H", "content-type: application/json"])
        .args([
            "-d",
            r#"{"service_name":"pay","team_name":"core","repo_url":"https://git.example.com/pay"}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jenkinsfile = Command::new("curl")
        .args(["-fsS", &format!("{url}/api/v1/services/pay/artifacts/app/templates/jenkins/generated/pay.Jenkinsfile?scope=platform")])
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        String::from_utf8_lossy(&jenkinsfile.stdout).contains("// reviewed by the platform team"),
        "{}",
        String::from_utf8_lossy(&jenkinsfile.stdout)
    );

    // A template that does not render: the start fails and names the file.
    std::fs::write(
        overrides.join("jenkins/Jenkinsfile.j2"),
        "pipeline {{ unclosed\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
        ])
        .arg("--templates-dir")
        .arg(&overrides)
        .arg("--data-dir")
        .arg(tmp.path().join("data2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Jenkinsfile"), "{err}");
    assert!(
        !tmp.path().join("data2/slipway.db").exists(),
        "nothing was started"
    );
}

#[test]
fn service_create_can_scaffold() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(tmp.path().join("data"))
        .env("SLIPWAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slipway up did not start");
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new(BIN)
        .args([
            "-o",
            "json",
            "service",
            "create",
            "starter",
            "--team",
            "core",
            "--template",
            "python-api",
            "--scaffold",
        ])
        .env("SLIPWAY_URL", &url)
        .env("SLIPWAY_AUTH", "off")
        .output()
        .unwrap();
    let usage = Command::new(BIN)
        .args(["service", "create", "x", "--team", "core"])
        .env("SLIPWAY_URL", &url)
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["repo_url"]
            .as_str()
            .unwrap()
            .ends_with("/scaffolds/starter"),
        "{v}"
    );
    assert_eq!(
        usage.status.code(),
        Some(2),
        "--repo-url or --scaffold is required"
    );
}

#[test]
fn service_create_pushes_a_scaffold_and_push_scaffold_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("remote.git");
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "--quiet", "--bare", bare.to_str().unwrap()]);
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'closed for the audit' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = Command::new(BIN)
        .args([
            "up",
            "--auth",
            "off",
            "--allow-local-repos",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(tmp.path().join("data"))
        .env("SLIPWAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slipway up did not start");
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let slipway = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("SLIPWAY_URL", &url)
            .env("SLIPWAY_AUTH", "off")
            .output()
            .unwrap()
    };
    let created = slipway(&[
        "service",
        "create",
        "starter",
        "--team",
        "core",
        "--template",
        "go-api",
        "--scaffold",
        "--repo-url",
        bare.to_str().unwrap(),
    ]);
    std::fs::remove_file(&hook).unwrap();
    let retried = slipway(&["service", "push-scaffold", "starter"]);
    let shown = slipway(&["service", "show", "starter"]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // Registered, but the command says the push failed, why, and how to retry.
    assert_eq!(created.status.code(), Some(1), "{created:?}");
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(stdout.contains("name:        starter"), "{stdout}");
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(stderr.contains("closed for the audit"), "{stderr}");
    assert!(
        stderr.contains("slipway service push-scaffold starter"),
        "{stderr}"
    );
    assert!(retried.status.success(), "{retried:?}");
    let retried = String::from_utf8_lossy(&retried.stdout);
    assert!(retried.starts_with("starter: pushed main at "), "{retried}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("scaffold:    pushed main at "), "{shown}");
    let files = git(&[
        "--git-dir",
        bare.to_str().unwrap(),
        "ls-tree",
        "-r",
        "--name-only",
        "main",
    ]);
    assert!(files.lines().any(|l| l == "main.go"), "{files}");
}
