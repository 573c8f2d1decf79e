//! Backstage entity files, read without I/O: YAML documents with the line each starts on, and what a
//! `Component` or `Location` entity means for Slipway.

use serde::Deserialize;
use serde_norway::Value;
use slipway_core::validate;

/// One YAML document of a file.
#[derive(Debug)]
pub struct Document {
    /// 1-based position in the file.
    pub index: usize,
    /// First line of the document's content (1-based), when the file's layout showed it.
    pub line: Option<usize>,
    /// The document's own text (without its `---` line), when the file could be split exactly.
    pub text: Option<String>,
    pub value: Value,
}

/// A YAML syntax error: the file does not parse, so nothing in it may be used.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "YAML syntax error at line {l}, column {c}: "),
            (Some(l), None) => write!(f, "YAML syntax error at line {l}: "),
            _ => write!(f, "YAML syntax error: "),
        }?;
        f.write_str(&self.message)
    }
}

/// Parses every document of a multi-document YAML text. All or nothing: one syntax error anywhere
/// rejects the whole text.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut values = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        match Value::deserialize(doc) {
            Ok(v) => values.push(v),
            Err(e) => {
                let at = e.location();
                // The message repeats the position; keep only what went wrong.
                let message = e.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_string();
                return Err(SyntaxError {
                    line: at.as_ref().map(|l| l.line()),
                    column: at.as_ref().map(|l| l.column()),
                    message,
                });
            }
        }
    }
    // Merge keys and tags are not resolved by Backstage either; the values are used as they are.
    let segments = split_documents(text);
    let exact = segments.len() == values.len();
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let segment = exact.then(|| &segments[i]);
            Document {
                index: i + 1,
                line: segment.map(|s| s.line),
                text: segment.and_then(|s| s.text.clone()),
                value,
            }
        })
        .collect())
}

#[derive(Debug, PartialEq, Eq)]
struct Segment {
    line: usize,
    text: Option<String>,
}

/// Splits a YAML stream at its `---` lines, the way the parser counts documents: text before the
/// first marker is a document only if it has content (or if there is no marker at all); every
/// marker starts one. A `---` at the start of a line cannot occur inside a scalar, so this is exact
/// for plain markers; a marker with something after it (`--- !tag`) keeps the line but not the text.
fn split_documents(text: &str) -> Vec<Segment> {
    struct Open {
        first: usize,
        content_line: Option<usize>,
        text: String,
        exact: bool,
        explicit: bool,
    }
    let mut done = Vec::new();
    let mut open = Open {
        first: 1,
        content_line: None,
        text: String::new(),
        exact: true,
        explicit: false,
    };
    let mut any_marker = false;
    let close = |o: Open, done: &mut Vec<Segment>, any_marker: bool| {
        if o.explicit || o.content_line.is_some() || !any_marker {
            done.push(Segment {
                line: o.content_line.unwrap_or(o.first),
                text: o.exact.then_some(o.text),
            });
        }
    };
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker {
            let rest = line[3..].trim();
            // Text before the first marker that has no content is a comment header, not a document.
            let previous = std::mem::replace(
                &mut open,
                Open {
                    first: n,
                    content_line: None,
                    text: String::new(),
                    exact: rest.is_empty() || rest.starts_with('#'),
                    explicit: true,
                },
            );
            if !(previous.explicit || previous.content_line.is_some()) {
                // A header of comments only: keep it with the next document's text.
                open.text = previous.text;
            } else {
                close(previous, &mut done, true);
            }
            any_marker = true;
            if !(rest.is_empty() || rest.starts_with('#')) {
                open.content_line = Some(n);
            }
            continue;
        }
        let trimmed = line.trim();
        if open.content_line.is_none()
            && !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && trimmed != "..."
        {
            open.content_line = Some(n);
        }
        open.text.push_str(raw);
    }
    close(open, &mut done, any_marker);
    done
}

/// What an entity is: `kind`, `metadata.namespace` (default `default`) and `metadata.name`, the key
/// Backstage identifies it by. `None` for a document that is not an entity (empty, a scalar, no kind).
pub fn entity_ref(v: &Value) -> Option<(String, String, String)> {
    let kind = v.get("kind")?.as_str()?;
    let meta = v.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some((
        kind.to_ascii_lowercase(),
        namespace.to_ascii_lowercase(),
        name.to_string(),
    ))
}

/// A problem with one field of an entity, named by its path in the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub const SOURCE_LOCATION: &str = "backstage.io/source-location";
pub const GITHUB_SLUG: &str = "github.com/project-slug";
pub const TEMPLATE_ANNOTATION: &str = "slipway.dev/template";
pub const GENERATOR_ANNOTATION: &str = "slipway.dev/generator";

