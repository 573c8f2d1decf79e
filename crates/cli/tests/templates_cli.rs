//! `slipway templates list|show|render` and `service create --template` on the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path, extra: &[&str]) -> Result<Server, String> {
    let mut child = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env_remove("SLIPWAY_DATA_DIR")
        .env_remove("SLIPWAY_DATABASE_URL")
        .env_remove("SLIPWAY_CONFIG")
        .env("SLIPWAY_LOG", "warn")
        .env("SLIPWAY_PROXY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap().to_string();
            return Ok(Server { child, url });
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(seen.join("\n"))
}

fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .args(args)
        .env("SLIPWAY_URL", url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn templates_list_show_render_and_create_with_a_template() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]).unwrap();
    let url = server.url.clone();

    let (code, out, err) = cli(&url, &["templates", "list"]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "default",
        "go-api",
        "node-api",
        "python-api",
        "rust-api",
        "static-site",
    ] {
        assert!(out.contains(name), "{out}");
    }
    let (code, out, _) = cli(&url, &["-o", "json", "templates", "list"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 6);

    let (code, out, err) = cli(&url, &["templates", "show", "rust-api"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("language:    rust"), "{out}");
    assert!(
        out.contains("terraform/envs/<env>/<service>/main.tf"),
        "{out}"
    );
    let (code, _, err) = cli(&url, &["templates", "show", "cobol-api"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("node-api"), "{err}");

    let out_dir = dir.path().join("preview");
    let (code, out, err) = cli(
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
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("template go-api"), "{out}");
    let main_tf =
        std::fs::read_to_string(out_dir.join("platform/terraform/envs/dev/ledger/main.tf"))
            .unwrap();
    assert!(main_tf.contains("\"finance\""));
    assert!(out_dir
        .join("platform/terraform/modules/ecr/main.tf")
        .is_file());

    let (code, out, err) = cli(
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
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["template"], "go-api");
    let (code, _, err) = cli(
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
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("python-api"), "{err}");
}
