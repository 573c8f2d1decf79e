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

/// Joins paths relative to the app directory.
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    join(dir, name)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quoting() {
        assert_eq!(sh_quote("app.py"), "app.py");
        assert_eq!(sh_quote("my app.py"), "'my app.py'");
    }
}
