//! The analyzer: from a repository to a [`BuildPlan`] that explains itself.
//!
//! Precedence: `slipway.toml` > `score.yaml` > `Procfile` > Dockerfile (recorded only) > detectors.
//! Every value carries [`Evidence`]; what lost is listed in [`BuildPlan::alternatives`].
//! See docs/analyzer.md.

mod code;
mod detect;
mod error;
pub mod fs;
mod monorepo;
mod overrides;
mod plan;
mod table;

use std::path::Path;

pub use error::{AnalyzeError, Candidate};
pub use fs::{DirFs, EntryKind, FsError, MemFs, RepoFs};
pub use overrides::SlipwayToml;
pub use plan::{Alternative, AnalyzeOptions, AppCandidate, BuildPlan, Evidence, ResourcesHint};
pub use table::render_table;

use detect::{Ctx, Outcome};
use plan::Cite;

/// Analyzes a repository: chooses the app directory, then plans it.
pub fn analyze(fs: &dyn RepoFs, options: &AnalyzeOptions) -> Result<BuildPlan, AnalyzeError> {
    let apps = monorepo::list_apps(fs);
    let chosen = match &options.app_dir {
        Some(dir) => Some((dir.clone(), Cite::rule("chosen with --app-dir"))),
        None => match overrides::read_slipway_toml(fs, "")? {
            Some((cfg, text)) => cfg.app_dir.map(|d| {
                (
                    d,
                    Cite::file(
                        "slipway.toml",
                        detect::toml_key_line(&text, None, "app_dir"),
                        "explicit in slipway.toml (app_dir)",
                    ),
                )
            }),
            None => None,
        },
    };
    let mut plan = if let Some((dir, cite)) = chosen {
        let norm = fs::normalize(&dir).map_err(|_| AnalyzeError::BadAppDir {
            app_dir: dir.clone(),
            reason: "must be a relative path inside the repository".into(),
        })?;
        if !fs.is_dir(&norm) {
            return Err(AnalyzeError::BadAppDir {
                app_dir: dir,
                reason: "is not a directory of the repository".into(),
            });
        }
        let mut plan = analyze_app(fs, &norm, true)?;
        plan.cite("app_dir", &plan.app_dir.clone(), cite);
        plan
    } else {
        match analyze_app(fs, "", true) {
            Ok(mut plan) => {
                plan.cite(
                    "app_dir",
                    ".",
                    Cite::rule("the repository root is deployable"),
                );
                plan
            }
            Err(AnalyzeError::Undetected {
                app_dir,
                mut candidates,
            }) => {
                let deployable: Vec<&AppCandidate> = apps.iter().filter(|a| a.deployable).collect();
                match deployable.as_slice() {
                    [only] => {
                        let mut plan = analyze_app(fs, &only.dir, true)?;
                        plan.cite(
                            "app_dir",
                            &only.dir,
                            Cite::file(
                                only.source.clone(),
                                None,
                                "the only deployable app directory",
                            ),
                        );
                        plan
                    }
                    [] => {
                        candidates.extend(apps.iter().map(|a| Candidate {
                            name: a.dir.clone(),
                            reason: a.reason.clone(),
                        }));
                        return Err(AnalyzeError::Undetected {
                            app_dir,
                            candidates,
                        });
                    }
                    _ => return Err(AnalyzeError::AmbiguousApps { apps }),
                }
            }
            Err(e) => return Err(e),
        }
    };
    plan.apps = apps;
    Ok(plan)
}

/// [`analyze`] on a directory of the local file system.
pub fn analyze_dir(path: &Path, options: &AnalyzeOptions) -> Result<BuildPlan, AnalyzeError> {
    let fs = DirFs::new(path)?;
    analyze(&fs, options)
}

