//! Node: npm, yarn (classic and berry), pnpm, bun; engines and version files; frameworks.

use serde_json::Value;

use super::{
    dockerfile_version, json_key_line, json_str, line_of, managed_versions, sh_quote,
    version_file_value, Ctx, Detection, Detector, Outcome, STRENGTH_FRAMEWORK, STRENGTH_MANIFEST,
    STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Node;

/// Frameworks by dependency, most specific first: (dependency, name, serves a static build).
const FRAMEWORKS: &[(&str, &str)] = &[
    ("next", "nextjs"),
    ("nuxt", "nuxt"),
    ("@remix-run/serve", "remix"),
    ("@remix-run/node", "remix"),
    ("@nestjs/core", "nestjs"),
    ("@sveltejs/kit", "sveltekit"),
    ("astro", "astro"),
    ("fastify", "fastify"),
    ("express", "express"),
    ("koa", "koa"),
    ("hono", "hono"),
    ("@hapi/hapi", "hapi"),
    ("react-scripts", "create-react-app"),
    ("vite", "vite"),
];

fn dep<'v>(pkg: &'v Value, name: &str) -> Option<(&'static str, &'v str)> {
    for section in ["dependencies", "devDependencies"] {
        if let Some(v) = pkg.get(section).and_then(|d| d.get(name)) {
            let section: &'static str = if section == "dependencies" {
                "dependencies"
            } else {
                "devDependencies"
            };
            return Some((section, v.as_str().unwrap_or("")));
        }
    }
    None
}

