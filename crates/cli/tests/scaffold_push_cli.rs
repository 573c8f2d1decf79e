//! A scaffold registered with a remote `repo_url` whose process is killed between the registration
//! and the push: the registration recorded the push `pending` in its own transaction, and the
//! next `slipway up` pushes it (and says so in its log) instead of losing it.

mod common;

use common::Server;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_cut_off_by_a_crash_is_made_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bare = dir.path().join("ledger.git");
    git(dir.path(), &["init", "--quiet", "--bare", "ledger.git"]);

    // The process aborts right after the registration's database commit, before the push.
    let mut server = Server::start_with(
        &data,
        &["--allow-local-repos"],
        &[("SLIPWAY_CRASH_POINT", "after-db-commit")],
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/services", server.url))
        .json(
            &json!({"name": "ledger", "team": "finance", "template": "go-api",
                      "scaffold": true, "repo_url": bare.to_str().unwrap()}),
        )
        .send()
        .await;
    assert!(answer.is_err(), "the process died before answering");
    let status = server.wait_for_exit(Duration::from_secs(30));
    assert!(!status.success(), "aborted: {status:?}");
    assert_eq!(git(&bare, &["for-each-ref"]), "", "nothing was pushed");
    drop(server);

    // The next start finds the pending push, says so, and makes it.
    let server = Server::start(&data, &["--allow-local-repos"]);
    let log = server.wait_for_log("pushing it now", Duration::from_secs(30));
    assert!(
        log.lines()
            .any(|l| l.contains("pushing it now") && l.contains("ledger")),
        "{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let detail = get(&format!("{}/api/v1/services/ledger", server.url)).await;
        if detail["scaffold"]["status"] != "pending" || Instant::now() > deadline {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail["scaffold"]["status"], "pushed", "{detail:#}");
    assert_eq!(detail["scaffold"]["attempts"], 1, "{detail:#}");
    let head = git(&data.join("scaffolds/ledger"), &["rev-parse", "HEAD"]);
    assert_eq!(detail["scaffold"]["commit"], head.trim());
    assert_eq!(
        git(
            &bare,
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        )
        .trim(),
        format!("refs/heads/main {}", head.trim())
    );
    let audit = get(&format!(
        "{}/api/v1/audit?action=service.scaffold_push",
        server.url
    ))
    .await;
    assert_eq!(audit["items"][0]["result"], "success", "{audit:#}");
    assert_eq!(audit["items"][0]["actor"], "slipway", "{audit:#}");
    drop(server);

    // Done: a third start has nothing to push.
    let server = Server::start(&data, &["--allow-local-repos"]);
    let detail = get(&format!("{}/api/v1/services/ledger", server.url)).await;
    assert_eq!(detail["scaffold"]["attempts"], 1, "{detail:#}");
    assert!(
        !server
            .log()
            .contains("did not finish before Slipway stopped"),
        "{}",
        server.log()
    );
}
