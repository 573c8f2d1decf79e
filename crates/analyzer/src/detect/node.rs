//! Node: npm, yarn (classic and berry), pnpm, bun; engines and version files; frameworks.

use serde_json::Value;

use super::{
    dockerfile_version, join, json_key_line, json_str, line_of, managed_versions, sh_quote,
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
        let ws = workspace(ctx);
        version(ctx, &pkg, &text, ws.as_ref(), &mut plan)?;
        let pm = package_manager(ctx, &pkg, &text, ws.as_ref(), &mut plan)?;
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

fn version(
    ctx: &Ctx,
    pkg: &Value,
    text: &str,
    ws: Option<&Workspace>,
    plan: &mut BuildPlan,
) -> Result<(), AnalyzeError> {
    let mut found: Vec<(String, Cite)> = Vec::new();
    // The member's own files, then the workspace root's (nvm and nodenv look upwards too).
    let dirs = std::iter::once(ctx.dir.as_str()).chain(ws.map(|w| w.root.as_str()));
    for dir in dirs {
        for file in [".nvmrc", ".node-version"] {
            let path = join(dir, file);
            if let Some(t) = ctx.fs.read_text(&path)? {
                if let Some((v, line)) = version_file_value(&t) {
                    let v = v.trim_start_matches('v').to_owned();
                    found.push((
                        v,
                        Cite::file(path, Some(line), format!("first version in {file}")),
                    ));
                }
            }
        }
    }
    for (v, cite) in managed_versions(ctx, &["node", "nodejs"])? {
        found.push((v.trim_start_matches('v').to_owned(), cite));
    }
    let manifests =
        std::iter::once((ctx.path("package.json"), pkg, text)).chain(ws.and_then(|w| {
            w.pkg
                .as_ref()
                .map(|(v, t)| (join(&w.root, "package.json"), v, t.as_str()))
        }));
    for (path, pkg, text) in manifests {
        if let Some(v) = pkg.get("engines").and_then(|e| json_str(e, "node")) {
            found.push((
                v.to_owned(),
                Cite::file(
                    path,
                    json_key_line(text, &["engines", "node"]),
                    "engines.node",
                ),
            ));
        }
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

/// Records the package manager and the install command; returns the manager. A workspace
/// member installs at the workspace root, with the root's lockfile and manager.
fn package_manager(
    ctx: &Ctx,
    pkg: &Value,
    text: &str,
    ws: Option<&Workspace>,
    plan: &mut BuildPlan,
) -> Result<&'static str, AnalyzeError> {
    // Where the install runs: the lockfile, `.yarnrc.yml` and `node_modules` are there.
    let install_dir = ws.map_or(ctx.dir.as_str(), |w| w.root.as_str());
    let at = |f: &str| join(install_dir, f);
    let yarn_berry = ctx.fs.is_file(&at(".yarnrc.yml"))
        || ctx
            .fs
            .read_text(&at("yarn.lock"))
            .ok()
            .flatten()
            .is_some_and(|t| t.contains("__metadata:"));
    let locks: Vec<(&'static str, &'static str)> = LOCKFILES
        .iter()
        .copied()
        .filter(|(f, _)| ctx.fs.is_file(&at(f)))
        .collect();
    // `packageManager` (corepack): the app's own, else the workspace root's.
    let root_pkg = ws.and_then(|w| {
        w.pkg
            .as_ref()
            .map(|(v, t)| (v, t.as_str(), join(&w.root, "package.json")))
    });
    let declared = std::iter::once((pkg, text, ctx.path("package.json")))
        .chain(root_pkg)
        .find_map(|(pkg, text, path)| {
            let s = json_str(pkg, "packageManager")?;
            let name = s.split('@').next().unwrap_or(s);
            let pm: Option<&'static str> = ["npm", "yarn", "pnpm", "bun"]
                .into_iter()
                .find(|p| *p == name);
            Some((pm, s, text, path))
        });
    let (pm, lockfile, cite) = match &declared {
        Some((Some(pm), s, text, path)) => (
            *pm,
            locks.iter().find(|(_, p)| p == pm).map(|(f, _)| *f),
            Cite::file(
                path,
                json_key_line(text, &["packageManager"]),
                format!("packageManager: {s}"),
            ),
        ),
        _ => match locks.first() {
            Some((f, pm)) => (
                *pm,
                Some(*f),
                Cite::file(at(f), None, format!("lockfile {f}")),
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
                Some(&at(f)),
                format!(
                    "{} decides",
                    cite.source.clone().unwrap_or_else(|| cite.rule.clone())
                ),
            );
        }
    }
    let berry = pm == "yarn"
        && (yarn_berry
            || declared
                .as_ref()
                .is_some_and(|(_, s, _, _)| !s.starts_with("yarn@1")));
    let label = if berry { "yarn-berry" } else { pm };
    plan.set(Field::PackageManager, Some(label.into()), cite.clone());
    let install = install_command(pm, lockfile.is_some(), berry);
    let mut rule = match lockfile {
        Some(f) => format!("{pm} with lockfile {f}"),
        None => format!("{pm} without a lockfile"),
    };
    let source = lockfile.map(at).or(cite.source);
    let install = match ws {
        Some(w) => {
            rule = format!(
                "member of the workspace declared in {}: {rule}, installed at the workspace root",
                w.declared_in
            );
            // On its own the member would install without the workspace's lockfile, and
            // its `workspace:` dependencies on the other members would not resolve.
            let alone = json_str(pkg, "packageManager")
                .and_then(|s| s.split('@').next())
                .filter(|p| ["yarn", "pnpm", "bun"].contains(p))
                .unwrap_or("npm");
            plan.lose(
                "install",
                &format!("{alone} install"),
                Some(&ctx.path("package.json")),
                format!(
                    "a workspace member installs at the workspace root ({})",
                    w.declared_in
                ),
            );
            format!("cd {} && {install}", w.up)
        }
        None => install.to_owned(),
    };
    plan.set(
        Field::Install,
        Some(install),
        Cite {
            source,
            line: None,
            rule,
        },
    );
    Ok(pm)
}

/// Lockfiles and their package managers, in the order they decide when `packageManager` does not.
const LOCKFILES: &[(&str, &str)] = &[
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lockb", "bun"),
    ("bun.lock", "bun"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
];

/// The install command: frozen to the lockfile when there is one.
fn install_command(pm: &str, locked: bool, berry: bool) -> &'static str {
    match (pm, locked) {
        ("npm", true) => "npm ci",
        ("npm", false) => "npm install",
        ("yarn", true) if berry => "yarn install --immutable",
        ("yarn", true) => "yarn install --frozen-lockfile",
        ("yarn", false) => "yarn install",
        ("pnpm", true) => "pnpm install --frozen-lockfile",
        ("pnpm", false) => "pnpm install",
        ("bun", true) => "bun install --frozen-lockfile",
        _ => "bun install",
    }
}

/// The JavaScript workspace (npm, yarn and bun `workspaces` in package.json, pnpm's
/// pnpm-workspace.yaml) an app directory is a member of: the nearest directory above it that
/// declares a workspace, when one of its patterns matches the app (and no `!` pattern excludes
/// it). An app with a lockfile of its own installs on its own.
struct Workspace {
    /// Repository-relative directory of the workspace root, `""` for the repository root.
    root: String,
    /// The repository-relative file whose pattern names the member.
    declared_in: String,
    /// The root's package.json and its text, when it parses.
    pkg: Option<(Value, String)>,
    /// The path from the member back to the root: `../..`.
    up: String,
}

fn workspace(ctx: &Ctx) -> Option<Workspace> {
    if ctx.dir.is_empty() || LOCKFILES.iter().any(|(f, _)| ctx.is_file(f)) {
        return None;
    }
    for root in super::ancestors(&ctx.dir) {
        let read = |f: &str| ctx.fs.read_text(&join(root, f)).ok().flatten();
        let pkg = read("package.json").and_then(|t| {
            serde_json::from_str::<Value>(&t)
                .ok()
                .filter(Value::is_object)
                .map(|v| (v, t))
        });
        // pnpm reads only pnpm-workspace.yaml; npm, yarn and bun read package.json.
        let (declared_in, patterns) = if let Some(t) = read("pnpm-workspace.yaml") {
            ("pnpm-workspace.yaml", pnpm_workspace_packages(&t))
        } else if let Some(patterns) = pkg.as_ref().and_then(|(v, _)| package_json_workspaces(v)) {
            ("package.json", patterns)
        } else {
            continue;
        };
        let rel = if root.is_empty() {
            ctx.dir.as_str()
        } else {
            ctx.dir.strip_prefix(root)?.trim_start_matches('/')
        };
        let (exclude, include): (Vec<&str>, Vec<&str>) = patterns
            .iter()
            .map(String::as_str)
            .partition(|p| p.starts_with('!'));
        let member = include.iter().any(|p| super::glob_dir_match(p, rel))
            && !exclude.iter().any(|p| super::glob_dir_match(&p[1..], rel));
        return member.then(|| Workspace {
            declared_in: join(root, declared_in),
            root: root.to_owned(),
            pkg,
            up: vec![".."; rel.split('/').count()].join("/"),
        });
    }
    None
}

/// The member patterns in a pnpm-workspace.yaml (`packages`); none when it does not parse.
pub(crate) fn pnpm_workspace_packages(text: &str) -> Vec<String> {
    let doc = serde_norway::from_str::<Value>(text).ok();
    strings(doc.as_ref().and_then(|d| d.get("packages")))
}

/// The member patterns of package.json `workspaces` (npm, yarn, bun): an array, or yarn
/// classic's `{ "packages": [...] }`; `None` when the package declares no workspace.
pub(crate) fn package_json_workspaces(pkg: &Value) -> Option<Vec<String>> {
    let ws = pkg.get("workspaces")?;
    let list = if ws.is_array() {
        Some(ws)
    } else {
        ws.get("packages")
    };
    Some(strings(list))
}

fn strings(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
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

#[cfg(test)]
mod tests {
    use crate::{analyze, AnalyzeOptions, BuildPlan, MemFs};

    fn at(files: &[(&str, &str)], dir: &str) -> BuildPlan {
        analyze(
            &MemFs::from_files(files.iter().copied()),
            &AnalyzeOptions {
                app_dir: Some(dir.into()),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    const WEB: &str = r#"{
  "name": "@acme/web",
  "scripts": { "build": "next build", "start": "next start" },
  "dependencies": { "next": "14.2.3", "@acme/ui": "workspace:*" }
}
"#;
    const API: &str = r#"{
  "name": "api",
  "main": "server.js",
  "scripts": { "start": "node server.js" },
  "dependencies": { "express": "^4.19.2" }
}
"#;

    #[test]
    fn pnpm_workspace_member_installs_at_the_workspace_root() {
        let files = [
            (
                "package.json",
                r#"{"name":"acme","private":true,"packageManager":"pnpm@9.1.0","scripts":{"build":"turbo run build"}}"#,
            ),
            (
                "pnpm-workspace.yaml",
                "packages:\n  - \"apps/*\"\n  - \"packages/*\"\n",
            ),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
            ("apps/web/package.json", WEB),
            ("packages/ui/package.json", r#"{"name":"@acme/ui"}"#),
        ];
        let p = at(&files, "apps/web");
        assert_eq!(p.package_manager.as_deref(), Some("pnpm"));
        assert_eq!(
            p.install.as_deref(),
            Some("cd ../.. && pnpm install --frozen-lockfile")
        );
        let e = p.evidence_for("install").expect("install evidence");
        assert_eq!(e.source.as_deref(), Some("pnpm-lock.yaml"));
        assert!(e.rule.contains("pnpm-workspace.yaml"), "{}", e.rule);
        // Build and start run in the member's directory, with the workspace's manager.
        assert_eq!(p.build.as_deref(), Some("pnpm run build"));
        assert_eq!(p.start.as_deref(), Some("pnpm start"));
        assert_eq!(p.app_dir, "apps/web");
        // The member on its own would have installed without the workspace's lockfile.
        assert!(
            p.alternatives
                .iter()
                .any(|a| a.field == "install" && a.value == "npm install"),
            "{:?}",
            p.alternatives
        );
        // The package manager comes from the root's packageManager (corepack).
        let e = p.evidence_for("package_manager").expect("evidence");
        assert_eq!(e.source.as_deref(), Some("package.json"));
        assert!(e.rule.contains("pnpm@9.1.0"), "{}", e.rule);
        // The root itself (here with an entry file, so that it has something to start) is
        // planned as before.
        let mut with_entry = files.to_vec();
        with_entry.push(("index.js", "require('http').createServer().listen(3000);\n"));
        let root = at(&with_entry, ".");
        assert_eq!(
            root.install.as_deref(),
            Some("pnpm install --frozen-lockfile")
        );
    }

    #[test]
    fn yarn_npm_and_bun_workspace_members_install_at_the_root() {
        let root = r#"{"name":"acme","private":true,"workspaces":["apps/*","packages/*"]}"#;
        // (root files beside package.json, package manager, install, start)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);
        let cases: [Case; 5] = [
            (
                &[
                    (".yarnrc.yml", "nodeLinker: node-modules\n"),
                    ("yarn.lock", "__metadata:\n  version: 8\n"),
                ],
                "yarn-berry",
                "cd ../.. && yarn install --immutable",
                "yarn start",
            ),
            (
                &[("yarn.lock", "# yarn lockfile v1\n")],
                "yarn",
                "cd ../.. && yarn install --frozen-lockfile",
                "yarn start",
            ),
            (
                &[("package-lock.json", "{\"lockfileVersion\": 3}\n")],
                "npm",
                "cd ../.. && npm ci",
                "npm start",
            ),
            (
                &[("bun.lock", "{}\n")],
                "bun",
                "cd ../.. && bun install --frozen-lockfile",
                "bun run start",
            ),
            (&[], "npm", "cd ../.. && npm install", "npm start"),
        ];
        for (extra, pm, install, start) in cases {
            let mut files = vec![
                ("package.json", root),
                ("apps/api/package.json", API),
                (
                    "apps/api/server.js",
                    "require('express')().listen(process.env.PORT)\n",
                ),
            ];
            files.extend_from_slice(extra);
            let p = at(&files, "apps/api");
            assert_eq!(p.package_manager.as_deref(), Some(pm), "{extra:?}");
            assert_eq!(p.install.as_deref(), Some(install), "{extra:?}");
            assert_eq!(p.start.as_deref(), Some(start), "{extra:?}");
        }
    }

    #[test]
    fn root_package_manager_field_decides_for_members() {
        // Yarn 4 named by corepack's packageManager, a yarn.lock without berry's header.
        let files = [
            (
                "package.json",
                r#"{"private":true,"packageManager":"yarn@4.2.2","workspaces":{"packages":["packages/*"]}}"#,
            ),
            ("yarn.lock", "# placeholder\n"),
            ("package-lock.json", "{}\n"),
            ("packages/api/package.json", API),
        ];
        let p = at(&files, "packages/api");
        assert_eq!(p.package_manager.as_deref(), Some("yarn-berry"));
        assert_eq!(
            p.install.as_deref(),
            Some("cd ../.. && yarn install --immutable")
        );
        assert!(p.alternatives.iter().any(|a| a.field == "package_manager"
            && a.value == "npm"
            && a.source.as_deref() == Some("package-lock.json")));
        // A member's own packageManager outranks the root's.
        let member = API.replacen('{', "{\"packageManager\":\"pnpm@9.0.0\",", 1);
        let files = [
            (
                "package.json",
                r#"{"private":true,"packageManager":"yarn@4.2.2","workspaces":["packages/*"]}"#,
            ),
            ("packages/api/package.json", member.as_str()),
        ];
        let p = at(&files, "packages/api");
        assert_eq!(p.package_manager.as_deref(), Some("pnpm"));
        assert_eq!(p.install.as_deref(), Some("cd ../.. && pnpm install"));
    }

    #[test]
    fn workspace_membership_follows_the_declared_patterns() {
        let root = r#"{"private":true,"workspaces":["apps/*","services/**","!apps/legacy"]}"#;
        let mut files = vec![
            ("package.json", root),
            ("package-lock.json", "{}\n"),
            ("apps/legacy/package.json", API),
            ("services/billing/http/package.json", API),
            ("tools/api/package.json", API),
            ("apps/own/package.json", API),
            ("apps/own/yarn.lock", "# yarn lockfile v1\n"),
        ];
        // Deeper members: `**` spans directories, and the path back is as long.
        let p = at(&files, "services/billing/http");
        assert_eq!(p.install.as_deref(), Some("cd ../../.. && npm ci"));
        // Excluded, undeclared, or with a lockfile of its own: installs on its own.
        assert_eq!(
            at(&files, "apps/legacy").install.as_deref(),
            Some("npm install")
        );
        assert_eq!(
            at(&files, "tools/api").install.as_deref(),
            Some("npm install")
        );
        assert_eq!(
            at(&files, "apps/own").install.as_deref(),
            Some("yarn install --frozen-lockfile")
        );
        // A workspace nested in a sub-directory of the repository: its root is that directory.
        files = vec![
            (
                "web/package.json",
                r#"{"private":true,"workspaces":["apps/*"]}"#,
            ),
            ("web/pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
            ("web/pnpm-workspace.yaml", "packages: ['apps/*']\n"),
            ("web/apps/site/package.json", WEB),
        ];
        let p = at(&files, "web/apps/site");
        assert_eq!(
            p.install.as_deref(),
            Some("cd ../.. && pnpm install --frozen-lockfile")
        );
        assert_eq!(
            p.evidence_for("install").and_then(|e| e.source.as_deref()),
            Some("web/pnpm-lock.yaml")
        );
    }

    #[test]
    fn workspace_member_reads_the_root_node_version() {
        let files = [
            (
                "package.json",
                r#"{"private":true,"workspaces":["apps/*"],"engines":{"node":">=18"}}"#,
            ),
            (".nvmrc", "20.11.1\n"),
            ("package-lock.json", "{}\n"),
            ("apps/api/package.json", API),
        ];
        let p = at(&files, "apps/api");
        assert_eq!(p.version.as_deref(), Some("20.11.1"));
        assert_eq!(
            p.evidence_for("version").and_then(|e| e.source.as_deref()),
            Some(".nvmrc")
        );
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "version" && a.value == ">=18"));
    }
}
