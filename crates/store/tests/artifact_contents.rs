//! Artifact contents stored once per sha256 (migration 0010): shared between artifacts, deleted
//! with their last name, migrated from older databases byte for byte, and written by concurrent
//! transactions. Every test runs against SQLite (a temp file) and, when `TEST_DATABASE_URL` names
//! a PostgreSQL server, against a fresh database of its own there; the tests look at the tables
//! through a connection of their own.

use serde_json::json;
use sha2::{Digest, Sha256};
use slipway_core::{
    Actor, Artifact, ArtifactScope, NewService, RegeneratedArtifacts, ServiceUpdate,
};
use slipway_store::{ArtifactEdit, ArtifactUpgrade, Store, StoreError};
use sqlx::{PgPool, SqlitePool};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------
// Backends

/// The store under test and a connection of the test's own to the same database.
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
    _keep: Keep,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What must outlive the test: the temp dir, or the PostgreSQL database (dropped on drop).
type Keep = Box<dyn std::any::Any + Send>;

/// An empty database: a file in a temp dir, or a fresh PostgreSQL database (`None` when
/// `TEST_DATABASE_URL` is unset), not migrated yet.
async fn empty(backend: &str) -> Option<(String, Raw, Keep)> {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("slipway.db").display()
        );
        let raw = SqlitePool::connect(&url).await.expect("open sqlite");
        Some((url, Raw::Sqlite(raw), Box::new(dir)))
    } else {
        let db = slipway_test_support::PgDb::create().await?;
        let raw = PgPool::connect(&db.url).await.expect("open postgres");
        Some((db.url.clone(), Raw::Postgres(raw), Box::new(db)))
    }
}

async fn open(backend: &str) -> Option<Db> {
    let (url, raw, keep) = empty(backend).await?;
    let store = slipway_store::connect(&url).await.expect("open store");
    Some(Db {
        store,
        raw,
        _keep: keep,
    })
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name("sqlite").await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name("postgres").await;
                }
            )*
        }
    };
}

on_both_backends!(
    identical_files_share_one_content,
    contents_go_with_their_last_name,
    a_sha256_that_is_not_the_contents_hash_is_refused,
    a_database_from_before_0010_keeps_every_file,
    a_database_with_one_sha256_for_two_contents_is_not_upgraded,
    concurrent_writers_and_deleters_of_shared_contents,
);

