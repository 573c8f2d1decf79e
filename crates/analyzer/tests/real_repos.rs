//! Accuracy on real public repositories.
//!
//! Every directory under `tests/real/<owner>__<repo>/` holds the files the analyzer reads, copied
//! from a real public repository (see its `SOURCE.md` for the repository, commits and paths), and an
//! `expected.json` with the plan a human deploying it would use, field by field, each with the
//! reason and the file (README, Procfile, Dockerfile, manifest) that says so, and, for a
//! monorepo, the `app_dir` that person would deploy. This test analyzes
//! every one, scores each field ok / miss (the plan has no value) / wrong (a different value),
//! prints the table and the accuracy per field, and fails when a field's count of correct answers
//! drops below the floor measured when the set was built — so a regression on real layouts is
//! caught even where every synthetic fixture still passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use slipway_analyzer::{analyze_dir, AnalyzeOptions, BuildPlan};

/// The fields scored, in table order.
const FIELDS: [&str; 8] = [
    "language",
    "framework",
    "version",
    "install",
    "build",
    "start",
    "port",
    "static_dir",
];

/// Correct answers per field measured when the set was built (see docs/analyzer.md). Raise a
/// floor when a fix makes more repositories right; a drop fails the test.
const FLOOR: [(&str, usize); 8] = [
    ("language", 16),
    ("framework", 16),
    ("version", 11),
    ("install", 12),
    ("build", 15),
    ("start", 16),
    ("port", 15),
    ("static_dir", 1),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Score {
    Ok,
    Miss,
    Wrong,
}

impl Score {
    fn cell(self) -> &'static str {
        match self {
            Score::Ok => "ok",
            Score::Miss => "miss",
            Score::Wrong => "WRONG",
        }
    }
}

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real")
}

fn repos() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(real_dir())
        .expect("tests/real")
        .filter_map(|e| {
            let e = e.expect("entry");
            e.file_type()
                .expect("type")
                .is_dir()
                .then(|| e.file_name().into_string().expect("utf-8 name"))
        })
        .collect();
    names.sort();
    names
}

