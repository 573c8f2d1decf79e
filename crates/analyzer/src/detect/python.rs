//! Python: pip, Poetry, uv, Pipenv, PDM; Django, FastAPI, Flask and plain scripts.

use super::{
    line_of, managed_versions, norm_dep, sh_quote, toml_key_line, version_file_value, Ctx,
    Detection, Detector, Outcome, STRENGTH_FRAMEWORK, STRENGTH_MANIFEST, STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Python;

const REQUIREMENTS: &[&str] = &[
    "requirements.txt",
    "requirements/production.txt",
    "requirements/prod.txt",
    "requirements/base.txt",
    "requirements-prod.txt",
];
const SCRIPTS: &[&str] = &[
    "app.py",
    "main.py",
    "server.py",
    "run.py",
    "wsgi.py",
    "asgi.py",
];

struct Dep {
    name: String,
    extras: String,
    source: String,
    line: Option<u32>,
}

#[derive(Default)]
struct Manifests {
    requirements: Option<&'static str>,
    pyproject: Option<(toml::Value, String)>,
    pipfile: Option<(toml::Value, String)>,
    setup_py: bool,
    deps: Vec<Dep>,
}

impl Manifests {
    fn has(&self, dep: &str) -> Option<&Dep> {
        self.deps.iter().find(|d| d.name == dep)
    }
}

fn requirement_name(spec: &str) -> (String, String) {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(spec.len());
    let extras = spec[end..]
        .strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .unwrap_or("")
        .to_owned();
    (norm_dep(&spec[..end]), extras)
}

fn read_manifests(ctx: &Ctx) -> Result<Manifests, AnalyzeError> {
    let mut m = Manifests {
        requirements: ctx.first_file(REQUIREMENTS),
        pyproject: ctx.toml("pyproject.toml")?,
        pipfile: ctx.toml("Pipfile")?,
        setup_py: ctx.is_file("setup.py"),
        deps: Vec::new(),
    };
    if let Some(req) = m.requirements {
        // The file and those it includes (`-r base.txt`), each once, a few deep.
        let mut files = vec![req.to_owned()];
        let mut i = 0;
        while i < files.len() && files.len() <= 8 {
            let file = files[i].clone();
            i += 1;
            let Some(text) = ctx.text(&file)? else {
                continue;
            };
            let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for (n, l) in text.lines().enumerate() {
                let t = l.split(" #").next().unwrap_or("").trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let included = t
                    .strip_prefix("-r")
                    .or_else(|| t.strip_prefix("--requirement"))
                    .map(|r| r.trim_start_matches('=').trim());
                if let Some(inc) = included {
                    let path = super::join_rel(dir, inc);
                    if !inc.is_empty()
                        && !inc.split('/').any(|s| s == ".." || s == ".")
                        && !files.contains(&path)
                    {
                        files.push(path);
                    }
                    continue;
                }
                if t.starts_with('-') {
                    continue;
                }
                let (name, extras) = requirement_name(t);
                if !name.is_empty() {
                    m.deps.push(Dep {
                        name,
                        extras,
                        source: ctx.path(&file),
                        line: u32::try_from(n + 1).ok(),
                    });
                }
            }
        }
    }
    if let Some((py, text)) = &m.pyproject {
        let src = ctx.path("pyproject.toml");
        let project_deps = py
            .get("project")
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.as_array());
        for d in project_deps
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
        {
            let (name, extras) = requirement_name(d);
            let line = line_of(text, &format!("\"{d}"));
            m.deps.push(Dep {
                name,
                extras,
                source: src.clone(),
                line,
            });
        }
        let poetry_deps = py
            .get("tool")
            .and_then(|t| t.get("poetry"))
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.as_table());
        for (k, v) in poetry_deps.into_iter().flatten() {
            if k == "python" {
                continue;
            }
            let extras = v
                .get("extras")
                .and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            m.deps.push(Dep {
                name: norm_dep(k),
                extras,
                source: src.clone(),
                line: toml_key_line(text, Some("tool.poetry.dependencies"), k),
            });
        }
    }
    if let Some((pf, text)) = &m.pipfile {
        for (k, _) in pf
            .get("packages")
            .and_then(|p| p.as_table())
            .into_iter()
            .flatten()
        {
            m.deps.push(Dep {
                name: norm_dep(k),
                extras: String::new(),
                source: ctx.path("Pipfile"),
                line: toml_key_line(text, Some("packages"), k),
            });
        }
    }
    Ok(m)
}

