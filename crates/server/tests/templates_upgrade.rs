//! `POST /api/v1/templates/upgrade`: services registered with the built-in templates, then a
//! platform team's overrides (a temp templates dir) swapped in: dry-run diffs, the real upgrade
//! (database, one platform-repository commit per service, `git log`, file contents),
//! idempotence, and files a team edited (uncommitted in the work tree, or committed and adopted
//! by the reconciler at start) left as they are and reported as conflicts.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use slipway_core::{Actor, ArtifactScope};
use slipway_golden_paths::TemplateSet;
use slipway_platform_repo::PlatformRepo;
use slipway_server::upgrade::{UpgradeRequest, UpgradeStatus};
use slipway_server::{catalog, reconcile, AppState};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Both tests swap the process-wide template set.
static TEMPLATES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEMPLATES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../golden-paths/templates");
const JENKINS_LINE: &str = "// Jenkins agents are managed by the platform team.\n";
const TERRAFORM_LINE: &str = "# Reviewed by the platform team.\n";

fn use_builtin_templates() {
    let empty = tempfile::tempdir().unwrap();
    slipway_golden_paths::replace_templates(TemplateSet::with_overrides(empty.path()).unwrap());
}

/// A templates dir that changes the Jenkinsfile and the Terraform instantiation of every
/// template and bumps the `default` template's version.
fn use_overridden_templates(dir: &Path) {
    let builtin = Path::new(TEMPLATES_DIR);
    let copy = |rel: &str, edit: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(builtin.join(rel)).unwrap();
        let dest = dir.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, edit(text)).unwrap();
    };
    copy("jenkins/Jenkinsfile.j2", &|t| format!("{JENKINS_LINE}{t}"));
    copy("terraform/env/main.tf.j2", &|t| {
        format!("{TERRAFORM_LINE}{t}")
    });
    copy("paths/default/template.toml", &|t| {
        let line = t.lines().find(|l| l.starts_with("version = ")).unwrap();
        let version: u32 = line["version = ".len()..].trim().parse().unwrap();
        t.replace(line, &format!("version = {}", version + 1))
    });
    slipway_golden_paths::replace_templates(TemplateSet::with_overrides(dir).unwrap());
}

fn default_version() -> u32 {
    slipway_golden_paths::active_templates()
        .unwrap()
        .get("default")
        .unwrap()
        .version
}

fn result<'a>(report: &'a Value, service: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == service)
        .unwrap_or_else(|| panic!("no result for {service}: {report:#}"))
}

fn paths(files: &Value) -> Vec<String> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}",
                f["scope"].as_str().unwrap(),
                f["path"].as_str().unwrap()
            )
        })
        .collect()
}

