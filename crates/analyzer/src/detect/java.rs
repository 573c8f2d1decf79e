//! Java: Maven / Gradle (and their wrappers), `java.version`, Spring Boot and the jar name;
//! multi-project builds (Gradle `include`, Maven `<modules>`) build and start the one runnable
//! project.

use super::gradle::{self, Runnable};
use super::{
    line_of, sh_quote, Ctx, Detection, Detector, Outcome, STRENGTH_FRAMEWORK, STRENGTH_MANIFEST,
    STRENGTH_START,
};
use crate::error::AnalyzeError;
use crate::fs::join;
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

/// The Java version a POM compiles for.
fn maven_java_version(pom: &str) -> Option<(String, u32, String)> {
    [
        "java.version",
        "maven.compiler.release",
        "maven.compiler.source",
    ]
    .iter()
    .find_map(|t| xml_tag(pom, t).map(|(v, l)| (v.to_owned(), l, format!("<{t}>"))))
}

/// The Java version a Gradle script compiles for: the toolchain, else `sourceCompatibility`.
fn gradle_java_version(text: &str) -> Option<(String, u32, String)> {
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
}

/// Language, package manager and resources: what every Java plan states.
fn base_plan(src: &str, rule: &str, maven: bool, pm_rule: &str) -> BuildPlan {
    let mut plan = BuildPlan::default();
    plan.set(
        Field::Language,
        Some("java".into()),
        Cite::file(src, None, rule),
    );
    plan.set(
        Field::PackageManager,
        Some(if maven { "maven" } else { "gradle" }.into()),
        Cite::file(src, None, pm_rule),
    );
    plan
}

fn finish(mut plan: BuildPlan, strength: u8, manifest: String) -> Outcome {
    plan.resources = Some(ResourcesHint {
        memory_mb: 1024,
        cpu: 0.5,
    });
    plan.cite(
        "resources",
        "1024 MiB",
        Cite::rule("typical for a JVM service"),
    );
    Outcome::Matched(Box::new(Detection {
        plan,
        strength,
        manifest,
    }))
}

const SETTINGS: &[&str] = &["settings.gradle.kts", "settings.gradle"];
const BUILD_SCRIPTS: &[&str] = &["build.gradle.kts", "build.gradle"];

impl Detector for Java {
    fn name(&self) -> &'static str {
        "java"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let mut outcome = plan_build(ctx)?;
        if let Outcome::Matched(d) = &mut outcome {
            version_pins(ctx, &mut d.plan)?;
        }
        Ok(outcome)
    }
}

/// The JDK a version string names: `21`, `21.0.2`, `temurin-21.0.2+13`, `1.8` → 8.
fn java_major(v: &str) -> Option<u32> {
    let digits = v.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = digits.split(|c: char| !c.is_ascii_digit());
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        n => Some(n),
    }
}

/// The JDK the developer's tools pin (`.java-version` for jenv, `.sdkmanrc` for SDKMAN!, mise,
/// `.tool-versions`) outranks the version the build compiles for, which is then an alternative;
/// a pinned JDK older than the bytecode the build writes gets a notice.
fn version_pins(ctx: &Ctx, plan: &mut BuildPlan) -> Result<(), AnalyzeError> {
    let mut found: Vec<(String, Cite)> = Vec::new();
    if let Some(t) = ctx.text(".java-version")? {
        if let Some((v, line)) = super::version_file_value(&t) {
            found.push((
                v,
                Cite::file(
                    ctx.path(".java-version"),
                    Some(line),
                    ".java-version (jenv)",
                ),
            ));
        }
    }
    if let Some(t) = ctx.text(".sdkmanrc")? {
        if let Some((i, v)) = t.lines().enumerate().find_map(|(i, l)| {
            let v = l.split('#').next()?.trim().strip_prefix("java=")?.trim();
            (!v.is_empty()).then(|| (i, v.to_owned()))
        }) {
            found.push((
                v,
                Cite::file(
                    ctx.path(".sdkmanrc"),
                    u32::try_from(i + 1).ok(),
                    "java= in .sdkmanrc (SDKMAN!)",
                ),
            ));
        }
    }
    found.extend(super::managed_versions(ctx, &["java"])?);
    if found.is_empty() {
        return Ok(());
    }
    let build = plan.evidence_for("version").cloned();
    if let Some(e) = &build {
        found.push((
            e.value.clone(),
            Cite {
                source: e.source.clone(),
                line: e.line,
                rule: e.rule.clone(),
            },
        ));
    }
    let pinned = found[0].0.clone();
    let pinned_at = found[0].1.source.clone().unwrap_or_default();
    super::choose_version(plan, found);
    if let Some(e) = build {
        if let (Some(needs), Some(has)) = (java_major(&e.value), java_major(&pinned)) {
            if needs > has {
                plan.notices.push(format!(
                    "the build compiles for Java {needs} ({}:{}) but {pinned_at} pins {pinned}; a Java {has} runtime cannot run it",
                    e.source.unwrap_or_default(),
                    e.line.unwrap_or(0)
                ));
            }
        }
    }
    Ok(())
}