/// Plans one app directory. `scan_code` also reads the sources for ports, variables and health
/// routes (left out when only listing monorepo candidates).
pub(crate) fn analyze_app(
    fs: &dyn RepoFs,
    dir: &str,
    scan_code: bool,
) -> Result<BuildPlan, AnalyzeError> {
    let ctx = Ctx::new(fs, dir);
    let mut matched = Vec::new();
    let mut candidates = Vec::new();
    for detector in detect::all() {
        if detector.name() == "static" && !matched.is_empty() {
            continue;
        }
        match detector.detect(&ctx)? {
            Outcome::Matched(d) => matched.push((detector.name(), d)),
            Outcome::NoMatch(reason) => candidates.push(Candidate {
                name: detector.name().into(),
                reason,
            }),
        }
    }
    // The strongest detection wins; ties go to the detector order (stable sort).
    matched.sort_by_key(|(_, d)| std::cmp::Reverse(d.strength));
    let mut it = matched.into_iter();
    let mut plan = BuildPlan::default();
    if let Some((name, winner)) = it.next() {
        plan = winner.plan;
        let strength_word = |s: u8| match s {
            detect::STRENGTH_FRAMEWORK => "a framework or an app with a start command",
            detect::STRENGTH_START => "a start command",
            _ => "a manifest only",
        };
        if plan.start.is_none() && plan.static_dir.is_none() {
            candidates.push(Candidate {
                name: name.into(),
                reason: format!("{} found, but nothing to start", winner.manifest),
            });
        }
        for (other, d) in it {
            if d.plan.start.is_none() && d.plan.static_dir.is_none() {
                candidates.push(Candidate {
                    name: other.into(),
                    reason: format!("{} found, but nothing to start", d.manifest),
                });
            }
            plan.lose(
                "language",
                d.plan.language.as_deref().unwrap_or(other),
                Some(&d.manifest),
                format!(
                    "{name} found {} ({}); {other} found {}",
                    strength_word(winner.strength),
                    winner.manifest,
                    strength_word(d.strength)
                ),
            );
        }
    }
    overrides::record_dockerfile(&mut plan, &ctx);
    overrides::apply_procfile(&mut plan, &ctx)?;
    overrides::apply_score(&mut plan, &ctx)?;
    overrides::apply_slipway_toml(&mut plan, &ctx)?;
    tool_path_for_explicit_start(&mut plan);
    plan.app_dir = if dir.is_empty() {
        ".".into()
    } else {
        dir.into()
    };

    if plan.start.is_none() && plan.static_dir.is_none() {
        if let Some(d) = &plan.dockerfile {
            candidates.push(Candidate {
                name: "dockerfile".into(),
                reason: format!("{d} found, but the local target cannot build images"),
            });
        }
        return Err(AnalyzeError::Undetected {
            app_dir: plan.app_dir,
            candidates,
        });
    }
    if plan.static_dir.is_some() && plan.start.is_none() {
        return Ok(plan);
    }
    ports_from_start(&mut plan, &ctx);
    if scan_code {
        if let Some(lang) = plan.language.clone() {
            code::apply_ports(&mut plan, &ctx, &lang);
            code::apply_env(&mut plan, &ctx, &lang);
            code::apply_health(&mut plan, &ctx, &lang);
        }
        if !plan.reads_port_env && plan.port.is_none() {
            plan.notices.push(
                "no PORT handling or listen port found in the code; the engine will have to probe"
                    .into(),
            );
        }
    }
    Ok(plan)
}

/// Procfile and score.yaml commands assume the dependencies' executables are on PATH (as on a
/// buildpack platform); here they live in `.venv/bin` or `node_modules/.bin` of the app directory
/// (and of the workspace root for a JavaScript workspace member).
fn tool_path_for_explicit_start(plan: &mut BuildPlan) {
    let Some(ev) = plan.evidence_for("start").cloned() else {
        return;
    };
    let explicit = ev.source.as_deref().is_some_and(|s| {
        s.ends_with("Procfile") || s.ends_with("score.yaml") || s.ends_with("score.yml")
    });
    let bin = match (plan.language.as_deref(), plan.install.as_deref()) {
        (Some("python"), Some(i))
            if i.contains(".venv")
                || i.contains("uv sync")
                || i.contains("pipenv")
                || i.contains("pdm") =>
        {
            ".venv/bin".to_owned()
        }
        (Some("node"), Some(i)) => node_bins(i),
        _ => return,
    };
    let bin = bin.as_str();
    if let (true, Some(start)) = (explicit, plan.start.clone()) {
        if !start.contains(bin) {
            plan.start = Some(format!("export PATH=\"$PWD/{bin}:$PATH\"; {start}"));
            plan.cite(
                "start",
                plan.start.clone().as_deref().unwrap_or(""),
                plan::Cite {
                    source: ev.source,
                    line: ev.line,
                    rule: format!(
                        "{} (with {bin} on PATH, where the install step puts the tools)",
                        ev.rule
                    ),
                },
            );
        }
    }
}