impl Detector for Python {
    fn name(&self) -> &'static str {
        "python"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let m = read_manifests(ctx)?;
        let script = ctx.first_file(SCRIPTS);
        let manage = ctx.is_file("manage.py");
        let has_manifest =
            m.requirements.is_some() || m.pyproject.is_some() || m.pipfile.is_some() || m.setup_py;
        if !has_manifest && script.is_none() && !manage {
            return Ok(Outcome::NoMatch(
                "no requirements.txt, pyproject.toml, Pipfile, setup.py, manage.py or app.py/main.py/server.py"
                    .into(),
            ));
        }
        let manifest = if let Some(r) = m.requirements {
            r
        } else if m.pyproject.is_some() {
            "pyproject.toml"
        } else if m.pipfile.is_some() {
            "Pipfile"
        } else if m.setup_py {
            "setup.py"
        } else if manage {
            "manage.py"
        } else {
            script.unwrap_or("app.py")
        };
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("python".into()),
            Cite::file(ctx.path(manifest), None, "Python manifest or entry script"),
        );
        version(ctx, &m, &mut plan)?;
        let venv = package_manager(ctx, &m, &mut plan);
        let py = if venv { ".venv/bin/python" } else { "python3" };
        let bin = |tool: &str| format!(".venv/bin/{tool}");

        let gunicorn = m.has("gunicorn").is_some();
        let uvicorn = m.has("uvicorn").is_some()
            || ["fastapi", "litestar"]
                .iter()
                .any(|f| m.has(f).is_some_and(|d| d.extras.contains("standard")));
        let mut strength = STRENGTH_MANIFEST;
        let mut memory = 256;

        let django = m.has("django");
        if django.is_some() || manage {
            let cite = match django {
                Some(d) => Cite::file(&d.source, d.line, "dependency `django`"),
                None => Cite::file(ctx.path("manage.py"), None, "Django's manage.py"),
            };
            plan.set(Field::Framework, Some("django".into()), cite);
            memory = 512;
            strength = STRENGTH_FRAMEWORK;
            django_start(ctx, &m, &mut plan, py);
        } else {
            let fastapi = m.has("fastapi").is_some() || m.has("starlette").is_some();
            let litestar = m.has("litestar").is_some();
            let flask = m.has("flask").is_some();
            let app_obj = find_app_object(ctx, fastapi, litestar, flask);
            let console = console_script(ctx, &m, py, &mut plan.notices);
            if let Some(obj) = &app_obj {
                plan.set(
                    Field::Framework,
                    Some(obj.framework.into()),
                    Cite::file(
                        ctx.path(&obj.file),
                        obj.line,
                        format!("`{}` creates the app object", obj.call),
                    ),
                );
                strength = STRENGTH_FRAMEWORK;
                let (module_arg, chdir) = match obj.module.strip_prefix("src.") {
                    Some(m) => (m.to_owned(), true),
                    None => (obj.module.clone(), false),
                };
                let target = sh_quote(&format!("{module_arg}:{}", obj.object));
                let cite = Cite::file(ctx.path(&obj.file), obj.line, "app object");
                let start = match obj.framework {
                    "fastapi" | "starlette" | "litestar" if uvicorn || !obj.runs_itself => {
                        if !uvicorn {
                            plan.notices.push(
                                "uvicorn is not a dependency; the start command needs it".into(),
                            );
                        }
                        format!(
                            "{}{} {target} --host 0.0.0.0 --port ${{PORT:-8000}}",
                            bin("uvicorn"),
                            if chdir { " --app-dir src" } else { "" }
                        )
                    }
                    "flask" if gunicorn => format!(
                        "{}{} {target} --bind 0.0.0.0:${{PORT:-8000}}",
                        bin("gunicorn"),
                        if chdir { " --chdir src" } else { "" }
                    ),
                    "flask" if !obj.runs_itself => format!(
                        "{} --app {target} run --host 0.0.0.0 --port ${{PORT:-5000}}",
                        bin("flask")
                    ),
                    _ => format!("{py} {}", sh_quote(&obj.file)),
                };
                plan.set(Field::Start, Some(start), cite);
                if let Some(cs) = &console {
                    plan.lose(
                        "start",
                        &cs.command,
                        Some(&cs.source),
                        format!(
                            "the app object in {} is more specific than the console script `{}`",
                            ctx.path(&obj.file),
                            cs.name
                        ),
                    );
                }
            } else if let Some(cs) = console {
                plan.set(
                    Field::Start,
                    Some(cs.command),
                    Cite::file(&cs.source, cs.line, cs.rule),
                );
                strength = STRENGTH_START;
                if let Some(s) = script {
                    plan.lose(
                        "start",
                        &format!("{py} {s}"),
                        Some(&ctx.path(s)),
                        format!(
                            "the console script `{}` is declared by the project",
                            cs.name
                        ),
                    );
                }
            } else if let Some(s) = script {
                plan.set(
                    Field::Start,
                    Some(format!("{py} {s}")),
                    Cite::file(ctx.path(s), None, "conventional entry script"),
                );
                strength = STRENGTH_START;
                if flask || fastapi || litestar {
                    plan.notices.push("a web framework is a dependency but no app object was found; the plan runs the entry script".into());
                }
            } else if let Some((package, file, src)) = main_package(ctx) {
                plan.set(
                    Field::Start,
                    Some(format!(
                        "{}{py} -m {package}",
                        if src { "PYTHONPATH=src " } else { "" }
                    )),
                    Cite::file(ctx.path(&file), None, "the only package with a __main__.py"),
                );
                strength = STRENGTH_START;
            }
        }
        plan.resources = Some(ResourcesHint {
            memory_mb: memory,
            cpu: 0.25,
        });
        plan.cite(
            "resources",
            &format!("{memory} MiB"),
            Cite::rule("typical for a Python web process"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: ctx.path(manifest),
        })))
    }
}

fn version(ctx: &Ctx, m: &Manifests, plan: &mut BuildPlan) -> Result<(), AnalyzeError> {
    let mut found: Vec<(String, Cite)> = Vec::new();
    if let Some(text) = ctx.text(".python-version")? {
        if let Some((v, line)) = version_file_value(&text) {
            found.push((
                v,
                Cite::file(
                    ctx.path(".python-version"),
                    Some(line),
                    "first version in .python-version",
                ),
            ));
        }
    }
    if let Some(text) = ctx.text("runtime.txt")? {
        if let Some((v, line)) = version_file_value(&text) {
            let v = v.trim_start_matches("python-").to_owned();
            found.push((
                v,
                Cite::file(ctx.path("runtime.txt"), Some(line), "runtime.txt"),
            ));
        }
    }
    found.extend(managed_versions(ctx, &["python"])?);
    if let Some((py, text)) = &m.pyproject {
        if let Some(v) = py
            .get("project")
            .and_then(|p| p.get("requires-python"))
            .and_then(|v| v.as_str())
        {
            found.push((
                v.to_owned(),
                Cite::file(
                    ctx.path("pyproject.toml"),
                    toml_key_line(text, Some("project"), "requires-python"),
                    "[project] requires-python",
                ),
            ));
        }
        if let Some(v) = py
            .get("tool")
            .and_then(|t| t.get("poetry"))
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.get("python"))
            .and_then(|v| v.as_str())
        {
            found.push((
                v.to_owned(),
                Cite::file(
                    ctx.path("pyproject.toml"),
                    toml_key_line(text, Some("tool.poetry.dependencies"), "python"),
                    "[tool.poetry.dependencies] python",
                ),
            ));
        }
    }
    if let Some((pf, text)) = &m.pipfile {
        if let Some(v) = pf
            .get("requires")
            .and_then(|r| {
                r.get("python_version")
                    .or_else(|| r.get("python_full_version"))
            })
            .and_then(|v| v.as_str())
        {
            found.push((
                v.to_owned(),
                Cite::file(
                    ctx.path("Pipfile"),
                    line_of(text, "python_"),
                    "Pipfile [requires]",
                ),
            ));
        }
    }
    found.extend(super::dockerfile_version(ctx, &["python"])?);
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