impl Raw {
    /// Every stored content by sha256.
    async fn contents(&self) -> BTreeMap<String, Vec<u8>> {
        let sql = "SELECT sha256, content FROM artifact_contents";
        let rows: Vec<(String, Vec<u8>)> = match self {
            Raw::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Raw::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .expect("read artifact_contents");
        rows.into_iter().collect()
    }

    /// The sha256 every artifact row names.
    async fn named(&self) -> BTreeSet<String> {
        let sql = "SELECT DISTINCT sha256 FROM artifacts";
        let rows: Vec<String> = match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .expect("read artifacts");
        rows.into_iter().collect()
    }
}

/// The table holds exactly the contents artifacts name — none missing (the foreign key), none left
/// over — and each is stored under its own hash.
async fn assert_contents_are_exactly_the_named(db: &Db) -> BTreeMap<String, Vec<u8>> {
    let contents = db.raw.contents().await;
    assert_eq!(
        contents.keys().cloned().collect::<BTreeSet<_>>(),
        db.raw.named().await,
        "stored contents vs contents named by artifacts"
    );
    for (sha256, content) in &contents {
        assert_eq!(&sha(content), sha256);
    }
    contents
}

// ---------------------------------------------------------------------------------------------------
// Fixtures

fn actor() -> Actor {
    Actor {
        name: "admin".into(),
        remote_addr: None,
    }
}

fn sha(content: &[u8]) -> String {
    format!("{:x}", Sha256::digest(content))
}

fn artifact(scope: ArtifactScope, path: &str, content: &str) -> Artifact {
    Artifact {
        service: None,
        scope,
        path: path.into(),
        content: content.as_bytes().to_vec(),
        sha256: sha(content.as_bytes()),
        generator: "slipway-golden-paths/default@1".into(),
    }
}

const HELPERS: &str = "{{- define \"app.name\" -}}{{ .Chart.Name }}{{- end }}\n";
const MODULE: &str = "variable \"name\" {}\n";

/// A service whose chart helpers and Dockerfile are the same as every other's, and whose values
/// and Terraform name it.
fn service(name: &str) -> NewService {
    NewService {
        name: name.into(),
        team: "core".into(),
        repo_url: format!("https://git.example.com/core/{name}.git"),
        template: "default".into(),
        description: None,
        artifacts: vec![
            artifact(
                ArtifactScope::Service,
                "chart/templates/_helpers.tpl",
                HELPERS,
            ),
            artifact(ArtifactScope::Service, "Dockerfile", "FROM scratch\n"),
            artifact(
                ArtifactScope::Service,
                "chart/values.yaml",
                &format!("name: {name}\n"),
            ),
            artifact(
                ArtifactScope::Platform,
                &format!("services/{name}/main.tf"),
                &format!("module \"{name}\" {{}}\n"),
            ),
        ],
        platform_files: vec![artifact(
            ArtifactScope::Platform,
            "modules/service/main.tf",
            MODULE,
        )],
        scaffold_push: None,
    }
}

async fn register(store: &Arc<dyn Store>, name: &str) {
    store
        .register_service(service(name), &actor())
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
}

async fn content_of(
    store: &Arc<dyn Store>,
    service: &str,
    scope: ArtifactScope,
    path: &str,
) -> String {
    let a = store
        .get_artifact(service, scope, path)
        .await
        .unwrap_or_else(|e| panic!("{service}/{scope}/{path}: {e}"));
    assert_eq!(a.sha256, sha(&a.content));
    String::from_utf8(a.content).expect("utf-8")
}

// ---------------------------------------------------------------------------------------------------
// Tests

async fn identical_files_share_one_content(backend: &str) {
    let Some(db) = open(backend).await else {
        return;
    };
    register(&db.store, "api").await;
    register(&db.store, "web").await;

    // helpers, Dockerfile and the module once; values and main.tf once per service.
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert_eq!(contents.len(), 3 + 2 * 2, "{:?}", contents.keys());
    assert_eq!(contents[&sha(HELPERS.as_bytes())], HELPERS.as_bytes());

    for name in ["api", "web"] {
        let artifacts = db.store.service_artifacts(name, None).await.expect("read");
        let mut expected: Vec<Artifact> = service(name)
            .artifacts
            .into_iter()
            .map(|a| Artifact {
                service: Some(name.into()),
                ..a
            })
            .collect();
        expected.sort_by(|a, b| (a.scope, &a.path).cmp(&(b.scope, &b.path)));
        assert_eq!(artifacts, expected);
        let infos = db.store.list_artifacts(name, None).await.expect("list");
        assert_eq!(
            infos,
            expected.iter().map(Artifact::info).collect::<Vec<_>>()
        );
    }
    let platform = db.store.all_platform_artifacts().await.expect("platform");
    assert_eq!(
        platform
            .iter()
            .map(|a| (a.path.as_str(), a.content.as_slice()))
            .collect::<Vec<_>>(),
        [
            ("modules/service/main.tf", MODULE.as_bytes()),
            ("services/api/main.tf", b"module \"api\" {}\n".as_slice()),
            ("services/web/main.tf", b"module \"web\" {}\n".as_slice()),
        ]
    );
}

async fn contents_go_with_their_last_name(backend: &str) {
    let Some(db) = open(backend).await else {
        return;
    };
    let store = &db.store;
    for name in ["api", "web", "jobs"] {
        register(store, name).await;
    }
    let values = |name: &str| sha(format!("name: {name}\n").as_bytes());
    assert!(db.raw.contents().await.contains_key(&values("api")));

    // A deleted service takes its own contents along, and leaves the shared ones.
    store.delete_service("api", &actor()).await.expect("delete");
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert!(!contents.contains_key(&values("api")));
    assert!(contents.contains_key(&sha(HELPERS.as_bytes())));

    // A regeneration: the file it rewrites lets go of the old content, the file it removes too.
    let update = ServiceUpdate {
        artifacts: Some(RegeneratedArtifacts {
            writes: vec![artifact(
                ArtifactScope::Service,
                "chart/values.yaml",
                "name: web\nreplicas: 2\n",
            )],
            removes: vec![(ArtifactScope::Service, "Dockerfile".into())],
            left_as_edited: vec![],
        }),
        ..Default::default()
    };
    store
        .update_service("web", update, &actor())
        .await
        .expect("update");
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert!(!contents.contains_key(&values("web")));
    // `jobs` still names the Dockerfile.
    assert!(contents.contains_key(&sha(b"FROM scratch\n")));
    assert_eq!(
        content_of(store, "web", ArtifactScope::Service, "chart/values.yaml").await,
        "name: web\nreplicas: 2\n"
    );

    // A team's edit replaces the content its artifact names; giving it back restores it.
    let edit = |content: &str| ArtifactEdit {
        service: "jobs".into(),
        scope: ArtifactScope::Platform,
        path: "services/jobs/main.tf".into(),
        content: content.as_bytes().to_vec(),
        sha256: sha(content.as_bytes()),
        detail: json!({ "commit": "0123abcd" }),
    };
    let generated = "module \"jobs\" {}\n";
    store
        .adopt_artifact_edit(edit("module \"jobs\" { size = 2 }\n"), &actor())
        .await
        .expect("adopt");
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert!(!contents.contains_key(&sha(generated.as_bytes())));
    store
        .adopt_artifact_edit(edit(generated), &actor())
        .await
        .expect("adopt back");
    assert_contents_are_exactly_the_named(&db).await;
    assert_eq!(
        content_of(
            store,
            "jobs",
            ArtifactScope::Platform,
            "services/jobs/main.tf"
        )
        .await,
        generated
    );

    // A template upgrade of the platform-wide files, and a registration bringing a new module
    // version, each let go of the old module.
    store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: None,
                writes: vec![artifact(
                    ArtifactScope::Platform,
                    "modules/service/main.tf",
                    "# v2\n",
                )],
                removes: vec![],
                detail: json!({}),
            },
            &actor(),
        )
        .await
        .expect("upgrade");
    assert!(!assert_contents_are_exactly_the_named(&db)
        .await
        .contains_key(&sha(MODULE.as_bytes())));
    let mut v3 = service("mail");
    v3.platform_files = vec![artifact(
        ArtifactScope::Platform,
        "modules/service/main.tf",
        "# v3\n",
    )];
    store
        .register_service(v3, &actor())
        .await
        .expect("register");
    assert!(!assert_contents_are_exactly_the_named(&db)
        .await
        .contains_key(&sha(b"# v2\n")));

    // An upgrade that removes a service's file.
    store
        .upgrade_artifacts(
            ArtifactUpgrade {
                service: Some("mail".into()),
                writes: vec![],
                removes: vec![(ArtifactScope::Service, "chart/values.yaml".into())],
                detail: json!({}),
            },
            &actor(),
        )
        .await
        .expect("upgrade");
    assert!(!assert_contents_are_exactly_the_named(&db)
        .await
        .contains_key(&values("mail")));

    // The last services gone, only the platform-wide module is left.
    for name in ["web", "jobs", "mail"] {
        store.delete_service(name, &actor()).await.expect("delete");
    }
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert_eq!(contents.keys().collect::<Vec<_>>(), [&sha(b"# v3\n")]);
}

