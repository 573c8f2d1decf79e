//! One detector per ecosystem behind a small trait, plus the helpers they share.

use std::cell::OnceCell;

use crate::error::AnalyzeError;
use crate::fs::{join, DirEntry, EntryKind, RepoFs};
use crate::plan::BuildPlan;

pub(crate) mod go;
pub(crate) mod gradle;
pub(crate) mod java;
pub(crate) mod node;
pub(crate) mod php;
pub(crate) mod python;
pub(crate) mod ruby;
pub(crate) mod rust;
pub(crate) mod static_site;

/// How sure a detection is; the strongest wins, ties go to the detector order.
pub(crate) const STRENGTH_MANIFEST: u8 = 1;
pub(crate) const STRENGTH_START: u8 = 2;
pub(crate) const STRENGTH_FRAMEWORK: u8 = 3;

pub(crate) struct Detection {
    pub plan: BuildPlan,
    pub strength: u8,
    /// The file that made the detector match.
    pub manifest: String,
}

pub(crate) enum Outcome {
    Matched(Box<Detection>),
    /// Why it did not match, for the "candidates checked" list.
    NoMatch(String),
}

pub(crate) trait Detector {
    fn name(&self) -> &'static str;
    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError>;
}

/// All detectors, in tie-break order. Static sites come last: they match only when nothing else does.
pub(crate) fn all() -> [&'static dyn Detector; 8] {
    [
        &python::Python,
        &node::Node,
        &go::Go,
        &rust::Rust,
        &ruby::Ruby,
        &php::Php,
        &java::Java,
        &static_site::Static,
    ]
}

/// A source file found under the app directory.
pub(crate) struct SourceFile {
    /// Relative to the app directory.
    pub path: String,
    pub text: String,
}

const SKIP_DIRS: &[&str] = &[
    "node_modules",
    "venv",
    "env",
    "__pycache__",
    "target",
    "dist",
    "build",
    "vendor",
    "out",
    "coverage",
    "test",
    "tests",
    "spec",
    "__tests__",
    "migrations",
    "static",
    "public",
    "assets",
    "docs",
    "examples",
    "fixtures",
    "testdata",
    "site-packages",
];
const SOURCE_EXTS: &[&str] = &[
    "py",
    "js",
    "mjs",
    "cjs",
    "ts",
    "mts",
    "jsx",
    "tsx",
    "go",
    "rs",
    "rb",
    "php",
    "java",
    "kt",
    "properties",
];
const MAX_SOURCE_FILES: usize = 300;
const MAX_SOURCE_BYTES: usize = 256 * 1024;
const MAX_SOURCE_DEPTH: usize = 4;

/// The app directory being analyzed.
pub(crate) struct Ctx<'a> {
    pub fs: &'a dyn RepoFs,
    /// Repository-relative, `""` for the root.
    pub dir: String,
    sources: OnceCell<Vec<SourceFile>>,
}

impl<'a> Ctx<'a> {
    pub fn new(fs: &'a dyn RepoFs, dir: &str) -> Self {
        Self {
            fs,
            dir: dir.to_owned(),
            sources: OnceCell::new(),
        }
    }

    /// A repository-relative path for a file of the app.
    pub fn path(&self, rel: &str) -> String {
        join(&self.dir, rel)
    }

    pub fn is_file(&self, rel: &str) -> bool {
        self.fs.is_file(&self.path(rel))
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.fs.is_dir(&self.path(rel))
    }

    pub fn list(&self, rel: &str) -> Vec<DirEntry> {
        self.fs.list(&self.path(rel)).unwrap_or_default()
    }