/// Records the package manager and install command; returns whether dependencies go into `.venv`.
fn package_manager(ctx: &Ctx, m: &Manifests, plan: &mut BuildPlan) -> bool {
    let tool = |name: &str| {
        m.pyproject
            .as_ref()
            .and_then(|(py, _)| py.get("tool").and_then(|t| t.get(name)))
            .is_some()
    };
    let has_project = m
        .pyproject
        .as_ref()
        .is_some_and(|(py, _)| py.get("project").is_some());
    let workspace = if ctx.is_file("uv.lock") {
        None
    } else {
        uv_workspace(ctx, m)
    };
    let workspace_rule = workspace
        .as_ref()
        .map(|w| format!("member of the uv workspace declared in {}", w.pyproject));
    let candidates: Vec<(&str, String, String, &str)> = [
        (
            workspace.is_some(),
            "uv",
            // Already repository-relative; the other candidates' files are the app's.
            workspace.as_ref().map_or_else(String::new, |w| w.lock.clone()),
            workspace
                .as_ref()
                .map(|w| {
                    format!(
                        "UV_PROJECT_ENVIRONMENT=\"$PWD/.venv\" uv sync --frozen --no-dev --package {}",
                        sh_quote(&w.member)
                    )
                })
                .unwrap_or_default(),
            workspace_rule.as_deref().unwrap_or(""),
        ),
        (
            ctx.is_file("uv.lock"),
            "uv",
            ctx.path("uv.lock"),
            "uv sync --frozen --no-dev".to_owned(),
            "lockfile uv.lock",
        ),
        (
            ctx.is_file("poetry.lock"),
            "poetry",
            ctx.path("poetry.lock"),
            poetry_install(),
            "lockfile poetry.lock",
        ),
        (
            ctx.is_file("pdm.lock"),
            "pdm",
            ctx.path("pdm.lock"),
            "pdm install --prod".to_owned(),
            "lockfile pdm.lock",
        ),
        (
            ctx.is_file("Pipfile.lock"),
            "pipenv",
            ctx.path("Pipfile.lock"),
            "PIPENV_VENV_IN_PROJECT=1 pipenv install --deploy".to_owned(),
            "lockfile Pipfile.lock",
        ),
        (
            tool("poetry"),
            "poetry",
            ctx.path("pyproject.toml"),
            poetry_install(),
            "[tool.poetry] in pyproject.toml",
        ),
        (
            tool("uv"),
            "uv",
            ctx.path("pyproject.toml"),
            "uv sync --no-dev".to_owned(),
            "[tool.uv] in pyproject.toml",
        ),
        (
            tool("pdm"),
            "pdm",
            ctx.path("pyproject.toml"),
            "pdm install --prod".to_owned(),
            "[tool.pdm] in pyproject.toml",
        ),
        (
            m.pipfile.is_some(),
            "pipenv",
            ctx.path("Pipfile"),
            "PIPENV_VENV_IN_PROJECT=1 pipenv install".to_owned(),
            "Pipfile",
        ),
        (
            m.requirements.is_some(),
            "pip",
            ctx.path(m.requirements.unwrap_or("")),
            format!(
                "python3 -m venv .venv && .venv/bin/pip install -r {}",
                m.requirements.unwrap_or("")
            ),
            "requirements file",
        ),
        (
            has_project || m.setup_py,
            "pip",
            ctx.path(if has_project {
                "pyproject.toml"
            } else {
                "setup.py"
            }),
            "python3 -m venv .venv && .venv/bin/pip install .".to_owned(),
            "installable project",
        ),
    ]
    .into_iter()
    .filter(|c| c.0)
    .map(|(_, pm, file, cmd, rule)| (pm, file, cmd, rule))
    .collect();
    let mut it = candidates.into_iter();
    let Some((pm, file, cmd, rule)) = it.next() else {
        plan.set(
            Field::Install,
            None,
            Cite::rule("no dependency manifest: standard library only"),
        );
        return false;
    };
    plan.set(
        Field::PackageManager,
        Some(pm.into()),
        Cite::file(&file, None, rule),
    );
    plan.set(
        Field::Install,
        Some(cmd),
        Cite::file(
            &file,
            None,
            format!("{pm} installs into .venv in the app directory"),
        ),
    );
    for (other, f, other_cmd, _) in it {
        if other != pm {
            plan.lose(
                "package_manager",
                other,
                Some(&f),
                format!("{file} ranks higher ({rule})"),
            );
        }
        // A workspace member could also install on its own, without the workspace's pins.
        if workspace.is_some() {
            plan.lose(
                "install",
                &other_cmd,
                Some(&f),
                format!("{file} ranks higher ({rule})"),
            );
        }
    }
    true
}

/// The uv workspace an app directory is a member of: the nearest directory above it whose
/// `pyproject.toml` has `[tool.uv.workspace]` with a `members` pattern matching it (and no
/// `exclude` pattern) and which holds the workspace's `uv.lock`.
struct UvWorkspace {
    /// Repository-relative paths of the workspace's `uv.lock` and `pyproject.toml`.
    lock: String,
    pyproject: String,
    /// The app's `[project] name`, for `uv sync --package`.
    member: String,
}

fn uv_workspace(ctx: &Ctx, m: &Manifests) -> Option<UvWorkspace> {
    let member = m
        .pyproject
        .as_ref()?
        .0
        .get("project")?
        .get("name")?
        .as_str()?
        .to_owned();
    if ctx.dir.is_empty() {
        return None;
    }
    for root in super::ancestors(&ctx.dir) {
        let lock = super::join_rel(root, "uv.lock");
        if !ctx.fs.is_file(&lock) {
            continue;
        }
        let pyproject = super::join_rel(root, "pyproject.toml");
        let text = ctx.fs.read_text(&pyproject).ok().flatten()?;
        let doc: toml::Value = text.parse::<toml::Table>().ok()?.into();
        let ws = doc.get("tool")?.get("uv")?.get("workspace")?;
        let rel = if root.is_empty() {
            ctx.dir.as_str()
        } else {
            ctx.dir.strip_prefix(root)?.trim_start_matches('/')
        };
        let patterns = |key: &str| -> Vec<String> {
            ws.get(key)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str())
                .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
                .collect()
        };
        let matches = |pats: &[String]| pats.iter().any(|p| super::glob_dir_match(p, rel));
        return (matches(&patterns("members")) && !matches(&patterns("exclude"))).then_some(
            UvWorkspace {
                lock,
                pyproject,
                member,
            },
        );
    }
    None
}

