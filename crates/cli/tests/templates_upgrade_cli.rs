//! `slipway templates upgrade` on the real binary: services registered, Slipway restarted with a
//! platform team's `--templates-dir`, then a dry run (diffs, exit 0, nothing committed) and the
//! upgrade (one commit per service; a file edited in the platform repository's work tree is left
//! as it is and the exit code is 10).

mod common;

use common::{cli, Server};
use std::path::Path;
use std::process::Command;

const JENKINSFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../golden-paths/templates/jenkins/Jenkinsfile.j2"
);
const TERRAFORM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../golden-paths/templates/terraform/env/main.tf.j2"
);

/// `slipway up` on `data`, with the platform team's `templates` if any.
fn up(data: &Path, templates: Option<&Path>) -> Server {
    let mut builder = Server::builder().data_dir(data);
    if let Some(dir) = templates {
        builder = builder.args([Path::new("--templates-dir"), dir]);
    }
    builder.start()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dry_run_then_upgrade_with_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = up(&data, None);
    let url = server.url.clone();
    for name in ["pay", "ledger"] {
        let out = cli(
            &url,
            &[
                "service",
                "create",
                name,
                "--team",
                "core",
                "--repo-url",
                &format!("https://git.example.com/{name}"),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = cli(&url, &["templates", "upgrade", "--dry-run"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("service pay: current"));
    drop(server);

    // The platform team's overrides, taken at the next start.
    let overrides = tmp.path().join("templates");
    std::fs::create_dir_all(overrides.join("jenkins")).unwrap();
    std::fs::create_dir_all(overrides.join("terraform/env")).unwrap();
    let jenkins = std::fs::read_to_string(JENKINSFILE).unwrap();
    std::fs::write(
        overrides.join("jenkins/Jenkinsfile.j2"),
        format!("// platform: agents pinned\n{jenkins}"),
    )
    .unwrap();
    let terraform = std::fs::read_to_string(TERRAFORM).unwrap();
    std::fs::write(
        overrides.join("terraform/env/main.tf.j2"),
        format!("# platform: reviewed\n{terraform}"),
    )
    .unwrap();
    let server = up(&data, Some(&overrides));
    let url = server.url.clone();
    let repo = data.join("platform-repo");
    let commits = git(&repo, &["rev-list", "--count", "HEAD"]);

    let out = cli(&url, &["templates", "upgrade", "--dry-run"]);
    let stdout = &out.stdout;
    assert_eq!(out.code, 0, "{stdout}");
    assert!(stdout.contains("service pay: outdated"), "{stdout}");
    assert!(
        stdout.contains("+++ b/platform/app/templates/jenkins/generated/pay.Jenkinsfile"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n+// platform: agents pinned\n"),
        "{stdout}"
    );
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), commits);

    // A team's uncommitted edit of ledger's Terraform in the platform repository.
    let ledger_tf = repo.join("terraform/envs/dev/ledger/main.tf");
    let edited = format!(
        "{}# ledger: more memory\n",
        std::fs::read_to_string(&ledger_tf).unwrap()
    );
    std::fs::write(&ledger_tf, &edited).unwrap();

    let out = cli(&url, &["templates", "upgrade"]);
    let stdout = &out.stdout;
    let stderr = &out.stderr;
    assert_eq!(out.code, 10, "{stdout}{stderr}");
    assert!(
        stdout.contains("conflict platform/terraform/envs/dev/ledger/main.tf"),
        "{stdout}"
    );
    assert!(stderr.contains("1 file(s) a team edited"), "{stderr}");
    let log = git(&repo, &["log", "--format=%s", "-3"]);
    assert!(log.contains("upgrade pay: "), "{log}");
    assert!(log.contains("upgrade ledger: "), "{log}");
    assert_eq!(std::fs::read_to_string(&ledger_tf).unwrap(), edited);
    let pay_tf = std::fs::read_to_string(repo.join("terraform/envs/dev/pay/main.tf")).unwrap();
    assert!(pay_tf.starts_with("# platform: reviewed\n"));

    // Again: nothing to upgrade, the conflict remains; JSON for scripts.
    let out = cli(&url, &["templates", "upgrade", "-o", "json"]);
    assert_eq!(out.code, 10);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["upgraded"], 0, "{report:#}");
    assert_eq!(report["conflicts"], 1);
    // A name that is not a DNS label is refused before anything is sent.
    let out = cli(&url, &["templates", "upgrade", "--service", "Bad_Name"]);
    assert_eq!(out.code, 6);
    drop(server);
}