/// Field paths of an entity for the fields of a registration, to name what to fix in the file when
/// Slipway's API refuses a value.
pub fn entity_field(api_field: &str, repo_from: &str) -> String {
    match api_field {
        "name" => "metadata.name".into(),
        "team" => "spec.owner".into(),
        "repo_url" => format!("metadata.annotations.{repo_from}"),
        "template" => format!("metadata.annotations.{TEMPLATE_ANNOTATION}"),
        "description" => "metadata.description".into(),
        other => other.into(),
    }
}

/// What registering a `Component` entity means: `POST /api/v1/services` with these fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub name: String,
    pub team: String,
    pub repo_url: String,
    /// The annotation the repository came from (to name it in messages).
    pub repo_from: &'static str,
    pub template: Option<String>,
    pub description: Option<String>,
}

/// What a document asks of an import.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A `Component`: a service to register.
    Service(ServiceEntry),
    /// A `Location`: files to read too.
    Location(Vec<String>),
    /// Nothing to register, with the reason.
    Skip(String),
    /// A `Component` or `Location` with fields that must be fixed first.
    Invalid(Vec<FieldProblem>),
}

/// Reads one document as a Backstage entity.
pub fn entry(v: &Value) -> Entry {
    if v.is_null() {
        return Entry::Skip("an empty document".into());
    }
    let Some(kind) = v.get("kind").and_then(Value::as_str) else {
        return Entry::Skip("not a Backstage entity (no kind)".into());
    };
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let backstage = api_version.starts_with("backstage.io/");
    match kind.to_ascii_lowercase().as_str() {
        "component" if backstage => component(v),
        "location" if backstage => location(v),
        "component" | "location" => Entry::Skip(format!(
            "a {kind} of apiVersion {api_version:?}, not a Backstage one (backstage.io/v1alpha1)"
        )),
        _ => Entry::Skip(format!("kind {kind}: only Components become services")),
    }
}

fn string_at<'a>(
    v: &'a Value,
    path: &[&str],
    problems: &mut Vec<FieldProblem>,
    required: bool,
) -> Option<&'a str> {
    let mut at = v;
    for key in path {
        match at.get(*key) {
            Some(next) => at = next,
            None => {
                if required {
                    problems.push(FieldProblem::new(path.join("."), "is missing"));
                }
                return None;
            }
        }
    }
    match at.as_str() {
        Some(s) => Some(s),
        None if at.is_null() && !required => None,
        None => {
            problems.push(FieldProblem::new(path.join("."), "must be a string"));
            None
        }
    }
}

fn annotation<'a>(v: &'a Value, key: &str, problems: &mut Vec<FieldProblem>) -> Option<&'a str> {
    let value = v.get("metadata")?.get("annotations")?.get(key)?;
    match value.as_str() {
        Some(s) => Some(s),
        None => {
            problems.push(FieldProblem::new(
                format!("metadata.annotations.{key}"),
                "must be a string",
            ));
            None
        }
    }
}