fn poetry_install() -> String {
    "python3 -m venv .venv && .venv/bin/pip install poetry && VIRTUAL_ENV=\"$PWD/.venv\" .venv/bin/poetry install --no-root --only main".into()
}

/// A Django project's settings module (app-relative path) and the files it reads: itself, then
/// the modules it star-imports (`from .base import *`, the split-settings layout).
struct Settings {
    rel: String,
    files: Vec<(String, String)>,
}

impl Settings {
    /// The first file and 1-based line where `NAME` is assigned.
    fn assignment(&self, name: &str) -> Option<(&str, &str, u32)> {
        self.files.iter().find_map(|(rel, text)| {
            let (i, l) = text.lines().enumerate().find(|(_, l)| {
                l.trim_start()
                    .strip_prefix(name)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })?;
            Some((rel.as_str(), l, u32::try_from(i + 1).ok()?))
        })
    }

    /// `NAME = "dotted.path"`: the value, the file and the 1-based line.
    fn dotted(&self, name: &str) -> Option<(String, String, Option<u32>)> {
        let (rel, l, line) = self.assignment(name)?;
        let value = l.split(['"', '\'']).nth(1)?.trim().to_owned();
        Some((value, rel.to_owned(), Some(line)))
    }
}

/// The modules a settings file star-imports, as app-relative paths.
fn star_imports(rel: &str, text: &str) -> Vec<String> {
    let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    text.lines()
        .filter_map(|l| {
            let module = l.trim().strip_prefix("from ")?;
            let (module, rest) = module.split_once(" import ")?;
            if rest.split('#').next()?.trim() != "*" {
                return None;
            }
            let path = match module.strip_prefix('.') {
                Some(sibling) if is_dotted(sibling) => {
                    super::join_rel(dir, &(sibling.replace('.', "/") + ".py"))
                }
                Some(_) => return None,
                None if is_dotted(module) => module.replace('.', "/") + ".py",
                None => return None,
            };
            Some(path)
        })
        .collect()
}

/// A module and the object in it that a server serves (`shop.wsgi`, `application`).
struct Served {
    module: String,
    object: String,
    source: String,
    line: Option<u32>,
}

/// The settings file named by manage.py's DJANGO_SETTINGS_MODULE (or a `*/settings.py`).
fn django_settings(ctx: &Ctx) -> Option<Settings> {
    let from_manage = ctx.text_opt("manage.py").and_then(|t| {
        let line = t.lines().find(|l| l.contains("DJANGO_SETTINGS_MODULE"))?;
        let module = line.split(['"', '\'']).nth(3)?.to_owned();
        Some(module.replace('.', "/") + ".py")
    });
    let rel = from_manage.filter(|p| ctx.is_file(p)).or_else(|| {
        ctx.sources_with(&["py"])
            .find(|f| f.path.ends_with("/settings.py"))
            .map(|f| f.path.clone())
    })?;
    let text = ctx.text_opt(&rel)?;
    let mut files = vec![(rel.clone(), text)];
    // Follow star imports a few files deep (local.py → base.py), each file once.
    let mut i = 0;
    while i < files.len() && files.len() < 6 {
        for next in star_imports(&files[i].0, &files[i].1) {
            if files.iter().all(|f| f.0 != next) {
                if let Some(t) = ctx.text_opt(&next) {
                    files.push((next, t));
                }
            }
        }
        i += 1;
    }
    Some(Settings { rel, files })
}

/// `a.b.c` as a Python dotted path (so it is safe to pass to a server as one argument).
fn is_dotted(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The line defining `name` at the top level of a module (`name = ...` or `name: T = ...`).
fn defines(text: &str, name: &str) -> Option<u32> {
    text.lines().enumerate().find_map(|(i, l)| {
        let rest = l.strip_prefix(name)?;
        let rest = rest.trim_start();
        (rest.starts_with('=') && !rest.starts_with("==") || rest.starts_with(':'))
            .then(|| u32::try_from(i + 1).ok())
            .flatten()
    })
}

/// WSGI: `WSGI_APPLICATION`, else a shallow `*/wsgi.py`.
fn django_wsgi(ctx: &Ctx, settings: Option<&Settings>) -> Option<Served> {
    settings
        .and_then(|s| {
            let (value, file, line) = s.dotted("WSGI_APPLICATION")?;
            let (module, object) = value.rsplit_once('.')?;
            is_dotted(&value).then(|| Served {
                module: module.to_owned(),
                object: object.to_owned(),
                source: ctx.path(&file),
                line,
            })
        })
        .or_else(|| {
            ctx.sources_with(&["py"])
                .find(|f| f.path.ends_with("/wsgi.py") && f.path.matches('/').count() == 1)
                .map(|f| Served {
                    module: f.path.trim_end_matches(".py").replace('/', "."),
                    object: "application".into(),
                    source: ctx.path(&f.path),
                    line: defines(&f.text, "application"),
                })
        })
}

/// ASGI: `ASGI_APPLICATION` (Channels requires it), else the `asgi.py` beside the settings (or a
/// shallow one) that defines `application`.
fn django_asgi(ctx: &Ctx, settings: Option<&Settings>) -> Option<Served> {
    if let Some(s) = settings {
        if let Some((value, file, line)) = s.dotted("ASGI_APPLICATION") {
            if let (Some((module, object)), true) = (value.rsplit_once('.'), is_dotted(&value)) {
                return Some(Served {
                    module: module.to_owned(),
                    object: object.to_owned(),
                    source: ctx.path(&file),
                    line,
                });
            }
        }
    }
    let beside = settings.map(|s| match s.rel.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/asgi.py"),
        None => "asgi.py".to_owned(),
    });
    let shallow = ctx
        .sources_with(&["py"])
        .find(|f| f.path.ends_with("/asgi.py") && f.path.matches('/').count() == 1)
        .map(|f| f.path.clone());
    let rel = beside.filter(|p| ctx.is_file(p)).or(shallow)?;
    let text = ctx.text_opt(&rel)?;
    let line = defines(&text, "application")?;
    let module = rel.trim_end_matches(".py").replace('/', ".");
    is_dotted(&module).then(|| Served {
        module,
        object: "application".into(),
        source: ctx.path(&rel),
        line: Some(line),
    })
}