impl Detector for Node {
    fn name(&self) -> &'static str {
        "node"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let Some((pkg, text)) = ctx.json("package.json")? else {
            return Ok(Outcome::NoMatch("no package.json".into()));
        };
        if !pkg.is_object() {
            return Err(AnalyzeError::Malformed {
                file: ctx.path("package.json"),
                line: Some(1),
                column: Some(1),
                message: "package.json must hold a JSON object".into(),
            });
        }
        let src = ctx.path("package.json");
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("node".into()),
            Cite::file(&src, None, "package.json"),
        );
        version(ctx, &pkg, &text, &mut plan)?;
        let pm = package_manager(ctx, &pkg, &text, &mut plan)?;
        let scripts = pkg.get("scripts");
        let script = |name: &str| scripts.and_then(|s| json_str(s, name));
        let run = |name: &str| match pm {
            "npm" => format!("npm run {name}"),
            other => format!("{other} run {name}"),
        };

        // Framework: the first of FRAMEWORKS present among the dependencies.
        let framework = FRAMEWORKS
            .iter()
            .find_map(|(d, name)| dep(&pkg, d).map(|(section, _)| (*d, *name, section)));
        if let Some((d, name, section)) = framework {
            plan.set(
                Field::Framework,
                Some(name.into()),
                Cite::file(
                    &src,
                    json_key_line(&text, &[section, d]),
                    format!("`{d}` in {section}"),
                ),
            );
        }
        let framework = framework.map(|f| f.1);
        let typescript = dep(&pkg, "typescript").is_some() && ctx.is_file("tsconfig.json");

        // Build.
        if script("build").is_some() {
            plan.set(
                Field::Build,
                Some(run("build")),
                Cite::file(
                    &src,
                    json_key_line(&text, &["scripts", "build"]),
                    "`build` script",
                ),
            );
        } else if typescript && !matches!(framework, Some("nextjs" | "nuxt" | "vite")) {
            plan.set(
                Field::Build,
                Some("npx tsc".into()),
                Cite::file(
                    ctx.path("tsconfig.json"),
                    None,
                    "TypeScript project without a build script",
                ),
            );
        }

        // Start.
        let mut strength = STRENGTH_MANIFEST;
        let static_build = matches!(framework, Some("vite" | "create-react-app"))
            && script("start").is_none_or(|s| s.contains("vite") || s.contains("react-scripts"));
        if static_build {
            let out = if framework == Some("vite") {
                vite_out_dir(ctx).unwrap_or_else(|| {
                    ("dist".to_owned(), Cite::rule("Vite's default build.outDir"))
                })
            } else {
                (
                    "build".to_owned(),
                    Cite::rule("Create React App writes build/"),
                )
            };
            plan.set(Field::StaticDir, Some(out.0), out.1);
            plan.set(
                Field::Start,
                None,
                Cite::rule("static build: served as files, no server process"),
            );
            if script("build").is_none() {
                plan.set(
                    Field::Build,
                    Some(format!(
                        "npx {}",
                        if framework == Some("vite") {
                            "vite build"
                        } else {
                            "react-scripts build"
                        }
                    )),
                    Cite::rule("static build tool without a build script"),
                );
            }
            strength = STRENGTH_START;
        } else if let Some((prod, dev)) = production_start(&script) {
            // `nest start`, nodemon, ts-node: the `start` script is the development server and
            // the project names its production start `start:prod` (the NestJS scaffold's
            // `node dist/main`).
            plan.set(
                Field::Start,
                Some(format!("{pm} run start:prod")),
                Cite::file(
                    &src,
                    json_key_line(&text, &["scripts", "start:prod"]),
                    format!("`start:prod` script: {prod}"),
                ),
            );
            if let Some(dev) = dev {
                plan.lose(
                    "start",
                    &format!("{pm} start"),
                    Some(&src),
                    format!("the `start` script runs a development command ({dev}); `start:prod` is the production start"),
                );
            }
            strength = if framework.is_some() {
                STRENGTH_FRAMEWORK
            } else {
                STRENGTH_START
            };
        } else if let Some(s) = script("start") {
            let cmd = if pm == "npm" || pm == "bun" {
                format!("{pm} {}start", if pm == "bun" { "run " } else { "" })
            } else {
                format!("{pm} start")
            };
            plan.set(
                Field::Start,
                Some(cmd),
                Cite::file(
                    &src,
                    json_key_line(&text, &["scripts", "start"]),
                    format!("`start` script: {s}"),
                ),
            );
            strength = if framework.is_some() {
                STRENGTH_FRAMEWORK
            } else {
                STRENGTH_START
            };
        } else if let Some(fw_start) = framework_start(framework, ctx) {
            plan.set(Field::Start, Some(fw_start.0), fw_start.1);
            strength = STRENGTH_FRAMEWORK;
        } else if let Some((file, cite)) = main_file(ctx, &pkg, &text, typescript) {
            plan.set(
                Field::Start,
                Some(format!("node {}", sh_quote(&file))),
                cite,
            );
            strength = if framework.is_some() {
                STRENGTH_FRAMEWORK
            } else {
                STRENGTH_START
            };
        }

        // Frameworks whose server reads PORT by itself.
        if let Some(fw @ ("nextjs" | "nuxt" | "remix" | "sveltekit" | "astro")) = framework {
            if plan.start.is_some() {
                plan.set_reads_port_env(true, Cite::rule(format!("{fw}'s server reads PORT")));
                plan.set_port(3000, Cite::rule(format!("{fw}'s default port")));
            }
        }
        let memory = if matches!(framework, Some("nextjs" | "nuxt" | "nestjs")) {
            512
        } else {
            256
        };
        plan.resources = Some(ResourcesHint {
            memory_mb: memory,
            cpu: 0.25,
        });
        plan.cite(
            "resources",
            &format!("{memory} MiB"),
            Cite::rule("typical for a Node process"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}

fn version(ctx: &Ctx, pkg: &Value, text: &str, plan: &mut BuildPlan) -> Result<(), AnalyzeError> {
    let mut found: Vec<(String, Cite)> = Vec::new();
    for file in [".nvmrc", ".node-version"] {
        if let Some(t) = ctx.text(file)? {
            if let Some((v, line)) = version_file_value(&t) {
                let v = v.trim_start_matches('v').to_owned();
                found.push((
                    v,
                    Cite::file(
                        ctx.path(file),
                        Some(line),
                        format!("first version in {file}"),
                    ),
                ));
            }
        }
    }
    for (v, cite) in managed_versions(ctx, &["node", "nodejs"])? {
        found.push((v.trim_start_matches('v').to_owned(), cite));
    }
    if let Some(v) = pkg.get("engines").and_then(|e| json_str(e, "node")) {
        found.push((
            v.to_owned(),
            Cite::file(
                ctx.path("package.json"),
                json_key_line(text, &["engines", "node"]),
                "engines.node",
            ),
        ));
    }
    found.extend(dockerfile_version(ctx, &["node"])?);
    let mut it = found.into_iter();
    if let Some((v, cite)) = it.next() {
        let winner = cite.source.clone().unwrap_or_default();
        plan.set(Field::Version, Some(v), cite);
        for (v, c) in it {
            plan.lose(
                "version",
                &v,
                c.source.as_deref(),
                format!("{winner} is more specific"),
            );
        }
    }
    Ok(())
}

fn package_manager(
    ctx: &Ctx,
    pkg: &Value,
    text: &str,
    plan: &mut BuildPlan,
) -> Result<&'static str, AnalyzeError> {
    let yarn_berry = ctx.is_file(".yarnrc.yml")
        || ctx
            .text_opt("yarn.lock")
            .is_some_and(|t| t.contains("__metadata:"));
    let locks: Vec<(&'static str, &'static str)> = [
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("bun.lockb", "bun"),
        ("bun.lock", "bun"),
        ("package-lock.json", "npm"),
        ("npm-shrinkwrap.json", "npm"),
    ]
    .into_iter()
    .filter(|(f, _)| ctx.is_file(f))
    .collect();
    let declared = json_str(pkg, "packageManager").map(|s| {
        let name = s.split('@').next().unwrap_or(s);
        let pm: Option<&'static str> = ["npm", "yarn", "pnpm", "bun"]
            .into_iter()
            .find(|p| *p == name);
        (pm, s)
    });
    let (pm, lockfile, cite) = match declared {
        Some((Some(pm), s)) => (
            pm,
            locks.iter().find(|(_, p)| *p == pm).map(|(f, _)| *f),
            Cite::file(
                ctx.path("package.json"),
                json_key_line(text, &["packageManager"]),
                format!("packageManager: {s}"),
            ),
        ),
        _ => match locks.first() {
            Some((f, pm)) => (
                *pm,
                Some(*f),
                Cite::file(ctx.path(f), None, format!("lockfile {f}")),
            ),
            None => (
                "npm",
                None,
                Cite::rule("no lockfile and no packageManager: npm"),
            ),
        },
    };
    for (f, other) in &locks {
        if *other != pm {
            plan.lose(
                "package_manager",
                other,
                Some(&ctx.path(f)),
                format!(
                    "{} decides",
                    cite.source.clone().unwrap_or_else(|| cite.rule.clone())
                ),
            );
        }
    }
    let berry =
        pm == "yarn" && (yarn_berry || declared.is_some_and(|(_, s)| !s.starts_with("yarn@1")));
    let label = if berry { "yarn-berry" } else { pm };
    plan.set(Field::PackageManager, Some(label.into()), cite.clone());
    let install = match (pm, lockfile.is_some()) {
        ("npm", true) => "npm ci",
        ("npm", false) => "npm install",
        ("yarn", true) if berry => "yarn install --immutable",
        ("yarn", true) => "yarn install --frozen-lockfile",
        ("yarn", false) => "yarn install",
        ("pnpm", true) => "pnpm install --frozen-lockfile",
        ("pnpm", false) => "pnpm install",
        ("bun", true) => "bun install --frozen-lockfile",
        _ => "bun install",
    };
    let rule = match lockfile {
        Some(f) => format!("{pm} with lockfile {f}"),
        None => format!("{pm} without a lockfile"),
    };
    let source = lockfile.map(|f| ctx.path(f)).or(cite.source);
    plan.set(
        Field::Install,
        Some(install.into()),
        Cite {
            source,
            line: None,
            rule,
        },
    );
    Ok(pm)
}