fn plan_build(ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
    let pom = ctx.text("pom.xml")?;
    let gradle_file = ctx.first_file(BUILD_SCRIPTS);
    let settings = ctx.first_file(SETTINGS);
    if let Some(p) = &pom {
        if let Some(outcome) = maven_modules(ctx, p)? {
            return Ok(outcome);
        }
        if let Some(outcome) = maven_module_of_parent(ctx, p)? {
            return Ok(outcome);
        }
    } else if let Some(s) = settings {
        if let Some(outcome) = gradle_multi_project(ctx, s, gradle_file)? {
            return Ok(outcome);
        }
    }
    if pom.is_none() {
        if let Some(outcome) = gradle_subproject(ctx, gradle_file)? {
            return Ok(outcome);
        }
    }
    let (manifest, text) = match (&pom, gradle_file) {
        (Some(p), _) => ("pom.xml", p.clone()),
        (None, Some(g)) => (g, ctx.text(g)?.unwrap_or_default()),
        (None, None) => {
            return Ok(Outcome::NoMatch(
                "no pom.xml, build.gradle(.kts) or settings.gradle(.kts)".into(),
            ))
        }
    };
    let src = ctx.path(manifest);
    let maven = manifest == "pom.xml";
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
    let mut plan = base_plan(
        &src,
        manifest,
        maven,
        if wrapper {
            "build file and wrapper"
        } else {
            "build file (no wrapper)"
        },
    );
    let version = if maven {
        maven_java_version(&text)
    } else {
        gradle_java_version(&text)
    };
    if let Some((v, line, rule)) = version {
        plan.set(Field::Version, Some(v), Cite::file(&src, Some(line), rule));
    }
    let boot = line_of(&text, "spring-boot").or_else(|| line_of(&text, "org.springframework.boot"));
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
        let jar = maven_jar(&text, "").unwrap_or_else(|| jar_glob("", "target", "original"));
        plan.set(
            Field::Start,
            Some(format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}")),
            Cite::file(&src, None, "the jar Maven writes (artifactId-version)"),
        );
    } else {
        let application =
            gradle::runnable(&text).filter(|(r, _)| boot.is_none() && *r == Runnable::Application);
        if let Some((_, line)) = application {
            let name = gradle::assigned(&text, &["applicationName"])
                .map(|v| v.0)
                .or_else(|| {
                    settings
                        .and_then(|s| ctx.text_opt(s))
                        .and_then(|s| gradle::root_project_name(&s))
                        .map(|v| v.0)
                })
                .or_else(|| dir_name(&ctx.dir));
            if let Some(name) = name {
                plan.set(
                    Field::Build,
                    Some(format!("{tool} installDist -x test --no-daemon")),
                    Cite::file(&src, Some(line), "the application plugin's installDist"),
                );
                plan.set(
                        Field::Start,
                        Some(sh_quote(&format!("build/install/{name}/bin/{name}"))),
                        Cite::file(
                            &src,
                            Some(line),
                            "the start script installDist writes (applicationName, else the project name)",
                        ),
                    );
                return Ok(finish(plan, strength, src));
            }
        }
        let task = if boot.is_some() { "bootJar" } else { "build" };
        plan.set(
            Field::Build,
            Some(format!("{tool} {task} -x test --no-daemon")),
            Cite::file(&src, None, "Gradle build"),
        );
        let name = settings
            .and_then(|s| ctx.text_opt(s))
            .and_then(|s| gradle::root_project_name(&s))
            .map(|v| v.0);
        let version = gradle::assigned(&text, &["version"])
            .or_else(|| {
                ctx.text_opt("gradle.properties")
                    .and_then(|p| gradle::properties_version(&p))
            })
            .map(|v| v.0);
        let jar = match (name, version) {
            (Some(n), Some(v)) => sh_quote(&format!("build/libs/{n}-{v}.jar")),
            _ => jar_glob("", "build/libs", "plain"),
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
    Ok(finish(plan, strength, src))
}

/// The last segment of a directory, as Gradle names a project after its directory.
fn dir_name(dir: &str) -> Option<String> {
    dir.rsplit('/')
        .next()
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// A command substitution picking the jar a build wrote when its name cannot be known
/// (`plain` / `original` are the non-executable jars Spring Boot's builds leave beside it).
fn jar_glob(dir: &str, libs: &str, skip: &str) -> String {
    let at = if dir.is_empty() {
        libs.to_owned()
    } else {
        format!("{}/{libs}", sh_quote(dir))
    };
    format!("$(ls {at}/*.jar | grep -v {skip} | head -n 1)")
}

/// `<dir>/target/<finalName>.jar` or `<artifactId>-<version>.jar`; the version may come from
/// `<parent>` (a module that does not state its own).
fn maven_jar(pom: &str, dir: &str) -> Option<String> {
    let target = join(dir, "target");
    if let Some((f, _)) = xml_tag(pom, "finalName") {
        return (!f.contains("${")).then(|| sh_quote(&format!("{target}/{f}.jar")));
    }
    let (artifact, version) = project_coordinates(pom);
    let version = version.or_else(|| {
        let parent = pom
            .split("</parent>")
            .next()
            .filter(|_| pom.contains("</parent>"))?;
        xml_tag(parent, "version").map(|t| t.0)
    });
    match (artifact, version) {
        (Some(a), Some(v)) if !v.contains("${") && !a.contains("${") => {
            Some(sh_quote(&format!("{target}/{a}-{v}.jar")))
        }
        _ => None,
    }
}

/// A module or subproject path from a build file, safe to join to the app directory.
fn safe_dir(d: &str) -> bool {
    crate::fs::normalize(d).is_ok_and(|n| !n.is_empty() && n == d.trim_end_matches('/'))
}

/// A Maven multi-module build (`<modules>`): build the one module with the Spring Boot plugin
/// (`-pl <module> -am`) and start its jar.
fn maven_modules(ctx: &Ctx, pom: &str) -> Result<Option<Outcome>, AnalyzeError> {
    if !pom.contains("<modules>") {
        return Ok(None);
    }
    let modules = pom_modules(pom);
    let mut runnable = Vec::new();
    for m in &modules {
        let rel = join(m, "pom.xml");
        if let Some(text) = ctx.text(&rel)? {
            if let Some(line) = line_of(&text, "spring-boot-maven-plugin") {
                runnable.push((*m, rel, text, line));
            }
        }
    }
    let src = ctx.path("pom.xml");
    let wrapper = ctx.is_file("mvnw");
    let tool = if wrapper { "./mvnw" } else { "mvn" };
    let mut plan = base_plan(
        &src,
        &format!("pom.xml with {} modules", modules.len()),
        true,
        if wrapper {
            "build file and wrapper"
        } else {
            "build file (no wrapper)"
        },
    );
    let [(module, rel, text, line)] = runnable.as_slice() else {
        let why = if runnable.is_empty() {
            "no module applies spring-boot-maven-plugin".to_owned()
        } else {
            format!(
                "several modules apply spring-boot-maven-plugin ({}); choose one with --app-dir",
                runnable.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            )
        };
        plan.notices
            .push(format!("Maven multi-module build: {why}"));
        return Ok(Some(finish(plan, STRENGTH_MANIFEST, src)));
    };
    let module_src = ctx.path(rel);
    let version = maven_java_version(text)
        .map(|(v, l, r)| (v, Cite::file(&module_src, Some(l), r)))
        .or_else(|| maven_java_version(pom).map(|(v, l, r)| (v, Cite::file(&src, Some(l), r))));
    if let Some((v, cite)) = version {
        plan.set(Field::Version, Some(v), cite);
    }
    plan.set(
        Field::Framework,
        Some("spring-boot".into()),
        Cite::file(
            &module_src,
            Some(*line),
            "spring-boot-maven-plugin in the module",
        ),
    );
    plan.cite(
        "module",
        module,
        Cite::file(
            &src,
            line_of(pom, &format!("<module>{module}</module>")),
            "the only module of <modules> with spring-boot-maven-plugin",
        ),
    );
    plan.set(
        Field::Build,
        Some(format!(
            "{tool} -B -DskipTests -pl {} -am package",
            sh_quote(module)
        )),
        Cite::file(
            &src,
            None,
            "Maven package of the module and what it depends on",
        ),
    );
    let jar = maven_jar(text, module).unwrap_or_else(|| jar_glob(module, "target", "original"));
    plan.set(
        Field::Start,
        Some(format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}")),
        Cite::file(
            &module_src,
            None,
            "the jar Maven writes for the module (artifactId-version)",
        ),
    );
    Ok(Some(finish(plan, STRENGTH_FRAMEWORK, src)))
}

/// `<module>` entries of a POM that are safe relative directories.
fn pom_modules(pom: &str) -> Vec<&str> {
    let Some(block) = pom
        .split_once("<modules>")
        .and_then(|(_, r)| r.split_once("</modules>"))
        .map(|(b, _)| b)
    else {
        return Vec::new();
    };
    block
        .split("<module>")
        .skip(1)
        .filter_map(|m| m.split('<').next())
        .map(str::trim)
        .filter(|m| safe_dir(m))
        .collect()
}

/// The ancestors of a directory, nearest first, the repository root last.
fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(|(i, _)| &dir[..i])
        .rev()
        .chain(std::iter::once(""))
}

/// `..` repeated for each level `dir` is below `ancestor`.
fn up_from(dir: &str, ancestor: &str) -> String {
    let levels = |d: &str| {
        if d.is_empty() {
            0
        } else {
            d.matches('/').count() + 1
        }
    };
    vec![".."; levels(dir) - levels(ancestor)].join("/")
}

/// The app directory is a module of a multi-module build further up: Maven builds it from the
/// parent (`-f ../pom.xml -pl <module> -am`); a module without spring-boot-maven-plugin is a
/// library, not an app.
fn maven_module_of_parent(ctx: &Ctx, pom: &str) -> Result<Option<Outcome>, AnalyzeError> {
    if ctx.dir.is_empty() {
        return Ok(None);
    }
    for ancestor in ancestors(&ctx.dir) {
        let parent_rel = join(ancestor, "pom.xml");
        let Some(parent) = ctx.fs.read_text(&parent_rel)? else {
            continue;
        };
        let Some(module) = pom_modules(&parent)
            .into_iter()
            .find(|m| join(ancestor, m) == ctx.dir)
        else {
            return Ok(None);
        };
        let up = up_from(&ctx.dir, ancestor);
        let wrapper = ctx.fs.is_file(&join(ancestor, "mvnw"));
        let src = ctx.path("pom.xml");
        let mut plan = base_plan(
            &src,
            "pom.xml",
            true,
            if wrapper {
                "module of a multi-module build, with the build's wrapper"
            } else {
                "module of a multi-module build (no wrapper)"
            },
        );
        let Some(line) = line_of(pom, "spring-boot-maven-plugin") else {
            plan.notices.push(format!(
                "{} is a module of {parent_rel} without spring-boot-maven-plugin (a library)",
                ctx.dir
            ));
            return Ok(Some(finish(plan, STRENGTH_MANIFEST, src)));
        };
        let version = maven_java_version(pom)
            .map(|(v, l, r)| (v, Cite::file(&src, Some(l), r)))
            .or_else(|| {
                maven_java_version(&parent)
                    .map(|(v, l, r)| (v, Cite::file(&parent_rel, Some(l), r)))
            });
        if let Some((v, cite)) = version {
            plan.set(Field::Version, Some(v), cite);
        }
        plan.set(
            Field::Framework,
            Some("spring-boot".into()),
            Cite::file(&src, Some(line), "spring-boot-maven-plugin in the module"),
        );
        let tool = if wrapper {
            format!("{up}/mvnw")
        } else {
            "mvn".to_owned()
        };
        plan.set(
            Field::Build,
            Some(format!(
                "{tool} -f {up}/pom.xml -B -DskipTests -pl {} -am package",
                sh_quote(module)
            )),
            Cite::file(
                &parent_rel,
                line_of(&parent, &format!("<module>{module}</module>")),
                "Maven package of this module and what it depends on, from the parent",
            ),
        );
        let jar = maven_jar(pom, "").unwrap_or_else(|| jar_glob("", "target", "original"));
        plan.set(
            Field::Start,
            Some(format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}")),
            Cite::file(&src, None, "the jar Maven writes (artifactId-version)"),
        );
        return Ok(Some(finish(plan, STRENGTH_FRAMEWORK, src)));
    }
    Ok(None)
}

/// A Gradle project that builds something runnable.
struct Subproject {
    included: gradle::Included,
    /// Repository-relative build script.
    script: String,
    text: String,
    kind: Runnable,
    line: u32,
}

/// The included projects of a settings file that apply Spring Boot or `application`, relative to
/// `base` (the settings file's directory).
fn runnable_subprojects(
    ctx: &Ctx,
    base: &str,
    included: &[gradle::Included],
) -> Result<Vec<Subproject>, AnalyzeError> {
    let mut out = Vec::new();
    for inc in included {
        let dir = join(base, &inc.dir);
        let Some(script) = BUILD_SCRIPTS
            .iter()
            .map(|b| join(&dir, b))
            .find(|p| ctx.fs.is_file(p))
        else {
            continue;
        };
        let Some(text) = ctx.fs.read_text(&script)? else {
            continue;
        };
        if let Some((kind, line)) = gradle::runnable(&text) {
            out.push(Subproject {
                included: inc.clone(),
                script,
                text,
                kind,
                line,
            });
        }
    }
    Ok(out)
}

/// The one runnable subproject: the only Spring Boot one, else the only `application` one.
fn choose(subs: &[Subproject]) -> Result<&Subproject, String> {
    let boot: Vec<&Subproject> = subs
        .iter()
        .filter(|s| s.kind == Runnable::SpringBoot)
        .collect();
    let app: Vec<&Subproject> = subs
        .iter()
        .filter(|s| s.kind == Runnable::Application)
        .collect();
    let names = |v: &[&Subproject]| {
        v.iter()
            .map(|s| s.included.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (boot.as_slice(), app.as_slice()) {
        ([only], _) | ([], [only]) => Ok(only),
        ([], []) => Err("no included project applies the Spring Boot or application plugin".into()),
        ([], several) | (several, _) => Err(format!(
            "several included projects are runnable ({}); choose one with --app-dir",
            names(several)
        )),
    }
}

/// Build and start commands for a runnable subproject. `tool` runs Gradle on the whole build;
/// `dir` is the subproject's directory relative to where the commands run.
fn subproject_commands(
    ctx: &Ctx,
    sub: &Subproject,
    tool: &str,
    dir: &str,
    settings_rel: &str,
    root_build: Option<(&str, &str)>,
) -> (String, String, String) {
    let inc = &sub.included;
    let task = match sub.kind {
        Runnable::SpringBoot => "bootJar",
        Runnable::Application => "installDist",
    };
    let build = format!(
        "{tool} {} -x test --no-daemon",
        sh_quote(&format!("{}:{task}", inc.path))
    );
    let settings_dir = settings_rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    match sub.kind {
        Runnable::Application => {
            let name = gradle::assigned(&sub.text, &["applicationName"])
                .map(|v| v.0)
                .unwrap_or_else(|| inc.name().to_owned());
            let script = sh_quote(&join(dir, &format!("build/install/{name}/bin/{name}")));
            let rule = format!(
                "the start script `{}:installDist` writes ({} applies the application plugin)",
                inc.path, sub.script
            );
            (build, script, rule)
        }
        Runnable::SpringBoot => {
            let file = gradle::assigned(&sub.text, &["archiveFileName"]).map(|v| v.0);
            let base = gradle::assigned(
                &sub.text,
                &["archiveBaseName", "archivesBaseName", "archivesName"],
            )
            .map(|v| v.0)
            .unwrap_or_else(|| inc.name().to_owned());
            let version = gradle::assigned(&sub.text, &["version"])
                .map(|(v, l)| (v, format!("{}:{l}", sub.script)))
                .or_else(|| {
                    root_build.and_then(|(path, text)| {
                        gradle::shared_version(text).map(|(v, l)| (v, format!("{path}:{l}")))
                    })
                })
                .or_else(|| {
                    let props = join(settings_dir, "gradle.properties");
                    ctx.fs
                        .read_text(&props)
                        .ok()
                        .flatten()
                        .and_then(|p| gradle::properties_version(&p))
                        .map(|(v, l)| (v, format!("{props}:{l}")))
                });
            let libs = join(dir, "build/libs");
            let (jar, how) = match (file, version) {
                (Some(f), _) => (
                    sh_quote(&format!("{libs}/{f}")),
                    "archiveFileName".to_owned(),
                ),
                (None, Some((v, at))) => (
                    sh_quote(&format!("{libs}/{base}-{v}.jar")),
                    format!("name `{base}`, version from {at}"),
                ),
                (None, None) => (
                    jar_glob(dir, "build/libs", "plain"),
                    "version not found: the jar bootJar wrote".to_owned(),
                ),
            };
            (
                build,
                format!("java -Dserver.port=${{PORT:-8080}} -jar {jar}"),
                format!("the jar `{}:bootJar` writes ({how})", inc.path),
            )
        }
    }
}

/// Java version, framework and the commands of a chosen subproject.
#[allow(clippy::too_many_arguments)]
fn plan_subproject(
    ctx: &Ctx,
    plan: &mut BuildPlan,
    sub: &Subproject,
    tool: &str,
    dir: &str,
    settings_rel: &str,
    root_build: Option<(&str, &str)>,
    why: &str,
) {
    let version = gradle_java_version(&sub.text)
        .map(|(v, l, r)| (v, Cite::file(&sub.script, Some(l), r)))
        .or_else(|| {
            root_build.and_then(|(path, text)| {
                gradle_java_version(text).map(|(v, l, r)| (v, Cite::file(path, Some(l), r)))
            })
        });
    if let Some((v, cite)) = version {
        plan.set(Field::Version, Some(v), cite);
    }
    if sub.kind == Runnable::SpringBoot {
        plan.set(
            Field::Framework,
            Some("spring-boot".into()),
            Cite::file(&sub.script, Some(sub.line), "Spring Boot plugin applied"),
        );
    }
    plan.cite(
        "subproject",
        &sub.included.path,
        Cite::file(settings_rel, Some(sub.included.line), why),
    );
    let (build, start, rule) = subproject_commands(ctx, sub, tool, dir, settings_rel, root_build);
    plan.set(
        Field::Build,
        Some(build),
        Cite::file(
            &sub.script,
            Some(sub.line),
            "Gradle builds the runnable subproject",
        ),
    );
    plan.set(
        Field::Start,
        Some(start),
        Cite::file(&sub.script, Some(sub.line), rule),
    );
}

/// A Gradle multi-project build at the app directory: `include`s in the settings file.
fn gradle_multi_project(
    ctx: &Ctx,
    settings: &str,
    root_script: Option<&str>,
) -> Result<Option<Outcome>, AnalyzeError> {
    let settings_text = ctx.text(settings)?.unwrap_or_default();
    let included = gradle::includes(&settings_text);
    if included.is_empty() {
        return Ok(None);
    }
    let root_build = match root_script {
        Some(r) => ctx.text(r)?.map(|t| (ctx.path(r), t)),
        None => None,
    };
    // The root project itself is the app (subprojects are its libraries).
    if root_build
        .as_ref()
        .is_some_and(|(_, t)| gradle::runnable(t).is_some())
    {
        return Ok(None);
    }
    let subs = runnable_subprojects(ctx, &ctx.dir, &included)?;
    let src = ctx.path(settings);
    let wrapper = ctx.is_file("gradlew");
    let mut plan = base_plan(
        &src,
        &format!("Gradle multi-project build ({} included)", included.len()),
        false,
        if wrapper {
            "settings file and wrapper"
        } else {
            "settings file (no wrapper)"
        },
    );
    let sub = match choose(&subs) {
        Ok(s) => s,
        Err(why) => {
            plan.notices
                .push(format!("Gradle multi-project build ({src}): {why}"));
            return Ok(Some(finish(plan, STRENGTH_MANIFEST, src)));
        }
    };
    let why = match sub.kind {
        Runnable::SpringBoot => "the only included project applying the Spring Boot plugin",
        Runnable::Application => "the only included project applying the application plugin",
    };
    let tool = if wrapper { "./gradlew" } else { "gradle" };
    let root = root_build.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
    plan_subproject(
        ctx,
        &mut plan,
        sub,
        tool,
        &sub.included.dir,
        &src,
        root,
        why,
    );
    for other in subs.iter().filter(|s| s.included.path != sub.included.path) {
        plan.lose(
            "subproject",
            &other.included.path,
            Some(&other.script),
            format!(
                "{} applies {}; {} is preferred ({why})",
                other.included.path,
                match other.kind {
                    Runnable::SpringBoot => "Spring Boot",
                    Runnable::Application => "the application plugin",
                },
                sub.included.path
            ),
        );
    }
    let strength = if sub.kind == Runnable::SpringBoot {
        STRENGTH_FRAMEWORK
    } else {
        STRENGTH_START
    };
    Ok(Some(finish(plan, strength, src)))
}

/// The app directory is a subproject of a multi-project build further up: Gradle runs on the
/// whole build (`../gradlew -p .. :sub:bootJar`), the jar is the subproject's.
fn gradle_subproject(ctx: &Ctx, script: Option<&str>) -> Result<Option<Outcome>, AnalyzeError> {
    let Some(script) = script else {
        return Ok(None);
    };
    if ctx.dir.is_empty() {
        return Ok(None);
    }
    // The nearest directory above with a settings file decides (as Gradle's own search does).
    let parents = ancestors(&ctx.dir);
    for ancestor in parents {
        let Some(settings) = SETTINGS
            .iter()
            .map(|s| join(ancestor, s))
            .find(|p| ctx.fs.is_file(p))
        else {
            continue;
        };
        let text = ctx.fs.read_text(&settings)?.unwrap_or_default();
        let included = gradle::includes(&text);
        let Some(inc) = included.iter().find(|i| join(ancestor, &i.dir) == ctx.dir) else {
            return Ok(None);
        };
        let up = up_from(&ctx.dir, ancestor);
        let wrapper = ctx.fs.is_file(&join(ancestor, "gradlew"));
        let tool = if wrapper {
            format!("{up}/gradlew -p {up}")
        } else {
            format!("gradle -p {up}")
        };
        let src = ctx.path(script);
        let mut plan = base_plan(
            &src,
            script,
            false,
            if wrapper {
                "subproject of a multi-project build, with the build's wrapper"
            } else {
                "subproject of a multi-project build (no wrapper)"
            },
        );
        let subs = runnable_subprojects(ctx, ancestor, std::slice::from_ref(inc))?;
        let Some(sub) = subs.first() else {
            plan.notices.push(format!(
                "{} is included by {settings} but applies neither Spring Boot nor the application plugin (a library)",
                inc.path
            ));
            return Ok(Some(finish(plan, STRENGTH_MANIFEST, src)));
        };
        let root_script = BUILD_SCRIPTS
            .iter()
            .map(|b| join(ancestor, b))
            .find(|p| ctx.fs.is_file(p));
        let root_text = match &root_script {
            Some(r) => ctx.fs.read_text(r)?,
            None => None,
        };
        let root = root_script.as_deref().zip(root_text.as_deref());
        plan_subproject(
            ctx,
            &mut plan,
            sub,
            &tool,
            "",
            &settings,
            root,
            &format!("included by {settings}"),
        );
        let strength = if sub.kind == Runnable::SpringBoot {
            STRENGTH_FRAMEWORK
        } else {
            STRENGTH_START
        };
        return Ok(Some(finish(plan, strength, src)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use crate::{analyze, AnalyzeError, AnalyzeOptions, BuildPlan, MemFs};

    const BOOT_KTS: &str =
        "plugins {\n    id(\"org.springframework.boot\") version \"3.3.0\"\n}\nversion = \"1.0\"\n";

    fn plan_in(files: &[(&str, &str)], app_dir: Option<&str>) -> Result<BuildPlan, AnalyzeError> {
        analyze(
            &MemFs::from_files(files.iter().copied()),
            &AnalyzeOptions {
                app_dir: app_dir.map(str::to_owned),
            },
        )
    }

    #[test]
    fn two_boot_subprojects_are_ambiguous_and_each_builds_through_the_root() {
        let files = [
            (
                "settings.gradle.kts",
                "include(\":services:a\", \":services:b\")\n",
            ),
            ("gradlew", "#!/bin/sh\n"),
            ("services/a/build.gradle.kts", BOOT_KTS),
            ("services/b/build.gradle.kts", BOOT_KTS),
        ];
        let err = plan_in(&files, None).unwrap_err();
        let AnalyzeError::AmbiguousApps { apps } = err else {
            panic!("{err}");
        };
        assert_eq!(apps.iter().filter(|a| a.deployable).count(), 2);
        let p = plan_in(&files, Some("services/b")).unwrap();
        assert_eq!(
            p.build.as_deref(),
            Some("../../gradlew -p ../.. :services:b:bootJar -x test --no-daemon")
        );
        assert_eq!(
            p.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar build/libs/b-1.0.jar")
        );
        let sub = p.evidence_for("subproject").unwrap();
        assert_eq!(
            (sub.source.as_deref(), sub.line),
            (Some("settings.gradle.kts"), Some(1))
        );
    }

    #[test]
    fn boot_wins_over_application_and_the_loser_is_listed() {
        let p = plan_in(
            &[
                ("settings.gradle", "rootProject.name = 'x'\ninclude 'cli'\ninclude 'web'\n"),
                ("cli/build.gradle", "plugins { id 'application' }\n"),
                (
                    "web/build.gradle",
                    "plugins {\n  id 'org.springframework.boot' version '3.2.0'\n}\nbootJar { archiveFileName = 'web.jar' }\n",
                ),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            p.build.as_deref(),
            Some("gradle :web:bootJar -x test --no-daemon")
        );
        assert_eq!(
            p.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar web/build/libs/web.jar")
        );
        assert!(p
            .alternatives
            .iter()
            .any(|a| a.field == "subproject" && a.value == ":cli"));
    }

    #[test]
    fn unknown_version_falls_back_to_the_jar_the_build_wrote() {
        let p = plan_in(
            &[
                ("settings.gradle", "include 'my app'\n"),
                (
                    "my app/build.gradle",
                    "apply plugin: 'org.springframework.boot'\n",
                ),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            p.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar $(ls 'my app'/build/libs/*.jar | grep -v plain | head -n 1)")
        );
        assert_eq!(
            p.build.as_deref(),
            Some("gradle ':my app:bootJar' -x test --no-daemon")
        );
    }

    #[test]
    fn a_runnable_root_project_stays_the_app() {
        let p = plan_in(
            &[
                (
                    "settings.gradle",
                    "rootProject.name = 'svc'\ninclude 'lib'\n",
                ),
                (
                    "build.gradle",
                    "plugins { id 'org.springframework.boot' version '3.2.0' }\nversion = '3'\n",
                ),
                ("lib/build.gradle", "plugins { id 'java-library' }\n"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            p.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar build/libs/svc-3.jar")
        );
    }

    #[test]
    fn single_project_application_plugin_uses_install_dist() {
        let p = plan_in(
            &[
                ("settings.gradle.kts", "rootProject.name = \"tool\"\n"),
                ("gradlew", ""),
                ("build.gradle.kts", "plugins {\n    application\n}\n"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            p.build.as_deref(),
            Some("./gradlew installDist -x test --no-daemon")
        );
        assert_eq!(p.start.as_deref(), Some("build/install/tool/bin/tool"));
    }

    #[test]
    fn maven_module_as_app_dir_builds_from_the_parent() {
        let files = [
            (
                "pom.xml",
                "<project><version>2</version><packaging>pom</packaging><modules>\n<module>lib</module>\n<module>api</module>\n</modules></project>\n",
            ),
            ("mvnw", ""),
            ("lib/pom.xml", "<project><artifactId>lib</artifactId></project>\n"),
            (
                "api/pom.xml",
                "<project><parent><version>2</version></parent><artifactId>api</artifactId>\n<plugin><artifactId>spring-boot-maven-plugin</artifactId></plugin></project>\n",
            ),
        ];
        let root = plan_in(&files, None).unwrap();
        assert_eq!(
            root.build.as_deref(),
            Some("./mvnw -B -DskipTests -pl api -am package")
        );
        assert_eq!(
            root.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar api/target/api-2.jar")
        );
        let p = plan_in(&files, Some("api")).unwrap();
        assert_eq!(
            p.build.as_deref(),
            Some("../mvnw -f ../pom.xml -B -DskipTests -pl api -am package")
        );
        assert_eq!(
            p.start.as_deref(),
            Some("java -Dserver.port=${PORT:-8080} -jar target/api-2.jar")
        );
        let lib = plan_in(&files, Some("lib")).unwrap_err();
        assert!(matches!(lib, AnalyzeError::Undetected { .. }), "{lib}");
    }
}
