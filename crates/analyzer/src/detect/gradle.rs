//! Reading Gradle build scripts (Groovy and Kotlin DSL) just far enough: `include` in settings,
//! the plugins a project applies, its version and the archive name. Line-based and tolerant: a
//! build script is a program, so anything unusual is left undetected rather than guessed.

/// The text with `//` and `/* */` comments blanked out (strings kept; line numbers unchanged).
pub(crate) fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let mut block = false;
    while let Some(c) = chars.next() {
        if block {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block = false;
            } else if c == '\n' {
                out.push('\n');
            }
            continue;
        }
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == q || c == '\n' {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                block = true;
            }
            _ => out.push(c),
        }
    }
    out
}

/// The quoted strings (single or double quotes) in `s`.
fn strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['"', '\'']) {
        let q = rest[i..].chars().next().unwrap_or('"');
        let after = &rest[i + 1..];
        let Some(end) = after.find(q) else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// One `include`d project: its Gradle path (`:services:api`), directory and 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Included {
    pub path: String,
    pub dir: String,
    pub line: u32,
}

impl Included {
    /// The project's name: the last segment of its path (what the jar is named after).
    pub fn name(&self) -> &str {
        self.path.rsplit(':').next().unwrap_or(&self.path)
    }
}

/// A project name Gradle accepts and that is safe as a path segment.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains([
            '/', '\\', '<', '>', '"', '\'', '?', '*', '|', '$', '`', '\n',
        ])
}

/// `include 'a', ':b:c'` (Groovy, also over several lines ending in `,`) and `include("a", "b")`
/// (Kotlin, also multi-line); `includeBuild` / `includeFlat` are not projects of this build.
/// `project(':a').projectDir = file('dir')` moves a project's directory.
pub(crate) fn includes(settings: &str) -> Vec<Included> {
    let text = strip_comments(settings);
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Included> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let Some(rest) = t.strip_prefix("include") else {
            i += 1;
            continue;
        };
        if !rest.starts_with([' ', '(', '\t']) {
            i += 1;
            continue;
        }
        let start = i;
        // The statement: to the closing parenthesis, or while lines end with a comma.
        let mut stmt = rest.to_owned();
        let parens = rest.trim_start().starts_with('(');
        while i + 1 < lines.len()
            && ((parens && stmt.matches('(').count() > stmt.matches(')').count())
                || (!parens && stmt.trim_end().ends_with(',')))
        {
            i += 1;
            stmt.push('\n');
            stmt.push_str(lines[i]);
        }
        for s in strings(&stmt) {
            let path = format!(":{}", s.trim_start_matches(':'));
            let segments: Vec<&str> = path[1..].split(':').collect();
            if segments.iter().all(|s| valid_segment(s)) && !out.iter().any(|o| o.path == path) {
                out.push(Included {
                    dir: segments.join("/"),
                    path,
                    line: u32::try_from(start + 1).unwrap_or(u32::MAX),
                });
            }
        }
        i += 1;
    }
    for l in &lines {
        let t = l.trim();
        if let (Some(p), true) = (t.strip_prefix("project("), t.contains("projectDir")) {
            let args = strings(p);
            if let [path, dir, ..] = args.as_slice() {
                let path = format!(":{}", path.trim_start_matches(':'));
                let ok = dir.split('/').all(valid_segment);
                if let (Some(inc), true) = (out.iter_mut().find(|o| o.path == path), ok) {
                    inc.dir = dir.trim_end_matches('/').to_owned();
                }
            }
        }
    }
    out
}

/// `rootProject.name = 'x'` in a settings file.
pub(crate) fn root_project_name(settings: &str) -> Option<(String, u32)> {
    let text = strip_comments(settings);
    text.lines().enumerate().find_map(|(i, l)| {
        let rest = l.trim().strip_prefix("rootProject.name")?;
        let v = strings(rest).into_iter().next()?;
        valid_segment(&v).then(|| (v, u32::try_from(i + 1).unwrap_or(u32::MAX)))
    })
}

/// What a project builds into something runnable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runnable {
    /// `org.springframework.boot` applied: `bootJar` writes an executable jar.
    SpringBoot,
    /// `application` (or a plugin applying it): `installDist` writes a start script.
    Application,
}