async fn register(s: &TestServer, name: &str, template: &str) {
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": name, "team": "core", "template": template,
                   "repo_url": format!("https://github.com/org/{name}")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn upgrade_dry_run_commits_idempotence_and_work_tree_conflicts() {
    let _one = TEMPLATES.lock().await;
    use_builtin_templates();
    let s = TestServer::start().await;
    register(&s, "pay", "default").await;
    register(&s, "ledger", "default").await;
    register(&s, "site", "static-site").await;
    let old_version = default_version();

    // With the templates the services were registered with, nothing is outdated.
    let (status, report) = s
        .post("/api/v1/templates/upgrade", json!({"dry_run": true}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["upgraded"], 0, "{report:#}");
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["status"], "current", "{r:#}");
    }

    let overrides = tempfile::tempdir().unwrap();
    use_overridden_templates(overrides.path());
    let new_version = default_version();
    assert_eq!(new_version, old_version + 1);
    let from = format!("slipway-golden-paths/default@{old_version}");
    let to = format!("slipway-golden-paths/default@{new_version}");

    // An uncommitted edit of ledger's Terraform in the platform repository's work tree.
    s.state.repo.flush().await.unwrap();
    let ledger_tf = s.repo_path().join("terraform/envs/dev/ledger/main.tf");
    let team_tf = format!(
        "{}# ledger: bigger instances\n",
        std::fs::read_to_string(&ledger_tf).unwrap()
    );
    std::fs::write(&ledger_tf, &team_tf).unwrap();

    let commits_before = s.commit_count();
    let (status, dry) = s
        .post("/api/v1/templates/upgrade", json!({"dry_run": true}))
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        s.commit_count(),
        commits_before,
        "a dry run commits nothing"
    );
    let pay = result(&dry, "pay");
    assert_eq!(pay["status"], "outdated", "{pay:#}");
    assert_eq!(pay["from"], json!([from]));
    assert_eq!(pay["to"], to);
    // The version appears in some files (labels), so more than the two overridden files change.
    let changed: Vec<&Value> = pay["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["change"] == "changed")
        .collect();
    let changed_paths = paths(&json!(changed));
    for path in [
        "platform/app/templates/jenkins/generated/pay.Jenkinsfile",
        "platform/terraform/envs/dev/pay/main.tf",
    ] {
        assert!(
            changed_paths.contains(&path.to_string()),
            "{changed_paths:?}"
        );
    }
    let jenkins_diff = changed[0]["diff"].as_str().unwrap();
    assert!(
        jenkins_diff.starts_with(
            "--- a/platform/app/templates/jenkins/generated/pay.Jenkinsfile\n\
             +++ b/platform/app/templates/jenkins/generated/pay.Jenkinsfile\n@@ -1,"
        ),
        "{jenkins_diff}"
    );
    assert!(
        jenkins_diff.contains(&format!("\n+{JENKINS_LINE}")),
        "{jenkins_diff}"
    );
    assert_eq!(pay["conflicts"], json!([]));
    let ledger = result(&dry, "ledger");
    assert_eq!(
        ledger["conflicts"][0]["path"],
        "terraform/envs/dev/ledger/main.tf"
    );
    assert!(ledger["conflicts"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("work-tree file differs"));
    assert!(ledger["conflicts"][0]["diff"]
        .as_str()
        .unwrap()
        .contains(&format!("\n+{TERRAFORM_LINE}")));
    // static-site's version did not change; its shared Jenkinsfile and Terraform did.
    let site = result(&dry, "site");
    assert_eq!(site["status"], "outdated");
    assert_eq!(
        site["from"],
        site["to"].as_str().map(|t| json!([t])).unwrap()
    );
    let stored = s
        .state
        .store
        .get_artifact(
            "pay",
            ArtifactScope::Platform,
            "terraform/envs/dev/pay/main.tf",
        )
        .await
        .unwrap();
    assert!(!String::from_utf8(stored.content)
        .unwrap()
        .contains(TERRAFORM_LINE));

    // The real upgrade of two services, by name (upgraded in name order).
    let (status, done) = s
        .post(
            "/api/v1/templates/upgrade",
            json!({"services": ["pay", "ledger"]}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["results"].as_array().unwrap().len(),
        2,
        "no modules entry: {done:#}"
    );
    assert_eq!(done["upgraded"], 2);
    assert_eq!(done["conflicts"], 1);
    let pay = result(&done, "pay");
    assert_eq!(pay["status"], "upgraded");
    let ledger = result(&done, "ledger");
    assert_eq!(ledger["status"], "upgraded");
    assert!(paths(&ledger["files"])
        .contains(&"platform/app/templates/jenkins/generated/ledger.Jenkinsfile".to_string()));
    assert!(!paths(&ledger["files"])
        .contains(&"platform/terraform/envs/dev/ledger/main.tf".to_string()));
    assert_eq!(
        s.commit_count(),
        commits_before + 2,
        "one commit per service"
    );
    s.state.repo.flush().await.unwrap();
    let log = s.git(&["log", "-2", "--format=%an <%ae>%n%B%x00"]);
    let messages: Vec<&str> = log
        .split('\0')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    assert_eq!(messages.len(), 2, "{log}");
    assert!(
        messages[0].starts_with(&format!(
            "Slipway <slipway@localhost>\nupgrade pay: {from} -> {to}"
        )),
        "{log}"
    );
    assert!(messages[1].contains("left as edited: platform/terraform/envs/dev/ledger/main.tf"));
    assert!(messages[1].starts_with(&format!(
        "Slipway <slipway@localhost>\nupgrade ledger: {from} -> {to}"
    )));
    assert_eq!(pay["commit"], s.git(&["rev-parse", "HEAD"]).trim());

    // Files: the repository has the new renderings, the team's edit is still there.
    let pay_jenkins = s.git(&[
        "show",
        "HEAD:app/templates/jenkins/generated/pay.Jenkinsfile",
    ]);
    assert!(pay_jenkins.starts_with(JENKINS_LINE), "{pay_jenkins}");
    let pay_tf =
        std::fs::read_to_string(s.repo_path().join("terraform/envs/dev/pay/main.tf")).unwrap();
    assert!(pay_tf.starts_with(TERRAFORM_LINE));
    assert_eq!(std::fs::read_to_string(&ledger_tf).unwrap(), team_tf);
    // The database: new contents and generators, the conflicted file as it was.
    let artifacts = s.state.store.service_artifacts("pay", None).await.unwrap();
    assert!(
        artifacts.iter().all(|a| a.generator == to),
        "every artifact re-recorded"
    );
    let ledger_stored = s
        .state
        .store
        .get_artifact(
            "ledger",
            ArtifactScope::Platform,
            "terraform/envs/dev/ledger/main.tf",
        )
        .await
        .unwrap();
    assert_eq!(ledger_stored.generator, from);
    assert!(!String::from_utf8(ledger_stored.content)
        .unwrap()
        .contains(TERRAFORM_LINE));
    let (_, audit) = s.get("/api/v1/audit?action=service.upgrade").await;
    let audited: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_name"].as_str().unwrap())
        .collect();
    assert_eq!(audited, ["pay", "ledger"], "{audit:#}");

    // Everything else, then again: nothing left to do but the conflict.
    let (status, rest) = s.post("/api/v1/templates/upgrade", json!({})).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(result(&rest, "pay")["status"], "current");
    assert_eq!(result(&rest, "site")["status"], "upgraded");
    assert_eq!(result(&rest, "ledger")["status"], "conflicted");
    let commits = s.commit_count();
    let (_, again) = s.post("/api/v1/templates/upgrade", json!({})).await;
    assert_eq!(again["upgraded"], 0, "{again:#}");
    assert_eq!(again["conflicts"], 1);
    for r in again["results"].as_array().unwrap() {
        let expected = if r["service"] == "ledger" {
            "conflicted"
        } else {
            "current"
        };
        assert_eq!(r["status"], expected, "{r:#}");
    }
    assert_eq!(s.commit_count(), commits, "a second run commits nothing");

    // The team gives up its edit: the file upgrades like the others.
    std::fs::write(&ledger_tf, &ledger_stored_text(&s).await).unwrap();
    let (_, last) = s
        .post("/api/v1/templates/upgrade", json!({"services": ["ledger"]}))
        .await;
    assert_eq!(result(&last, "ledger")["status"], "upgraded", "{last:#}");
    assert_eq!(last["conflicts"], 0);
    assert!(std::fs::read_to_string(&ledger_tf)
        .unwrap()
        .starts_with(TERRAFORM_LINE));

    // Unknown or invalid service names.
    let (status, _) = s
        .post("/api/v1/templates/upgrade", json!({"services": ["nope"]}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .post(
            "/api/v1/templates/upgrade",
            json!({"services": ["Bad_Name"]}),
        )
        .await;
    assert_eq!(status, 422);
    use_builtin_templates();
    s.stop().await;
}

async fn ledger_stored_text(s: &TestServer) -> String {
    let a = s
        .state
        .store
        .get_artifact(
            "ledger",
            ArtifactScope::Platform,
            "terraform/envs/dev/ledger/main.tf",
        )
        .await
        .unwrap();
    String::from_utf8(a.content).unwrap()
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
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn open(dir: &Path) -> (AppState, reconcile::ReconcileReport) {
    let url = format!("sqlite://{}", dir.join("slipway.db").display());
    let store = slipway_store::connect(&url).await.unwrap();
    let repo = PlatformRepo::open(&dir.join("platform-repo"))
        .await
        .unwrap();
    let report = reconcile::reconcile(store.as_ref(), &repo).await.unwrap();
    (AppState::new(store, Arc::new(repo), None), report)
}

#[tokio::test]
async fn a_committed_team_edit_survives_a_restart_and_the_upgrade() {
    let _one = TEMPLATES.lock().await;
    use_builtin_templates();
    let tmp = tempfile::tempdir().unwrap();
    let admin = Actor {
        name: "admin".into(),
        remote_addr: None,
    };
    let (state, _) = open(tmp.path()).await;
    catalog::register(
        &state,
        catalog::Registration {
            name: "pay".into(),
            team: "core".into(),
            repo_url: "https://github.com/org/pay".into(),
            template: None,
            description: None,
            fields: catalog::API_FIELDS,
        },
        &admin,
    )
    .await
    .unwrap();
    state.repo.flush().await.unwrap();
    drop(state);

    // While Slipway is stopped, a team commits a change to its Terraform.
    let repo_dir = tmp.path().join("platform-repo");
    let tf = repo_dir.join("terraform/envs/dev/pay/main.tf");
    let team_tf = format!(
        "{}# pay: reserved capacity\n",
        std::fs::read_to_string(&tf).unwrap()
    );
    std::fs::write(&tf, &team_tf).unwrap();
    git(
        &repo_dir,
        &[
            "-c",
            "user.name=Dana",
            "-c",
            "user.email=dana@example.com",
            "commit",
            "-q",
            "-am",
            "pay: reserved capacity",
        ],
    );
    let team_commit = git(&repo_dir, &["rev-parse", "HEAD"]);

    // The start-up reconciler keeps it: adopted into the database, nothing committed.
    let (state, report) = open(tmp.path()).await;
    assert_eq!(report.adopted, 1, "{report:?}");
    assert_eq!(report.commits, 0, "{report:?}");
    assert_eq!(git(&repo_dir, &["rev-parse", "HEAD"]), team_commit);
    let stored = state
        .store
        .get_artifact(
            "pay",
            ArtifactScope::Platform,
            "terraform/envs/dev/pay/main.tf",
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(stored.content).unwrap(), team_tf);
    assert_eq!(
        state
            .store
            .edited_artifacts(Some("pay"))
            .await
            .unwrap()
            .len(),
        1
    );
    let audit = state
        .store
        .list_audit(&slipway_core::AuditQuery {
            action: Some("artifact.adopt".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 1);
    assert_eq!(audit.items[0].detail["author"], "dana@example.com");
    assert_eq!(audit.items[0].detail["commit"], team_commit.trim());

    // The upgrade leaves it and upgrades the rest.
    let overrides = tempfile::tempdir().unwrap();
    use_overridden_templates(overrides.path());
    let report = slipway_server::upgrade::upgrade(&state, UpgradeRequest::default(), &admin)
        .await
        .unwrap();
    let pay = report
        .results
        .iter()
        .find(|r| r.service.as_deref() == Some("pay"))
        .unwrap();
    assert_eq!(pay.status, UpgradeStatus::Upgraded);
    assert_eq!(pay.conflicts.len(), 1);
    assert_eq!(pay.conflicts[0].path, "terraform/envs/dev/pay/main.tf");
    assert!(
        pay.conflicts[0].reason.contains("edited by a team"),
        "{}",
        pay.conflicts[0].reason
    );
    assert!(pay
        .files
        .iter()
        .any(|f| f.path == "app/templates/jenkins/generated/pay.Jenkinsfile"));
    state.repo.flush().await.unwrap();
    assert_eq!(std::fs::read_to_string(&tf).unwrap(), team_tf);
    assert_eq!(
        git(&repo_dir, &["show", "HEAD:terraform/envs/dev/pay/main.tf"]),
        team_tf
    );
    drop(state);

    // Another restart changes nothing: the edit is the database's content now.
    let (state, report) = open(tmp.path()).await;
    assert_eq!(report, reconcile::ReconcileReport::default());
    drop(state);
    use_builtin_templates();
}