async fn a_sha256_that_is_not_the_contents_hash_is_refused(backend: &str) {
    let Some(db) = open(backend).await else {
        return;
    };
    register(&db.store, "api").await;
    // Another file's hash: accepted, this content would be served for the Dockerfiles.
    let mut lying = service("web");
    lying.artifacts[1].sha256 = sha(HELPERS.as_bytes());
    let err = db
        .store
        .register_service(lying, &actor())
        .await
        .expect_err("a wrong sha256 must be refused");
    assert!(
        matches!(&err, StoreError::ContentHashMismatch { path, .. } if path == "Dockerfile"),
        "{err:?}"
    );
    assert_not_found(db.store.get_service("web").await);

    let err = db
        .store
        .adopt_artifact_edit(
            ArtifactEdit {
                service: "api".into(),
                scope: ArtifactScope::Service,
                path: "Dockerfile".into(),
                content: b"FROM alpine\n".to_vec(),
                sha256: "0".repeat(64),
                detail: json!({}),
            },
            &actor(),
        )
        .await
        .expect_err("a wrong sha256 must be refused");
    assert!(
        matches!(err, StoreError::ContentHashMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(
        content_of(&db.store, "api", ArtifactScope::Service, "Dockerfile").await,
        "FROM scratch\n"
    );
    assert_contents_are_exactly_the_named(&db).await;
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Migration of an older database

/// The migrations of a Slipway from before 0010.
fn migrations_before_0010(backend: &str) -> sqlx::migrate::Migrator {
    let mut migrator = if backend == "sqlite" {
        sqlx::migrate!("./migrations/sqlite")
    } else {
        sqlx::migrate!("./migrations/postgres")
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 10)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(migrator.migrations.len(), 9);
    migrator
}

/// An artifact row as Slipway wrote it before 0010, content included.
struct OldRow {
    service: &'static str,
    scope: &'static str,
    path: String,
    content: Vec<u8>,
    sha256: String,
    generated_sha256: Option<String>,
}

fn old_row(service: &'static str, scope: &'static str, path: &str, content: Vec<u8>) -> OldRow {
    OldRow {
        service,
        scope,
        path: path.into(),
        sha256: sha(&content),
        content,
        generated_sha256: None,
    }
}

/// What a 10-service catalog looked like: shared files, per-service files, a platform-wide module,
/// an empty file, binary bytes, a large file and a team's edit.
fn old_catalog() -> Vec<OldRow> {
    let mut rows = vec![old_row(
        "",
        "platform",
        "modules/service/main.tf",
        MODULE.into(),
    )];
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for i in 0..10 {
        let name: &'static str = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"][i];
        rows.push(old_row(
            name,
            "service",
            "chart/templates/_helpers.tpl",
            HELPERS.into(),
        ));
        rows.push(old_row(
            name,
            "service",
            "chart/templates/big.bin",
            big.clone(),
        ));
        rows.push(old_row(name, "service", ".keep", vec![]));
        rows.push(old_row(
            name,
            "service",
            "blob",
            vec![0, 159, 146, 150, 255, i as u8],
        ));
        let mut values = format!("name: {name}\n").into_bytes();
        values.extend(std::iter::repeat_n(b'#', 20_000));
        rows.push(old_row(name, "service", "chart/values.yaml", values));
        rows.push(old_row(
            name,
            "platform",
            &format!("services/{name}/main.tf"),
            format!("module \"{name}\" {{}}\n").into_bytes(),
        ));
    }
    // s3's team edited its main.tf.
    let edited = rows
        .iter_mut()
        .find(|r| r.path == "services/s3/main.tf")
        .expect("s3 main.tf");
    edited.generated_sha256 = Some(edited.sha256.clone());
    edited.content = b"module \"s3\" { size = 2 }\n".to_vec();
    edited.sha256 = sha(&edited.content);
    rows
}

/// Creates the database of a Slipway from before 0010 holding `rows` (and their services).
async fn old_database(backend: &str, rows: &[OldRow]) -> Option<(String, Raw, Keep)> {
    let (url, raw, keep) = empty(backend).await?;
    let services: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.service)
        .filter(|s| !s.is_empty())
        .collect();
    match &raw {
        Raw::Sqlite(pool) => {
            migrations_before_0010(backend)
                .run(pool)
                .await
                .expect("migrate to 0009");
            sqlx::query("INSERT INTO teams (name, created_at) VALUES ('core', '2026-01-01T00:00:00.000000Z')")
                .execute(pool)
                .await
                .expect("team");
            for (i, s) in services.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO services (name, team, repo_url, template, created_at, updated_at) \
                     VALUES ($1, 'core', 'https://git.example.com/x.git', 'default', $2, $2)",
                )
                .bind(s)
                .bind(format!("2026-01-01T00:00:{i:02}.000000Z"))
                .execute(pool)
                .await
                .expect("service");
            }
            for r in rows {
                sqlx::query(
                    "INSERT INTO artifacts (service_name, scope, path, content, sha256, generator, generated_sha256) \
                     VALUES ($1, $2, $3, $4, $5, 'slipway-golden-paths/default@1', $6)",
                )
                .bind(r.service)
                .bind(r.scope)
                .bind(&r.path)
                .bind(&r.content)
                .bind(&r.sha256)
                .bind(&r.generated_sha256)
                .execute(pool)
                .await
                .expect("artifact");
            }
        }
        Raw::Postgres(pool) => {
            migrations_before_0010(backend)
                .run(pool)
                .await
                .expect("migrate to 0009");
            sqlx::query("INSERT INTO teams (name, created_at) VALUES ('core', now())")
                .execute(pool)
                .await
                .expect("team");
            for (i, s) in services.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO services (name, team, repo_url, template, created_at, updated_at) \
                     VALUES ($1, 'core', 'https://git.example.com/x.git', 'default', \
                             now() + make_interval(secs => $2), now())",
                )
                .bind(s)
                .bind(i as f64)
                .execute(pool)
                .await
                .expect("service");
            }
            for r in rows {
                sqlx::query(
                    "INSERT INTO artifacts (service_name, scope, path, content, sha256, generator, generated_sha256) \
                     VALUES ($1, $2, $3, $4, $5, 'slipway-golden-paths/default@1', $6)",
                )
                .bind(r.service)
                .bind(r.scope)
                .bind(&r.path)
                .bind(&r.content)
                .bind(&r.sha256)
                .bind(&r.generated_sha256)
                .execute(pool)
                .await
                .expect("artifact");
            }
        }
    }
    Some((url, raw, keep))
}

