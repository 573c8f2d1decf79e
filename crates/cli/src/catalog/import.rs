//! `slipway catalog import <file>`: registers the services of Backstage entity files.
//!
//! Every file is read and parsed first (a syntax error anywhere changes nothing); then each
//! `Component` is registered through `POST /api/v1/services` and reported on its own.

use super::entity::{
    entity_field, entity_ref, entry, parse_documents, Entry, FieldProblem, ServiceEntry,
};
use crate::client::{enc, exit, CliError, Client};
use crate::Format;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Largest file read (a catalog of thousands of entities is a few MiB).
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Locations pointing at Locations: how deep they may go.
const MAX_DEPTH: usize = 16;

/// Where an entity was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as given, or a followed file relative to its directory.
    pub file: String,
    pub document: usize,
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l} (document {})", self.file, self.document),
            None => write!(f, "{} (document {})", self.file, self.document),
        }
    }
}

/// What happened to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Created,
    WouldCreate,
    Exists,
    Followed,
    Skipped,
    Conflict,
    Invalid,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::WouldCreate => "would-create",
            Outcome::Exists => "exists",
            Outcome::Followed => "followed",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
        }
    }

    fn failed(self) -> bool {
        matches!(self, Outcome::Conflict | Outcome::Invalid | Outcome::Failed)
    }
}

/// One entity of the import and what became of it.
#[derive(Debug)]
pub struct Item {
    pub origin: Origin,
    /// `component:payments`, `group:core`, … (`document` when it has no kind or name).
    pub entity: String,
    pub service: Option<ServiceEntry>,
    pub outcome: Outcome,
    pub detail: String,
    pub problems: Vec<FieldProblem>,
    /// The exit code a failure maps to.
    pub code: i32,
}

impl Item {
    fn fail(&mut self, outcome: Outcome, code: i32, detail: String) {
        self.outcome = outcome;
        self.code = code;
        self.detail = detail;
    }
}

/// A file that cannot be used at all: nothing is registered.
#[derive(Debug)]
pub struct LoadError {
    pub code: i32,
    pub message: String,
}

