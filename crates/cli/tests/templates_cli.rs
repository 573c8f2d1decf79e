//! `slipway templates list|show|render` and `service create --template` on the real binary.

mod common;

use common::{cli, Server};

#[test]
fn templates_list_show_render_and_create_with_a_template() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let url = server.url.clone();

    let out = cli(&url, &["templates", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in [
        "default",
        "go-api",
        "node-api",
        "python-api",
        "rust-api",
        "static-site",
    ] {
        assert!(out.stdout.contains(name), "{}", out.stdout);
    }
    let out = cli(&url, &["-o", "json", "templates", "list"]);
    assert_eq!(out.code, 0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 6);

    let out = cli(&url, &["templates", "show", "rust-api"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("language:    rust"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("terraform/envs/<env>/<service>/main.tf"),
        "{}",
        out.stdout
    );
    let out = cli(&url, &["templates", "show", "cobol-api"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("node-api"), "{}", out.stderr);

    let out_dir = dir.path().join("preview");
    let out = cli(
        &url,
        &[
            "templates",
            "render",
            "go-api",
            "--name",
            "ledger",
            "--team",
            "finance",
            "--repo-url",
            "https://github.com/o/ledger",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("template go-api"), "{}", out.stdout);
    let main_tf =
        std::fs::read_to_string(out_dir.join("platform/terraform/envs/dev/ledger/main.tf"))
            .unwrap();
    assert!(main_tf.contains("\"finance\""));
    assert!(out_dir
        .join("platform/terraform/modules/ecr/main.tf")
        .is_file());

    let out = cli(
        &url,
        &[
            "-o",
            "json",
            "service",
            "create",
            "ledger",
            "--team",
            "finance",
            "--repo-url",
            "https://github.com/o/ledger",
            "--template",
            "go-api",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let created: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(created["template"], "go-api");
    let out = cli(
        &url,
        &[
            "service",
            "create",
            "other",
            "--team",
            "finance",
            "--repo-url",
            "https://github.com/o/other",
            "--template",
            "cobol-api",
        ],
    );
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("python-api"), "{}", out.stderr);
}