/// Plugins applied (not declared with `apply false`) and the line of the first that makes the
/// project runnable; Spring Boot wins over `application`.
pub(crate) fn runnable(build: &str) -> Option<(Runnable, u32)> {
    let text = strip_comments(build);
    let mut found: Option<(Runnable, u32)> = None;
    let mut in_plugins = false;
    let mut depth = 0i32;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if t.starts_with("plugins") && t.contains('{') {
            in_plugins = true;
            depth = 0;
        }
        // `plugins { id 'a' }` on one line, `apply plugin: 'a'; apply plugin: 'b'`.
        for seg in t.split(['{', ';']) {
            let seg = seg.trim().trim_end_matches('}').trim();
            let applied = !seg.contains("apply false") && !seg.contains("apply(false)");
            let ids = strings(seg);
            let plugin_ref = seg.starts_with("id")
                || seg.starts_with("apply")
                || seg.starts_with("alias")
                || seg.contains("apply plugin");
            let boot = plugin_ref
                && (ids.iter().any(|s| s == "org.springframework.boot")
                    || (seg.starts_with("alias")
                        && ["spring.boot", "springBoot", "spring-boot"]
                            .iter()
                            .any(|n| seg.contains(n))));
            let app = (plugin_ref
                && ids.iter().any(|s| {
                    s == "application" || s == "io.micronaut.application" || s == "io.ktor.plugin"
                }))
                || (in_plugins && (seg == "application" || seg.starts_with("application ")));
            if applied && boot {
                return Some((Runnable::SpringBoot, line));
            }
            if applied && app && found.is_none() {
                found = Some((Runnable::Application, line));
            }
        }
        if in_plugins {
            depth += i32::try_from(t.matches('{').count()).unwrap_or(0);
            depth -= i32::try_from(t.matches('}').count()).unwrap_or(0);
            if depth <= 0 && t.contains('}') {
                in_plugins = false;
            }
        }
    }
    found
}

/// The first string assigned to one of `keys` (`key = "v"`, `key "v"`, `key.set("v")`,
/// `key("v")`), and its line. `keys` are matched as whole words.
pub(crate) fn assigned(build: &str, keys: &[&str]) -> Option<(String, u32)> {
    let text = strip_comments(build);
    text.lines().enumerate().find_map(|(i, l)| {
        // At the start of the line or of a block on it: `tasks.bootJar { archiveFileName = … }`.
        let rest = std::iter::once(l)
            .chain(l.match_indices('{').map(|(at, _)| &l[at + 1..]))
            .find_map(|t| {
                let t = t.trim_start();
                keys.iter().find_map(|k| {
                    let r = t.strip_prefix(k)?;
                    r.trim_start()
                        .starts_with(['=', '(', '"', '\'', '.'])
                        .then_some(r)
                })
            })?;
        let rest = rest.trim_start();
        let rest = rest.strip_prefix(".set").unwrap_or(rest);
        if rest.starts_with('.') {
            return None;
        }
        let v = strings(rest).into_iter().next()?;
        (!v.is_empty() && !v.contains('$')).then(|| (v, u32::try_from(i + 1).unwrap_or(u32::MAX)))
    })
}

/// `version` set for every project of the build in the root script's `allprojects { }` or
/// `subprojects { }` block.
pub(crate) fn shared_version(root_build: &str) -> Option<(String, u32)> {
    let text = strip_comments(root_build);
    let mut depth = 0i32;
    let mut block_depth: Option<i32> = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if block_depth.is_none() && (t.starts_with("allprojects") || t.starts_with("subprojects")) {
            block_depth = Some(depth);
        } else if block_depth.is_some_and(|d| depth == d + 1) {
            if let Some((v, _)) = assigned(t, &["version"]) {
                return Some((v, u32::try_from(i + 1).unwrap_or(u32::MAX)));
            }
        }
        depth += i32::try_from(t.matches('{').count()).unwrap_or(0);
        depth -= i32::try_from(t.matches('}').count()).unwrap_or(0);
        if block_depth.is_some_and(|d| depth <= d && t.contains('}')) {
            block_depth = None;
        }
    }
    None
}