/// Where a Node install puts the tools, relative to the app directory: its `node_modules/.bin`,
/// and for a workspace member, which installs at the workspace root (`cd ../.. && …`), also the
/// root's, where npm, yarn and pnpm hoist the members' tools.
fn node_bins(install: &str) -> String {
    let up = install
        .strip_prefix("cd ")
        .and_then(|rest| rest.split_once(" && "))
        .map(|(up, _)| up)
        .filter(|up| up.split('/').all(|segment| segment == ".."));
    match up {
        Some(up) => format!("node_modules/.bin:$PWD/{up}/node_modules/.bin"),
        None => "node_modules/.bin".to_owned(),
    }
}

/// `--port ${PORT:-8000}` in the start command: the app reads PORT, 8000 by default. gunicorn
/// started without an address (no `-b`/`--bind`, no config file) also reads PORT.
fn ports_from_start(plan: &mut BuildPlan, ctx: &Ctx) {
    if plan.evidence_for("reads_port_env").is_some() {
        return;
    }
    let Some(start) = plan.start.clone() else {
        return;
    };
    let start_source = plan.evidence_for("start").and_then(|e| e.source.clone());
    let start_line = plan.evidence_for("start").and_then(|e| e.line);
    let cite = |rule: &str| Cite {
        source: start_source.clone(),
        line: start_line,
        rule: rule.to_owned(),
    };
    if !(start.contains("$PORT") || start.contains("${PORT")) {
        if gunicorn_default_bind(&start) && !ctx.is_file("gunicorn.conf.py") {
            plan.set_reads_port_env(
                true,
                cite("gunicorn without --bind listens on 0.0.0.0:$PORT when PORT is set"),
            );
            if plan.port.is_none() {
                plan.set_port(
                    8000,
                    cite("gunicorn's default address without PORT is 127.0.0.1:8000"),
                );
            }
        }
        return;
    }
    let c = cite("the start command passes $PORT");
    plan.set_reads_port_env(true, c);
    if let Some(rest) = start.split("${PORT:-").nth(1) {
        if let Some(port) = rest.split('}').next().and_then(|p| p.parse::<u16>().ok()) {
            if plan.port.is_none() {
                let c = cite("the start command's default for PORT");
                plan.set_port(port, c);
            } else if plan.port != Some(port) {
                plan.notices.push(format!(
                    "the start command defaults PORT to {port}, the plan's port is {:?}",
                    plan.port
                ));
            }
        }
    }
}

