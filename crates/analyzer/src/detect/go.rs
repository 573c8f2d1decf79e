//! Go: `go.mod` directives, the main package, the binary the build writes.

use super::{
    line_of, managed_versions, Ctx, Detection, Detector, Outcome, STRENGTH_FRAMEWORK,
    STRENGTH_MANIFEST, STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::fs::EntryKind;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Go;

const FRAMEWORKS: &[(&str, &str)] = &[
    ("github.com/gin-gonic/gin", "gin"),
    ("github.com/labstack/echo", "echo"),
    ("github.com/gofiber/fiber", "fiber"),
    ("github.com/go-chi/chi", "chi"),
    ("github.com/gorilla/mux", "gorilla"),
];

fn directive<'t>(text: &'t str, name: &str) -> Option<(&'t str, u32)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let rest = l.trim().strip_prefix(name)?;
        rest.starts_with([' ', '\t'])
            .then(|| (rest.trim(), u32::try_from(i + 1).unwrap_or(0)))
    })
}

fn is_main_package(ctx: &Ctx, dir: &str) -> Option<String> {
    let entries = ctx.list(dir);
    entries
        .iter()
        .filter(|e| {
            e.kind == EntryKind::File && e.name.ends_with(".go") && !e.name.ends_with("_test.go")
        })
        .find(|e| {
            let path = super::join_rel(dir, &e.name);
            ctx.text_opt(&path).is_some_and(|t| {
                t.lines().any(|l| l.trim() == "package main") && t.contains("func main()")
            })
        })
        .map(|e| super::join_rel(dir, &e.name))
}

impl Detector for Go {
    fn name(&self) -> &'static str {
        "go"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let Some(text) = ctx.text("go.mod")? else {
            return Ok(Outcome::NoMatch("no go.mod".into()));
        };
        let src = ctx.path("go.mod");
        let Some((module, _)) = directive(&text, "module") else {
            return Err(AnalyzeError::Malformed {
                file: src,
                line: Some(1),
                column: None,
                message: "go.mod has no `module` directive".into(),
            });
        };
        let module = module.trim_matches('"');
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("go".into()),
            Cite::file(&src, None, "go.mod"),
        );
        let go = directive(&text, "go");
        let toolchain = directive(&text, "toolchain");
        match (toolchain, go) {
            (Some((t, line)), g) => {
                plan.set(
                    Field::Version,
                    Some(t.trim_start_matches("go").into()),
                    Cite::file(&src, Some(line), "toolchain directive"),
                );
                if let Some((g, gl)) = g {
                    let _ = gl;
                    plan.lose(
                        "version",
                        g,
                        Some(&src),
                        "the toolchain directive names the exact toolchain".into(),
                    );
                }
            }
            (None, Some((g, line))) => plan.set(
                Field::Version,
                Some(g.into()),
                Cite::file(&src, Some(line), "go directive"),
            ),
            (None, None) => {}
        }
        // mise / .tool-versions rank after go.mod: the go command itself switches to the
        // toolchain go.mod asks for (GOTOOLCHAIN=auto), whatever Go the machine has.
        for (v, cite) in managed_versions(ctx, &["golang", "go"])? {
            if plan.version.is_none() {
                plan.set(Field::Version, Some(v), cite);
            } else {
                plan.lose(
                    "version",
                    &v,
                    cite.source.as_deref(),
                    format!(
                        "go.mod ranks higher: the go command switches to the toolchain it asks for ({})",
                        cite.rule
                    ),
                );
            }
        }
        plan.set(
            Field::PackageManager,
            Some("go modules".into()),
            Cite::file(&src, None, "go.mod"),
        );
        if ctx.is_file("go.sum") {
            plan.set(
                Field::Install,
                Some("go mod download".into()),
                Cite::file(ctx.path("go.sum"), None, "go.sum lists dependencies"),
            );
        }
        for (m, name) in FRAMEWORKS {
            if let Some(line) = line_of(&text, m) {
                plan.set(
                    Field::Framework,
                    Some((*name).into()),
                    Cite::file(&src, Some(line), format!("requires {m}")),
                );
                break;
            }
        }
        // The main package: the root, else cmd/<name>, else a shallow directory with package main.
        let mut mains: Vec<(String, String)> = Vec::new(); // (package dir, file)
        if let Some(f) = is_main_package(ctx, "") {
            mains.push((String::new(), f));
        }
        for e in ctx
            .list("cmd")
            .into_iter()
            .filter(|e| e.kind == EntryKind::Dir)
        {
            let dir = format!("cmd/{}", e.name);
            if let Some(f) = is_main_package(ctx, &dir) {
                mains.push((dir, f));
            }
        }
        if mains.is_empty() {
            for e in ctx.list("").into_iter().filter(|e| {
                e.kind == EntryKind::Dir && !e.name.starts_with('.') && e.name != "vendor"
            }) {
                if let Some(f) = is_main_package(ctx, &e.name) {
                    mains.push((e.name.clone(), f));
                }
            }
        }
        let base = module.rsplit('/').next().unwrap_or(module).to_owned();
        // Prefer the main package named like the module (cmd/<module-name>), else the first.
        let pick = mains
            .iter()
            .position(|(d, _)| d.is_empty() || d.rsplit('/').next() == Some(base.as_str()))
            .unwrap_or(0);
        let mut strength = STRENGTH_MANIFEST;
        if let Some((dir, file)) = mains.get(pick).cloned() {
            let name = if dir.is_empty() {
                base.clone()
            } else {
                dir.rsplit('/').next().unwrap_or(&dir).to_owned()
            };
            let pkg = if dir.is_empty() {
                ".".to_owned()
            } else {
                format!("./{dir}")
            };
            plan.set(
                Field::Build,
                Some(format!("go build -o bin/{name} {pkg}")),
                Cite::file(ctx.path(&file), None, "package main with func main()"),
            );
            plan.set(
                Field::Start,
                Some(format!("./bin/{name}")),
                Cite::rule("the binary `go build -o` writes"),
            );
            strength = if plan.framework.is_some() {
                STRENGTH_FRAMEWORK
            } else {
                STRENGTH_START
            };
            for (i, (d, f)) in mains.iter().enumerate() {
                if i != pick {
                    plan.lose("start", &format!("./{d}"), Some(&ctx.path(f)), format!("another main package; {} was chosen (name matches the module or comes first)", if dir.is_empty() { "." } else { &dir }));
                }
            }
        }
        if plan.framework.as_deref() == Some("gin") {
            plan.set_port(8080, Cite::rule("gin's default port"));
        }
        plan.resources = Some(ResourcesHint {
            memory_mb: 128,
            cpu: 0.25,
        });
        plan.cite(
            "resources",
            "128 MiB",
            Cite::rule("typical for a Go binary"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}