    /// The first of `names` that is a file.
    pub fn first_file<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|n| self.is_file(n))
    }

    /// A manifest's text: unreadable manifests are errors.
    pub fn text(&self, rel: &str) -> Result<Option<String>, AnalyzeError> {
        Ok(self.fs.read_text(&self.path(rel))?)
    }

    /// A source file's text: unreadable (binary, huge) files are skipped.
    pub fn text_opt(&self, rel: &str) -> Option<String> {
        self.fs.read_text(&self.path(rel)).ok().flatten()
    }

    pub fn json(&self, rel: &str) -> Result<Option<(serde_json::Value, String)>, AnalyzeError> {
        let Some(text) = self.text(rel)? else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(v) => Ok(Some((v, text))),
            Err(e) => Err(AnalyzeError::Malformed {
                file: self.path(rel),
                line: u32::try_from(e.line()).ok(),
                column: u32::try_from(e.column()).ok(),
                message: format!("not valid JSON: {e}"),
            }),
        }
    }

    pub fn toml(&self, rel: &str) -> Result<Option<(toml::Value, String)>, AnalyzeError> {
        let Some(text) = self.text(rel)? else {
            return Ok(None);
        };
        parse_toml(&text, &self.path(rel)).map(|v| Some((v, text)))
    }

    /// Source files of the app (bounded in depth, count and size), read once.
    pub fn sources(&self) -> &[SourceFile] {
        self.sources.get_or_init(|| {
            let mut out = Vec::new();
            self.walk("", 0, &mut out);
            // PHP's front controller lives in the document root, a directory skipped otherwise.
            for entry in ["public/index.php"] {
                if let Some(text) = self.text_opt(entry).filter(|t| t.len() <= MAX_SOURCE_BYTES) {
                    out.push(SourceFile {
                        path: entry.to_owned(),
                        text,
                    });
                }
            }
            out
        })
    }

    fn walk(&self, rel: &str, depth: usize, out: &mut Vec<SourceFile>) {
        for entry in self.list(rel) {
            if out.len() >= MAX_SOURCE_FILES {
                return;
            }
            let path = join(rel, &entry.name);
            match entry.kind {
                EntryKind::Dir => {
                    if depth < MAX_SOURCE_DEPTH
                        && !entry.name.starts_with('.')
                        && !SKIP_DIRS.contains(&entry.name.as_str())
                    {
                        self.walk(&path, depth + 1, out);
                    }
                }
                EntryKind::File => {
                    let ext = entry.name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
                    if !SOURCE_EXTS.contains(&ext) || is_test_file(&entry.name) {
                        continue;
                    }
                    if let Some(text) = self.text_opt(&path) {
                        if text.len() <= MAX_SOURCE_BYTES {
                            out.push(SourceFile { path, text });
                        }
                    }
                }
            }
        }
    }

    /// Source files whose extension is one of `exts`.
    pub fn sources_with<'s>(&'s self, exts: &'s [&'s str]) -> impl Iterator<Item = &'s SourceFile> {
        self.sources().iter().filter(move |f| {
            let ext = f.path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            exts.contains(&ext)
        })
    }
}

fn is_test_file(name: &str) -> bool {
    name.ends_with("_test.go")
        || name.starts_with("test_")
        || name.ends_with("_test.py")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("_spec.rb")
        || name.ends_with("Test.java")
}

pub(crate) fn parse_toml(text: &str, file: &str) -> Result<toml::Value, AnalyzeError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((None, None));
            AnalyzeError::Malformed {
                file: file.to_owned(),
                line,
                column,
                message: format!("not valid TOML: {}", e.message()),
            }
        })
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (Option<u32>, Option<u32>) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (u32::try_from(line).ok(), u32::try_from(col).ok())
}

/// The 1-based line of the first line containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<u32> {
    text.lines()
        .position(|l| l.contains(needle))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// The line of a JSON key path such as `["scripts", "start"]`: each key is searched for after the
/// previous one, which is right for the pretty-printed manifests repositories hold.
pub(crate) fn json_key_line(text: &str, keys: &[&str]) -> Option<u32> {
    let mut from = 0;
    for key in keys {
        let quoted = format!("\"{key}\"");
        let at = text.get(from..)?.find(&quoted)? + from;
        from = at + quoted.len();
    }
    line_col(text, from).0
}

/// The line of a TOML key inside a table header, e.g. (`tool.poetry`, `name`).
pub(crate) fn toml_key_line(text: &str, table: Option<&str>, key: &str) -> Option<u32> {
    let mut in_table = table.is_none();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_table = Some(name) == table;
            continue;
        }
        if in_table {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return u32::try_from(i + 1).ok();
                }
            }
        }
    }
    None
}

/// Dependency name as a package index spells it, for comparisons.
pub(crate) fn norm_dep(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// First `key = "value"` or `key: value` style string in a JSON object.
pub(crate) fn json_str<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(|x| x.as_str())
}