/// `name = "daphne"` in a lockfile (how Channels before 4 brings its server along).
fn locked(ctx: &Ctx, name: &str) -> Option<(String, Option<u32>)> {
    for (file, needle) in [
        ("poetry.lock", format!("name = \"{name}\"")),
        ("uv.lock", format!("name = \"{name}\"")),
        ("pdm.lock", format!("name = \"{name}\"")),
        ("Pipfile.lock", format!("\"{name}\": {{")),
    ] {
        if let Some(text) = ctx.text_opt(file) {
            if let Some(line) = text
                .lines()
                .position(|l| l.trim() == needle || l.trim_start().starts_with(&needle))
            {
                return Some((ctx.path(file), u32::try_from(line + 1).ok()));
            }
        }
    }
    None
}

/// The ASGI servers in the order they are preferred, with the command for a target.
const ASGI_SERVERS: &[&str] = &["uvicorn", "daphne", "hypercorn"];

fn asgi_command(server: &str, target: &str) -> String {
    match server {
        "daphne" => format!(".venv/bin/daphne -b 0.0.0.0 -p ${{PORT:-8000}} {target}"),
        "hypercorn" => format!(".venv/bin/hypercorn {target} --bind 0.0.0.0:${{PORT:-8000}}"),
        _ => format!(".venv/bin/uvicorn {target} --host 0.0.0.0 --port ${{PORT:-8000}}"),
    }
}

/// Django's build and start: `collectstatic` when STATIC_ROOT is set; an ASGI server on the ASGI
/// application when one is a dependency, else gunicorn on the WSGI module, else `runserver`.
fn django_start(ctx: &Ctx, m: &Manifests, plan: &mut BuildPlan, py: &str) {
    let settings = django_settings(ctx);
    if let Some((file, _, line)) = settings.as_ref().and_then(|s| s.assignment("STATIC_ROOT")) {
        plan.set(
            Field::Build,
            Some(format!("{py} manage.py collectstatic --noinput")),
            Cite::file(ctx.path(file), Some(line), "Django STATIC_ROOT is set"),
        );
    }
    let gunicorn = m.has("gunicorn");
    let wsgi = django_wsgi(ctx, settings.as_ref());
    let (wsgi_start, wsgi_cite) = match (&wsgi, gunicorn) {
        (Some(w), Some(_)) => (
            format!(
                ".venv/bin/gunicorn {} --bind 0.0.0.0:${{PORT:-8000}}",
                sh_quote(&w.module)
            ),
            Cite::file(
                &w.source,
                w.line,
                "Django WSGI module served by gunicorn (a dependency)",
            ),
        ),
        _ => (
            format!("{py} manage.py runserver 0.0.0.0:${{PORT:-8000}} --noreload"),
            Cite::file(
                ctx.path("manage.py"),
                None,
                "Django without gunicorn: the development server",
            ),
        ),
    };

    // ASGI servers that will be installed: direct dependencies, `channels[daphne]`, or daphne
    // locked as a dependency of Channels (before 4).
    let channels = m.has("channels");
    let mut servers: Vec<(&str, String, Option<u32>, String)> = ASGI_SERVERS
        .iter()
        .filter_map(|s| {
            m.has(s)
                .map(|d| (*s, d.source.clone(), d.line, format!("dependency `{s}`")))
        })
        .collect();
    if let Some(c) = channels {
        if servers.iter().all(|s| s.0 != "daphne") {
            if c.extras.split(',').any(|e| e.trim() == "daphne") {
                servers.push((
                    "daphne",
                    c.source.clone(),
                    c.line,
                    "dependency `channels[daphne]`".into(),
                ));
            } else if servers.is_empty() {
                if let Some((file, line)) = locked(ctx, "daphne") {
                    servers.push((
                        "daphne",
                        file,
                        line,
                        "daphne locked (brought in by `channels`)".into(),
                    ));
                }
            }
        }
        // Channels' own server first.
        servers.sort_by_key(|s| s.0 != "daphne");
    }
    let asgi = django_asgi(ctx, settings.as_ref());
    match (&asgi, servers.first()) {
        (Some(a), Some((server, dep_src, dep_line, dep_rule))) => {
            let target = sh_quote(&format!("{}:{}", a.module, a.object));
            let dep_at = match dep_line {
                Some(l) => format!("{dep_src}:{l}"),
                None => dep_src.clone(),
            };
            plan.set(
                Field::Start,
                Some(asgi_command(server, &target)),
                Cite::file(
                    &a.source,
                    a.line,
                    format!("Django ASGI application served by {server} ({dep_rule}, {dep_at})"),
                ),
            );
            plan.cite(
                "asgi_server",
                server,
                Cite::file(dep_src, *dep_line, dep_rule.as_str()),
            );
            for (other, src, _, rule) in servers.iter().skip(1) {
                plan.lose(
                    "start",
                    &asgi_command(other, &target),
                    Some(src),
                    format!("{server} is preferred to {other} ({rule})"),
                );
            }
            plan.lose(
                "start",
                &wsgi_start,
                wsgi_cite.source.as_deref(),
                format!(
                    "WSGI considered ({}); the ASGI application {}:{} ({}) is served by {server}",
                    wsgi_cite.rule, a.module, a.object, a.source
                ),
            );
        }
        _ => {
            if gunicorn.is_none() || wsgi.is_none() {
                plan.notices.push(
                    "gunicorn is not a dependency, so the plan uses Django's development server; add gunicorn for production".into(),
                );
            }
            if let Some(c) = channels {
                plan.notices.push(format!(
                    "channels is a dependency ({}) but no ASGI server (uvicorn, daphne, hypercorn) or ASGI application was found; WebSockets will not be served",
                    c.source
                ));
            }
            plan.set(Field::Start, Some(wsgi_start), wsgi_cite);
        }
    }
}

/// A `[project.scripts]` / `[tool.poetry.scripts]` entry chosen as the app's entry point.
struct ConsoleScript {
    name: String,
    command: String,
    source: String,
    line: Option<u32>,
    rule: String,
}

/// Script names that say "this runs the service".
const SERVE_SCRIPTS: &[&str] = &["serve", "start", "web", "server"];