async fn sqlite_pages(raw: &Raw) -> Option<(i64, i64)> {
    match raw {
        Raw::Sqlite(pool) => Some(
            sqlx::query_as(
                "SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()",
            )
            .fetch_one(pool)
            .await
            .expect("page counts"),
        ),
        Raw::Postgres(_) => None,
    }
}

async fn a_database_from_before_0010_keeps_every_file(backend: &str) {
    let rows = old_catalog();
    let Some((url, raw, keep)) = old_database(backend, &rows).await else {
        return;
    };
    let pages_before = sqlite_pages(&raw).await;

    let store = slipway_store::connect(&url)
        .await
        .expect("open and migrate");
    let db = Db {
        store,
        raw,
        _keep: keep,
    };

    // Every file reads back byte for byte, with its hash, generator and recorded edit.
    for r in &rows {
        let (service, scope) = (r.service, r.scope.parse::<ArtifactScope>().expect("scope"));
        let artifact = if service.is_empty() {
            db.store
                .platform_files()
                .await
                .expect("platform files")
                .into_iter()
                .find(|a| a.path == r.path)
                .expect("platform file")
        } else {
            db.store
                .get_artifact(service, scope, &r.path)
                .await
                .expect("get")
        };
        assert_eq!(artifact.content, r.content, "{service}/{}", r.path);
        assert_eq!(artifact.sha256, r.sha256);
        assert_eq!(artifact.generator, "slipway-golden-paths/default@1");
    }
    let s3 = db.store.edited_artifacts(Some("s3")).await.expect("edited");
    assert_eq!(s3.len(), 1);
    assert_eq!(s3[0].generated_sha256, sha(b"module \"s3\" {}\n"));
    let infos = db.store.list_artifacts("s5", None).await.expect("list");
    assert_eq!(
        infos
            .iter()
            .map(|i| (i.path.as_str(), i.size))
            .collect::<Vec<_>>(),
        rows.iter()
            .filter(|r| r.service == "s5")
            .map(|r| ((r.scope, r.path.as_str()), r.content.len() as u64))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .map(|((_, path), size)| (path, size))
            .collect::<Vec<_>>()
    );
    let platform = db.store.all_platform_artifacts().await.expect("platform");
    assert_eq!(platform.len(), 11);
    assert_eq!(platform[1].path, "services/s0/main.tf");

    // Stored once each: shared files, and the others per service.
    let distinct: BTreeSet<&String> = rows.iter().map(|r| &r.sha256).collect();
    assert_eq!(
        assert_contents_are_exactly_the_named(&db).await.len(),
        distinct.len()
    );
    assert_eq!(distinct.len(), 1 + 3 + 10 * 3);

    // SQLite gives the old table's pages back to the file system.
    if let (Some((pages, _)), Some((pages_now, free_now))) =
        (pages_before, sqlite_pages(&db.raw).await)
    {
        assert!(
            pages_now * 3 < pages,
            "{pages} pages before, {pages_now} after"
        );
        assert_eq!(free_now, 0);
    }

    // And it goes on working: a new registration shares the migrated contents.
    register(&db.store, "new").await;
    assert_eq!(
        assert_contents_are_exactly_the_named(&db).await.len(),
        distinct.len() + 3
    );
}