/// Quote a path for `sh -c` when it needs it.
pub(crate) fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The first line of a version file, skipping blanks and `#` comments.
pub(crate) fn version_file_value(text: &str) -> Option<(String, u32)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l.split('#').next().unwrap_or("").trim();
        (!t.is_empty()).then(|| (t.to_owned(), u32::try_from(i + 1).unwrap_or(u32::MAX)))
    })
}

/// `tool version [fallback…]` lines of `.tool-versions` (asdf, mise): the first version of the
/// first line naming one of `tools`. `system` (no pin) and `ref:`/`path:` builds are skipped.
pub(crate) fn tool_versions_value(text: &str, tools: &[&str]) -> Option<(String, u32)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let mut words = l.split('#').next().unwrap_or("").split_whitespace();
        let tool = words.next()?;
        let version = words.next()?;
        (tools.contains(&tool)
            && version != "system"
            && !version.starts_with("ref:")
            && !version.starts_with("path:"))
        .then(|| (version.to_owned(), u32::try_from(i + 1).unwrap_or(u32::MAX)))
    })
}

/// `[tools]` of a mise config: `node = "20"`, `python = ["3.12", "3.11"]` (the first),
/// `java = { version = "21" }`; the key as written and the version.
pub(crate) fn mise_value(doc: &toml::Value, tools: &[&str]) -> Option<(String, String)> {
    let table = doc.get("tools")?.as_table()?;
    tools.iter().find_map(|t| {
        let v = table.get(*t)?;
        let version = v
            .as_str()
            .or_else(|| v.as_array()?.first()?.as_str())
            .or_else(|| v.get("version")?.as_str())?;
        (version != "system").then(|| ((*t).to_owned(), version.to_owned()))
    })
}

