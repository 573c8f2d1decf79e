//! `slipway up --templates-dir`: a platform team's override is used for new registrations, and a
//! broken one stops the start with the file named.

mod common;

use common::Server;
use std::process::Command;

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

    let templates_dir = ["--templates-dir", overrides.to_str().unwrap()];
    let server = Server::builder()
        .data_dir(tmp.path().join("data"))
        .args(templates_dir)
        .start();
    let url = server.url.clone();
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
    drop(server);
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
    let refused = Server::builder()
        .data_dir(tmp.path().join("data2"))
        .args(templates_dir)
        .try_start()
        .unwrap_err();
    assert_eq!(refused.code, Some(1));
    let err = refused.log;
    assert!(err.contains("Jenkinsfile"), "{err}");
    assert!(
        !tmp.path().join("data2/slipway.db").exists(),
        "nothing was started"
    );
}

#[test]
fn service_create_can_scaffold() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let out = server.cli(&[
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
    ]);
    let usage = server.cli(&["service", "create", "x", "--team", "core"]);
    drop(server);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        v["repo_url"]
            .as_str()
            .unwrap()
            .ends_with("/scaffolds/starter"),
        "{v}"
    );
    assert_eq!(usage.code, 2, "--repo-url or --scaffold is required");
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

    let server = Server::start(&tmp.path().join("data"), &["--allow-local-repos"]);
    let created = server.cli(&[
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
    let retried = server.cli(&["service", "push-scaffold", "starter"]);
    let shown = server.cli(&["service", "show", "starter"]);
    drop(server);

    // Registered, but the command says the push failed, why, and how to retry.
    assert_eq!(created.code, 1, "{}", created.all());
    let stdout = &created.stdout;
    assert!(stdout.contains("name:        starter"), "{stdout}");
    let stderr = &created.stderr;
    assert!(stderr.contains("closed for the audit"), "{stderr}");
    assert!(
        stderr.contains("slipway service push-scaffold starter"),
        "{stderr}"
    );
    assert_eq!(retried.code, 0, "{}", retried.all());
    let retried = &retried.stdout;
    assert!(retried.starts_with("starter: pushed main at "), "{retried}");
    let shown = &shown.stdout;
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
