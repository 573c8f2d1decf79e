//! A small, dependency-free highlighter for the generated files the artifact viewer shows
//! (HCL, YAML, JSON, Groovy, Dockerfile, shell, Python, JavaScript/TypeScript, TOML): comments,
//! strings, keys and keywords. It only splits lines into classed pieces; the template escapes them.

/// The token classes (`tok-<class>` in the stylesheet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Comment,
    String,
    Key,
    Keyword,
    Number,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::String => "string",
            Self::Key => "key",
            Self::Keyword => "keyword",
            Self::Number => "number",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Hcl,
    Yaml,
    Json,
    Groovy,
    Dockerfile,
    Hash,
    Slash,
    Plain,
}

fn lang_of(path: &str) -> Lang {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "tf" | "hcl" => Lang::Hcl,
        "yaml" | "yml" => Lang::Yaml,
        "json" => Lang::Json,
        "Jenkinsfile" | "groovy" => Lang::Groovy,
        "py" | "sh" | "toml" | "dockerignore" => Lang::Hash,
        "js" | "ts" | "mjs" | "go" | "rs" => Lang::Slash,
        _ if name == "Dockerfile" || name.starts_with("Dockerfile.") => Lang::Dockerfile,
        _ if name == "Jenkinsfile" || name.ends_with(".Jenkinsfile") => Lang::Groovy,
        _ => Lang::Plain,
    }
}

const HCL_WORDS: &[&str] = &[
    "resource",
    "variable",
    "module",
    "output",
    "provider",
    "data",
    "locals",
    "terraform",
    "true",
    "false",
    "null",
    "for",
    "in",
    "if",
];
const GROOVY_WORDS: &[&str] = &[
    "pipeline",
    "agent",
    "stages",
    "stage",
    "steps",
    "environment",
    "options",
    "post",
    "always",
    "success",
    "failure",
    "when",
    "def",
    "sh",
    "script",
    "true",
    "false",
];
const DOCKER_WORDS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "WORKDIR",
    "USER",
    "ENV",
    "ARG",
    "EXPOSE",
    "CMD",
    "ENTRYPOINT",
    "HEALTHCHECK",
    "LABEL",
    "AS",
    "VOLUME",
];
const SLASH_WORDS: &[&str] = &[
    "const", "let", "function", "return", "import", "export", "from", "if", "else", "for", "func",
    "package", "fn", "pub", "use", "struct", "impl", "async", "await", "true", "false", "null",
];
const HASH_WORDS: &[&str] = &[
    "def", "class", "import", "from", "return", "if", "else", "for", "in", "True", "False", "None",
];

/// Splits one line into `(class, text)` pieces (`None`: plain text).
pub fn line(path: &str, text: &str) -> Vec<(Option<Class>, String)> {
    let lang = lang_of(path);
    if lang == Lang::Plain {
        return vec![(None, text.to_string())];
    }
    let (comment, words): (&[&str], &[&str]) = match lang {
        Lang::Hcl => (&["#", "//"], HCL_WORDS),
        Lang::Yaml => (&["#"], &["true", "false", "null"]),
        Lang::Json => (&[], &["true", "false", "null"]),
        Lang::Groovy => (&["//"], GROOVY_WORDS),
        Lang::Dockerfile => (&["#"], DOCKER_WORDS),
        Lang::Hash => (&["#"], HASH_WORDS),
        Lang::Slash => (&["//"], SLASH_WORDS),
        Lang::Plain => (&[], &[]),
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(Option<Class>, String)> = Vec::new();
    let push = |out: &mut Vec<(Option<Class>, String)>, class: Option<Class>, s: String| {
        if s.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((c, t)) if *c == class && class.is_none() => t.push_str(&s),
            _ => out.push((class, s)),
        }
    };
    // A YAML key (`key:` at the start of the line, after indentation and `- `).
    let mut i = 0;
    if lang == Lang::Yaml {
        let start = chars
            .iter()
            .position(|c| !c.is_whitespace() && *c != '-')
            .unwrap_or(chars.len());
        if let Some(colon) = chars[start..].iter().position(|c| *c == ':') {
            let key: String = chars[start..start + colon].iter().collect();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-./".contains(c))
            {
                push(&mut out, None, chars[..start].iter().collect());
                push(&mut out, Some(Class::Key), key);
                i = start + colon;
            }
        }
    }
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        if let Some(c) = comment.iter().find(|c| rest.starts_with(**c)) {
            let _ = c;
            push(&mut out, Some(Class::Comment), rest);
            break;
        }
        let ch = chars[i];
        if ch == '"' || ch == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != ch {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            push(
                &mut out,
                Some(Class::String),
                chars[i..end].iter().collect(),
            );
            i = end;
            continue;
        }
        if ch.is_alphabetic() || ch == '_' {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '-')
            {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            let next_nonspace = chars[j..].iter().find(|c| !c.is_whitespace());
            let class = if words.contains(&word.as_str()) {
                Some(Class::Keyword)
            } else if matches!(lang, Lang::Hcl | Lang::Hash) && next_nonspace == Some(&'=') {
                Some(Class::Key)
            } else {
                None
            };
            push(&mut out, class, word);
            i = j;
            continue;
        }
        if ch.is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            push(&mut out, Some(Class::Number), chars[i..j].iter().collect());
            i = j;
            continue;
        }
        push(&mut out, None, ch.to_string());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(path: &str, text: &str) -> Vec<(Option<&'static str>, String)> {
        line(path, text)
            .into_iter()
            .map(|(c, t)| (c.map(Class::as_str), t))
            .collect()
    }

    #[test]
    fn hcl_yaml_and_dockerfile() {
        let h = classes(
            "main.tf",
            r#"resource "aws_ecr_repository" "this" { # repo"#,
        );
        assert_eq!(h[0], (Some("keyword"), "resource".into()));
        assert!(h.contains(&(Some("string"), "\"aws_ecr_repository\"".into())));
        assert_eq!(h.last().unwrap(), &(Some("comment"), "# repo".into()));
        let y = classes("x.yaml", "  name: <script>alert(1)</script>");
        assert_eq!(y[1], (Some("key"), "name".into()));
        let joined: String = y.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            joined, "  name: <script>alert(1)</script>",
            "nothing is lost or added"
        );
        let d = classes("Dockerfile", "FROM python:3.12-slim AS build");
        assert_eq!(d[0], (Some("keyword"), "FROM".into()));
        assert_eq!(classes("README", "plain"), [(None, "plain".to_string())]);
    }
}
