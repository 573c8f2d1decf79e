//! Ruby: Bundler, the Ruby version from Gemfile / Gemfile.lock / .ruby-version, Rails, Rack.

use super::{
    choose_version, line_of, managed_versions, version_file_value, Ctx, Detection, Detector,
    Outcome, STRENGTH_FRAMEWORK, STRENGTH_MANIFEST, STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Ruby;

fn gem_line(gemfile: &str, gem: &str) -> Option<u32> {
    gemfile.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim().replace('\'', "\"");
        (t.starts_with(&format!("gem \"{gem}\""))).then(|| u32::try_from(i + 1).unwrap_or(0))
    })
}

impl Detector for Ruby {
    fn name(&self) -> &'static str {
        "ruby"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let Some(gemfile) = ctx.text("Gemfile")? else {
            return Ok(Outcome::NoMatch("no Gemfile".into()));
        };
        let src = ctx.path("Gemfile");
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("ruby".into()),
            Cite::file(&src, None, "Gemfile"),
        );
        plan.set(
            Field::PackageManager,
            Some("bundler".into()),
            Cite::file(&src, None, "Gemfile"),
        );
        // Version: .ruby-version, the Gemfile's `ruby`, Gemfile.lock's RUBY VERSION.
        let lock = ctx.text("Gemfile.lock")?;
        let mut versions: Vec<(String, Cite)> = Vec::new();
        if let Some(t) = ctx.text(".ruby-version")? {
            if let Some((v, line)) = version_file_value(&t) {
                versions.push((
                    v.trim_start_matches("ruby-").into(),
                    Cite::file(ctx.path(".ruby-version"), Some(line), ".ruby-version"),
                ));
            }
        }
        versions.extend(managed_versions(ctx, &["ruby"])?);
        // `ruby "3.3.1"`; `ruby file: ".ruby-version"` only points at the file read above.
        let mut bundler_pin = None;
        if let Some((i, l)) = gemfile.lines().enumerate().find(|(_, l)| {
            let t = l.trim_start();
            (t.starts_with("ruby ") || t.starts_with("ruby(")) && !t.contains("file:")
        }) {
            if let Some(v) = l.replace('\'', "\"").split('"').nth(1) {
                let cite = Cite::file(&src, u32::try_from(i + 1).ok(), "`ruby` in Gemfile");
                if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    bundler_pin = Some((v.to_owned(), cite.clone()));
                }
                versions.push((v.to_owned(), cite));
            }
        }
        if let Some(lock) = &lock {
            let mut lines = lock
                .lines()
                .enumerate()
                .skip_while(|(_, l)| l.trim() != "RUBY VERSION");
            if let Some((i, l)) = lines.nth(1) {
                let v = l
                    .trim()
                    .trim_start_matches("ruby ")
                    .split('p')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                if !v.is_empty() {
                    versions.push((
                        v,
                        Cite::file(
                            ctx.path("Gemfile.lock"),
                            u32::try_from(i + 1).ok(),
                            "RUBY VERSION in Gemfile.lock",
                        ),
                    ));
                }
            }
        }
        versions.extend(super::dockerfile_version(ctx, &["ruby"])?);
        choose_version(&mut plan, versions);
        // Bundler refuses to run on another Ruby than an exact `ruby` in the Gemfile.
        if let (Some((pin, cite)), Some(v)) = (bundler_pin, plan.version.clone()) {
            if pin != v.trim_start_matches("ruby-") {
                plan.notices.push(format!(
                    "the Gemfile asks for Ruby {pin} ({}:{}) and Bundler refuses any other; the plan's version is {v}",
                    cite.source.unwrap_or_default(),
                    cite.line.unwrap_or(0)
                ));
            }
        }
        plan.set(Field::Install, Some("bundle config set --local path vendor/bundle && bundle config set --local without 'development test' && bundle install".into()), Cite::file(&src, None, "Bundler installs into vendor/bundle"));
        let mut strength = STRENGTH_MANIFEST;
        if let Some(line) = gem_line(&gemfile, "rails") {
            plan.set(
                Field::Framework,
                Some("rails".into()),
                Cite::file(&src, Some(line), "gem \"rails\""),
            );
            if ctx.is_dir("app/assets") || ctx.is_dir("app/javascript") {
                plan.set(
                    Field::Build,
                    Some("bundle exec rails assets:precompile".into()),
                    Cite::rule("Rails app with assets"),
                );
            }
            plan.set(
                Field::Start,
                Some("bundle exec rails server -b 0.0.0.0 -p ${PORT:-3000}".into()),
                Cite::file(&src, Some(line), "Rails server"),
            );
            plan.env_required.push("SECRET_KEY_BASE".into());
            plan.cite_item(
                "env_required",
                "SECRET_KEY_BASE",
                Cite::rule("Rails in production needs SECRET_KEY_BASE (or config/master.key)"),
            );
            strength = STRENGTH_FRAMEWORK;
        } else if ctx.is_file("config.ru") {
            let fw = ["sinatra", "roda", "hanami"]
                .into_iter()
                .find_map(|g| gem_line(&gemfile, g).map(|l| (g, l)));
            if let Some((g, l)) = fw {
                plan.set(
                    Field::Framework,
                    Some(g.into()),
                    Cite::file(&src, Some(l), format!("gem \"{g}\"")),
                );
            }
            let server = if gem_line(&gemfile, "puma").is_some() {
                "bundle exec puma -b tcp://0.0.0.0:${PORT:-9292} config.ru"
            } else {
                "bundle exec rackup -o 0.0.0.0 -p ${PORT:-9292}"
            };
            plan.set(
                Field::Start,
                Some(server.into()),
                Cite::file(ctx.path("config.ru"), None, "Rack application"),
            );
            strength = STRENGTH_FRAMEWORK;
        } else if let Some(f) = ctx.first_file(&["app.rb", "server.rb", "main.rb"]) {
            plan.set(
                Field::Start,
                Some(format!("bundle exec ruby {f}")),
                Cite::file(ctx.path(f), None, "conventional entry script"),
            );
            strength = STRENGTH_START;
        }
        let _ = line_of;
        plan.resources = Some(ResourcesHint {
            memory_mb: 512,
            cpu: 0.5,
        });
        plan.cite(
            "resources",
            "512 MiB",
            Cite::rule("typical for a Ruby web process"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}
