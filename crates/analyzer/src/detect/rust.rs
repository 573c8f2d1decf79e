//! Rust: Cargo, `rust-toolchain*`, edition, the binary name, Axum / Actix / Rocket.

use super::{
    toml_key_line, version_file_value, Ctx, Detection, Detector, Outcome, STRENGTH_FRAMEWORK,
    STRENGTH_MANIFEST, STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Rust;

const FRAMEWORKS: &[(&str, &str)] = &[
    ("axum", "axum"),
    ("actix-web", "actix-web"),
    ("rocket", "rocket"),
    ("warp", "warp"),
    ("poem", "poem"),
];

impl Detector for Rust {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let Some((cargo, text)) = ctx.toml("Cargo.toml")? else {
            return Ok(Outcome::NoMatch("no Cargo.toml".into()));
        };
        let src = ctx.path("Cargo.toml");
        let Some(package) = cargo.get("package") else {
            return Ok(Outcome::NoMatch(
                "Cargo.toml is a workspace without a [package]; choose a member with --app-dir"
                    .into(),
            ));
        };
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("rust".into()),
            Cite::file(&src, None, "Cargo.toml"),
        );
        plan.set(
            Field::PackageManager,
            Some("cargo".into()),
            Cite::file(&src, None, "Cargo.toml"),
        );
        // Version: rust-toolchain(.toml) channel, else rust-version.
        if let Some((tc, ttext)) = ctx.toml("rust-toolchain.toml")? {
            if let Some(ch) = tc
                .get("toolchain")
                .and_then(|t| t.get("channel"))
                .and_then(|c| c.as_str())
            {
                plan.set(
                    Field::Version,
                    Some(ch.into()),
                    Cite::file(
                        ctx.path("rust-toolchain.toml"),
                        toml_key_line(&ttext, Some("toolchain"), "channel"),
                        "[toolchain] channel",
                    ),
                );
            }
        } else if let Some(t) = ctx.text("rust-toolchain")? {
            if let Some((v, line)) = version_file_value(&t) {
                plan.set(
                    Field::Version,
                    Some(v),
                    Cite::file(
                        ctx.path("rust-toolchain"),
                        Some(line),
                        "rust-toolchain file",
                    ),
                );
            }
        }
        if plan.version.is_none() {
            if let Some(v) = package.get("rust-version").and_then(|v| v.as_str()) {
                plan.set(
                    Field::Version,
                    Some(v.into()),
                    Cite::file(
                        &src,
                        toml_key_line(&text, Some("package"), "rust-version"),
                        "[package] rust-version",
                    ),
                );
            }
        }
        if let Some(ed) = package.get("edition").and_then(|v| v.as_str()) {
            plan.cite(
                "edition",
                ed,
                Cite::file(
                    &src,
                    toml_key_line(&text, Some("package"), "edition"),
                    "[package] edition",
                ),
            );
        }
        let deps = cargo.get("dependencies").and_then(|d| d.as_table());
        for (d, name) in FRAMEWORKS {
            if deps.is_some_and(|t| t.contains_key(*d)) {
                plan.set(
                    Field::Framework,
                    Some((*name).into()),
                    Cite::file(
                        &src,
                        toml_key_line(&text, Some("dependencies"), d),
                        format!("dependency `{d}`"),
                    ),
                );
                break;
            }
        }
        // The binary: [[bin]] (default-run when several), else the package name when src/main.rs exists.
        let bins: Vec<&str> = cargo
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("name").and_then(|n| n.as_str()))
            .collect();
        let name = package
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("app");
        let default_run = package.get("default-run").and_then(|d| d.as_str());
        let bin = if let Some(d) = default_run {
            Some((
                d.to_owned(),
                Cite::file(
                    &src,
                    toml_key_line(&text, Some("package"), "default-run"),
                    "[package] default-run",
                ),
            ))
        } else if let Some(first) = bins.first() {
            for other in bins.iter().skip(1) {
                plan.lose(
                    "start",
                    other,
                    Some(&src),
                    format!(
                        "another [[bin]]; the first ({first}) was chosen, set default-run to pick"
                    ),
                );
            }
            Some((
                (*first).to_owned(),
                Cite::file(
                    &src,
                    crate::detect::line_of(&text, "[[bin]]"),
                    "first [[bin]] name",
                ),
            ))
        } else if ctx.is_file("src/main.rs") {
            Some((
                name.to_owned(),
                Cite::file(
                    ctx.path("src/main.rs"),
                    None,
                    "src/main.rs builds a binary named after the package",
                ),
            ))
        } else {
            None
        };
        let locked = if ctx.is_file("Cargo.lock") {
            " --locked"
        } else {
            ""
        };
        let mut strength = STRENGTH_MANIFEST;
        if let Some((bin, cite)) = bin {
            plan.set(
                Field::Build,
                Some(format!(
                    "CARGO_TARGET_DIR=target cargo build --release{locked} --bin {bin}"
                )),
                cite.clone(),
            );
            plan.set(Field::Start, Some(format!("./target/release/{bin}")), cite);
            strength = if plan.framework.is_some() {
                STRENGTH_FRAMEWORK
            } else {
                STRENGTH_START
            };
        } else {
            plan.notices.push("a library crate: nothing to run".into());
        }
        if plan.framework.as_deref() == Some("rocket") {
            plan.set_port(8000, Cite::rule("Rocket's default port (ROCKET_PORT)"));
        }
        plan.resources = Some(ResourcesHint {
            memory_mb: 128,
            cpu: 0.25,
        });
        plan.cite(
            "resources",
            "128 MiB",
            Cite::rule("typical for a Rust binary (the build needs more)"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}
