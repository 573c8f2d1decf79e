//! Java: Maven / Gradle (and their wrappers), `java.version`, Spring Boot and the jar name.

use super::{line_of, Ctx, Detection, Detector, Outcome, STRENGTH_FRAMEWORK, STRENGTH_START};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Java;

/// The text of the first `<tag>` element (a shallow, good-enough reading of a POM).
fn xml_tag<'t>(text: &'t str, tag: &str) -> Option<(&'t str, u32)> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find('<')? + start;
    let line = u32::try_from(text[..start].matches('\n').count() + 1).ok()?;
    Some((text[start..end].trim(), line))
}

/// The POM's own artifactId/version: the ones after `</parent>` when there is a parent.
fn project_coordinates(pom: &str) -> (Option<&str>, Option<&str>) {
    let body = pom.find("</parent>").map(|i| &pom[i..]).unwrap_or(pom);
    let body = body.split("<dependencies>").next().unwrap_or(body);
    (
        xml_tag(body, "artifactId").map(|t| t.0),
        xml_tag(body, "version").map(|t| t.0),
    )
}

impl Detector for Java {
    fn name(&self) -> &'static str {
        "java"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let pom = ctx.text("pom.xml")?;
        let gradle_file = ctx.first_file(&["build.gradle.kts", "build.gradle"]);
        let (manifest, text) = match (&pom, gradle_file) {
            (Some(p), _) => ("pom.xml", p.clone()),
            (None, Some(g)) => (g, ctx.text(g)?.unwrap_or_default()),
            (None, None) => return Ok(Outcome::NoMatch("no pom.xml or build.gradle(.kts)".into())),
        };
        let src = ctx.path(manifest);
        let maven = manifest == "pom.xml";
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("java".into()),
            Cite::file(&src, None, manifest),
        );
        let wrapper = if maven {
            ctx.is_file("mvnw")
        } else {
            ctx.is_file("gradlew")
        };
        let tool = match (maven, wrapper) {
            (true, true) => "./mvnw",
            (true, false) => "mvn",
            (false, true) => "./gradlew",
            (false, false) => "gradle",
        };
        plan.set(
            Field::PackageManager,
            Some(if maven { "maven" } else { "gradle" }.into()),
            Cite::file(
                &src,
                None,
                if wrapper {
                    "build file and wrapper"
                } else {
                    "build file (no wrapper)"
                },
            ),
        );
        // Java version.
        let version = if maven {
            [
                "java.version",
                "maven.compiler.release",
                "maven.compiler.source",
            ]
            .iter()
            .find_map(|t| xml_tag(&text, t).map(|(v, l)| (v.to_owned(), l, format!("<{t}>"))))
        } else {
            text.lines().enumerate().find_map(|(i, l)| {
                let line = u32::try_from(i + 1).ok()?;
                if let Some(r) = l.split("JavaLanguageVersion.of(").nth(1) {
                    return Some((
                        r.split(')').next()?.trim().to_owned(),
                        line,
                        "toolchain languageVersion".to_owned(),
                    ));
                }
                if l.contains("sourceCompatibility") {
                    let v: String = l
                        .split(['=', '_'])
                        .next_back()?
                        .chars()
                        .filter(|c| c.is_ascii_digit() || *c == '.')
                        .collect();
                    return (!v.is_empty()).then_some((v, line, "sourceCompatibility".to_owned()));
                }
                None
            })
        };
        if let Some((v, line, rule)) = version {
            plan.set(Field::Version, Some(v), Cite::file(&src, Some(line), rule));
        }
        let boot =
            line_of(&text, "spring-boot").or_else(|| line_of(&text, "org.springframework.boot"));
        if let Some(line) = boot {
            plan.set(
                Field::Framework,
                Some("spring-boot".into()),
                Cite::file(&src, Some(line), "Spring Boot plugin or parent"),
            );
        }
        let strength = if boot.is_some() {
            STRENGTH_FRAMEWORK
        } else {
            STRENGTH_START
        };
        if maven {
            plan.set(
                Field::Build,
                Some(format!("{tool} -B -DskipTests package")),
                Cite::file(&src, None, "Maven package"),
            );
            let (artifact, version) = project_coordinates(&text);
            let final_name = xml_tag(&text, "finalName").map(|t| t.0.to_owned());
            let jar = match (final_name, artifact, version) {
                (Some(f), _, _) => Some(format!("target/{f}.jar")),
                (None, Some(a), Some(v)) if !v.contains("${") => {
                    Some(format!("target/{a}-{v}.jar"))
                }
                _ => None,
            };
            let jar =
                jar.unwrap_or_else(|| "$(ls target/*.jar | grep -v original | head -n 1)".into());
            plan.set(
                Field::Start,
                Some(format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}")),
                Cite::file(&src, None, "the jar Maven writes (artifactId-version)"),
            );
        } else {
            let task = if boot.is_some() { "bootJar" } else { "build" };
            plan.set(
                Field::Build,
                Some(format!("{tool} {task} -x test --no-daemon")),
                Cite::file(&src, None, "Gradle build"),
            );
            let name = ctx
                .text_opt(if ctx.is_file("settings.gradle.kts") {
                    "settings.gradle.kts"
                } else {
                    "settings.gradle"
                })
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.contains("rootProject.name"))
                        .and_then(|l| l.replace('\'', "\"").split('"').nth(1).map(str::to_owned))
                });
            let version = text
                .lines()
                .find(|l| l.trim_start().starts_with("version"))
                .and_then(|l| l.replace('\'', "\"").split('"').nth(1).map(str::to_owned));
            let jar = match (name, version) {
                (Some(n), Some(v)) => format!("build/libs/{n}-{v}.jar"),
                _ => "$(ls build/libs/*.jar | grep -v plain | head -n 1)".into(),
            };
            plan.set(
                Field::Start,
                Some(format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}")),
                Cite::file(
                    &src,
                    None,
                    "the jar Gradle writes (rootProject.name-version)",
                ),
            );
        }
        plan.resources = Some(ResourcesHint {
            memory_mb: 1024,
            cpu: 0.5,
        });
        plan.cite(
            "resources",
            "1024 MiB",
            Cite::rule("typical for a JVM service"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength,
            manifest: src,
        })))
    }
}