fn component(v: &Value) -> Entry {
    let mut problems = Vec::new();
    let kind_type = v
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str);
    if kind_type.is_some_and(|t| t.eq_ignore_ascii_case("library")) {
        return Entry::Skip("a library Component: libraries are not deployed".into());
    }
    let name = string_at(v, &["metadata", "name"], &mut problems, true);
    if let Some(n) = name {
        problems.extend(
            validate::dns_label("metadata.name", n)
                .err()
                .map(|e| FieldProblem::new(e.field, e.message)),
        );
    }
    let team = match string_at(v, &["spec", "owner"], &mut problems, true) {
        Some(owner) => match owner_team(owner) {
            Ok(t) => Some(t),
            Err(why) => {
                problems.push(FieldProblem::new("spec.owner", why));
                None
            }
        },
        None => None,
    };
    let source = annotation(v, SOURCE_LOCATION, &mut problems);
    let slug = annotation(v, GITHUB_SLUG, &mut problems);
    let (repo, repo_from) = match (source, slug) {
        (Some(s), _) => (repo_from_source_location(s), SOURCE_LOCATION),
        (None, Some(s)) => (repo_from_github_slug(s), GITHUB_SLUG),
        (None, None) => (
            Err(format!(
                "no repository: add the annotation {SOURCE_LOCATION} (e.g. \"url:https://github.com/org/payments\") or {GITHUB_SLUG} (e.g. \"org/payments\")"
            )),
            SOURCE_LOCATION,
        ),
    };
    let repo_field = format!("metadata.annotations.{repo_from}");
    let repo = match repo {
        Ok(url) => {
            // Whether a local path is accepted is the server's choice (--allow-local-repos).
            match validate::repo_source(&repo_field, &url, true) {
                Ok(()) => Some(url),
                Err(e) => {
                    problems.push(FieldProblem::new(
                        repo_field,
                        format!("gives {url:?}, which {}", e.message),
                    ));
                    None
                }
            }
        }
        Err(why) => {
            problems.push(FieldProblem::new(repo_field, why));
            None
        }
    };
    let template = annotation(v, TEMPLATE_ANNOTATION, &mut problems);
    if let Some(t) = template {
        problems.extend(
            validate::dns_label(&format!("metadata.annotations.{TEMPLATE_ANNOTATION}"), t)
                .err()
                .map(|e| FieldProblem::new(e.field, e.message)),
        );
    }
    // The description of an entity Slipway generated is Slipway's own sentence, not the team's.
    let generated = v
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(GENERATOR_ANNOTATION))
        .is_some();
    let description = match generated {
        true => None,
        false => string_at(v, &["metadata", "description"], &mut problems, false),
    };
    if let Some(d) = description {
        problems.extend(
            validate::free_text("metadata.description", d, 1000)
                .err()
                .map(|e| FieldProblem::new(e.field, e.message)),
        );
    }
    match (name, team, repo) {
        (Some(name), Some(team), Some(repo_url)) if problems.is_empty() => {
            Entry::Service(ServiceEntry {
                name: name.to_string(),
                team,
                repo_url,
                repo_from,
                template: template.map(str::to_string),
                description: description.map(str::to_string),
            })
        }
        _ => Entry::Invalid(problems),
    }
}

fn location(v: &Value) -> Entry {
    let mut problems = Vec::new();
    let mut targets = Vec::new();
    let spec = v.get("spec");
    if let Some(t) = spec.and_then(|s| s.get("target")) {
        match t.as_str() {
            Some(s) => targets.push(s.to_string()),
            None => problems.push(FieldProblem::new("spec.target", "must be a string")),
        }
    }
    if let Some(list) = spec.and_then(|s| s.get("targets")) {
        match list.as_sequence() {
            Some(items) => {
                for (i, t) in items.iter().enumerate() {
                    match t.as_str() {
                        Some(s) => targets.push(s.to_string()),
                        None => problems.push(FieldProblem::new(
                            format!("spec.targets[{i}]"),
                            "must be a string",
                        )),
                    }
                }
            }
            None => problems.push(FieldProblem::new("spec.targets", "must be a list")),
        }
    }
    let declared = spec.is_some_and(|s| s.get("target").is_some() || s.get("targets").is_some());
    if !declared {
        problems.push(FieldProblem::new(
            "spec.targets",
            "is missing: a Location lists the files it stands for (e.g. [./payments/catalog-info.yaml])",
        ));
    }
    if problems.is_empty() {
        Entry::Location(targets)
    } else {
        Entry::Invalid(problems)
    }
}

/// The team of a `spec.owner` reference: `team`, `group:team`, `group:default/team` or
/// `default/team`. Other kinds (a `user:`) and other namespaces cannot own a Slipway service.
pub fn owner_team(owner: &str) -> Result<String, String> {
    let (kind, rest) = match owner.split_once(':') {
        Some((k, r)) => (Some(k), r),
        None => (None, owner),
    };
    if let Some(k) = kind {
        if !k.eq_ignore_ascii_case("group") {
            return Err(format!(
                "{owner:?} is a {k}, but a Slipway service belongs to a team: set spec.owner to the owning group (e.g. \"group:payments-team\")"
            ));
        }
    }
    let team = match rest.split_once('/') {
        Some((ns, name)) if ns.eq_ignore_ascii_case("default") => name,
        Some((ns, _)) => {
            return Err(format!(
                "{owner:?} is a group in namespace {ns:?}; Slipway teams are in the default namespace: use \"group:<team>\""
            ))
        }
        None => rest,
    };
    validate::dns_label("spec.owner", team).map_err(|e| {
        format!(
            "names the group {team:?}, which as a team name {}",
            e.message
        )
    })?;
    Ok(team.to_string())
}