/// The console script that is the app's entry point: the only one, else the one named like the
/// project, else `serve` / `start` / `web` / `server`. It is run through its entry point
/// (`python -c 'from mod import fn; fn()'`, as the generated wrapper does), so it works whether or
/// not the install step installs the project itself (Poetry's `--no-root`, requirements files).
fn console_script(
    ctx: &Ctx,
    m: &Manifests,
    py: &str,
    notices: &mut Vec<String>,
) -> Option<ConsoleScript> {
    let (doc, text) = m.pyproject.as_ref()?;
    let mut scripts: Vec<(String, String, &str)> = Vec::new();
    for (table, path) in [
        ("project.scripts", &["project", "scripts"][..]),
        ("tool.poetry.scripts", &["tool", "poetry", "scripts"][..]),
    ] {
        let mut v = Some(doc);
        for key in path {
            v = v.and_then(|v| v.get(key));
        }
        for (name, value) in v.and_then(|v| v.as_table()).into_iter().flatten() {
            // Poetry also allows `{ callable = "mod:fn" }`; `{ reference, type = "file" }` is not
            // an entry point.
            let target = value
                .as_str()
                .or_else(|| value.get("callable").and_then(|c| c.as_str()));
            if let Some(t) = target {
                scripts.push((name.clone(), t.to_owned(), table));
            }
        }
    }
    if scripts.is_empty() {
        return None;
    }
    let project = doc
        .get("project")
        .and_then(|p| p.get("name"))
        .or_else(|| {
            doc.get("tool")
                .and_then(|t| t.get("poetry"))
                .and_then(|p| p.get("name"))
        })
        .and_then(|n| n.as_str())
        .map(norm_dep);
    let (chosen, why) = if scripts.len() == 1 {
        (&scripts[0], "the project's only console script".to_owned())
    } else if let Some(s) = scripts
        .iter()
        .find(|s| project.as_deref() == Some(norm_dep(&s.0).as_str()))
    {
        (s, "the console script named like the project".to_owned())
    } else if let Some(s) = SERVE_SCRIPTS
        .iter()
        .find_map(|n| scripts.iter().find(|s| s.0 == *n))
    {
        (s, format!("the console script named `{}`", s.0))
    } else {
        notices.push(format!(
            "pyproject.toml declares console scripts ({}) but none is named like the project or serve/start/web; name one in a Procfile or slipway.toml",
            scripts.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(", ")
        ));
        return None;
    };
    let (name, target, table) = chosen;
    // `[project.scripts]` as a table, else an inline `scripts = { ... }` (the target's line).
    let line = toml_key_line(text, Some(table), name).or_else(|| line_of(text, target));
    let source = ctx.path("pyproject.toml");
    // `module.path:function.attr [extra]`
    let target = target.split(['[', ' ']).next().unwrap_or("").trim();
    let Some((module, func)) = target
        .split_once(':')
        .filter(|(m, f)| is_dotted(m) && is_dotted(f))
    else {
        notices.push(format!(
            "console script `{name}` ({source}) is not a `module:function` entry point; it was not used"
        ));
        return None;
    };
    let top = module.split('.').next().unwrap_or(module);
    let prefix = if ctx.is_dir(top) || ctx.is_file(&format!("{top}.py")) {
        ""
    } else if ctx.is_dir(&format!("src/{top}")) || ctx.is_file(&format!("src/{top}.py")) {
        "PYTHONPATH=src "
    } else {
        notices.push(format!(
            "console script `{name}` ({source}) points at module `{module}`, which is not in the repository (nor under src/); it was not used"
        ));
        return None;
    };
    let head = func.split('.').next().unwrap_or(func);
    let code = format!("import sys; from {module} import {head}; sys.exit({func}())");
    let others: Vec<&str> = scripts
        .iter()
        .filter(|s| s.0 != *name)
        .map(|s| s.0.as_str())
        .collect();
    let mut rule = format!("[{table}] {name} = \"{target}\": {why}, run through its entry point");
    if !others.is_empty() {
        rule.push_str(&format!(" (also declared: {})", others.join(", ")));
    }
    Some(ConsoleScript {
        name: name.clone(),
        command: format!("{prefix}{py} -c {}", sh_quote(&code)),
        source,
        line,
        rule,
    })
}

/// The one package (at the top or under `src/`) with a `__main__.py`: `python -m <package>`.
fn main_package(ctx: &Ctx) -> Option<(String, String, bool)> {
    let mut found = Vec::new();
    for (base, src) in [("", false), ("src", true)] {
        for e in ctx.list(base) {
            let file = super::join_rel(base, &format!("{}/__main__.py", e.name));
            if e.kind == crate::fs::EntryKind::Dir && is_dotted(&e.name) && ctx.is_file(&file) {
                found.push((e.name, file, src));
            }
        }
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}

struct AppObject {
    framework: &'static str,
    file: String,
    module: String,
    object: String,
    call: String,
    line: Option<u32>,
    /// The file starts a server itself under `if __name__ == "__main__"`.
    runs_itself: bool,
}

fn find_app_object(ctx: &Ctx, fastapi: bool, litestar: bool, flask: bool) -> Option<AppObject> {
    let mut patterns: Vec<(&'static str, &'static str)> = Vec::new();
    if fastapi {
        patterns.push(("fastapi", "FastAPI("));
        patterns.push(("starlette", "Starlette("));
    }
    if litestar {
        patterns.push(("litestar", "Litestar("));
    }
    if flask {
        patterns.push(("flask", "Flask("));
    }
    if patterns.is_empty() {
        return None;
    }
    let mut files: Vec<_> = ctx.sources_with(&["py"]).collect();
    // Shallow files first: the entry module is rarely nested.
    files.sort_by_key(|f| {
        (
            f.path.matches('/').count(),
            !SCRIPTS.contains(&f.path.as_str()),
            f.path.clone(),
        )
    });
    for (framework, call) in &patterns {
        for f in &files {
            for (i, l) in f.text.lines().enumerate() {
                let t = l.trim();
                // Flask application factory.
                if *framework == "flask" && t.starts_with("def create_app(") {
                    return Some(app_object(
                        f,
                        framework,
                        "create_app()",
                        "def create_app(",
                        i,
                    ));
                }
                let Some((lhs, rhs)) = t.split_once('=') else {
                    continue;
                };
                let var = lhs.trim().split(':').next().unwrap_or("").trim();
                let rhs = rhs.trim_start();
                let creates =
                    rhs.starts_with(call) || rhs.starts_with(&format!("{framework}.{call}"));
                if creates
                    && !var.is_empty()
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Some(app_object(f, framework, var, call, i));
                }
            }
        }
    }
    None
}

