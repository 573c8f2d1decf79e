//! Runs the portal's browser tests (`tests/browser/portal.test.mjs`: Node + playwright-core driving
//! Debian chromium against this crate's `slipway` binary), so `cargo nextest run --workspace`
//! covers them. Without node, chromium or `tests/browser/node_modules` the test is skipped with a
//! message — unless `CI` is set or `SLIPWAY_BROWSER_TESTS=required` (`.ci/run` installs them and sets
//! it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let configured = std::env::var_os("CHROMIUM").map(PathBuf::from);
    configured
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.exists())
}

#[test]
fn portal_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("tests/browser");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium = chromium();
    let deps = dir.join("node_modules/playwright-core").exists();
    if !node_ok || chromium.is_none() || !deps {
        let missing = [
            (!node_ok).then_some("node"),
            chromium
                .is_none()
                .then_some("chromium (apt-get install chromium)"),
            (!deps).then_some("tests/browser/node_modules (npm ci in tests/browser)"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let required = std::env::var_os("CI").is_some()
            || std::env::var("SLIPWAY_BROWSER_TESTS").is_ok_and(|v| v == "required");
        if required {
            panic!("the portal browser tests need {missing}; .ci/run installs them");
        }
        eprintln!("SKIPPED portal browser tests: missing {missing}");
        return;
    }
    let out = Command::new("node")
        .arg("portal.test.mjs")
        .current_dir(&dir)
        .env("SLIPWAY_BIN", env!("CARGO_BIN_EXE_slipway"))
        .env("CHROMIUM", chromium.unwrap())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "portal browser tests failed:\n{stdout}\n{stderr}"
    );
}
