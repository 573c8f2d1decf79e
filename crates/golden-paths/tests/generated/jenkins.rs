//! The Jenkinsfile: a declarative pipeline with the golden path's stages, secrets only
//! through Jenkins credentials and never through Groovy interpolation, and clean under
//! npm-groovy-lint's Jenkinsfile rules.

use crate::common::{checker, describe, file, run, sample};
use std::process::Command;

const JENKINSFILE: &str = "app/templates/jenkins/generated/payments.Jenkinsfile";
const GROOVY_LINT_HINT: &str =
    "npm install -g npm-groovy-lint@16.2.0 (needs Java 17+; versions 17 and later need Node 22)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Word(String),
    /// A single-quoted string (`'…'` or `'''…'''`), unescaped: Groovy never interpolates it.
    Literal(String),
    /// A double-quoted string: a GString, which Groovy interpolates.
    GString(String),
    Punct(char),
}

/// Splits Groovy source into the tokens the structural checks need, skipping comments.
pub fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let starts = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if starts(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if starts(i, "/*") {
            let end = (i + 2..chars.len())
                .find(|&j| starts(j, "*/"))
                .expect("unterminated block comment");
            i = end + 2;
        } else if c == '\'' || c == '"' {
            let triple: String = std::iter::repeat_n(c, 3).collect();
            let delimiter = if starts(i, &triple) {
                triple
            } else {
                c.to_string()
            };
            i += delimiter.len();
            let mut value = String::new();
            loop {
                assert!(i < chars.len(), "unterminated string literal");
                if starts(i, &delimiter) {
                    i += delimiter.len();
                    break;
                }
                match chars[i] {
                    '\\' => {
                        let escaped = *chars.get(i + 1).expect("dangling backslash");
                        value.push(match escaped {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            '\\' | '\'' | '"' | '$' => escaped,
                            other => panic!("unknown escape \\{other}"),
                        });
                        i += 2;
                    }
                    '\n' if delimiter.len() == 1 => panic!("line break in a one-line string"),
                    other => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push(if c == '\'' {
                Token::Literal(value)
            } else {
                Token::GString(value)
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// A `{ … }` block of the pipeline: `stages { … }`, `stage('Build') { … }`, `withCredentials(…) { … }`.
#[derive(Debug, Default)]
pub struct Section {
    pub name: String,
    /// The first single-quoted argument, as in `stage('Build')`.
    pub argument: Option<String>,
    pub children: Vec<Section>,
}

impl Section {
    pub fn child(&self, name: &str) -> &Section {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{} has no {name} section", self.name))
    }

    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Builds the block tree, checking that every bracket is balanced (strings and comments do
/// not count, since the tokenizer consumed them).
pub fn sections(tokens: &[Token]) -> Section {
    let mut stack = vec![Section::default()];
    let mut brackets = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Punct(c) = token else { continue };
        match c {
            '(' | '[' => brackets.push(*c),
            ')' | ']' => {
                let opening = if *c == ')' { '(' } else { '[' };
                assert_eq!(brackets.pop(), Some(opening), "unbalanced {c}");
            }
            '{' => {
                brackets.push('{');
                stack.push(head(&tokens[..i]));
            }
            '}' => {
                assert_eq!(brackets.pop(), Some('{'), "unbalanced }}");
                let done = stack.pop().expect("a section is open");
                stack.last_mut().expect("unbalanced }").children.push(done);
            }
            _ => {}
        }
    }
    assert!(brackets.is_empty(), "unclosed brackets: {brackets:?}");
    assert_eq!(stack.len(), 1);
    stack.pop().unwrap_or_default()
}

/// The name (and first literal argument) of the block that opens after `before`.
fn head(before: &[Token]) -> Section {
    let mut end = before.len();
    let mut argument = None;
    if before.last() == Some(&Token::Punct(')')) {
        let mut depth = 0;
        for j in (0..before.len()).rev() {
            match &before[j] {
                Token::Punct(')') => depth += 1,
                Token::Punct('(') => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(Token::Literal(value)) = before.get(end + 1) {
            argument = Some(value.clone());
        }
    }
    let name = match end.checked_sub(1).map(|j| &before[j]) {
        Some(Token::Word(word)) => word.clone(),
        other => panic!("a block opens after {other:?}, not after a name"),
    };
    Section {
        name,
        argument,
        children: Vec::new(),
    }
}

/// The `KEY = 'value'` entries of the pipeline's `environment` block.
pub fn environment_entries(tokens: &[Token]) -> Vec<(String, String)> {
    let start = tokens
        .windows(2)
        .position(|w| w == [Token::Word("environment".into()), Token::Punct('{')])
        .expect("an environment block");
    let mut entries = Vec::new();
    let mut i = start + 2;
    while tokens[i] != Token::Punct('}') {
        match &tokens[i..i + 3] {
            [Token::Word(key), Token::Punct('='), Token::Literal(value)] => {
                entries.push((key.clone(), value.clone()));
                i += 3;
            }
            other => panic!("environment entries must be KEY = 'literal', found {other:?}"),
        }
    }
    entries
}

pub fn check_structure(source: &str) -> Vec<Token> {
    let tokens = tokenize(source);
    let root = sections(&tokens);
    assert_eq!(
        root.names(),
        ["pipeline"],
        "one declarative pipeline and nothing else"
    );
    let pipeline = root.child("pipeline");
    assert_eq!(
        pipeline.names(),
        [
            "agent",
            "parameters",
            "options",
            "environment",
            "stages",
            "post"
        ]
    );
    let stages = pipeline.child("stages");
    assert!(stages.children.iter().all(|s| s.name == "stage"));
    let names: Vec<_> = stages
        .children
        .iter()
        .map(|s| s.argument.as_deref().expect("stage name"))
        .collect();
    assert_eq!(names, ["Build", "Test", "Docker build & push", "Deploy"]);
    for stage in &stages.children {
        stage.child("steps");
    }
    tokens
}

/// Secret handling: no GString anywhere (so nothing is interpolated by Groovy), every
/// credential referenced by ID through withCredentials or the SCM step, bound secrets read
/// only by the shell, and no literal that looks like a secret.
pub fn check_secrets(tokens: &[Token]) {
    let gstrings: Vec<_> = tokens
        .iter()
        .filter(|t| matches!(t, Token::GString(_)))
        .collect();
    assert!(
        gstrings.is_empty(),
        "double-quoted Groovy strings: {gstrings:?}"
    );

    let environment = environment_entries(tokens);
    let credential_ids: Vec<_> = environment
        .iter()
        .filter(|(k, _)| k.ends_with("_CREDENTIALS_ID"))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(credential_ids.len(), 3);
    for (key, value) in &environment {
        let upper = key.to_ascii_uppercase();
        assert!(
            !["PASSWORD", "SECRET", "TOKEN", "PASSWD", "PRIVATE"]
                .iter()
                .any(|word| upper.contains(word)),
            "environment entry {key} looks like a secret; bind it with withCredentials"
        );
        assert!(
            !looks_like_secret(value),
            "{key} = {value:?} looks like a secret"
        );
    }

    // Every `credentialsId:` is given one of the environment's credential IDs.
    let mut uses = 0;
    for (i, token) in tokens.iter().enumerate() {
        if token == &Token::Word("credentialsId".into()) {
            uses += 1;
            match &tokens[i + 1..i + 5] {
                [Token::Punct(':'), Token::Word(env), Token::Punct('.'), Token::Word(id)]
                    if env == "env" && credential_ids.contains(&id.as_str()) => {}
                other => panic!("credentialsId must be env.<X>_CREDENTIALS_ID, found {other:?}"),
            }
        }
    }
    assert_eq!(uses, 3, "the git, AWS and kubeconfig credentials");
    let bindings = tokens
        .iter()
        .filter(|t| **t == Token::Word("withCredentials".into()))
        .count();
    assert_eq!(
        bindings, 2,
        "the AWS keys and the kubeconfig are bound with withCredentials"
    );

    // Bound secrets are read by the shell only, never by Groovy code.
    for secret in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KUBECONFIG"] {
        assert!(
            !tokens.contains(&Token::Word(secret.into())),
            "{secret} is used as a Groovy expression"
        );
    }
    for token in tokens {
        if let Token::Literal(value) = token {
            assert!(
                !looks_like_secret(value),
                "literal looks like a secret: {value:?}"
            );
            assert!(
                !value.contains(" -p ") && !value.contains("--password "),
                "a password on a command line: {value:?}"
            );
        }
    }
}

fn looks_like_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let assignment = [
        "password=",
        "passwd=",
        "secret=",
        "token=",
        "apikey=",
        "api_key=",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let key_material = [
        "-----begin",
        "akia",
        "asia",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "glpat-",
    ]
    .iter()
    .any(|p| lower.contains(p));
    // A long run of base64 or hex characters is what keys and tokens look like.
    let long_blob = value
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '='))
        .any(|run| run.len() >= 32 && run.chars().any(|c| c.is_ascii_digit()));
    assignment || key_material || long_blob
}

#[test]
fn the_pipeline_has_the_golden_path_stages_in_order() {
    check_structure(file(&sample(), JENKINSFILE));
}

#[test]
fn credentials_come_only_from_jenkins_credentials() {
    check_secrets(&tokenize(file(&sample(), JENKINSFILE)));
}

#[test]
fn the_structural_checks_can_fail() {
    let good = file(&sample(), JENKINSFILE).to_string();
    let broken = [
        good.replacen("stage('Test')", "stage('Tests')", 1),
        good.replacen(
            "    post {\n        cleanup",
            "    post {{\n        cleanup",
            1,
        ),
        good.replacen("sh 'make build'", "sh \"make build ${params.GIT_REF}\"", 1),
        good.replacen(
            "credentialsId: env.GIT_CREDENTIALS_ID",
            "credentialsId: 'github-token'",
            1,
        ),
        good.replacen(
            "TEAM = 'core-platform'",
            "TEAM = 'core-platform'\n        API_TOKEN = 'abc'",
            1,
        ),
        good.replacen(
            "set -eu",
            "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY1",
            1,
        ),
        good.replacen("dir('platform') {", "dir('platform') {{", 1),
    ];
    for (i, source) in broken.iter().enumerate() {
        assert_ne!(source, &good, "variant {i} did not change the file");
        let caught = std::panic::catch_unwind(|| check_secrets(&check_structure(source)));
        assert!(caught.is_err(), "variant {i} passed the checks:\n{source}");
    }
}

#[test]
fn brackets_in_strings_and_comments_do_not_count() {
    let good = file(&sample(), JENKINSFILE).to_string();
    let variant = good
        .replacen("sh 'make build'", "sh 'make build }])'", 1)
        .replacen("stage('Deploy') {", "stage('Deploy') { // }", 1);
    assert_ne!(variant, good);
    check_secrets(&check_structure(&variant));
}

#[test]
fn tokenizer_unescapes_single_quoted_strings() {
    assert_eq!(
        tokenize(r"x = 'it\'s ${a} \\ \n' // 'not a string'"),
        [
            Token::Word("x".into()),
            Token::Punct('='),
            Token::Literal("it's ${a} \\ \n".into()),
        ]
    );
    assert_eq!(
        tokenize("'''a\n'b'\n'''"),
        [Token::Literal("a\n'b'\n".into())]
    );
}

/// Runs npm-groovy-lint with its Jenkinsfile rules; `None` when it is not installed.
pub fn groovy_lint(source: &str, fail_on: &str) -> Option<std::process::Output> {
    let tool = checker("npm-groovy-lint", GROOVY_LINT_HINT, &[])?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".groovylintrc.json"),
        r#"{ "extends": "recommended-jenkinsfile" }"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("Jenkinsfile"), source).unwrap();
    Some(run(Command::new(tool)
        .current_dir(dir.path())
        // No background CodeNarc server: the test leaves nothing running.
        .args(["--noserver", "--output", "txt", "--failon", fail_on])
        .arg("--config")
        .arg(dir.path())
        .arg("Jenkinsfile")))
}

#[test]
fn npm_groovy_lint_accepts_the_pipeline() {
    let good = file(&sample(), JENKINSFILE).to_string();
    // The linter must be able to fail: it rejects a file that does not compile.
    let broken = good.replacen("    post {", "    post {{", 1);
    let Some(control) = groovy_lint(&broken, "error") else {
        return;
    };
    assert!(
        !control.status.success(),
        "npm-groovy-lint accepted a Jenkinsfile with unbalanced braces:\n{}",
        describe(&control)
    );
    let output = groovy_lint(&good, "warning").unwrap();
    assert!(output.status.success(), "{}", describe(&output));
}