/// Reads the file and every file its Locations point at, in document order (a Location's files
/// right after it). Only relative paths inside the given file's directory are followed.
pub fn load(path: &Path) -> Result<Vec<Item>, LoadError> {
    let root = std::fs::canonicalize(path).map_err(|e| LoadError {
        code: exit::USAGE,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let root_dir = root.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loader = Loader {
        root_dir,
        read: BTreeSet::new(),
        items: Vec::new(),
    };
    loader.file(&root, path.display().to_string(), 0)?;
    Ok(loader.items)
}

struct Loader {
    root_dir: PathBuf,
    read: BTreeSet<PathBuf>,
    items: Vec<Item>,
}

impl Loader {
    fn file(&mut self, path: &Path, shown: String, depth: usize) -> Result<(), LoadError> {
        self.read.insert(path.to_path_buf());
        let text = read(path, &shown)?;
        let docs = parse_documents(&text).map_err(|e| LoadError {
            code: exit::INVALID,
            message: format!("{shown}: {e}; nothing was registered"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for d in docs {
            if d.value.is_null() {
                continue;
            }
            let origin = Origin {
                file: shown.clone(),
                document: d.index,
                line: d.line,
            };
            let entity = match entity_ref(&d.value) {
                Some((kind, _, name)) => format!("{kind}:{name}"),
                None => match d.value.get("kind").and_then(|k| k.as_str()) {
                    Some(kind) => kind.to_ascii_lowercase(),
                    None => "document".into(),
                },
            };
            let mut item = Item {
                origin,
                entity,
                service: None,
                outcome: Outcome::Skipped,
                detail: String::new(),
                problems: Vec::new(),
                code: exit::OK,
            };
            match entry(&d.value) {
                Entry::Service(s) => {
                    item.outcome = Outcome::WouldCreate;
                    item.service = Some(s);
                    self.items.push(item);
                }
                Entry::Skip(why) => {
                    item.detail = format!("{why}; not registered");
                    self.items.push(item);
                }
                Entry::Invalid(problems) => {
                    item.fail(Outcome::Invalid, exit::INVALID, "fix in the file:".into());
                    item.problems = problems;
                    self.items.push(item);
                }
                Entry::Location(targets) => {
                    let index = self.items.len();
                    self.items.push(item);
                    let mut followed = Vec::new();
                    let mut notes = Vec::new();
                    let mut problems = Vec::new();
                    for (i, target) in targets.iter().enumerate() {
                        let field = format!("spec.targets[{i}]");
                        match self.resolve(&base, target) {
                            Ok(Resolved::File(p)) if self.read.contains(&p) => {
                                notes.push(format!("{target} (already read)"));
                            }
                            Ok(Resolved::File(_)) if depth >= MAX_DEPTH => {
                                problems.push(FieldProblem::new(
                                    field,
                                    format!(
                                        "{target}: Locations nest deeper than {MAX_DEPTH} files"
                                    ),
                                ))
                            }
                            Ok(Resolved::File(p)) => {
                                let shown = p
                                    .strip_prefix(&self.root_dir)
                                    .map(|r| r.display().to_string())
                                    .unwrap_or_else(|_| p.display().to_string());
                                followed.push(shown.clone());
                                self.file(&p, shown, depth + 1)?;
                            }
                            Ok(Resolved::NotFollowed(why)) => {
                                notes.push(format!("{target} ({why})"))
                            }
                            Err(why) => problems.push(FieldProblem::new(field, why)),
                        }
                    }
                    let item = &mut self.items[index];
                    let mut detail = match followed.len() {
                        0 => "read no file".to_string(),
                        _ => format!("read {}", followed.join(", ")),
                    };
                    if !notes.is_empty() {
                        detail.push_str(&format!("; not read: {}", notes.join(", ")));
                    }
                    if problems.is_empty() {
                        item.outcome = Outcome::Followed;
                        item.detail = detail;
                    } else {
                        item.fail(
                            Outcome::Invalid,
                            exit::INVALID,
                            format!("{detail}; fix in the file:"),
                        );
                        item.problems = problems;
                    }
                }
            }
        }
        Ok(())
    }

    /// A Location target: a relative path to a file inside the imported file's directory.
    fn resolve(&self, base: &Path, target: &str) -> Result<Resolved, String> {
        if target.contains("://") {
            return Ok(Resolved::NotFollowed(
                "a URL: catalog files are not fetched over the network".into(),
            ));
        }
        if target.contains(['*', '?', '[']) {
            return Ok(Resolved::NotFollowed(
                "a glob pattern: list the files one by one".into(),
            ));
        }
        let relative = Path::new(target);
        if target.is_empty()
            || relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, Component::Prefix(_)))
        {
            return Err(format!(
                "{target:?} is not a relative path: only files relative to the Location's file are read"
            ));
        }
        let path = std::fs::canonicalize(base.join(relative))
            .map_err(|e| format!("{target}: cannot read it ({e})"))?;
        if !path.starts_with(&self.root_dir) {
            return Err(format!(
                "{target} is outside {}: only files in the imported file's directory are read",
                self.root_dir.display()
            ));
        }
        if !path.is_file() {
            return Err(format!("{target} is not a file"));
        }
        Ok(Resolved::File(path))
    }
}

enum Resolved {
    File(PathBuf),
    NotFollowed(String),
}

fn read(path: &Path, shown: &str) -> Result<String, LoadError> {
    let fail = |why: String| LoadError {
        code: exit::USAGE,
        message: format!("cannot read {shown}: {why}"),
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(format!(
            "{} bytes, more than the {} MiB a catalog file may have",
            meta.len(),
            MAX_FILE_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| LoadError {
        code: exit::INVALID,
        message: format!(
            "{shown} is not UTF-8 text (byte {}); nothing was registered",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// A name twice in the import: the same service again is skipped, a different one is a conflict.
pub fn mark_duplicates(items: &mut [Item]) {
    let mut first: BTreeMap<String, (Origin, ServiceEntry)> = BTreeMap::new();
    for item in items.iter_mut() {
        let Some(s) = item.service.clone() else {
            continue;
        };
        match first.get(&s.name) {
            None => {
                first.insert(s.name.clone(), (item.origin.clone(), s));
            }
            Some((origin, earlier)) => {
                if earlier.team == s.team && same_repo(&earlier.repo_url, &s.repo_url) {
                    item.outcome = Outcome::Skipped;
                    item.detail = format!("the same service as {origin}; not registered twice");
                } else {
                    item.fail(
                        Outcome::Conflict,
                        exit::CONFLICT,
                        format!(
                            "{origin} already declares {} (team {}, {}); rename one of them",
                            s.name, earlier.team, earlier.repo_url
                        ),
                    );
                }
                item.service = None;
            }
        }
    }
}

fn same_repo(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The import's result when a service of that name is registered already.
fn existing(item: &mut Item, s: &ServiceEntry, current: &Value, dry_run: bool) {
    let repo = current["repo_url"].as_str().unwrap_or_default();
    let team = current["team"].as_str().unwrap_or_default();
    if same_repo(repo, &s.repo_url) {
        item.outcome = Outcome::Exists;
        item.detail = format!("already registered with {repo}; left as it is");
        if team != s.team {
            item.detail.push_str(&format!(
                " (its team is {team}, the file says {}{})",
                s.team,
                if dry_run { "" } else { "; not changed" }
            ));
        }
    } else {
        item.fail(
            Outcome::Conflict,
            exit::CONFLICT,
            format!(
                "a service {} is registered with {repo} (team {team}); the file says {}: rename the entity or change the service",
                s.name, s.repo_url
            ),
        );
    }
}

pub async fn import(
    client: &Client,
    format: Format,
    file: &Path,
    dry_run: bool,
) -> Result<(), CliError> {
    let mut items = load(file).map_err(|e| CliError {
        code: e.code,
        message: e.message,
    })?;
    mark_duplicates(&mut items);
    let known_templates = if dry_run {
        let list: Value = client.get("/api/v1/templates").await?;
        Some(
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let mut aborted = None;
    for item in items.iter_mut() {
        let Some(s) = item.service.clone() else {
            continue;
        };
        let step = match &known_templates {
            Some(templates) => check(client, item, &s, templates).await,
            None => register(client, item, &s).await,
        };
        if let Err(e) = step {
            // The server went away or refuses this client: stop, and show what was done.
            item.fail(Outcome::Failed, e.code, e.message.clone());
            aborted = Some(e);
            break;
        }
    }
    if aborted.is_some() {
        for item in items.iter_mut() {
            if item.outcome == Outcome::WouldCreate && !dry_run {
                item.outcome = Outcome::Skipped;
                item.detail = "not attempted: the import stopped".into();
            }
        }
    }
    report(format, file, dry_run, &items);
    if let Some(e) = aborted {
        return Err(e);
    }
    let failed: Vec<&Item> = items.iter().filter(|i| i.outcome.failed()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(CliError {
        code: worst(failed.iter().map(|i| i.code)),
        message: format!(
            "{} of {} entities {} (see above)",
            failed.len(),
            items.len(),
            if dry_run {
                "would not be registered"
            } else {
                "were not registered"
            }
        ),
    })
}

/// The exit code of an import with several failures: the most serious one.
pub fn worst(codes: impl Iterator<Item = i32>) -> i32 {
    const ORDER: [i32; 6] = [
        exit::UNREACHABLE,
        exit::DENIED,
        exit::SERVER,
        exit::ERROR,
        exit::INVALID,
        exit::CONFLICT,
    ];
    codes
        .min_by_key(|c| ORDER.iter().position(|o| o == c).unwrap_or(ORDER.len()))
        .unwrap_or(exit::OK)
}

async fn register(client: &Client, item: &mut Item, s: &ServiceEntry) -> Result<(), CliError> {
    let mut body = json!({ "name": s.name, "team": s.team, "repo_url": s.repo_url });
    if let Some(t) = &s.template {
        body["template"] = json!(t);
    }
    if let Some(d) = &s.description {
        body["description"] = json!(d);
    }
    match client
        .post_or_refusal::<_, Value>("/api/v1/services", &body)
        .await?
    {
        Ok(created) => {
            item.outcome = Outcome::Created;
            item.detail = format!(
                "team {}, {}, template {}",
                s.team,
                s.repo_url,
                created["template"].as_str().unwrap_or("default")
            );
        }
        Err(r) if r.status == 409 => {
            let current: Value = client
                .get(&format!("/api/v1/services/{}", enc(&s.name)))
                .await?;
            existing(item, s, &current, false);
        }
        Err(r) if matches!(r.status, 401 | 403 | 429) => {
            item.fail(
                Outcome::Failed,
                r.code,
                format!("{} {}", r.status, r.detail),
            );
        }
        Err(r) if (400..500).contains(&r.status) => {
            let detail = if r.errors.is_empty() {
                format!("{} {}", r.status, r.detail)
            } else {
                format!("refused by the server ({}); fix in the file:", r.status)
            };
            item.fail(Outcome::Invalid, r.code, detail);
            item.problems = r
                .errors
                .into_iter()
                .map(|(field, message)| {
                    FieldProblem::new(entity_field(&field, s.repo_from), message)
                })
                .collect();
        }
        Err(r) => item.fail(
            Outcome::Failed,
            r.code,
            format!("{} {}", r.status, r.detail),
        ),
    }
    Ok(())
}

/// A dry run: what the server would say, without registering. The fields were checked by the same
/// rules the server uses when the file was read; here the template and the existing services.
async fn check(
    client: &Client,
    item: &mut Item,
    s: &ServiceEntry,
    templates: &[String],
) -> Result<(), CliError> {
    if let Some(t) = &s.template {
        if !templates.contains(t) {
            item.fail(Outcome::Invalid, exit::INVALID, "fix in the file:".into());
            item.problems = vec![FieldProblem::new(
                entity_field("template", s.repo_from),
                format!(
                    "unknown template {t:?}; known templates: {}",
                    templates.join(", ")
                ),
            )];
            return Ok(());
        }
    }
    match client
        .get::<Value>(&format!("/api/v1/services/{}", enc(&s.name)))
        .await
    {
        Ok(current) => existing(item, s, &current, true),
        Err(e) if e.code == exit::NOT_FOUND => {
            item.outcome = Outcome::WouldCreate;
            item.detail = format!(
                "team {}, {}, template {}",
                s.team,
                s.repo_url,
                s.template.as_deref().unwrap_or("default")
            );
            if s.repo_url.starts_with('/') || s.repo_url.starts_with("file://") {
                item.detail.push_str(
                    " (a local path: accepted only by a server started with --allow-local-repos)",
                );
            }
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn report(format: Format, file: &Path, dry_run: bool, items: &[Item]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *counts.entry(i.outcome.as_str()).or_default() += 1;
    }
    match format {
        Format::Json => {
            let entities: Vec<Value> = items
                .iter()
                .map(|i| {
                    json!({
                        "result": i.outcome.as_str(),
                        "entity": i.entity,
                        "file": i.origin.file,
                        "document": i.origin.document,
                        "line": i.origin.line,
                        "service": i.service.as_ref().map(|s| json!({
                            "name": s.name, "team": s.team, "repo_url": s.repo_url, "template": s.template,
                        })),
                        "detail": i.detail,
                        "errors": i.problems.iter().map(|p| json!({"field": p.field, "message": p.message})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let v = json!({
                "file": file,
                "dry_run": dry_run,
                "entities": entities,
                "summary": counts,
            });
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Format::Table => {
            let rows: Vec<[String; 3]> = items
                .iter()
                .map(|i| {
                    [
                        i.outcome.as_str().to_string(),
                        i.entity.clone(),
                        i.origin.to_string(),
                    ]
                })
                .collect();
            let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
            let (w0, w1, w2) = (width(0), width(1), width(2));
            let mut out = String::new();
            for (r, i) in rows.iter().zip(items) {
                let line = format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], i.detail);
                out.push_str(line.trim_end());
                out.push('\n');
                for p in &i.problems {
                    out.push_str(&format!("    {}: {}\n", p.field, p.message));
                }
            }
            let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            out.push_str(&format!(
                "{}{}\n",
                if dry_run {
                    "dry run, nothing registered: "
                } else {
                    ""
                },
                if summary.is_empty() {
                    "no entities".to_string()
                } else {
                    summary.join(", ")
                }
            ));
            crate::output::text(&out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    const COMPONENT: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: NAME\n  annotations:\n    github.com/project-slug: org/NAME\nspec:\n  owner: group:core\n";

    fn component(name: &str) -> String {
        COMPONENT.replace("NAME", name)
    }

    #[test]
    fn locations_are_followed_inside_the_directory_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("catalog");
        write(tmp.path(), "outside.yaml", &component("outside"));
        write(&dir, "a/catalog-info.yaml", &component("a"));
        write(
            &dir,
            "b/catalog-info.yaml",
            &format!(
                "{}---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{name: back}}\nspec:\n  targets: [../catalog-info.yaml, ../a/catalog-info.yaml]\n",
                component("b")
            ),
        );
        let root = write(
            &dir,
            "catalog-info.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\nspec:\n  targets:\n    - ./a/catalog-info.yaml\n    - b/catalog-info.yaml\n    - ../outside.yaml\n    - /etc/passwd\n    - ./missing.yaml\n    - https://github.com/org/x/blob/main/catalog-info.yaml\n    - ./*/catalog-info.yaml\n",
        );
        let items = load(&root).unwrap();
        let seen: Vec<(&str, Outcome)> = items
            .iter()
            .map(|i| (i.entity.as_str(), i.outcome))
            .collect();
        assert_eq!(
            seen,
            [
                ("location:all", Outcome::Invalid),
                ("component:a", Outcome::WouldCreate),
                ("component:b", Outcome::WouldCreate),
                ("location:back", Outcome::Followed),
            ]
        );
        let fields: Vec<&str> = items[0].problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.targets[2]", "spec.targets[3]", "spec.targets[4]"]
        );
        assert!(
            items[0].problems[0].message.contains("outside"),
            "{:?}",
            items[0].problems
        );
        assert!(items[0].detail.contains("a URL"), "{}", items[0].detail);
        assert!(items[0].detail.contains("glob"), "{}", items[0].detail);
        assert_eq!(items[2].origin.file, "b/catalog-info.yaml");
        assert_eq!(items[2].origin.line, Some(1));
        assert_eq!(items[3].origin.document, 2);
        assert!(
            items[3].detail.contains("already read"),
            "{}",
            items[3].detail
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_symlink_out_of_the_directory_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("catalog");
        write(tmp.path(), "secret.yaml", &component("secret"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.yaml"), dir.join("link.yaml")).unwrap();
        let root = write(
            &dir,
            "all.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\nspec: {target: ./link.yaml}\n",
        );
        let items = load(&root).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].outcome, Outcome::Invalid);
    }

    #[test]
    fn a_syntax_error_in_a_followed_file_stops_everything() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "bad.yaml",
            "kind: Component\nmetadata:\n  name: [x\n",
        );
        let root = write(
            tmp.path(),
            "all.yaml",
            &format!(
                "{}---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{name: all}}\nspec: {{target: ./bad.yaml}}\n",
                component("fine")
            ),
        );
        let e = load(&root).unwrap_err();
        assert_eq!(e.code, exit::INVALID);
        assert!(
            e.message.starts_with("bad.yaml: YAML syntax error at line"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("nothing was registered"),
            "{}",
            e.message
        );
        let e = load(&tmp.path().join("nope.yaml")).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
    }

    #[test]
    fn duplicates_in_one_import() {
        let tmp = tempfile::tempdir().unwrap();
        let other = component("a").replace("org/a", "org/other");
        let root = write(
            tmp.path(),
            "all.yaml",
            &format!("{}---\n{}---\n{}", component("a"), component("a"), other),
        );
        let mut items = load(&root).unwrap();
        mark_duplicates(&mut items);
        let outcomes: Vec<Outcome> = items.iter().map(|i| i.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::WouldCreate, Outcome::Skipped, Outcome::Conflict]
        );
        assert!(
            items[2].detail.contains("all.yaml:1 (document 1)"),
            "{}",
            items[2].detail
        );
        assert!(items[1].service.is_none() && items[2].service.is_none());
    }

    #[test]
    fn the_most_serious_failure_decides_the_exit_code() {
        assert_eq!(
            worst([exit::CONFLICT, exit::INVALID].into_iter()),
            exit::INVALID
        );
        assert_eq!(worst([exit::CONFLICT].into_iter()), exit::CONFLICT);
        assert_eq!(
            worst([exit::INVALID, exit::SERVER, exit::CONFLICT].into_iter()),
            exit::SERVER
        );
        assert_eq!(
            worst([exit::DENIED, exit::SERVER].into_iter()),
            exit::DENIED
        );
        assert_eq!(worst(std::iter::empty()), exit::OK);
    }
}