fn framework_start(framework: Option<&str>, ctx: &Ctx) -> Option<(String, Cite)> {
    let (cmd, rule) = match framework? {
        "nextjs" => ("npx next start", "Next.js without a start script"),
        "nuxt" => ("node .output/server/index.mjs", "Nuxt's server output"),
        "remix" => (
            "npx remix-serve ./build/index.js",
            "Remix without a start script",
        ),
        "nestjs" => ("node dist/main", "NestJS compiles to dist/main.js"),
        "sveltekit" if ctx.is_file("svelte.config.js") => {
            ("node build", "SvelteKit adapter-node output")
        }
        _ => return None,
    };
    Some((cmd.into(), Cite::rule(rule)))
}

/// `main` from package.json, or a conventional entry file.
fn main_file(ctx: &Ctx, pkg: &Value, text: &str, typescript: bool) -> Option<(String, Cite)> {
    if let Some(main) = json_str(pkg, "main") {
        let main = main.trim_start_matches("./");
        if ctx.is_file(main) || typescript {
            return Some((
                main.to_owned(),
                Cite::file(
                    ctx.path("package.json"),
                    json_key_line(text, &["main"]),
                    "`main` in package.json",
                ),
            ));
        }
    }
    for f in [
        "server.js",
        "index.js",
        "app.js",
        "main.js",
        "server.mjs",
        "index.mjs",
        "src/server.js",
        "src/index.js",
    ] {
        if ctx.is_file(f) {
            return Some((
                f.to_owned(),
                Cite::file(ctx.path(f), None, "conventional entry file"),
            ));
        }
    }
    if typescript {
        let out = ctx
            .text_opt("tsconfig.json")
            .and_then(|t| {
                let line = t.lines().find(|l| l.contains("\"outDir\""))?.to_owned();
                let v = line
                    .split(':')
                    .nth(1)?
                    .trim()
                    .trim_matches(|c| c == '"' || c == ',' || c == ' ')
                    .to_owned();
                Some(v.trim_start_matches("./").trim_end_matches('/').to_owned())
            })
            .unwrap_or_else(|| "dist".to_owned());
        for f in [
            "src/index.ts",
            "src/server.ts",
            "src/main.ts",
            "index.ts",
            "server.ts",
        ] {
            if ctx.is_file(f) {
                let stem = f.trim_start_matches("src/").trim_end_matches(".ts");
                return Some((
                    format!("{out}/{stem}.js"),
                    Cite::file(
                        ctx.path("tsconfig.json"),
                        line_of(&ctx.text_opt("tsconfig.json").unwrap_or_default(), "outDir"),
                        format!("TypeScript entry {f} compiled to {out}/"),
                    ),
                ));
            }
        }
    }
    None
}