fn expected(name: &str) -> Value {
    let path = real_dir().join(name).join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The plan's value of a string field.
fn text_field(plan: &BuildPlan, field: &str) -> Option<String> {
    match field {
        "language" => plan.language.clone(),
        "framework" => plan.framework.clone(),
        "version" => plan.version.clone(),
        "install" => plan.install.clone(),
        "build" => plan.build.clone(),
        "start" => plan.start.clone(),
        "static_dir" => plan.static_dir.clone(),
        other => panic!("unknown field {other}"),
    }
    .filter(|v| !v.trim().is_empty())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array of strings")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Scores one field against its expectation; `None` when the field is not scored for this
/// repository (the repository does not state it).
fn score(plan: Option<&BuildPlan>, field: &str, want: &Value) -> Option<Score> {
    if want.get("skip").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let Some(plan) = plan else {
        return Some(Score::Miss);
    };
    if field == "port" {
        let expect = want.get("expect").expect("port needs expect");
        return Some(match expect {
            Value::String(s) if s == "$PORT" => {
                if plan.reads_port_env {
                    Score::Ok
                } else if plan.port.is_none() {
                    Score::Miss
                } else {
                    Score::Wrong
                }
            }
            Value::Number(n) => match plan.port {
                Some(p) if u64::from(p) == n.as_u64().expect("port number") => Score::Ok,
                None => Score::Miss,
                Some(_) => Score::Wrong,
            },
            other => panic!("port expect must be a number or \"$PORT\", got {other}"),
        });
    }
    let got = text_field(plan, field);
    if want.get("none").and_then(Value::as_bool) == Some(true) {
        return Some(if got.is_none() {
            Score::Ok
        } else {
            Score::Wrong
        });
    }
    let Some(got) = got else {
        return Some(Score::Miss);
    };
    let ok = if let Some(e) = want.get("expect") {
        got.eq_ignore_ascii_case(e.as_str().expect("expect is a string"))
    } else if let Some(c) = want.get("contains") {
        strings(c).iter().all(|s| got.contains(s.as_str()))
    } else if let Some(groups) = want.get("any_of") {
        groups
            .as_array()
            .expect("any_of is an array")
            .iter()
            .any(|g| strings(g).iter().all(|s| got.contains(s.as_str())))
    } else {
        panic!("{field}: expectation needs expect, contains, any_of, none or skip");
    };
    Some(if ok { Score::Ok } else { Score::Wrong })
}

fn shown(plan: Option<&BuildPlan>, field: &str) -> String {
    let Some(plan) = plan else {
        return "(no plan)".into();
    };
    if field == "port" {
        return format!(
            "port={:?} reads_port_env={}",
            plan.port, plan.reads_port_env
        );
    }
    format!("{:?}", text_field(plan, field))
}

#[test]
fn real_repositories_meet_the_accuracy_floor() {
    let names = repos();
    assert!(names.len() >= 16, "real-repository set missing: {names:?}");
    let mut ok: BTreeMap<&str, usize> = BTreeMap::new();
    let mut scored: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for name in &names {
        let want = expected(name);
        let fields = want.get("fields").expect("fields");
        for f in fields.as_object().expect("fields object").keys() {
            assert!(FIELDS.contains(&f.as_str()), "{name}: unknown field {f}");
        }
        let dir = real_dir().join(name);
        let app_dir = want
            .get("app_dir")
            .and_then(Value::as_str)
            .map(str::to_string);
        let result = analyze_dir(&dir, &AnalyzeOptions { app_dir });
        if let Err(e) = &result {
            notes.push(format!("{name}: analysis failed: {e}"));
        }
        let plan = result.as_ref().ok();
        let mut row = vec![name.clone()];
        for field in FIELDS {
            let cell = match fields.get(field).and_then(|w| score(plan, field, w)) {
                None => "-".to_string(),
                Some(s) => {
                    *scored.entry(field).or_default() += 1;
                    if s == Score::Ok {
                        *ok.entry(field).or_default() += 1;
                    } else {
                        notes.push(format!(
                            "{name} {field}: {} — got {}, expected {}",
                            s.cell(),
                            shown(plan, field),
                            fields[field]
                        ));
                    }
                    s.cell().to_string()
                }
            };
            row.push(cell);
        }
        rows.push(row);
    }

    let width = names.iter().map(String::len).max().unwrap_or(4);
    let mut table = format!("{:width$}", "repository");
    for f in FIELDS {
        table.push_str(&format!(" | {f:>10}"));
    }
    table.push('\n');
    for row in &rows {
        table.push_str(&format!("{:width$}", row[0]));
        for cell in &row[1..] {
            table.push_str(&format!(" | {cell:>10}"));
        }
        table.push('\n');
    }
    table.push_str(&format!("{:width$}", "accuracy"));
    for f in FIELDS {
        let (k, n) = (
            ok.get(f).copied().unwrap_or(0),
            scored.get(f).copied().unwrap_or(0),
        );
        table.push_str(&format!(" | {:>10}", format!("{k}/{n}")));
    }
    let (all_ok, all_n) = (ok.values().sum::<usize>(), scored.values().sum::<usize>());
    table.push_str(&format!(
        "\noverall: {all_ok}/{all_n} scored fields correct\n"
    ));
    println!("{table}");
    for n in &notes {
        println!("{n}");
    }

    let mut drops = Vec::new();
    for (field, floor) in FLOOR {
        let k = ok.get(field).copied().unwrap_or(0);
        if k < floor {
            drops.push(format!("{field}: {k} correct, floor {floor}"));
        }
    }
    assert!(
        drops.is_empty(),
        "accuracy dropped below the floor: {drops:?}\n{table}"
    );
}

/// fastapi/full-stack-fastapi-template at its root: `backend/` is the one app; `backend/app/` is
/// its Python package (`app.main:app`), not a second app, so the root plans `backend`.
#[test]
fn full_stack_fastapi_template_root_is_one_app() {
    let dir = real_dir().join("fastapi__full-stack-fastapi-template");
    let plan = analyze_dir(&dir, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let apps: Vec<&str> = plan.apps.iter().map(|a| a.dir.as_str()).collect();
    assert_eq!(apps, ["backend"]);
    assert_eq!(plan.app_dir, "backend");
}