/// Whether the command runs gunicorn with its default address, which is `0.0.0.0:$PORT` when
/// `PORT` is set: no `-b`/`--bind`, no `-c`/`--config` file and no `GUNICORN_CMD_ARGS`.
fn gunicorn_default_bind(start: &str) -> bool {
    if start.contains("GUNICORN_CMD_ARGS") {
        return false;
    }
    start
        .split([';', '&', '|', '\n'])
        .filter_map(|cmd| {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_owned();
            let at = words.iter().position(|w| base(w) == "gunicorn")?;
            // Before it only variable assignments, `exec` or `python -m` may come.
            let runs_it = words[..at].iter().all(|w| {
                w.contains('=') || *w == "exec" || *w == "-m" || base(w).starts_with("python")
            });
            runs_it.then(|| words[at + 1..].to_vec())
        })
        .any(|args| {
            !args.iter().any(|a| {
                ["-b", "-c", "--bind", "--config"]
                    .iter()
                    .any(|flag| a.starts_with(flag))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(files: &[(&str, &str)]) -> BuildPlan {
        analyze(
            &MemFs::from_files(files.iter().copied()),
            &AnalyzeOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn stdlib_python_script_has_no_install() {
        let p = plan(&[(
            "app.py",
            "import os\nfrom http.server import HTTPServer\nPORT = int(os.environ.get('PORT', '8000'))\n",
        )]);
        assert_eq!(p.language.as_deref(), Some("python"));
        assert_eq!(p.install, None);
        assert_eq!(p.start.as_deref(), Some("python3 app.py"));
        assert!(p.reads_port_env);
        assert_eq!(p.port, Some(8000));
        assert_eq!(
            p.evidence_for("reads_port_env").and_then(|e| e.line),
            Some(3)
        );
    }

    #[test]
    fn listen_address_in_a_constant_is_followed() {
        let cargo =
            "[package]\nname = \"svc\"\nversion = \"0.1.0\"\n\n[dependencies]\nactix-web = \"4\"\n";
        let p = plan(&[
            ("Cargo.toml", cargo),
            (
                "src/main.rs",
                "mod constants;\nfn main() {\n    HttpServer::new(|| App::new()).bind(constants::BIND)?.run();\n}\n",
            ),
            (
                "src/constants.rs",
                "pub const BIND: &str = \"0.0.0.0:8080\";\n",
            ),
        ]);
        assert_eq!(p.port, Some(8080));
        let e = p.evidence_for("port").expect("port evidence");
        assert_eq!(e.source.as_deref(), Some("src/constants.rs"));
        assert_eq!(e.line, Some(1));
        // A lower-case binding is a variable, not followed.
        let p = plan(&[
            ("Cargo.toml", cargo),
            (
                "src/main.rs",
                "fn main() {\n    let addr = \"0.0.0.0:9000\";\n    server.bind(addr);\n}\n",
            ),
        ]);
        assert_ne!(p.port, Some(9000));
    }

    #[test]
    fn process_env_schema_names_port() {
        let p = plan(&[
            (
                "package.json",
                "{\"name\":\"x\",\"main\":\"src/index.js\",\"dependencies\":{\"express\":\"4\"}}",
            ),
            ("src/index.js", "const config = require('./config');\napp.listen(config.port);\n"),
            (
                "src/config.js",
                "const schema = Joi.object().keys({\n    PORT: Joi.number().default(3000),\n}).unknown();\nconst { value } = schema.validate(process.env);\n",
            ),
        ]);
        assert!(p.reads_port_env);
        assert_eq!(p.port, Some(3000));
    }

    #[test]
    fn start_prod_wins_over_a_development_start_script() {
        let pkg = |start: &str| {
            format!(
                "{{\"name\":\"x\",\"scripts\":{{\"build\":\"nest build\",\"start\":\"{start}\",\"start:prod\":\"node dist/main\"}},\"dependencies\":{{\"@nestjs/core\":\"10\"}}}}"
            )
        };
        let p = plan(&[
            ("package.json", &pkg("nest start")),
            ("package-lock.json", "{}"),
        ]);
        assert_eq!(p.start.as_deref(), Some("npm run start:prod"));
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start" && a.value == "npm start"));
        // A production `start` script stays.
        let p = plan(&[
            ("package.json", &pkg("node dist/main")),
            ("package-lock.json", "{}"),
        ]);
        assert_eq!(p.start.as_deref(), Some("npm start"));
    }

    #[test]
    fn malformed_package_json_names_file_and_line() {
        let fs = MemFs::new().with("package.json", "{\n  \"name\": \"x\",\n  oops\n}\n");
        let err = analyze(&fs, &AnalyzeOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("package.json:3:"), "{msg}");
    }

    #[test]
    fn empty_repository_is_undetected() {
        let err = analyze(&MemFs::new(), &AnalyzeOptions::default()).unwrap_err();
        assert!(matches!(err, AnalyzeError::Undetected { .. }));
        assert!(err.to_string().contains("no package.json"), "{err}");
    }

    #[test]
    fn app_dir_option_chooses_among_ambiguous_apps() {
        let fs = MemFs::new()
            .with("a/package.json", r#"{"scripts":{"start":"node a.js"}}"#)
            .with("b/app.py", "print(1)\n");
        let err = analyze(&fs, &AnalyzeOptions::default()).unwrap_err();
        assert!(matches!(err, AnalyzeError::AmbiguousApps { .. }), "{err}");
        let plan = analyze(
            &fs,
            &AnalyzeOptions {
                app_dir: Some("b".into()),
            },
        )
        .unwrap();
        assert_eq!(plan.app_dir, "b");
        assert_eq!(plan.start.as_deref(), Some("python3 app.py"));
        assert_eq!(
            plan.evidence_for("app_dir").map(|e| e.rule.as_str()),
            Some("chosen with --app-dir")
        );
        assert_eq!(plan.apps.len(), 2);
        let bad = analyze(
            &fs,
            &AnalyzeOptions {
                app_dir: Some("../b".into()),
            },
        )
        .unwrap_err();
        assert!(matches!(bad, AnalyzeError::BadAppDir { .. }));
        let missing = analyze(
            &fs,
            &AnalyzeOptions {
                app_dir: Some("c".into()),
            },
        )
        .unwrap_err();
        assert!(missing.to_string().contains("not a directory"), "{missing}");
    }

    #[test]
    fn gunicorn_without_an_address_reads_port() {
        // mdn/django-locallibrary-tutorial: `web: gunicorn locallibrary.wsgi` (CRLF).
        let p = plan(&[
            ("requirements.txt", "Django==6.1.1\r\ngunicorn==26.2.0\r\n"),
            ("Procfile", "web: gunicorn app.wsgi --log-file -\r\n"),
        ]);
        assert!(p.reads_port_env);
        assert_eq!(p.port, Some(8000));
        let e = p.evidence_for("reads_port_env").expect("evidence");
        assert_eq!(e.source.as_deref(), Some("Procfile"));
        assert!(e.rule.contains("gunicorn"), "{}", e.rule);
        // An address on the command line or a config file decides instead.
        for (procfile, conf) in [
            ("web: gunicorn -b 0.0.0.0:5000 app:app\n", None),
            ("web: gunicorn --bind=unix:/tmp/g.sock app:app\n", None),
            ("web: gunicorn -c conf/g.py app:app\n", None),
            (
                "web: gunicorn app:app\n",
                Some("bind = 'unix:/tmp/g.sock'\n"),
            ),
        ] {
            let mut files = vec![("requirements.txt", "gunicorn\n"), ("Procfile", procfile)];
            if let Some(c) = conf {
                files.push(("gunicorn.conf.py", c));
            }
            let p = plan(&files);
            assert!(!p.reads_port_env, "{procfile} {conf:?}");
        }
        assert!(gunicorn_default_bind(
            "export PATH=\"$PWD/.venv/bin:$PATH\"; python -m gunicorn app:app -w 3"
        ));
        assert!(!gunicorn_default_bind(
            "GUNICORN_CMD_ARGS='-b :80' gunicorn app:app"
        ));
        assert!(!gunicorn_default_bind("uvicorn app:app"));
    }

    #[test]
    fn procfile_of_a_workspace_member_has_the_root_tools_on_path() {
        let fs = MemFs::from_files([
            (
                "package.json",
                r#"{"private":true,"workspaces":["apps/*"]}"#,
            ),
            ("yarn.lock", "# yarn lockfile v1\n"),
            (
                "apps/api/package.json",
                r#"{"name":"api","dependencies":{"express":"4"}}"#,
            ),
            ("apps/api/Procfile", "web: nodemon server.js\n"),
        ]);
        let member = analyze(
            &fs,
            &AnalyzeOptions {
                app_dir: Some("apps/api".into()),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            member.install.as_deref(),
            Some("cd ../.. && yarn install --frozen-lockfile")
        );
        assert_eq!(
            member.start.as_deref(),
            Some("export PATH=\"$PWD/node_modules/.bin:$PWD/../../node_modules/.bin:$PATH\"; nodemon server.js")
        );
        // An app installing in its own directory only gets its own.
        let alone = plan(&[
            ("package.json", r#"{"dependencies":{"express":"4"}}"#),
            ("Procfile", "web: nodemon server.js\n"),
        ]);
        assert_eq!(
            alone.start.as_deref(),
            Some("export PATH=\"$PWD/node_modules/.bin:$PATH\"; nodemon server.js")
        );
        assert_eq!(node_bins("cd $(evil) && npm ci"), "node_modules/.bin");
    }

    #[test]
    fn procfile_outranks_detector_and_table_shows_evidence() {
        let p = plan(&[
            ("package.json", r#"{"scripts":{"start":"node a.js"}}"#),
            ("Procfile", "web: node server.js --port $PORT\n"),
        ]);
        assert!(p
            .start
            .as_deref()
            .is_some_and(|s| s.ends_with("node server.js --port $PORT")));
        assert!(p.reads_port_env);
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start" && a.value == "npm start"));
        let table = render_table(&p);
        assert!(table.contains("Procfile:1"), "{table}");
        assert!(table.contains("npm start"), "{table}");
    }
}
