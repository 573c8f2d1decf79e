//! Every fixture repository under tests/fixtures is analyzed and its JSON plan (or error)
//! compared with the snapshot in tests/snapshots.

use std::path::Path;

use slipway_analyzer::{analyze_dir, AnalyzeError, AnalyzeOptions};

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    names.sort();
    names
}

fn result_json(name: &str) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    match analyze_dir(&dir, &AnalyzeOptions::default()) {
        Ok(plan) => serde_json::to_value(plan).expect("plan serializes"),
        Err(e) => serde_json::json!({ "error": e.to_string(), "kind": kind(&e) }),
    }
}

fn kind(e: &AnalyzeError) -> &'static str {
    match e {
        AnalyzeError::Undetected { .. } => "undetected",
        AnalyzeError::Malformed { .. } => "malformed",
        AnalyzeError::AmbiguousApps { .. } => "ambiguous_apps",
        AnalyzeError::BadAppDir { .. } => "bad_app_dir",
        AnalyzeError::Fs(_) => "fs",
    }
}

#[test]
fn fixture_plans_match_snapshots() {
    let names = fixtures();
    assert!(names.len() >= 25, "fixtures missing: {names:?}");
    for name in names {
        insta::assert_json_snapshot!(name.clone(), result_json(&name));
    }
}

/// The top-level keys the CLI's `--output json` promises.
#[test]
fn plan_json_has_the_promised_keys() {
    let v = result_json("node-express-npm");
    for key in [
        "language",
        "framework",
        "version",
        "install",
        "build",
        "start",
        "port",
        "app_dir",
        "health_path",
        "evidence",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
}