fn app_object(
    f: &super::SourceFile,
    framework: &'static str,
    object: &str,
    call: &str,
    i: usize,
) -> AppObject {
    let module = f.path.trim_end_matches(".py").replace('/', ".");
    let module = module
        .strip_suffix(".__init__")
        .unwrap_or(&module)
        .to_owned();
    AppObject {
        framework,
        file: f.path.clone(),
        module,
        object: object.to_owned(),
        call: call.trim_end_matches('(').to_owned(),
        line: u32::try_from(i + 1).ok(),
        runs_itself: f.text.contains("__main__")
            && (f.text.contains(".run(") || f.text.contains("uvicorn.run")),
    }
}

#[cfg(test)]
mod tests {
    use crate::{analyze, AnalyzeOptions, BuildPlan, MemFs};

    fn plan(files: &[(&str, &str)]) -> BuildPlan {
        analyze(
            &MemFs::from_files(files.iter().copied()),
            &AnalyzeOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    const MANAGE: &str =
        "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"site1.settings\")\n";
    const ASGI: &str = "from django.core.asgi import get_asgi_application\n\napplication = get_asgi_application()\n";

    #[test]
    fn uv_workspace_member_syncs_from_the_workspace_lock() {
        // fastapi/full-stack-fastapi-template: the root pyproject.toml declares the workspace
        // (members = ["backend"]) and holds uv.lock; backend/ has only its pyproject.toml.
        let files = [
            (
                "pyproject.toml",
                "[dependency-groups]\ndev = [\"prek\"]\n\n[tool.uv.workspace]\nmembers = [\"backend\", \"libs/*\"]\nexclude = [\"libs/old\"]\n",
            ),
            ("uv.lock", "version = 1\nrevision = 3\n"),
            (
                "backend/pyproject.toml",
                "[project]\nname = \"app\"\nrequires-python = \">=3.14\"\ndependencies = [\"fastapi[standard]>=0.141\"]\n",
            ),
            ("backend/app/main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n"),
            ("libs/old/pyproject.toml", "[project]\nname = \"old\"\n"),
            ("libs/old/main.py", "print(1)\n"),
        ];
        let fs = MemFs::from_files(files.iter().copied());
        let at = |dir: &str| {
            analyze(
                &fs,
                &AnalyzeOptions {
                    app_dir: Some(dir.into()),
                },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let p = at("backend");
        assert_eq!(
            p.install.as_deref(),
            Some("UV_PROJECT_ENVIRONMENT=\"$PWD/.venv\" uv sync --frozen --no-dev --package app")
        );
        assert_eq!(p.package_manager.as_deref(), Some("uv"));
        let e = p.evidence_for("install").expect("install evidence");
        assert_eq!(e.source.as_deref(), Some("uv.lock"));
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "package_manager" && a.value == "pip"));
        assert!(p.alternatives.iter().any(|a| a.field == "install"
            && a.value == "python3 -m venv .venv && .venv/bin/pip install ."
            && a.reason.contains("uv workspace declared in pyproject.toml")));
        assert!(p
            .start
            .as_deref()
            .is_some_and(|s| s.starts_with(".venv/bin/uvicorn app.main:app")));
        assert!(p.apps.iter().any(
            |a| a.dir == "backend" && a.source == "pyproject.toml [tool.uv.workspace] members"
        ));
        // An excluded directory is not a member: it installs on its own.
        let p = at("libs/old");
        assert_eq!(
            p.install.as_deref(),
            Some("python3 -m venv .venv && .venv/bin/pip install .")
        );
    }

    #[test]
    fn django_with_hypercorn_serves_the_asgi_module() {
        let p = plan(&[
            ("requirements.txt", "django>=5\nhypercorn  # ASGI\n"),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "WSGI_APPLICATION = 'site1.wsgi.application'\n",
            ),
            ("site1/asgi.py", ASGI),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(".venv/bin/hypercorn site1.asgi:application --bind 0.0.0.0:${PORT:-8000}")
        );
        let ev = p.evidence_for("start").unwrap();
        assert_eq!(
            (ev.source.as_deref(), ev.line),
            (Some("site1/asgi.py"), Some(3))
        );
        let server = p.evidence_for("asgi_server").unwrap();
        assert_eq!(
            (server.source.as_deref(), server.line),
            (Some("requirements.txt"), Some(2))
        );
        let table = crate::render_table(&p);
        assert!(
            table.contains("asgi_server") && table.contains("requirements.txt:2"),
            "{table}"
        );
        // gunicorn is not a dependency: the WSGI alternative is the development server.
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start" && a.value.contains("manage.py runserver")));
    }

    #[test]
    fn django_without_an_asgi_server_stays_on_wsgi() {
        let p = plan(&[
            ("requirements.txt", "Django\ngunicorn\n"),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "WSGI_APPLICATION = \"site1.wsgi.application\"\n",
            ),
            ("site1/asgi.py", ASGI),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(".venv/bin/gunicorn site1.wsgi --bind 0.0.0.0:${PORT:-8000}")
        );
        assert!(p.evidence_for("asgi_server").is_none());
        assert!(p.alternatives.iter().all(|a| a.field != "start"));
    }

    #[test]
    fn asgi_py_without_application_is_not_served() {
        // A commented-out or differently named object is not `application`.
        let p = plan(&[
            ("requirements.txt", "Django\ngunicorn\nuvicorn\n"),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "WSGI_APPLICATION = 'site1.wsgi.application'\n",
            ),
            (
                "site1/asgi.py",
                "# application = get_asgi_application()\napplication_v2 = None\n",
            ),
        ]);
        assert!(p.start.as_deref().unwrap().contains("gunicorn site1.wsgi"));
    }

    #[test]
    fn channels_extra_brings_daphne_and_wins_over_uvicorn() {
        let p = plan(&[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\ndependencies = [\n  \"django>=4.2\",\n  \"uvicorn\",\n  \"channels[daphne]>=4\",\n]\n",
            ),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "ASGI_APPLICATION = \"site1.routing.app\"  # channels\n",
            ),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(".venv/bin/daphne -b 0.0.0.0 -p ${PORT:-8000} site1.routing:app")
        );
        assert_eq!(p.evidence_for("asgi_server").and_then(|e| e.line), Some(6));
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start"
                && a.value.starts_with(".venv/bin/uvicorn site1.routing:app")));
    }

    #[test]
    fn channels_without_a_server_says_so() {
        let p = plan(&[
            ("requirements.txt", "django\ngunicorn\nchannels>=4\n"),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "WSGI_APPLICATION = 'site1.wsgi.application'\n",
            ),
            ("site1/asgi.py", ASGI),
        ]);
        assert!(p.start.as_deref().unwrap().contains("gunicorn site1.wsgi"));
        assert!(
            p.notices
                .iter()
                .any(|n| n.contains("channels is a dependency")),
            "{:?}",
            p.notices
        );
    }

    #[test]
    fn django_health_route_without_leading_slash() {
        let p = plan(&[
            ("requirements.txt", "django\ngunicorn\n"),
            ("manage.py", MANAGE),
            (
                "site1/settings.py",
                "WSGI_APPLICATION = 'site1.wsgi.application'\n",
            ),
            (
                "site1/urls.py",
                "urlpatterns = [\n    path('health/', views.health),\n]\n",
            ),
        ]);
        assert_eq!(p.health_path.as_deref(), Some("/health/"));
    }

    #[test]
    fn console_script_named_like_the_project_wins() {
        let p = plan(&[
            (
                "pyproject.toml",
                "[project]\nname = \"My_App\"\ndependencies = [\"waitress\"]\n\n[project.scripts]\n# comment = \"x:y\"\nserve = \"my_app.other:main\"\n\"my-app\" = \"my_app.cli:app.run\"  # the service\n",
            ),
            ("my_app/__init__.py", ""),
            ("my_app/cli.py", "import os\nPORT = os.environ.get('PORT', '9000')\n"),
            ("main.py", "print('not me')\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(
                ".venv/bin/python -c 'import sys; from my_app.cli import app; sys.exit(app.run())'"
            )
        );
        let ev = p.evidence_for("start").unwrap();
        assert_eq!(
            (ev.source.as_deref(), ev.line),
            (Some("pyproject.toml"), Some(8))
        );
        assert!(ev.rule.contains("named like the project"), "{}", ev.rule);
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start" && a.value == ".venv/bin/python main.py"));
    }

    #[test]
    fn poetry_callable_table_and_inline_scripts() {
        let p = plan(&[
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"svc\"\nscripts = { web = { callable = \"svc.main:serve\" }, lint = \"svc.tools:lint\" }\n",
            ),
            ("svc/main.py", "def serve(): pass\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(".venv/bin/python -c 'import sys; from svc.main import serve; sys.exit(serve())'")
        );
        assert_eq!(p.evidence_for("start").and_then(|e| e.line), Some(3));
    }

    #[test]
    fn console_scripts_that_cannot_be_the_entry_point_are_not_used() {
        // Several scripts, none named for serving.
        let p = plan(&[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\n[project.scripts]\nlint = \"x.a:lint\"\nfmt = \"x.a:fmt\"\n",
            ),
            ("x/a.py", ""),
            ("app.py", "print(1)\n"),
        ]);
        assert_eq!(p.start.as_deref(), Some(".venv/bin/python app.py"));
        assert!(
            p.notices.iter().any(|n| n.contains("fmt, lint")),
            "{:?}",
            p.notices
        );
        // Not a module:function reference (never pasted into the command).
        let p = plan(&[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\n[project.scripts]\nx = \"os; rm -rf /:y\"\n",
            ),
            ("app.py", "print(1)\n"),
        ]);
        assert_eq!(p.start.as_deref(), Some(".venv/bin/python app.py"));
        // A module that is not in the repository.
        let p = plan(&[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\n[project.scripts]\nx = \"elsewhere.cli:main\"\n",
            ),
            ("app.py", "print(1)\n"),
        ]);
        assert_eq!(p.start.as_deref(), Some(".venv/bin/python app.py"));
        assert!(p.notices.iter().any(|n| n.contains("elsewhere.cli")));
    }

    #[test]
    fn app_object_and_procfile_outrank_the_console_script() {
        let files = [
            (
                "pyproject.toml",
                "[project]\nname = \"api\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n[project.scripts]\napi = \"api.main:run\"\n",
            ),
            ("api/__init__.py", ""),
            ("api/main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
        ];
        let p = plan(&files);
        assert!(p.start.as_deref().unwrap().contains("uvicorn api.main:app"));
        assert!(p.alternatives.iter().any(|a| a.field == "start"
            && a.value.contains("from api.main import run")
            && a.reason.contains("app object")));
        let mut with_procfile = files.to_vec();
        with_procfile.retain(|f| f.0 != "api/main.py");
        with_procfile.push(("api/main.py", "def run(): pass\n"));
        with_procfile.push(("Procfile", "web: api --port $PORT\n"));
        let p = plan(&with_procfile);
        assert!(p.start.as_deref().unwrap().ends_with("api --port $PORT"));
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "start" && a.value.contains("from api.main import run")));
    }

    #[test]
    fn settings_star_imports() {
        use super::star_imports;
        let text = "from .base import *  # noqa: F403\nfrom .base import env\nfrom config.settings.common import *\nfrom .. import *\n# from .old import *\n";
        assert_eq!(
            star_imports("config/settings/production.py", text),
            ["config/settings/base.py", "config/settings/common.py"]
        );
    }

    #[test]
    fn requirement_includes_are_followed_once_and_stay_inside() {
        let p = plan(&[
            (
                "requirements.txt",
                "-r requirements/prod.txt\n--requirement=../outside.txt\n",
            ),
            (
                "requirements/prod.txt",
                "-r base.txt\ngunicorn==22 # server\n",
            ),
            ("requirements/base.txt", "-r prod.txt\nFlask>=3\n"),
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some(".venv/bin/gunicorn app:app --bind 0.0.0.0:${PORT:-8000}")
        );
        let fw = p.evidence_for("framework").unwrap();
        assert_eq!((fw.source.as_deref(), fw.line), (Some("app.py"), Some(2)));
    }
}