fn vite_out_dir(ctx: &Ctx) -> Option<(String, Cite)> {
    for f in [
        "vite.config.ts",
        "vite.config.js",
        "vite.config.mjs",
        "vite.config.mts",
    ] {
        let Some(t) = ctx.text_opt(f) else { continue };
        for (i, l) in t.lines().enumerate() {
            if let Some(rest) = l.split("outDir").nth(1) {
                let v = rest.trim_start_matches([':', ' ']).replace('\'', "\"");
                if let Some(dir) = v.split('"').nth(1) {
                    return Some((
                        dir.trim_start_matches("./").to_owned(),
                        Cite::file(
                            ctx.path(f),
                            u32::try_from(i + 1).ok(),
                            "build.outDir in the Vite config",
                        ),
                    ));
                }
            }
        }
    }
    None
}

/// The `start:prod` script when `start` is missing or runs a development command; with the
/// development `start` script, if any.
fn production_start<'a>(
    script: &impl Fn(&str) -> Option<&'a str>,
) -> Option<(&'a str, Option<&'a str>)> {
    let prod = script("start:prod")?;
    match script("start") {
        None => Some((prod, None)),
        Some(dev)
            if ["nest start", "nodemon", "ts-node", "--watch"]
                .iter()
                .any(|d| dev.contains(d)) =>
        {
            Some((prod, Some(dev)))
        }
        Some(_) => None,
    }
}