async fn a_database_with_one_sha256_for_two_contents_is_not_upgraded(backend: &str) {
    let mut rows = vec![
        old_row("s0", "service", "Dockerfile", b"FROM scratch\n".to_vec()),
        old_row("s1", "service", "Dockerfile", b"FROM alpine\n".to_vec()),
    ];
    rows[1].sha256 = rows[0].sha256.clone();
    let Some((url, raw, _keep)) = old_database(backend, &rows).await else {
        return;
    };

    let err = match slipway_store::connect(&url).await {
        Ok(_) => panic!("the upgrade must stop"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("same sha256 but different contents")
            || err.contains("has the sha256 of another artifact"),
        "{err}"
    );
    // Nothing changed: the old table with both contents, no 0010.
    let sql = "SELECT content FROM artifacts ORDER BY service_name";
    let contents: Vec<Vec<u8>> = match &raw {
        Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .expect("old table");
    assert_eq!(
        contents,
        [b"FROM scratch\n".to_vec(), b"FROM alpine\n".to_vec()]
    );
    let sql = "SELECT max(version) FROM _sqlx_migrations";
    let version: i64 = match &raw {
        Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("version");
    assert_eq!(version, 9);
}

// ---------------------------------------------------------------------------------------------------
// Concurrency

/// Registrations and deletions of services that share contents, all at once: none fails, and
/// afterwards the table holds exactly what is named. On PostgreSQL these are concurrent
/// transactions; on SQLite they queue for the writer.
async fn concurrent_writers_and_deleters_of_shared_contents(backend: &str) {
    let Some(db) = open(backend).await else {
        return;
    };
    for round in 0..3 {
        for i in 0..4 {
            register(&db.store, &format!("old{round}-{i}")).await;
        }
        // A content no one has stored yet, written by every registration of this round.
        let fresh = format!("# round {round}\n");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = db.store.clone();
            let fresh = fresh.clone();
            tasks.spawn(async move {
                let mut new = service(&format!("new{round}-{i}"));
                new.artifacts
                    .push(artifact(ArtifactScope::Service, "round.txt", &fresh));
                store.register_service(new, &actor()).await.map(|_| ())
            });
        }
        for i in 0..4 {
            let store = db.store.clone();
            tasks.spawn(async move {
                store
                    .delete_service(&format!("old{round}-{i}"), &actor())
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("every write succeeds");
        }
        assert_contents_are_exactly_the_named(&db).await;
        assert_eq!(
            content_of(
                &db.store,
                &format!("new{round}-7"),
                ArtifactScope::Service,
                "round.txt"
            )
            .await,
            fresh
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL: the interleavings, one at a time

/// Waits until a backend of this database waits for a lock.
async fn until_a_transaction_waits(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no transaction waits for a lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn postgres() -> Option<(Db, PgPool)> {
    let db = open("postgres").await?;
    let Raw::Postgres(pool) = &db.raw else {
        unreachable!()
    };
    let pool = pool.clone();
    Some((db, pool))
}

/// Two transactions store the same new content: the second waits for the first and succeeds,
/// whether the first commits (the content is then there) or rolls back (the second stores it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_writers_of_one_new_content_both_succeed() {
    for commit in [true, false] {
        let Some((db, pool)) = postgres().await else {
            return;
        };
        let new = service("api");
        let helpers = &new.artifacts[0];
        let mut other = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO artifact_contents (sha256, content) VALUES ($1, $2)")
            .bind(&helpers.sha256)
            .bind(&helpers.content)
            .execute(&mut *other)
            .await
            .expect("first writer");

        let store = db.store.clone();
        let register = tokio::spawn(async move { store.register_service(new, &actor()).await });
        until_a_transaction_waits(&pool).await;
        if commit {
            other.commit().await.expect("commit");
        } else {
            other.rollback().await.expect("rollback");
        }
        register
            .await
            .expect("task")
            .expect("the second writer succeeds");
        assert_eq!(
            content_of(
                &db.store,
                "api",
                ArtifactScope::Service,
                "chart/templates/_helpers.tpl"
            )
            .await,
            HELPERS
        );
        assert_contents_are_exactly_the_named(&db).await;
    }
}

/// A deletion has locked a content its service named last, to delete it; a registration naming
/// that content meanwhile waits, then stores it again once the deletion has committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_writer_outlives_the_deletion_of_its_content() {
    let Some((db, pool)) = postgres().await else {
        return;
    };
    let mut only = service("old");
    only.artifacts
        .push(artifact(ArtifactScope::Service, "rare.txt", "rare\n"));
    db.store
        .register_service(only, &actor())
        .await
        .expect("register");
    let rare = sha(b"rare\n");

    // What `delete_service` does, stopped between its lock and its delete.
    let mut deleter = pool.begin().await.expect("begin");
    sqlx::query("DELETE FROM artifacts WHERE service_name = 'old'")
        .execute(&mut *deleter)
        .await
        .expect("delete rows");
    sqlx::query("SELECT 1 FROM artifact_contents WHERE sha256 = $1 FOR UPDATE")
        .bind(&rare)
        .execute(&mut *deleter)
        .await
        .expect("lock");

    let mut new = service("new");
    new.artifacts
        .push(artifact(ArtifactScope::Service, "rare.txt", "rare\n"));
    let store = db.store.clone();
    let register = tokio::spawn(async move { store.register_service(new, &actor()).await });
    until_a_transaction_waits(&pool).await;
    let deleted = sqlx::query(
        "DELETE FROM artifact_contents c WHERE c.sha256 = $1 \
         AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = c.sha256)",
    )
    .bind(&rare)
    .execute(&mut *deleter)
    .await
    .expect("delete content")
    .rows_affected();
    assert_eq!(deleted, 1);
    deleter.commit().await.expect("commit");

    register.await.expect("task").expect("the writer succeeds");
    assert_eq!(
        content_of(&db.store, "new", ArtifactScope::Service, "rare.txt").await,
        "rare\n"
    );
    // (The stand-in deleter let go of `old`'s other contents without deleting them.)
    let contents = db.raw.contents().await;
    assert!(contents.contains_key(&rare));
    assert!(db
        .raw
        .named()
        .await
        .iter()
        .all(|s| contents.contains_key(s)));
}

/// A registration has stored (and locked) a content and not committed; a deletion letting go of
/// that content's last other name waits for it, then sees the new name and keeps the content.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_deletion_keeps_a_content_a_writer_just_named() {
    let Some((db, pool)) = postgres().await else {
        return;
    };
    let mut only = service("old");
    only.artifacts
        .push(artifact(ArtifactScope::Service, "rare.txt", "rare\n"));
    db.store
        .register_service(only, &actor())
        .await
        .expect("register");
    let rare = sha(b"rare\n");

    // What `register_service` does, stopped after its artifact rows.
    let mut writer = pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM artifact_contents WHERE sha256 = $1 FOR KEY SHARE")
        .bind(&rare)
        .execute(&mut *writer)
        .await
        .expect("lock");
    sqlx::query(
        "INSERT INTO artifacts (service_name, scope, path, sha256, generator) \
         VALUES ('', 'platform', 'rare.txt', $1, 'test')",
    )
    .bind(&rare)
    .execute(&mut *writer)
    .await
    .expect("name it");

    let store = db.store.clone();
    let delete = tokio::spawn(async move { store.delete_service("old", &actor()).await });
    until_a_transaction_waits(&pool).await;
    writer.commit().await.expect("commit");
    delete.await.expect("task").expect("the deletion succeeds");
    assert!(assert_contents_are_exactly_the_named(&db)
        .await
        .contains_key(&rare));
}

/// Two changes lock shared contents in crossing order: another transaction holds a content the
/// upgrade lets go of (`FOR KEY SHARE`, as a writer naming it would) and then wants to delete a
/// content the upgrade has just named (`FOR UPDATE`, as a deletion letting go of it would).
/// PostgreSQL finds the deadlock and aborts the upgrade, which waited first; the store runs it
/// again, and it succeeds once the other transaction is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_change_aborted_as_a_deadlock_victim_is_run_again() {
    let Some((db, pool)) = postgres().await else {
        return;
    };
    let mut api = service("api");
    api.artifacts
        .push(artifact(ArtifactScope::Service, "a.txt", "old\n"));
    db.store
        .register_service(api, &actor())
        .await
        .expect("register api");
    // `web` names the content `api`'s upgrade will name, so that it is a committed row.
    let mut web = service("web");
    web.artifacts
        .push(artifact(ArtifactScope::Service, "a.txt", "new\n"));
    db.store
        .register_service(web, &actor())
        .await
        .expect("register web");
    let (old, new) = (sha(b"old\n"), sha(b"new\n"));

    let mut other = pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM artifact_contents WHERE sha256 = $1 FOR KEY SHARE")
        .bind(&old)
        .execute(&mut *other)
        .await
        .expect("lock the content the upgrade lets go of");

    let store = db.store.clone();
    let upgrade = tokio::spawn(async move {
        store
            .upgrade_artifacts(
                ArtifactUpgrade {
                    service: Some("api".into()),
                    writes: vec![artifact(ArtifactScope::Service, "a.txt", "new\n")],
                    removes: vec![],
                    detail: json!({}),
                },
                &actor(),
            )
            .await
    });
    // The upgrade has named `new` (FOR KEY SHARE) and waits to delete `old` (FOR UPDATE).
    until_a_transaction_waits(&pool).await;
    // Closes the cycle; PostgreSQL's deadlock check (after deadlock_timeout) aborts the upgrade's
    // transaction, which waited first, and this lock is then granted.
    sqlx::query("SELECT 1 FROM artifact_contents WHERE sha256 = $1 FOR UPDATE")
        .bind(&new)
        .execute(&mut *other)
        .await
        .expect("the other transaction is not the victim");
    other.rollback().await.expect("rollback");

    upgrade
        .await
        .expect("task")
        .expect("the upgrade, run again, succeeds");
    assert_eq!(
        content_of(&db.store, "api", ArtifactScope::Service, "a.txt").await,
        "new\n"
    );
    let contents = assert_contents_are_exactly_the_named(&db).await;
    assert!(
        !contents.contains_key(&old),
        "the unnamed content is deleted"
    );
    assert!(contents.contains_key(&new));
}
