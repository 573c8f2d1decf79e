//! `slipway catalog export` and `slipway catalog import` on the real binary, against real servers.

mod common;

use common::Server;
use std::path::Path;

/// `(name, team, repo_url, template)` of every service, sorted by name.
fn services(server: &Server) -> Vec<(String, String, String, String)> {
    let v = server
        .ok(&["-o", "json", "service", "list", "--limit", "1000"])
        .json();
    let mut list: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (f("name"), f("team"), f("repo_url"), f("template"))
        })
        .collect();
    list.sort();
    list
}

fn register(server: &Server, name: &str, team: &str, repo: &str, template: &str) {
    server.ok(&[
        "service",
        "create",
        name,
        "--team",
        team,
        "--repo-url",
        repo,
        "--template",
        template,
    ]);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn results(out: &common::Out) -> Vec<(String, String)> {
    out.json()["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entity"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn export_then_import_into_a_fresh_server_gives_the_same_services() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Server::start(&tmp.path().join("a"), &[]);
    register(
        &a,
        "web",
        "core",
        "https://github.com/org/web",
        "static-site",
    );
    register(
        &a,
        "payments",
        "core",
        "https://github.com/org/payments",
        "python-api",
    );
    register(
        &a,
        "ledger",
        "finance",
        "https://gitlab.com/fin/books/ledger",
        "default",
    );

    // A directory: per-service files and a Location over them, the same bytes every time.
    let dir = tmp.path().join("export");
    a.ok(&["catalog", "export", "--output-dir", dir.to_str().unwrap()]);
    let location = read(&dir.join("catalog-info.yaml"));
    assert!(location.contains("kind: Location"), "{location}");
    let targets: Vec<&str> = location
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    assert_eq!(
        targets,
        [
            "./ledger/catalog-info.yaml",
            "./payments/catalog-info.yaml",
            "./web/catalog-info.yaml"
        ]
    );
    let stored = |svc: &str, file: &str| {
        a.ok(&["service", "show", svc]); // exists
        let url = format!(
            "{}/api/v1/services/{svc}/artifacts/{file}?scope=service",
            a.url
        );
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
    };
    // Stored bytes, except that team core's System is written once, with payments (first by name).
    assert_eq!(
        read(&dir.join("payments/catalog-info.yaml")),
        stored("payments", "catalog-info.yaml")
    );
    assert_eq!(
        read(&dir.join("ledger/catalog-info.yaml")),
        stored("ledger", "catalog-info.yaml")
    );
    assert_eq!(
        read(&dir.join("payments/score.yaml")),
        stored("payments", "score.yaml")
    );
    let web = read(&dir.join("web/catalog-info.yaml"));
    assert!(
        web.contains("kind: Component") && !web.contains("kind: System"),
        "{web}"
    );
    assert!(read(&dir.join("payments/catalog-info.yaml")).contains("kind: System"));

    let snapshot = |d: &Path| {
        let mut files = Vec::new();
        for svc in ["", "ledger/", "payments/", "web/"] {
            for f in ["catalog-info.yaml", "score.yaml"] {
                let p = d.join(format!("{svc}{f}"));
                if p.exists() {
                    files.push((format!("{svc}{f}"), read(&p)));
                }
            }
        }
        files
    };
    let dir2 = tmp.path().join("export2");
    a.ok(&["catalog", "export", "--output-dir", dir2.to_str().unwrap()]);
    assert_eq!(snapshot(&dir), snapshot(&dir2));
    assert_eq!(snapshot(&dir).len(), 7);

    // One multi-document YAML: to a file and to standard output, identical.
    let file = tmp.path().join("all.yaml");
    a.ok(&["catalog", "export", "--output-file", file.to_str().unwrap()]);
    let stdout = a.ok(&["catalog", "export"]).stdout;
    assert_eq!(read(&file), stdout);
    assert_eq!(stdout, a.ok(&["catalog", "export"]).stdout);
    assert_eq!(stdout.matches("kind: Component").count(), 3);
    assert_eq!(stdout.matches("kind: System").count(), 2);

    // A dry run into a fresh server says what would happen and registers nothing.
    let b = Server::start(&tmp.path().join("b"), &[]);
    let out = b.ok(&[
        "-o",
        "json",
        "catalog",
        "import",
        "--dry-run",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        results(&out),
        [
            ("component:ledger".to_string(), "would-create".to_string()),
            ("system:finance".into(), "skipped".into()),
            ("component:payments".into(), "would-create".into()),
            ("system:core".into(), "skipped".into()),
            ("component:web".into(), "would-create".into()),
        ]
    );
    assert!(services(&b).is_empty());

    // The directory's Location brings every service over, with its team, repository and template.
    let out = b.ok(&[
        "catalog",
        "import",
        dir.join("catalog-info.yaml").to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("3 created"), "{}", out.all());
    assert_eq!(services(&a), services(&b));
    assert_eq!(
        services(&b)[1],
        (
            "payments".into(),
            "core".into(),
            "https://github.com/org/payments".into(),
            "python-api".into()
        )
    );
    // Imported services have no description made up from the generated one.
    let shown = b.ok(&["-o", "json", "service", "show", "payments"]).json();
    assert!(shown["description"].is_null(), "{shown}");

    // Importing again changes nothing and succeeds: the same services exist with the same repositories.
    let out = b.ok(&["catalog", "import", file.to_str().unwrap()]);
    assert!(out.stdout.contains("3 exists"), "{}", out.all());
    assert!(!out.stdout.contains("created"), "{}", out.all());
    assert_eq!(services(&a), services(&b));
    // And the second server exports the same entities.
    assert_eq!(b.ok(&["catalog", "export"]).stdout, stdout);
}

const REAL_WORLD: &str = r#"# The catalog of a company that used Backstage before Slipway.
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-team
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: checkout
spec:
  owner: group:payments-team
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  description: Takes the money
  annotations:
    backstage.io/source-location: url:https://github.com/acme/payments-api/tree/main/
    github.com/project-slug: acme/payments-api
    backstage.io/techdocs-ref: dir:.
  tags: [java]
spec:
  type: service
  lifecycle: production
  owner: group:default/payments-team
  system: checkout
  providesApis: [payments-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payments-api
spec:
  type: openapi
  lifecycle: production
  owner: payments-team
  definition:
    $text: https://github.com/acme/payments-api/blob/main/openapi.yaml
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: fraud-check
  annotations:
    backstage.io/source-location: url:https://gitlab.com/acme/risk/fraud-check/-/tree/main/service/
    slipway.dev/template: go-api
spec:
  type: service
  lifecycle: experimental
  owner: risk
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: invoices
  annotations:
    github.com/project-slug: acme/invoices
spec:
  type: website
  lifecycle: production
  owner: group:payments-team
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: money-lib
  annotations:
    github.com/project-slug: acme/money-lib
spec:
  type: library
  lifecycle: production
  owner: group:payments-team
---
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: more
spec:
  type: url
  targets:
    - ./teams/search/catalog-info.yaml
    - https://github.com/acme/other/blob/main/catalog-info.yaml
"#;

const SEARCH: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: search
  annotations:
    backstage.io/source-location: url:https://github.com/acme/search/blob/main/catalog-info.yaml
spec:
  type: service
  lifecycle: production
  owner: group:search
"#;

#[test]
fn a_real_world_backstage_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("catalog");
    std::fs::create_dir_all(dir.join("teams/search")).unwrap();
    std::fs::write(dir.join("all.yaml"), REAL_WORLD).unwrap();
    std::fs::write(dir.join("teams/search/catalog-info.yaml"), SEARCH).unwrap();
    let file = dir.join("all.yaml");
    let server = Server::start(&tmp.path().join("data"), &[]);

    let out = server.ok(&["-o", "json", "catalog", "import", file.to_str().unwrap()]);
    assert_eq!(
        results(&out),
        [
            ("group:payments-team".to_string(), "skipped".to_string()),
            ("system:checkout".into(), "skipped".into()),
            ("component:payments-api".into(), "created".into()),
            ("api:payments-api".into(), "skipped".into()),
            ("component:fraud-check".into(), "created".into()),
            ("component:invoices".into(), "created".into()),
            ("component:money-lib".into(), "skipped".into()),
            ("location:more".into(), "followed".into()),
            ("component:search".into(), "created".into()),
        ]
    );
    // Lines (1-based) of a document's first line: the one before its `kind:`.
    let line_of = |kind_line: &str, nth: usize| {
        REAL_WORLD
            .lines()
            .enumerate()
            .filter(|(_, l)| *l == kind_line)
            .nth(nth)
            .unwrap()
            .0
    };
    let v = out.json();
    let location = &v["entities"][7];
    assert_eq!(location["line"], line_of("kind: Location", 0));
    assert_eq!(location["document"], 8);
    assert!(
        location["detail"].as_str().unwrap().contains("network"),
        "{location}"
    );
    assert_eq!(v["entities"][8]["file"], "teams/search/catalog-info.yaml");
    let s = |n: &str, t: &str, r: &str, tpl: &str| (n.into(), t.into(), r.into(), tpl.into());
    assert_eq!(
        services(&server),
        [
            s(
                "fraud-check",
                "risk",
                "https://gitlab.com/acme/risk/fraud-check",
                "go-api"
            ),
            s(
                "invoices",
                "payments-team",
                "https://github.com/acme/invoices",
                "default"
            ),
            s(
                "payments-api",
                "payments-team",
                "https://github.com/acme/payments-api",
                "default"
            ),
            s(
                "search",
                "search",
                "https://github.com/acme/search",
                "default"
            ),
        ]
    );
    let shown = server
        .ok(&["-o", "json", "service", "show", "payments-api"])
        .json();
    assert_eq!(shown["description"], "Takes the money");

    // The table names each entity and where it is; run again, everything already exists.
    let out = server.ok(&["catalog", "import", file.to_str().unwrap()]);
    let at = format!("all.yaml:{} (document 3)", line_of("kind: Component", 0));
    assert!(
        out.stdout.lines().any(|l| l.starts_with("exists ")
            && l.contains(" component:payments-api ")
            && l.contains(&at)
            && l.contains("already registered with https://github.com/acme/payments-api")),
        "{at}\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("4 exists"), "{}", out.stdout);
}

const BROKEN: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good
  annotations:
    github.com/project-slug: acme/good
spec:
  owner: group:core
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: mine
  annotations:
    github.com/project-slug: acme/mine
spec:
  owner: user:default/jdoe
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: Billing_Service
spec:
  owner: group:core
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: cobol
  annotations:
    github.com/project-slug: acme/cobol
    slipway.dev/template: cobol-batch
spec:
  owner: group:core
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: taken
  annotations:
    backstage.io/source-location: url:https://github.com/acme/taken-too
spec:
  owner: group:core
"#;

#[test]
fn invalid_entities_are_reported_and_the_others_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    register(
        &server,
        "taken",
        "core",
        "https://github.com/acme/taken",
        "default",
    );
    let file = tmp.path().join("broken.yaml");
    std::fs::write(&file, BROKEN).unwrap();

    // The dry run finds every problem, the server-side template check included, and registers nothing.
    let out = server.cli(&[
        "-o",
        "json",
        "catalog",
        "import",
        "--dry-run",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 6, "{}", out.all());
    assert_eq!(
        results(&out),
        [
            ("component:good".to_string(), "would-create".to_string()),
            ("component:mine".into(), "invalid".into()),
            ("component:Billing_Service".into(), "invalid".into()),
            ("component:cobol".into(), "invalid".into()),
            ("component:taken".into(), "conflict".into()),
        ]
    );
    assert_eq!(services(&server).len(), 1);

    let out = server.cli(&["-o", "json", "catalog", "import", file.to_str().unwrap()]);
    // Invalid entities weigh more than a conflict: exit 6.
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(
        out.stderr.contains("4 of 5 entities were not registered"),
        "{}",
        out.stderr
    );
    let v = out.json();
    let e = &v["entities"];
    assert_eq!(e[0]["result"], "created");
    let errors = |i: usize| -> Vec<(String, String)> {
        e[i]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["field"].as_str().unwrap().into(),
                    x["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(e[1]["line"], 10);
    assert_eq!(e[1]["document"], 2);
    let mine = errors(1);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].0, "spec.owner");
    assert!(
        mine[0].1.contains("user") && mine[0].1.contains("group:"),
        "{mine:?}"
    );
    let billing: Vec<String> = errors(2).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        billing,
        [
            "metadata.name",
            "metadata.annotations.backstage.io/source-location"
        ]
    );
    // The server refused the template; its field error is named as the annotation to fix.
    let cobol = errors(3);
    assert_eq!(cobol[0].0, "metadata.annotations.slipway.dev/template");
    assert!(cobol[0].1.contains("python-api"), "{cobol:?}");
    assert_eq!(e[4]["result"], "conflict");
    assert!(
        e[4]["detail"]
            .as_str()
            .unwrap()
            .contains("https://github.com/acme/taken "),
        "{}",
        e[4]
    );
    let names: Vec<String> = services(&server).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["good", "taken"]);

    // The table puts each field under its entity.
    let out = server.cli(&["catalog", "import", file.to_str().unwrap()]);
    assert_eq!(out.code, 6);
    assert!(out.stdout.contains("\n    spec.owner: "), "{}", out.stdout);
    assert!(out.stdout.contains("1 exists"), "{}", out.stdout);

    // Only a conflict left: exit 5.
    let only_conflict = tmp.path().join("conflict.yaml");
    std::fs::write(&only_conflict, BROKEN.split("---\n").last().unwrap()).unwrap();
    let out = server.cli(&["catalog", "import", only_conflict.to_str().unwrap()]);
    assert_eq!(out.code, 5, "{}", out.all());
}

#[test]
fn a_yaml_syntax_error_changes_nothing_and_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let good = BROKEN.split("---\n").next().unwrap();
    let file = tmp.path().join("bad.yaml");
    std::fs::write(
        &file,
        format!("{good}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [oops\n"),
    )
    .unwrap();
    let out = server.cli(&["catalog", "import", file.to_str().unwrap()]);
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(
        out.stderr.contains("YAML syntax error at line 14"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was registered"),
        "{}",
        out.stderr
    );
    assert!(services(&server).is_empty());

    let out = server.cli(&[
        "catalog",
        "import",
        tmp.path().join("absent.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    let out = server.cli(&[
        "catalog",
        "export",
        "--output-dir",
        "x",
        "--output-file",
        "y",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
}

#[test]
fn a_large_import_and_export_wait_out_the_rate_limit() {
    let tmp = tempfile::tempdir().unwrap();
    // 10 requests per second with a burst of 40: 45 registrations would be refused (429) part of
    // the way without waiting.
    let server = Server::start(&tmp.path().join("data"), &["--rate-limit", "10"]);
    let file = tmp.path().join("many.yaml");
    let mut text = String::new();
    for i in 0..45 {
        text.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i:02}\n  annotations:\n    github.com/project-slug: org/svc-{i}\nspec:\n  owner: group:team-{}\n",
            i % 4
        ));
    }
    std::fs::write(&file, text).unwrap();
    let out = server.ok(&["catalog", "import", file.to_str().unwrap()]);
    assert!(out.stdout.ends_with("45 created\n"), "{}", out.all());
    let out = server.ok(&["catalog", "export"]);
    assert_eq!(out.stdout.matches("kind: Component").count(), 45);
    assert_eq!(out.stdout.matches("kind: System").count(), 4);
}