/// Versions pinned for one of `tools` by the multi-tool version managers, in the app directory
/// and then each directory above it (as asdf and mise look): `mise.toml` / `.mise.toml`
/// `[tools]` first (mise ranks its own file above `.tool-versions`), then `.tool-versions`.
/// Nearest first; callers rank them after the ecosystem's own version file.
pub(crate) fn managed_versions(
    ctx: &Ctx,
    tools: &[&str],
) -> Result<Vec<(String, crate::plan::Cite)>, AnalyzeError> {
    use crate::plan::Cite;
    let mut out = Vec::new();
    let dirs = std::iter::once(ctx.dir.as_str()).chain(
        ctx.dir
            .match_indices('/')
            .map(|(i, _)| &ctx.dir[..i])
            .rev()
            .chain(std::iter::once(""))
            .filter(|d| !ctx.dir.is_empty() || !d.is_empty()),
    );
    for dir in dirs {
        for file in ["mise.toml", ".mise.toml"] {
            let path = join(dir, file);
            if let Some(text) = ctx.fs.read_text(&path)? {
                let doc = parse_toml(&text, &path)?;
                if let Some((key, v)) = mise_value(&doc, tools) {
                    let line = toml_key_line(&text, Some("tools"), &key);
                    out.push((
                        v,
                        Cite::file(path, line, format!("`{key}` in [tools] of {file} (mise)")),
                    ));
                }
            }
        }
        let path = join(dir, ".tool-versions");
        if let Some(text) = ctx.fs.read_text(&path)? {
            if let Some((v, line)) = tool_versions_value(&text, tools) {
                out.push((
                    v,
                    Cite::file(
                        path,
                        Some(line),
                        format!("`{}` in .tool-versions (asdf/mise)", tools[0]),
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The runtime version in the tag of the app's Dockerfile base image (`FROM node:16-alpine` →
/// `16`, `FROM docker.io/library/python:3.12-slim AS app` → `3.12`): the last `FROM` naming one
/// of `images`, which is the stage that runs the app. Tags that are not a version (`lts`,
/// `${NODE_VERSION}`, none) give nothing. The local target does not build the image, so callers
/// rank this after every version file and manifest field: it is what the team's image runs on.
pub(crate) fn dockerfile_version(
    ctx: &Ctx,
    images: &[&str],
) -> Result<Option<(String, crate::plan::Cite)>, AnalyzeError> {
    let Some(name) = ctx.first_file(&crate::overrides::DOCKERFILES) else {
        return Ok(None);
    };
    let Some(text) = ctx.text(name)? else {
        return Ok(None);
    };
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let Some(image) = words.find(|w| !w.starts_with("--")) else {
            continue;
        };
        let image = image.split_once('@').map_or(image, |(i, _)| i);
        // `registry:5000/library/node:16` — the tag follows the last path segment's colon.
        let (path, tag) = match image.rsplit_once('/') {
            Some((_, last)) => (last, last.split_once(':').map(|(_, t)| t)),
            None => (image, image.split_once(':').map(|(_, t)| t)),
        };
        let repo = path.split_once(':').map_or(path, |(r, _)| r);
        if !images.iter().any(|n| repo.eq_ignore_ascii_case(n)) {
            continue;
        }
        let version: String = tag
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let version = version.trim_end_matches('.');
        found = (version.starts_with(|c: char| c.is_ascii_digit())).then(|| {
            (
                version.to_owned(),
                crate::plan::Cite::file(
                    ctx.path(name),
                    u32::try_from(i + 1).ok(),
                    format!("the tag of the {repo} base image in {name} (not built by the local target)"),
                ),
            )
        });
    }
    Ok(found)
}

/// Records the first version found as the plan's and the others as alternatives, each with the
/// file it came from. `found` is in precedence order.
pub(crate) fn choose_version(plan: &mut BuildPlan, found: Vec<(String, crate::plan::Cite)>) {
    let mut it = found.into_iter();
    if let Some((v, cite)) = it.next() {
        let winner = cite.source.clone().unwrap_or_default();
        plan.set(crate::plan::Field::Version, Some(v), cite);
        for (v, c) in it {
            plan.lose(
                "version",
                &v,
                c.source.as_deref(),
                format!("{winner} ranks higher ({})", c.rule),
            );
        }
    }
}

/// Joins paths relative to the app directory.
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    join(dir, name)
}

/// The directories above the repository-relative `dir`, nearest first, ending with the root ("").
pub(crate) fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(move |(i, _)| &dir[..i])
        .rev()
        .chain(std::iter::once(""))
}

/// A workspace member pattern (`packages/*`, `apps/**`, `backend`) against a directory relative
/// to the workspace root: `*` and `?` match within one path segment, a `**` segment any number of
/// segments; `./` and a trailing `/` are ignored.
pub(crate) fn glob_dir_match(pattern: &str, dir: &str) -> bool {
    fn segment(p: &[u8], s: &[u8]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, _) => s.is_empty(),
            (Some((b'*', rest)), _) => {
                segment(rest, s) || s.split_first().is_some_and(|(_, t)| segment(p, t))
            }
            (Some((b'?', rest)), Some((_, t))) => segment(rest, t),
            (Some((c, rest)), Some((d, t))) => c == d && segment(rest, t),
            (Some(_), None) => false,
        }
    }
    fn path(ps: &[&str], ds: &[&str]) -> bool {
        match (ps.split_first(), ds.split_first()) {
            (None, _) => ds.is_empty(),
            (Some((&"**", rest)), _) => {
                path(rest, ds) || ds.split_first().is_some_and(|(_, t)| path(ps, t))
            }
            (Some((p, rest)), Some((d, t))) => segment(p.as_bytes(), d.as_bytes()) && path(rest, t),
            (Some(_), None) => false,
        }
    }
    fn parts(s: &str) -> Vec<&str> {
        s.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    }
    path(&parts(pattern), &parts(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_patterns() {
        for (pattern, dir, want) in [
            ("apps/*", "apps/web", true),
            ("./apps/*/", "apps/web", true),
            ("apps/*", "apps/web/x", false),
            ("apps/*", "apps", false),
            ("backend", "backend", true),
            ("libs/old", "libs/older", false),
            ("packages/**", "packages/a/b", true),
            ("packages/**", "packages/a", true),
            ("**/test/**", "apps/test/x", true),
            ("services/*-api", "services/billing-api", true),
            ("services/*-api", "services/billing", false),
            ("apps/we?", "apps/web", true),
        ] {
            assert_eq!(glob_dir_match(pattern, dir), want, "{pattern} {dir}");
        }
    }

    #[test]
    fn json_key_lines() {
        let text = "{\n  \"name\": \"x\",\n  \"scripts\": {\n    \"build\": \"b\",\n    \"start\": \"s\"\n  }\n}\n";
        assert_eq!(json_key_line(text, &["scripts", "start"]), Some(5));
        assert_eq!(json_key_line(text, &["nope"]), None);
    }

    #[test]
    fn toml_key_lines() {
        let text =
            "[project]\nname = \"a\"\nrequires-python = \">=3.11\"\n[tool.poetry]\nname = \"b\"\n";
        assert_eq!(
            toml_key_line(text, Some("project"), "requires-python"),
            Some(3)
        );
        assert_eq!(toml_key_line(text, Some("tool.poetry"), "name"), Some(5));
    }

    #[test]
    fn version_files_skip_comments() {
        assert_eq!(
            version_file_value("# pinned\n\n  3.11.4  # latest\n"),
            Some(("3.11.4".to_owned(), 3))
        );
        assert_eq!(version_file_value("\n# only\n"), None);
    }

    #[test]
    fn tool_versions_lines() {
        let text = "# runtimes\nnodejs 20.11.1 18.19.0\nruby system\n  python   3.12.2 # main\njava temurin-21.0.2+13.0.LTS\nruby 3.3.0\n";
        assert_eq!(
            tool_versions_value(text, &["node", "nodejs"]),
            Some(("20.11.1".into(), 2))
        );
        assert_eq!(
            tool_versions_value(text, &["python"]),
            Some(("3.12.2".into(), 4))
        );
        assert_eq!(
            tool_versions_value(text, &["java"]),
            Some(("temurin-21.0.2+13.0.LTS".into(), 5))
        );
        // `system` is no pin: the next line naming the tool counts.
        assert_eq!(
            tool_versions_value(text, &["ruby"]),
            Some(("3.3.0".into(), 6))
        );
        assert_eq!(tool_versions_value("# php 8.2\nphp\n", &["php"]), None);
        assert_eq!(tool_versions_value("golang ref:abc\n", &["golang"]), None);
    }

    #[test]
    fn mise_tools() {
        let doc = parse_toml(
            "[env]\nX = \"1\"\n[tools]\nnode = \"lts\"\npython = [\"3.12\", \"3.11\"]\njava = { version = \"corretto-21\" }\nruby = \"system\"\n",
            "mise.toml",
        )
        .unwrap();
        assert_eq!(
            mise_value(&doc, &["node", "nodejs"]),
            Some(("node".into(), "lts".into()))
        );
        assert_eq!(
            mise_value(&doc, &["python"]),
            Some(("python".into(), "3.12".into()))
        );
        assert_eq!(
            mise_value(&doc, &["java"]),
            Some(("java".into(), "corretto-21".into()))
        );
        assert_eq!(mise_value(&doc, &["ruby"]), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("app.py"), "app.py");
        assert_eq!(sh_quote("my app.py"), "'my app.py'");
    }
}

#[cfg(test)]
mod version_tests {
    use crate::{analyze, AnalyzeError, AnalyzeOptions, BuildPlan, MemFs};

    fn plan_in(files: &[(&str, &str)], app_dir: Option<&str>) -> Result<BuildPlan, AnalyzeError> {
        analyze(
            &MemFs::from_files(files.iter().copied()),
            &AnalyzeOptions {
                app_dir: app_dir.map(str::to_owned),
            },
        )
    }

    fn plan(files: &[(&str, &str)]) -> BuildPlan {
        plan_in(files, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn alt<'p>(p: &'p BuildPlan, value: &str) -> Option<&'p crate::Alternative> {
        p.alternatives
            .iter()
            .find(|a| a.field == "version" && a.value == value)
    }

    #[test]
    fn dockerfile_base_image_tag_is_the_last_version_source() {
        let pkg = (
            "package.json",
            "{\"scripts\":{\"start\":\"node index.js\"}}",
        );
        // The runtime stage (the last FROM naming the image) wins over the build stage.
        let docker = "FROM --platform=$BUILDPLATFORM node:18-alpine AS build\nRUN npm ci\nFROM docker.io/library/node:16.20.2-bullseye-slim@sha256:abc AS app\nCMD [\"node\", \"index.js\"]\n";
        let p = plan(&[pkg, ("Dockerfile", docker)]);
        assert_eq!(p.version.as_deref(), Some("16.20.2"));
        let e = p.evidence_for("version").expect("version evidence");
        assert_eq!((e.source.as_deref(), e.line), (Some("Dockerfile"), Some(3)));
        // Ranks after every version file and manifest field.
        let p = plan(&[pkg, ("Dockerfile", docker), (".nvmrc", "20\n")]);
        assert_eq!(p.version.as_deref(), Some("20"));
        assert!(alt(&p, "16.20.2").is_some());
        // Tags that are not a version, and other images, give nothing.
        for docker in [
            "FROM node:lts-alpine\n",
            "FROM node:${NODE_VERSION}\n",
            "FROM node\n",
            "FROM python:3.12-slim\n",
            "FROM registry.example.com:5000/team/node-base:20\n",
        ] {
            assert_eq!(
                plan(&[pkg, ("Dockerfile", docker)]).version,
                None,
                "{docker}"
            );
        }
        // A registry with a port before the image path.
        let p = plan(&[
            pkg,
            ("Dockerfile", "FROM registry.example.com:5000/node:22.1\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("22.1"));
        // Python reads its own image (PHP and Ruby likewise).
        let p = plan(&[
            ("requirements.txt", "flask\n"),
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
            ("Dockerfile", "FROM python:3.11-slim-bookworm\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("3.11"));
    }

    #[test]
    fn node_precedence_nvmrc_then_mise_then_tool_versions_then_engines() {
        let files = [
            (
                "package.json",
                "{\"scripts\":{\"start\":\"node a.js\"},\"engines\":{\"node\":\">=18\"}}",
            ),
            (".tool-versions", "nodejs v20.1.0\n"),
            ("mise.toml", "[tools]\nnode = \"22.3\"\n"),
            (".nvmrc", "lts/iron\n"),
        ];
        let p = plan(&files);
        assert_eq!(p.version.as_deref(), Some("lts/iron"));
        assert_eq!(
            alt(&p, "22.3").and_then(|a| a.source.as_deref()),
            Some("mise.toml")
        );
        assert!(alt(&p, "20.1.0").is_some());
        assert!(alt(&p, ">=18").is_some());
        let p = plan(&files[..3]);
        assert_eq!(p.version.as_deref(), Some("22.3"));
        assert_eq!(p.evidence_for("version").and_then(|e| e.line), Some(2));
        let p = plan(&files[..2]);
        assert_eq!(p.version.as_deref(), Some("20.1.0"));
    }

    #[test]
    fn python_tool_versions_rank_after_python_version_before_requires_python() {
        let files = [
            ("app.py", "print(1)\n"),
            ("requirements.txt", "flask\n"),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nrequires-python = \">=3.10\"\n",
            ),
            (".tool-versions", "python 3.12.4 3.11.9\n"),
            (".python-version", "3.13\n"),
        ];
        let p = plan(&files);
        assert_eq!(p.version.as_deref(), Some("3.13"));
        assert!(alt(&p, "3.12.4").is_some());
        let p = plan(&files[..4]);
        assert_eq!(p.version.as_deref(), Some("3.12.4"));
        assert!(alt(&p, ">=3.10").is_some());
    }

    #[test]
    fn the_repository_roots_tool_versions_applies_to_an_app_below() {
        let p = plan_in(
            &[
                (".tool-versions", "ruby 3.2.4\n"),
                (
                    "services/web/Gemfile",
                    "source 'https://rubygems.org'\ngem 'puma'\n",
                ),
                (
                    "services/web/config.ru",
                    "run ->(env) { [200, {}, ['ok']] }\n",
                ),
            ],
            Some("services/web"),
        )
        .unwrap();
        assert_eq!(p.version.as_deref(), Some("3.2.4"));
        assert_eq!(
            p.evidence_for("version").and_then(|e| e.source.as_deref()),
            Some(".tool-versions")
        );
    }

    #[test]
    fn ruby_exact_gemfile_pin_that_loses_gets_a_notice() {
        let p = plan(&[
            (".tool-versions", "ruby 3.3.0\n"),
            (
                "Gemfile",
                "source 'https://rubygems.org'\nruby '3.2.2'\ngem 'sinatra'\n",
            ),
            ("app.rb", "require 'sinatra'\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("3.3.0"));
        assert!(alt(&p, "3.2.2").is_some());
        assert!(
            p.notices.iter().any(|n| n.contains("Bundler refuses")),
            "{:?}",
            p.notices
        );
        // `ruby file: ".ruby-version"` is not a version.
        let p = plan(&[
            (".ruby-version", "ruby-3.3.1\n"),
            ("Gemfile", "ruby file: \".ruby-version\"\ngem 'sinatra'\n"),
            ("app.rb", "require 'sinatra'\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("3.3.1"));
        assert!(p.alternatives.iter().all(|a| a.field != "version"));
        assert!(p.notices.iter().all(|n| !n.contains("Bundler")));
    }

    #[test]
    fn composer_start_script_gives_the_port_and_document_root() {
        // slimphp/Slim-Skeleton: "start": "php -S localhost:8080 -t public".
        let composer = "{\n  \"require\": {\"slim/slim\": \"^4.9\"},\n  \"scripts\": {\n    \"start\": \"php -S localhost:8080 -t public\"\n  }\n}\n";
        let p = plan(&[
            ("composer.json", composer),
            ("public/index.php", "<?php\n$app->run();\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some("php -S 0.0.0.0:${PORT:-8080} -t public")
        );
        assert!(p.reads_port_env);
        assert_eq!(p.port, Some(8080));
        let e = p.evidence_for("start").expect("start evidence");
        assert_eq!(
            (e.source.as_deref(), e.line),
            (Some("composer.json"), Some(4))
        );
        // A start script that is not the built-in server changes nothing.
        let p = plan(&[
            (
                "composer.json",
                "{\"scripts\":{\"start\":[\"@php bin/console cache:clear\"]}}",
            ),
            ("index.php", "<?php echo 1;\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some("php -S 0.0.0.0:${PORT:-8000} -t .")
        );
        // The script's document root is used when it holds index.php.
        let p = plan(&[
            ("composer.json", "{\"scripts\":{\"start\":[\"@composer install\", \"@php -S 127.0.0.1:8888 -t web/\"]}}"),
            ("index.php", "<?php echo 1;\n"),
            ("web/index.php", "<?php echo 2;\n"),
        ]);
        assert_eq!(
            p.start.as_deref(),
            Some("php -S 0.0.0.0:${PORT:-8888} -t web")
        );
    }

    #[test]
    fn php_version_file_and_java_sdkmanrc() {
        let p = plan(&[
            (".php-version", "8.2\n"),
            (".tool-versions", "php 8.3.1\n"),
            ("composer.json", "{\"require\":{\"php\":\"^8.1\"}}"),
            ("index.php", "<?php echo 1;\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("8.2"));
        assert!(alt(&p, "8.3.1").is_some() && alt(&p, "^8.1").is_some());
        let p = plan(&[
            (".sdkmanrc", "# sdk env\njava=21.0.3-tem\n"),
            ("build.gradle", "plugins { id 'org.springframework.boot' version '3.3.0' }\njava { sourceCompatibility = JavaVersion.VERSION_17 }\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("21.0.3-tem"));
        assert_eq!(p.evidence_for("version").and_then(|e| e.line), Some(2));
        assert!(alt(&p, "17").is_some());
        // Newer than the bytecode: no notice.
        assert!(p.notices.iter().all(|n| !n.contains("cannot run")));
    }

    #[test]
    fn go_mod_outranks_tool_versions() {
        let files = [
            ("go.mod", "module example.com/x\n\ngo 1.22.3\n"),
            ("main.go", "package main\nfunc main() {}\n"),
            (".tool-versions", "golang 1.21.0\n"),
        ];
        let p = plan(&files);
        assert_eq!(p.version.as_deref(), Some("1.22.3"));
        assert!(alt(&p, "1.21.0").is_some_and(|a| a.reason.contains("switches")));
        let p = plan(&[
            ("go.mod", "module example.com/x\n"),
            ("main.go", "package main\nfunc main() {}\n"),
            ("mise.toml", "[tools]\ngo = \"1.23\"\n"),
        ]);
        assert_eq!(p.version.as_deref(), Some("1.23"));
    }

    #[test]
    fn malformed_mise_toml_names_file_and_line() {
        let err = plan_in(
            &[
                ("mise.toml", "[tools]\nnode = \n"),
                ("package.json", "{\"scripts\":{\"start\":\"node a.js\"}}"),
            ],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("mise.toml:2:"), "{err}");
    }

    #[test]
    fn ruby_env_fetch_with_a_default_is_optional() {
        let p = plan(&[
            ("Gemfile", "gem 'sinatra'\n"),
            (
                "app.rb",
                "a = ENV.fetch('A_REQ')\nb = ENV.fetch('B_OPT', 'x')\nc = ENV.fetch(\"C_OPT\") { 5 }\n",
            ),
        ]);
        assert_eq!(p.env_required, ["A_REQ"]);
        assert_eq!(p.env_optional, ["B_OPT", "C_OPT"]);
    }
}
