//! PHP: Composer, `require.php`, Laravel, Slim, the document root.

use super::{
    choose_version, json_key_line, json_str, managed_versions, version_file_value, Ctx, Detection,
    Detector, Outcome, STRENGTH_FRAMEWORK, STRENGTH_MANIFEST, STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Php;

impl Detector for Php {
    fn name(&self) -> &'static str {
        "php"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let composer = ctx.json("composer.json")?;
        let index = ctx.first_file(&["public/index.php", "index.php"]);
        if composer.is_none() && index.is_none() {
            return Ok(Outcome::NoMatch("no composer.json or index.php".into()));
        }
        let manifest = if composer.is_some() {
            "composer.json"
        } else {
            index.unwrap_or("index.php")
        };
        let src = ctx.path(manifest);
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("php".into()),
            Cite::file(&src, None, manifest),
        );
        let mut strength = STRENGTH_MANIFEST;
        let require = |name: &str| {
            composer.as_ref().and_then(|(c, t)| {
                let v = c.get("require").and_then(|r| json_str(r, name))?;
                Some((v.to_owned(), json_key_line(t, &["require", name])))
            })
        };
        if composer.is_some() {
            plan.set(
                Field::PackageManager,
                Some("composer".into()),
                Cite::file(&src, None, "composer.json"),
            );
            plan.set(
                Field::Install,
                Some("composer install --no-dev --optimize-autoloader --no-interaction".into()),
                Cite::file(&src, None, "Composer"),
            );
        }
        // Version: `.php-version` (Symfony CLI, phpenv), mise / .tool-versions, then Composer's
        // `require.php` (a constraint Composer checks).
        let mut versions: Vec<(String, Cite)> = Vec::new();
        if let Some(t) = ctx.text(".php-version")? {
            if let Some((v, line)) = version_file_value(&t) {
                versions.push((
                    v,
                    Cite::file(ctx.path(".php-version"), Some(line), ".php-version"),
                ));
            }
        }
        versions.extend(managed_versions(ctx, &["php"])?);
        if let Some((v, line)) = require("php") {
            versions.push((v, Cite::file(&src, line, "require.php")));
        }
        versions.extend(super::dockerfile_version(ctx, &["php"])?);
        choose_version(&mut plan, versions);
        if let (Some((_, line)), true) = (require("laravel/framework"), ctx.is_file("artisan")) {
            plan.set(
                Field::Framework,
                Some("laravel".into()),
                Cite::file(&src, line, "require laravel/framework"),
            );
            plan.set(
                Field::Start,
                Some("php artisan serve --host=0.0.0.0 --port=${PORT:-8000}".into()),
                Cite::file(ctx.path("artisan"), None, "Laravel's artisan"),
            );
            plan.env_required.push("APP_KEY".into());
            plan.cite_item(
                "env_required",
                "APP_KEY",
                Cite::rule("Laravel needs APP_KEY"),
            );
            strength = STRENGTH_FRAMEWORK;
        } else if let Some(index) = index {
            let mut docroot = index.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
            // The repository's own `composer start` (`php -S localhost:8080 -t public`, as in
            // Slim's skeleton) states the port and document root it serves on.
            let script = composer
                .as_ref()
                .and_then(|(c, t)| Some((builtin_server(c.get("scripts")?.get("start")?)?, t)));
            let mut default_port = 8000;
            let mut start_cite =
                Cite::file(ctx.path(index), None, "document root holding index.php");
            if let Some(((port, dir), text)) = script {
                let dir = dir.filter(|d| ctx.is_file(&format!("{d}/index.php")));
                if let Some(d) = dir {
                    docroot = d;
                }
                if port.is_some() || dir.is_some() {
                    default_port = port.unwrap_or(default_port);
                    start_cite = Cite::file(
                        &src,
                        json_key_line(text, &["scripts", "start"]),
                        "composer start runs PHP's built-in server (its port is the default)",
                    );
                }
            }
            if let Some((_, line)) = require("slim/slim") {
                plan.set(
                    Field::Framework,
                    Some("slim".into()),
                    Cite::file(&src, line, "require slim/slim"),
                );
                strength = STRENGTH_FRAMEWORK;
            } else {
                strength = STRENGTH_START;
            }
            plan.set(
                Field::Start,
                Some(format!(
                    "php -S 0.0.0.0:${{PORT:-{default_port}}} -t {docroot}"
                )),
                start_cite,
            );
            plan.cite(
                "document_root",
                docroot,
                Cite::file(ctx.path(index), None, "directory of index.php"),
            );
        }
        plan.resources = Some(ResourcesHint {
            memory_mb: 256,
            cpu: 0.25,
        });
        plan.cite(
            "resources",
            "256 MiB",
            Cite::rule("typical for a PHP process"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}

/// The port and document root of a `php -S <host>:<port> [-t <dir>]` command in a Composer
/// script (a string, or the first such command of a list), when it names either.
fn builtin_server(script: &serde_json::Value) -> Option<(Option<u16>, Option<&str>)> {
    let cmds: Vec<&str> = match script {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => return None,
    };
    cmds.into_iter().find_map(|cmd| {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let php = words
            .iter()
            .position(|w| matches!(w.trim_start_matches('@'), "php" | "php-cli"))?;
        let args = &words[php + 1..];
        let addr = args
            .iter()
            .position(|w| *w == "-S")
            .and_then(|i| args.get(i + 1))?;
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let dir = args
            .iter()
            .position(|w| *w == "-t")
            .and_then(|i| args.get(i + 1))
            .map(|d| d.trim_end_matches('/'))
            .filter(|d| !d.is_empty() && crate::fs::normalize(d).is_ok_and(|n| n == *d));
        (port.is_some() || dir.is_some()).then_some((port, dir))
    })
}