/// The repository of a `backstage.io/source-location` annotation: `url:<repository>` with
/// Backstage's `/tree/<ref>/…` or `/blob/<ref>/…` (GitHub) or `/-/tree/<ref>/…` (GitLab) cut off,
/// and no trailing `/`.
pub fn repo_from_source_location(value: &str) -> Result<String, String> {
    let Some(url) = value.strip_prefix("url:") else {
        let kind = value.split_once(':').map_or(value, |(k, _)| k);
        return Err(format!(
            "is {value:?}: only a \"url:\" source location names a repository (found {kind:?})"
        ));
    };
    let url = url.trim();
    let (head, path) = match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((host, path)) => (format!("{scheme}://{host}"), path),
            None => (url.to_string(), ""),
        },
        None => (String::new(), url),
    };
    let segments: Vec<&str> = path.split('/').collect();
    let cut = segments
        .windows(2)
        .position(|w| w[0] == "-" && matches!(w[1], "tree" | "blob"))
        .or_else(|| {
            segments
                .iter()
                .enumerate()
                .skip(2)
                .find(|(_, s)| matches!(**s, "tree" | "blob"))
                .map(|(i, _)| i)
        });
    let kept = match cut {
        Some(i) => &segments[..i],
        None => &segments[..],
    };
    let mut out = head;
    let joined = kept.join("/");
    if !out.is_empty() {
        out.push('/');
    }
    out.push_str(&joined);
    let out = out.trim_end_matches('/').to_string();
    if out.is_empty() {
        return Err("is \"url:\" with no URL after it".into());
    }
    Ok(out)
}