/// `version=1.2.3` in gradle.properties (a project property every project of the build sees).
pub(crate) fn properties_version(props: &str) -> Option<(String, u32)> {
    props.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim();
        if t.starts_with('#') || t.starts_with('!') {
            return None;
        }
        let (k, v) = t.split_once(['=', ':'])?;
        let v = v.trim();
        (k.trim() == "version" && !v.is_empty() && !v.contains('$'))
            .then(|| (v.to_owned(), u32::try_from(i + 1).unwrap_or(u32::MAX)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groovy_includes_with_comments_and_continuations() {
        let s = "rootProject.name = 'shop' // the name\n/* include 'old'\n   include 'older' */\ninclude 'api', ':lib:core',\n        'worker'\ninclude(\"web\")\nincludeBuild 'plugins'\nincludeFlat 'sibling'\n// include 'commented'\n";
        let inc = includes(s);
        let paths: Vec<&str> = inc.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, [":api", ":lib:core", ":worker", ":web"]);
        assert_eq!(inc[1].dir, "lib/core");
        assert_eq!(inc[1].name(), "core");
        assert_eq!(inc[2].line, 4);
        assert_eq!(inc[3].line, 6);
        assert_eq!(root_project_name(s), Some(("shop".into(), 1)));
    }

    #[test]
    fn kotlin_includes_multi_line_and_project_dir() {
        let s = "rootProject.name = \"shop\"\n\ninclude(\n    \":services:api\", // the service\n    \"common\",\n)\nproject(\":services:api\").projectDir = file(\"apps/api\")\n";
        let inc = includes(s);
        assert_eq!(inc.len(), 2);
        assert_eq!(inc[0].path, ":services:api");
        assert_eq!(inc[0].dir, "apps/api");
        assert_eq!(inc[0].line, 3);
        assert_eq!(inc[1].dir, "common");
    }

    #[test]
    fn includes_refuse_paths_that_leave_the_build() {
        assert!(includes("include '../x', 'a:..', '$(rm)'\n").is_empty());
        assert!(includes("include 'a'\nproject(':a').projectDir = file('../b')\n")[0].dir == "a");
    }

    #[test]
    fn plugins_groovy_and_kotlin() {
        let groovy =
            "plugins {\n    id 'java'\n    id 'org.springframework.boot' version '3.2.5'\n}\n";
        assert_eq!(runnable(groovy), Some((Runnable::SpringBoot, 3)));
        let kts = "plugins {\n    application\n    kotlin(\"jvm\")\n}\napplication { mainClass.set(\"a.MainKt\") }\n";
        assert_eq!(runnable(kts), Some((Runnable::Application, 2)));
        let root = "plugins {\n  id(\"org.springframework.boot\") version \"3.3.0\" apply false\n  // id(\"application\")\n}\n";
        assert_eq!(runnable(root), None);
        let legacy = "apply plugin: 'java'\napply plugin: 'org.springframework.boot'\n";
        assert_eq!(runnable(legacy), Some((Runnable::SpringBoot, 2)));
        let catalog =
            "plugins {\n    alias(libs.plugins.spring.boot)\n    id(\"application\")\n}\n";
        assert_eq!(runnable(catalog), Some((Runnable::SpringBoot, 2)));
        assert_eq!(runnable("plugins {\n    id 'java-library'\n}\n"), None);
        assert_eq!(
            runnable("plugins { id 'java'; id 'application' }\n"),
            Some((Runnable::Application, 1))
        );
        assert_eq!(
            runnable("plugins { id(\"org.springframework.boot\") version \"3\" apply false }\n"),
            None
        );
    }

    #[test]
    fn versions_and_names() {
        let b = "group = 'x'\nversion = '2.0.1' // release\nbootJar {\n    archiveBaseName = 'svc'\n}\n";
        assert_eq!(assigned(b, &["version"]), Some(("2.0.1".into(), 2)));
        assert_eq!(
            assigned(b, &["archiveBaseName", "archivesBaseName"]),
            Some(("svc".into(), 4))
        );
        let k = "version = \"1.0-SNAPSHOT\"\ntasks.bootJar { archiveFileName.set(\"app.jar\") }\n";
        assert_eq!(assigned(k, &["version"]), Some(("1.0-SNAPSHOT".into(), 1)));
        assert_eq!(
            assigned(k, &["archiveFileName"]),
            Some(("app.jar".into(), 2))
        );
        assert_eq!(assigned("versionCode = '3'\n", &["version"]), None);
        assert_eq!(assigned("version = \"$rev\"\n", &["version"]), None);
        let root = "plugins { id 'java' }\nversion = '9'\nallprojects {\n    group = 'g'\n    version = '1.2.3'\n    repositories { mavenCentral() }\n}\n";
        assert_eq!(shared_version(root), Some(("1.2.3".into(), 5)));
        assert_eq!(shared_version("version = '9'\n"), None);
        assert_eq!(
            properties_version("# v\norg.gradle.jvmargs=-Xmx1g\nversion = 0.4.0\n"),
            Some(("0.4.0".into(), 3))
        );
    }
}