/// `github.com/project-slug: org/repo` → `https://github.com/org/repo`.
pub fn repo_from_github_slug(slug: &str) -> Result<String, String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match slug.split_once('/') {
        Some((owner, repo)) if ok_part(owner) && ok_part(repo) => {
            Ok(format!("https://github.com/{owner}/{repo}"))
        }
        _ => Err(format!(
            "is {slug:?}; a GitHub project slug is <owner>/<repository> (e.g. \"org/payments\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn documents_know_their_lines_and_text() {
        let text = "# header\n---\nkind: A\n---\n\n# note\nkind: B\n---\nkind: C\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(
            docs.iter().map(|d| d.line).collect::<Vec<_>>(),
            [Some(3), Some(7), Some(9)]
        );
        assert_eq!(docs[0].text.as_deref(), Some("# header\nkind: A\n"));
        assert_eq!(docs[1].text.as_deref(), Some("\n# note\nkind: B\n"));
        assert_eq!(docs[2].value.get("kind").unwrap().as_str(), Some("C"));

        let docs = parse_documents("kind: A\n---\nkind: B\n---\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[2].value.is_null());
        assert_eq!(docs[1].line, Some(3));

        let docs = parse_documents("kind: A\n...\n---\nkind: B\n").unwrap();
        assert_eq!(
            docs.iter().map(|d| d.line).collect::<Vec<_>>(),
            [Some(1), Some(4)]
        );
        let docs = parse_documents("").unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].value.is_null());
        // A marker with content after it still gives the line, not the text.
        let docs = parse_documents("a: 1\n--- {b: 2}\n").unwrap();
        assert_eq!(docs[1].line, Some(2));
        assert_eq!(docs[1].text, None);
    }

    #[test]
    fn a_syntax_error_anywhere_names_its_line() {
        let e = parse_documents("kind: A\n---\nkind: B\n  name: x\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            e.to_string().starts_with("YAML syntax error at line 4"),
            "{e}"
        );
        let e = parse_documents("a: [1, 2\n").unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn owners() {
        for ok in [
            "payments",
            "group:payments",
            "Group:payments",
            "group:default/payments",
            "default/payments",
        ] {
            assert_eq!(owner_team(ok).unwrap(), "payments", "{ok}");
        }
        let e = owner_team("user:jdoe").unwrap_err();
        assert!(e.contains("is a user") && e.contains("group:"), "{e}");
        let e = owner_team("group:infra/payments").unwrap_err();
        assert!(e.contains("namespace \"infra\""), "{e}");
        let e = owner_team("group:Payments_Team").unwrap_err();
        assert!(e.contains("uppercase"), "{e}");
    }

    #[test]
    fn source_locations() {
        let ok = |s: &str| repo_from_source_location(s).unwrap();
        assert_eq!(ok("url:https://github.com/o/r"), "https://github.com/o/r");
        assert_eq!(
            ok("url:https://github.com/o/r/tree/main/"),
            "https://github.com/o/r"
        );
        assert_eq!(
            ok("url:https://github.com/o/r/blob/main/catalog-info.yaml"),
            "https://github.com/o/r"
        );
        assert_eq!(
            ok("url:https://gitlab.com/g/sub/proj/-/tree/main/"),
            "https://gitlab.com/g/sub/proj"
        );
        assert_eq!(
            ok("url:https://gitlab.example.com/g/tree/-/blob/v1/x"),
            "https://gitlab.example.com/g/tree"
        );
        assert_eq!(ok("url:https://github.com/o/r/"), "https://github.com/o/r");
        // An owner named "tree" is not a path into the repository.
        assert_eq!(
            ok("url:https://github.com/tree/blob/tree/main"),
            "https://github.com/tree/blob"
        );
        assert_eq!(ok("url:/srv/git/payments"), "/srv/git/payments");
        assert!(repo_from_source_location("dir:./src")
            .unwrap_err()
            .contains("\"dir\""));
        assert!(repo_from_source_location("url:").is_err());
        assert_eq!(
            repo_from_github_slug("org/payments").unwrap(),
            "https://github.com/org/payments"
        );
        for bad in ["org", "org/", "/x", "org/x/y", "../x", "o/r?x"] {
            assert!(repo_from_github_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_component_becomes_a_registration() {
        let v = doc(r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  description: Takes money
  annotations:
    backstage.io/source-location: url:https://github.com/org/payments/tree/main/
    github.com/project-slug: other/ignored
    slipway.dev/template: python-api
spec:
  type: service
  owner: group:default/core
"#);
        assert_eq!(
            entry(&v),
            Entry::Service(ServiceEntry {
                name: "payments".into(),
                team: "core".into(),
                repo_url: "https://github.com/org/payments".into(),
                repo_from: SOURCE_LOCATION,
                template: Some("python-api".into()),
                description: Some("Takes money".into()),
            })
        );
        let v = doc(r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ledger, annotations: {github.com/project-slug: org/ledger}}
spec: {owner: finance}
"#);
        let Entry::Service(s) = entry(&v) else {
            panic!()
        };
        assert_eq!(s.description, None);
        assert_eq!(s.repo_url, "https://github.com/org/ledger");
        assert_eq!(s.repo_from, GITHUB_SLUG);
        assert_eq!(s.template, None);
    }

    #[test]
    fn a_generated_description_is_not_imported() {
        let v = doc(r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  description: Service payments (Slipway template default)
  annotations:
    backstage.io/source-location: "url:https://github.com/org/payments"
    slipway.dev/generator: slipway-golden-paths/default@3
spec: {owner: "group:core"}
"#);
        let Entry::Service(s) = entry(&v) else {
            panic!()
        };
        assert_eq!(s.description, None);
    }

    #[test]
    fn every_problem_of_a_component_is_named_by_its_field() {
        let v = doc(r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: Payments_API
  annotations:
    slipway.dev/template: 7
spec:
  owner: user:jdoe
"#);
        let Entry::Invalid(p) = entry(&v) else {
            panic!()
        };
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.owner",
                "metadata.annotations.backstage.io/source-location",
                "metadata.annotations.slipway.dev/template",
            ]
        );
        assert!(p[1].message.contains("user"), "{p:?}");
        assert!(p[2].message.contains("no repository"), "{p:?}");

        let v = doc("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {annotations: {backstage.io/source-location: 'url:https://user:pw@github.com/o/r'}}\n");
        let Entry::Invalid(p) = entry(&v) else {
            panic!()
        };
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.owner",
                "metadata.annotations.backstage.io/source-location"
            ]
        );
    }

    #[test]
    fn other_kinds_and_locations() {
        let skip = |t: &str| matches!(entry(&doc(t)), Entry::Skip(_));
        assert!(skip(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: core}\n"
        ));
        assert!(skip(
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: pay}\n"
        ));
        assert!(skip("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: lib}\nspec: {type: library, owner: core}\n"));
        assert!(skip("kind: Component\napiVersion: example.com/v1\n"));
        assert!(skip("just: yaml\n"));
        assert_eq!(
            entry(&doc("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\nspec: {target: ./a.yaml, targets: [./b.yaml, 'https://x/c.yaml']}\n")),
            Entry::Location(vec!["./a.yaml".into(), "./b.yaml".into(), "https://x/c.yaml".into()])
        );
        assert!(matches!(
            entry(&doc("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\nspec: {targets: [1]}\n")),
            Entry::Invalid(p) if p[0].field == "spec.targets[0]"
        ));
        assert_eq!(
            entity_ref(&doc(
                "kind: System\nmetadata: {name: core, namespace: Default}\n"
            )),
            Some(("system".into(), "default".into(), "core".into()))
        );
    }
}
