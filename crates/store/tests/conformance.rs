//! The conformance suite: every test runs against SQLite (a temp file) and, when `TEST_DATABASE_URL`
//! names a PostgreSQL server, against a fresh database of its own there.
//!
//! `cargo test -p slipway-store sqlite::` or `postgres::` runs one backend.

use chrono::SubsecRound;
use sha2::{Digest, Sha256};
use slipway_core::{
    Actor, Artifact, ArtifactScope, AuditQuery, DeploymentQuery, DeploymentSource,
    DeploymentStatus, IdempotencyKey, Instance, Job, JobOutcome, JobStatus, LogStream, Membership,
    NewDeployment, NewJob, NewLogLine, NewService, NewToken, NewUser, NewestOf,
    RegeneratedArtifacts, Release, Role, RuntimeSample, ServiceQuery, ServiceUpdate, TokenOwner,
    TransitionUpdate, DEPLOY_QUEUE,
};
use slipway_store::{Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------------
// Backends

/// A store on a SQLite file in a temp dir removed on drop.
struct SqliteDb {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl SqliteDb {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("slipway.db").display());
        let store = slipway_store::connect(&url)
            .await
            .expect("open sqlite store");
        assert_eq!(store.backend(), "sqlite");
        Self { store, _dir: dir }
    }
}

/// A store on a fresh database of its own on the server `TEST_DATABASE_URL` names.
async fn postgres_store() -> Option<(slipway_test_support::PgDb, Arc<dyn Store>)> {
    let db = slipway_test_support::PgDb::create().await?;
    let store = slipway_store::connect(&db.url)
        .await
        .expect("open postgres store");
    assert_eq!(store.backend(), "postgres");
    Some((db, store))
}

/// Stamps out `sqlite::<name>` and `postgres::<name>` for each test function `<name>(Arc<dyn Store>)`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::SqliteDb::new().await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some((_db, store)) = super::postgres_store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

conformance!(
    dev_environment_exists_by_default,
    environments_lifecycle,
    teams,
    register_get_and_round_trip,
    duplicate_registration_conflicts,
    failed_registration_writes_nothing,
    list_services_filters_search_and_paging,
    search_escapes_like_wildcards,
    concurrent_distinct_registrations,
    concurrent_same_name_registrations,
    artifacts_listing_and_lookup,
    platform_files_are_upserted,
    all_platform_artifacts_order,
    update_service,
    delete_service_removes_artifacts_and_deployments,
    deployments,
    newest_deployments_per_service_and_environment,
    audit_log,
    deployment_enqueues_its_job_and_records_transitions,
    idempotency_keys_return_the_same_deployment,
    jobs_lease_heartbeat_and_takeover,
    jobs_retry_fail_and_give_up,
    jobs_sharing_a_key_run_one_at_a_time_in_order,
    concurrent_workers_claim_each_job_once,
    cancel_queued_and_running_deployments,
    logs_releases_variables_and_instances,
    cancelled_writes_leave_the_store_usable,
    runtime_samples_are_kept_and_pruned,
    users_memberships_and_tokens,
    a_deploy_job_whose_workers_keep_dying_fails_its_deployment,
    service_uids_are_allocated_once_and_never_shared,
    scaffold_pushes_are_recorded_audited_and_counted,
    a_scaffold_push_is_pending_from_its_registration_on,
);

// ---------------------------------------------------------------------------------------------------
// Fixtures

fn alice() -> Actor {
    Actor {
        name: "alice".into(),
        remote_addr: Some("192.0.2.7".into()),
    }
}

fn artifact(scope: ArtifactScope, path: &str, content: &str) -> Artifact {
    Artifact {
        service: None,
        scope,
        path: path.into(),
        content: content.as_bytes().to_vec(),
        sha256: format!("{:x}", Sha256::digest(content.as_bytes())),
        generator: "slipway-golden-paths/default@1".into(),
    }
}

fn service(name: &str, team: &str) -> NewService {
    NewService {
        name: name.into(),
        team: team.into(),
        repo_url: format!("https://git.example.com/{team}/{name}.git"),
        template: "default".into(),
        description: Some(format!("the {name} service")),
        artifacts: vec![
            artifact(
                ArtifactScope::Service,
                "Jenkinsfile",
                &format!("pipeline {{ // {name} }}"),
            ),
            artifact(
                ArtifactScope::Platform,
                &format!("services/{name}/main.tf"),
                &format!("module \"{name}\" {{}}"),
            ),
            artifact(ArtifactScope::Service, "Dockerfile", "FROM scratch\n"),
            artifact(
                ArtifactScope::Platform,
                &format!("services/{name}/k8s.yaml"),
                "kind: Deployment\n",
            ),
        ],
        platform_files: vec![artifact(
            ArtifactScope::Platform,
            "modules/service/main.tf",
            "# shared module v1\n",
        )],
        scaffold_push: None,
    }
}

fn bare_service(name: &str, team: &str) -> NewService {
    NewService {
        artifacts: vec![],
        platform_files: vec![],
        ..service(name, team)
    }
}

fn deployment(service: &str, environment: &str) -> NewDeployment {
    NewDeployment {
        service: service.into(),
        environment: environment.into(),
        source: DeploymentSource::Build {
            git_ref: Some("main".into()),
        },
        trigger: "api".into(),
        replicas: 1,
        resources: Default::default(),
        idempotency: None,
    }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| name(i).to_string()).collect()
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, expected_kind: &str) {
    match result {
        Err(StoreError::NotFound { kind, .. }) if kind == expected_kind => {}
        other => panic!("expected NotFound {{ kind: {expected_kind:?} }}, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, expected_kind: &str) {
    match result {
        Err(StoreError::Conflict { kind, .. }) if kind == expected_kind => {}
        other => panic!("expected Conflict {{ kind: {expected_kind:?} }}, got {other:?}"),
    }
}

async fn audit_actions(store: &Arc<dyn Store>, query: AuditQuery) -> Vec<String> {
    let page = store
        .list_audit(&AuditQuery {
            limit: 1000,
            ..query
        })
        .await
        .expect("list audit");
    names(&page.items, |e| &e.action)
}

// ---------------------------------------------------------------------------------------------------
// Environments and teams

async fn dev_environment_exists_by_default(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    let envs = store.list_environments().await.expect("list environments");
    assert_eq!(names(&envs, |e| &e.name), ["dev"]);
    let dev = store.get_environment("dev").await.expect("get dev");
    assert_eq!(dev, envs[0]);
    assert!(store.list_teams().await.expect("list teams").is_empty());
    assert_eq!(
        store
            .list_services(&ServiceQuery::default())
            .await
            .expect("list")
            .total,
        0
    );
}

async fn environments_lifecycle(store: Arc<dyn Store>) {
    let actor = alice();
    let staging = store
        .create_environment("staging", &actor)
        .await
        .expect("create staging");
    assert_eq!(staging.name, "staging");
    // Created later than dev but named before it: dev still comes first.
    store
        .create_environment("a-test", &actor)
        .await
        .expect("create a-test");
    store
        .create_environment("prod", &actor)
        .await
        .expect("create prod");
    assert_conflict(
        store.create_environment("staging", &actor).await,
        "environment",
    );

    let envs = store.list_environments().await.expect("list");
    assert_eq!(
        names(&envs, |e| &e.name),
        ["dev", "staging", "a-test", "prod"]
    );
    assert_eq!(
        store.get_environment("staging").await.expect("get"),
        staging
    );
    assert_not_found(store.get_environment("nope").await, "environment");

    store
        .delete_environment("a-test", &actor)
        .await
        .expect("delete a-test");
    assert_not_found(store.get_environment("a-test").await, "environment");
    assert_not_found(
        store.delete_environment("a-test", &actor).await,
        "environment",
    );

    match store.delete_environment("dev", &actor).await {
        Err(StoreError::Refused(why)) => assert!(why.contains("dev"), "{why}"),
        other => panic!("deleting dev: expected Refused, got {other:?}"),
    }

    store
        .register_service(bare_service("api", "core"), &actor)
        .await
        .expect("register");
    store
        .create_deployment(deployment("api", "prod"), &actor)
        .await
        .map(|(d, _)| d)
        .expect("deploy");
    match store.delete_environment("prod", &actor).await {
        Err(StoreError::Refused(why)) => assert!(why.contains("1 deployment"), "{why}"),
        other => panic!("deleting an environment in use: expected Refused, got {other:?}"),
    }
    assert!(store.get_environment("prod").await.is_ok());
    // Once the deployments are gone (with their service), it can go.
    store
        .delete_service("api", &actor)
        .await
        .expect("delete service");
    store
        .delete_environment("prod", &actor)
        .await
        .expect("delete prod");

    let q = AuditQuery {
        object_kind: Some("environment".into()),
        ..Default::default()
    };
    assert_eq!(
        audit_actions(&store, q).await,
        [
            "environment.delete",
            "environment.delete",
            "environment.create",
            "environment.create",
            "environment.create"
        ]
    );
}

async fn teams(store: Arc<dyn Store>) {
    let actor = alice();
    let payments = store.create_team("payments", &actor).await.expect("create");
    store.create_team("core", &actor).await.expect("create");
    assert_conflict(store.create_team("payments", &actor).await, "team");
    assert_eq!(store.get_team("payments").await.expect("get"), payments);
    assert_not_found(store.get_team("nope").await, "team");
    assert_eq!(
        names(&store.list_teams().await.expect("list"), |t| &t.name),
        ["core", "payments"]
    );
    let q = AuditQuery {
        object_kind: Some("team".into()),
        object_name: Some("payments".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await, ["team.create"]);
}

// ---------------------------------------------------------------------------------------------------
// Services

async fn register_get_and_round_trip(store: Arc<dyn Store>) {
    let actor = alice();
    let registered = store
        .register_service(service("billing-api", "payments"), &actor)
        .await
        .expect("register");
    assert_eq!(registered.name, "billing-api");
    assert_eq!(registered.team, "payments");
    assert_eq!(registered.template, "default");
    assert_eq!(
        registered.description.as_deref(),
        Some("the billing-api service")
    );
    assert_eq!(registered.created_at, registered.updated_at);
    // What the write returned is exactly what a read returns, timestamps included.
    assert_eq!(
        store.get_service("billing-api").await.expect("get"),
        registered
    );
    let page = store
        .list_services(&ServiceQuery::default())
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0], registered);
    assert_not_found(store.get_service("nope").await, "service");

    // The team was created with it.
    let team = store.get_team("payments").await.expect("team auto-created");
    assert_eq!(team.created_at, registered.created_at);

    let audit = store
        .list_audit(&AuditQuery::default())
        .await
        .expect("audit");
    assert_eq!(
        names(&audit.items, |e| &e.action),
        ["service.register", "team.create"]
    );
    let event = &audit.items[0];
    assert_eq!(
        (event.object_kind.as_str(), event.object_name.as_str()),
        ("service", "billing-api")
    );
    assert_eq!(event.actor, "alice");
    assert_eq!(event.remote_addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(event.result, "success");
    assert_eq!(event.at, registered.created_at);
    assert_eq!(event.detail["team"], "payments");
    assert_eq!(event.detail["artifacts"], 4);

    // A second service of an existing team does not recreate it.
    store
        .register_service(bare_service("billing-worker", "payments"), &actor)
        .await
        .expect("register");
    let q = AuditQuery {
        action: Some("team.create".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await.len(), 1);
    assert_eq!(store.list_teams().await.expect("teams").len(), 1);
}

async fn duplicate_registration_conflicts(store: Arc<dyn Store>) {
    let actor = alice();
    let first = store
        .register_service(service("api", "core"), &actor)
        .await
        .expect("register");
    let err = store
        .register_service(service("api", "core"), &actor)
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::Conflict { kind: "service", name } if name == "api"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "service \"api\" already exists");
    assert_eq!(store.get_service("api").await.expect("get"), first);
}

async fn failed_registration_writes_nothing(store: Arc<dyn Store>) {
    let actor = alice();
    store
        .register_service(service("api", "core"), &actor)
        .await
        .expect("register");
    let audit_before = store
        .list_audit(&AuditQuery::default())
        .await
        .expect("audit")
        .total;
    let platform_before = store.platform_files().await.expect("platform files");

    let mut again = service("api", "newteam");
    again
        .artifacts
        .push(artifact(ArtifactScope::Service, "extra.txt", "extra"));
    again.platform_files = vec![
        artifact(
            ArtifactScope::Platform,
            "modules/service/main.tf",
            "# shared module v2\n",
        ),
        artifact(ArtifactScope::Platform, "modules/new/main.tf", "# new\n"),
    ];
    assert_conflict(store.register_service(again, &actor).await, "service");

    assert_not_found(store.get_team("newteam").await, "team");
    assert_eq!(
        store
            .list_audit(&AuditQuery::default())
            .await
            .expect("audit")
            .total,
        audit_before
    );
    assert_eq!(
        store.platform_files().await.expect("platform files"),
        platform_before
    );
    assert_eq!(
        store
            .list_artifacts("api", None)
            .await
            .expect("artifacts")
            .len(),
        4
    );
    assert_eq!(store.get_service("api").await.expect("get").team, "core");
}

async fn list_services_filters_search_and_paging(store: Arc<dyn Store>) {
    let actor = alice();
    let mut all = Vec::new();
    for i in 0..12 {
        let name = format!("svc-{i:02}-{}", if i % 3 == 0 { "api" } else { "worker" });
        let team = if i % 2 == 0 { "even" } else { "odd" };
        let mut new = bare_service(&name, team);
        if i >= 9 {
            new.template = "python".into();
        }
        all.push(
            store
                .register_service(new, &actor)
                .await
                .expect("register")
                .name,
        );
    }
    let list = |q: ServiceQuery| {
        let store = store.clone();
        async move { store.list_services(&q).await.expect("list") }
    };

    let page = list(ServiceQuery::default()).await;
    assert_eq!(page.total, 12);
    assert_eq!(names(&page.items, |s| &s.name), all, "sorted by name");

    let page = list(ServiceQuery {
        team: Some("even".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(page.total, 6);
    assert!(page.items.iter().all(|s| s.team == "even"));
    let page = list(ServiceQuery {
        team: Some("eve".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(page.total, 0, "team is an exact match");

    let page = list(ServiceQuery {
        template: Some("python".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        names(&page.items, |s| &s.name),
        ["svc-09-api", "svc-10-worker", "svc-11-worker"]
    );

    let page = list(ServiceQuery {
        search: Some("API".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        names(&page.items, |s| &s.name),
        ["svc-00-api", "svc-03-api", "svc-06-api", "svc-09-api"]
    );
    let page = list(ServiceQuery {
        search: Some("1-w".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        names(&page.items, |s| &s.name),
        ["svc-01-worker", "svc-11-worker"]
    );

    let q = ServiceQuery {
        search: Some("api".into()),
        team: Some("odd".into()),
        ..Default::default()
    };
    let page = list(q).await;
    assert_eq!(
        (page.total, names(&page.items, |s| &s.name)),
        (2, vec!["svc-03-api".into(), "svc-09-api".into()])
    );

    // Paging: the total counts every match, the page holds the slice.
    let page = list(ServiceQuery {
        limit: 5,
        offset: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (page.total, names(&page.items, |s| &s.name)),
        (12, all[0..5].to_vec())
    );
    let page = list(ServiceQuery {
        limit: 5,
        offset: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (page.total, names(&page.items, |s| &s.name)),
        (12, all[10..].to_vec())
    );
    let page = list(ServiceQuery {
        limit: 5,
        offset: 100,
        ..Default::default()
    })
    .await;
    assert_eq!((page.total, page.items.len()), (12, 0));
    let page = list(ServiceQuery {
        team: Some("odd".into()),
        limit: 2,
        offset: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (page.total, names(&page.items, |s| &s.name)),
        (6, vec!["svc-05-worker".into(), "svc-07-worker".into()])
    );
    let page = list(ServiceQuery {
        offset: u64::MAX,
        ..Default::default()
    })
    .await;
    assert_eq!((page.total, page.items.len()), (12, 0));
}

async fn search_escapes_like_wildcards(store: Arc<dyn Store>) {
    // The store does not validate names (the caller does), so it can hold these.
    let actor = alice();
    for name in ["a_b", "axb", "a%b", "a\\b", "plain"] {
        store
            .register_service(bare_service(name, "t"), &actor)
            .await
            .expect("register");
    }
    let search = |s: &str| {
        let (store, q) = (
            store.clone(),
            ServiceQuery {
                search: Some(s.into()),
                ..Default::default()
            },
        );
        async move {
            names(&store.list_services(&q).await.expect("list").items, |s| {
                &s.name
            })
        }
    };
    assert_eq!(search("_").await, ["a_b"]);
    assert_eq!(search("a_b").await, ["a_b"]);
    assert_eq!(search("%").await, ["a%b"]);
    assert_eq!(search("\\").await, ["a\\b"]);
    assert_eq!(
        search("").await.len(),
        5,
        "an empty search matches everything"
    );
}

async fn concurrent_distinct_registrations(store: Arc<dyn Store>) {
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        // Every registration names the same new team: its concurrent auto-creation must not fail.
        tasks.spawn(async move {
            store
                .register_service(service(&format!("svc-{i:02}"), "shared"), &alice())
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("register");
    }
    let page = store
        .list_services(&ServiceQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.total, 50);
    assert_eq!(page.items.len(), 50);
    assert_eq!(
        names(&store.list_teams().await.expect("teams"), |t| &t.name),
        ["shared"]
    );
    let q = AuditQuery {
        action: Some("team.create".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await.len(), 1);
    let q = AuditQuery {
        action: Some("service.register".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await.len(), 50);
    assert_eq!(
        store.platform_files().await.expect("platform files").len(),
        1
    );
    // Each service's platform artifacts, plus the one shared module.
    assert_eq!(
        store.all_platform_artifacts().await.expect("all").len(),
        101
    );
}

async fn concurrent_same_name_registrations(store: Arc<dyn Store>) {
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .register_service(service("contested", &format!("team-{i:02}")), &alice())
                .await
        });
    }
    let (mut winners, mut conflicts) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(service) => winners.push(service),
            Err(StoreError::Conflict {
                kind: "service", ..
            }) => conflicts += 1,
            Err(other) => panic!("a losing registration must get Conflict, got {other:?}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 49));
    let winner = &winners[0];
    assert_eq!(store.get_service("contested").await.expect("get"), *winner);
    // The losers' teams were rolled back with them.
    assert_eq!(
        names(&store.list_teams().await.expect("teams"), |t| &t.name),
        [winner.team.as_str()]
    );
    let q = AuditQuery {
        action: Some("service.register".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await.len(), 1);
    assert_eq!(
        store
            .list_artifacts("contested", None)
            .await
            .expect("artifacts")
            .len(),
        4
    );
}

// ---------------------------------------------------------------------------------------------------
// Artifacts

async fn artifacts_listing_and_lookup(store: Arc<dyn Store>) {
    let actor = alice();
    let new = service("api", "core");
    store
        .register_service(new.clone(), &actor)
        .await
        .expect("register");
    store
        .register_service(bare_service("empty", "core"), &actor)
        .await
        .expect("register");

    let infos = store.list_artifacts("api", None).await.expect("list");
    let listed: Vec<(ArtifactScope, &str)> =
        infos.iter().map(|a| (a.scope, a.path.as_str())).collect();
    assert_eq!(
        listed,
        [
            (ArtifactScope::Platform, "services/api/k8s.yaml"),
            (ArtifactScope::Platform, "services/api/main.tf"),
            (ArtifactScope::Service, "Dockerfile"),
            (ArtifactScope::Service, "Jenkinsfile"),
        ]
    );
    let dockerfile = new
        .artifacts
        .iter()
        .find(|a| a.path == "Dockerfile")
        .expect("fixture");
    assert_eq!(infos[2], dockerfile.info());

    let service_only = store
        .list_artifacts("api", Some(ArtifactScope::Service))
        .await
        .expect("list");
    assert_eq!(
        names(&service_only, |a| &a.path),
        ["Dockerfile", "Jenkinsfile"]
    );
    let platform_only = store
        .service_artifacts("api", Some(ArtifactScope::Platform))
        .await
        .expect("list");
    assert_eq!(
        names(&platform_only, |a| &a.path),
        ["services/api/k8s.yaml", "services/api/main.tf"]
    );
    assert!(platform_only
        .iter()
        .all(|a| a.service.as_deref() == Some("api")));
    let with_content = store.service_artifacts("api", None).await.expect("list");
    assert_eq!(
        with_content.iter().map(Artifact::info).collect::<Vec<_>>(),
        infos
    );

    let got = store
        .get_artifact("api", ArtifactScope::Service, "Dockerfile")
        .await
        .expect("get");
    assert_eq!(
        got,
        Artifact {
            service: Some("api".into()),
            ..dockerfile.clone()
        }
    );
    assert_not_found(
        store
            .get_artifact("api", ArtifactScope::Platform, "Dockerfile")
            .await,
        "artifact",
    );
    assert_not_found(
        store
            .get_artifact("api", ArtifactScope::Service, "nope")
            .await,
        "artifact",
    );
    assert_not_found(
        store
            .get_artifact("nope", ArtifactScope::Service, "Dockerfile")
            .await,
        "artifact",
    );

    assert!(store
        .list_artifacts("empty", None)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .service_artifacts("empty", Some(ArtifactScope::Platform))
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_artifacts("api", Some(ArtifactScope::Service))
        .await
        .is_ok());
    assert_not_found(store.list_artifacts("nope", None).await, "service");
    assert_not_found(store.service_artifacts("nope", None).await, "service");
}

async fn platform_files_are_upserted(store: Arc<dyn Store>) {
    let actor = alice();
    store
        .register_service(service("one", "core"), &actor)
        .await
        .expect("register");
    let files = store.platform_files().await.expect("platform files");
    assert_eq!(
        files,
        [artifact(
            ArtifactScope::Platform,
            "modules/service/main.tf",
            "# shared module v1\n"
        )]
    );

    let mut two = service("two", "core");
    let mut v2 = artifact(
        ArtifactScope::Platform,
        "modules/service/main.tf",
        "# shared module v2\n",
    );
    v2.generator = "slipway-golden-paths/default@2".into();
    let extra = artifact(
        ArtifactScope::Platform,
        "modules/network/main.tf",
        "# network\n",
    );
    two.platform_files = vec![v2.clone(), extra.clone()];
    store.register_service(two, &actor).await.expect("register");
    assert_eq!(
        store.platform_files().await.expect("platform files"),
        [extra.clone(), v2.clone()],
        "sorted by path"
    );

    // The same content again changes nothing.
    let mut three = service("three", "core");
    three.platform_files = vec![v2.clone()];
    store
        .register_service(three, &actor)
        .await
        .expect("register");
    assert_eq!(
        store.platform_files().await.expect("platform files"),
        [extra, v2]
    );
    // Platform-wide files belong to no service.
    assert_not_found(store.list_artifacts("", None).await, "service");
}

async fn all_platform_artifacts_order(store: Arc<dyn Store>) {
    let actor = alice();
    // Registered in this order, which is not name order.
    store
        .register_service(service("zeta", "core"), &actor)
        .await
        .expect("register");
    store
        .register_service(service("alpha", "core"), &actor)
        .await
        .expect("register");
    store
        .register_service(bare_service("nothing", "core"), &actor)
        .await
        .expect("register");

    let all = store.all_platform_artifacts().await.expect("all");
    let listed: Vec<(Option<&str>, &str)> = all
        .iter()
        .map(|a| (a.service.as_deref(), a.path.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (None, "modules/service/main.tf"),
            (Some("zeta"), "services/zeta/k8s.yaml"),
            (Some("zeta"), "services/zeta/main.tf"),
            (Some("alpha"), "services/alpha/k8s.yaml"),
            (Some("alpha"), "services/alpha/main.tf"),
        ]
    );
    assert!(all.iter().all(|a| a.scope == ArtifactScope::Platform));
}

// ---------------------------------------------------------------------------------------------------
// Updates and deletion

async fn update_service(store: Arc<dyn Store>) {
    let actor = alice();
    let before = store
        .register_service(service("api", "core"), &actor)
        .await
        .expect("register");

    let update = ServiceUpdate {
        team: Some("platform".into()),
        repo_url: Some("https://git.example.com/platform/api.git".into()),
        description: Some(None),
        artifacts: Some(RegeneratedArtifacts {
            writes: vec![artifact(
                ArtifactScope::Service,
                "Dockerfile",
                "FROM alpine\n",
            )],
            removes: vec![(ArtifactScope::Service, "Jenkinsfile".into())],
            left_as_edited: vec![],
        }),
    };
    let after = store
        .update_service("api", update, &actor)
        .await
        .expect("update");
    assert_eq!(after.name, "api");
    assert_eq!(after.team, "platform");
    assert_eq!(after.repo_url, "https://git.example.com/platform/api.git");
    assert_eq!(after.description, None);
    assert_eq!(after.template, before.template);
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(store.get_service("api").await.expect("get"), after);
    store.get_team("platform").await.expect("new team created");

    // The files given are written, those removed go, the others stay.
    let infos = store.list_artifacts("api", None).await.expect("artifacts");
    assert_eq!(
        names(&infos, |a| &a.path),
        [
            "services/api/k8s.yaml",
            "services/api/main.tf",
            "Dockerfile"
        ]
    );
    let got = store
        .get_artifact("api", ArtifactScope::Service, "Dockerfile")
        .await
        .expect("get");
    assert_eq!(got.content, b"FROM alpine\n");

    // Only what is given changes.
    let update = ServiceUpdate {
        description: Some(Some("described".into())),
        ..Default::default()
    };
    let again = store
        .update_service("api", update, &actor)
        .await
        .expect("update");
    assert_eq!(
        (again.team.as_str(), again.description.as_deref()),
        ("platform", Some("described"))
    );
    assert_eq!(
        store
            .list_artifacts("api", None)
            .await
            .expect("artifacts")
            .len(),
        3
    );
    // An existing team is fine too.
    let update = ServiceUpdate {
        team: Some("core".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .update_service("api", update, &actor)
            .await
            .expect("update")
            .team,
        "core"
    );

    assert_not_found(
        store
            .update_service("nope", ServiceUpdate::default(), &actor)
            .await,
        "service",
    );
    let q = AuditQuery {
        object_kind: Some("service".into()),
        object_name: Some("api".into()),
        ..Default::default()
    };
    assert_eq!(
        audit_actions(&store, q).await,
        [
            "service.update",
            "service.update",
            "service.update",
            "service.register"
        ]
    );
    let q = AuditQuery {
        action: Some("service.update".into()),
        limit: 1,
        offset: 2,
        ..Default::default()
    };
    let first_update = &store.list_audit(&q).await.expect("audit").items[0];
    assert_eq!(first_update.detail["team"], "platform");
    assert_eq!(first_update.detail["artifacts"], 1);
    assert_eq!(
        first_update.detail["removed"],
        serde_json::json!(["service/Jenkinsfile"])
    );
    assert_eq!(first_update.detail["conflicts"], serde_json::json!([]));
    assert_eq!(first_update.detail["description"], serde_json::Value::Null);
}

async fn delete_service_removes_artifacts_and_deployments(store: Arc<dyn Store>) {
    let actor = alice();
    store
        .register_service(service("api", "core"), &actor)
        .await
        .expect("register");
    store
        .register_service(service("web", "core"), &actor)
        .await
        .expect("register");
    let gone = store
        .create_deployment(deployment("api", "dev"), &actor)
        .await
        .map(|(d, _)| d)
        .expect("deploy");
    let kept = store
        .create_deployment(deployment("web", "dev"), &actor)
        .await
        .map(|(d, _)| d)
        .expect("deploy");

    store.delete_service("api", &actor).await.expect("delete");
    assert_not_found(store.get_service("api").await, "service");
    assert_not_found(store.list_artifacts("api", None).await, "service");
    assert_not_found(
        store
            .get_artifact("api", ArtifactScope::Service, "Dockerfile")
            .await,
        "artifact",
    );
    assert_not_found(store.get_deployment(&gone.id).await, "deployment");
    assert_eq!(
        store.latest_deployment("api", None).await.expect("latest"),
        None
    );
    assert_not_found(store.delete_service("api", &actor).await, "service");

    // Other services, their deployments and platform-wide files stay.
    assert_eq!(store.get_deployment(&kept.id).await.expect("get"), kept);
    assert_eq!(
        store
            .list_artifacts("web", None)
            .await
            .expect("artifacts")
            .len(),
        4
    );
    assert_eq!(
        store.platform_files().await.expect("platform files").len(),
        1
    );
    let all = store.all_platform_artifacts().await.expect("all");
    assert!(all.iter().all(|a| a.service.as_deref() != Some("api")));
    store.get_team("core").await.expect("the team stays");

    let q = AuditQuery {
        action: Some("service.delete".into()),
        ..Default::default()
    };
    let events = store.list_audit(&q).await.expect("audit").items;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].object_name, "api");
    assert_eq!(events[0].detail["deployments"], 1);
    assert_eq!(events[0].detail["artifacts"], 4);
}

// ---------------------------------------------------------------------------------------------------
// Deployments

/// `newest_of` keeps only the newest deployment of each group before the other filters apply, so
/// "whose newest deployment is CANCELLED" does not match a service with an older cancelled one.
async fn newest_deployments_per_service_and_environment(store: Arc<dyn Store>) {
    let actor = alice();
    store.create_environment("prod", &actor).await.expect("env");
    for (name, team) in [("api", "core"), ("web", "core"), ("db", "data")] {
        store
            .register_service(bare_service(name, team), &actor)
            .await
            .expect("register");
    }
    let mut d = Vec::new();
    for (service, env) in [
        ("api", "dev"),
        ("api", "prod"),
        ("web", "dev"),
        ("api", "dev"),
        ("db", "dev"),
        ("web", "dev"),
    ] {
        let created = store
            .create_deployment(deployment(service, env), &actor)
            .await
            .map(|(d, _)| d)
            .expect("deploy");
        d.push(created.id);
    }
    for i in [3, 2] {
        let cancelled = store
            .cancel_deployment(&d[i], &actor)
            .await
            .expect("cancel");
        assert_eq!(cancelled.status, DeploymentStatus::Cancelled);
    }
    let list = |q: DeploymentQuery| {
        let store = store.clone();
        async move {
            let page = store.list_deployments(&q).await.expect("list");
            (page.total, names(&page.items, |d| &d.id))
        }
    };
    let ids = |is: &[usize]| is.iter().map(|&i| d[i].clone()).collect::<Vec<_>>();

    let per_env = DeploymentQuery {
        newest_of: Some(NewestOf::ServiceEnvironment),
        ..Default::default()
    };
    assert_eq!(list(per_env.clone()).await, (4, ids(&[5, 4, 3, 1])));
    let per_service = DeploymentQuery {
        newest_of: Some(NewestOf::Service),
        ..Default::default()
    };
    assert_eq!(list(per_service.clone()).await, (3, ids(&[5, 4, 3])));
    // d[2] is cancelled too, but web/dev has a newer deployment.
    let cancelled = DeploymentQuery {
        status: Some(DeploymentStatus::Cancelled),
        ..per_service.clone()
    };
    assert_eq!(list(cancelled).await, (1, ids(&[3])));
    let queued = DeploymentQuery {
        status: Some(DeploymentStatus::Queued),
        ..per_env.clone()
    };
    assert_eq!(list(queued).await, (3, ids(&[5, 4, 1])));
    let paged = DeploymentQuery {
        limit: 2,
        offset: 1,
        ..per_env.clone()
    };
    assert_eq!(list(paged).await, (4, ids(&[4, 3])));
    let env = DeploymentQuery {
        environment: Some("prod".into()),
        ..per_env.clone()
    };
    assert_eq!(list(env).await, (1, ids(&[1])));

    let of_team = DeploymentQuery {
        services: Some(ServiceQuery {
            team: Some("core".into()),
            ..Default::default()
        }),
        ..per_service.clone()
    };
    assert_eq!(list(of_team).await, (2, ids(&[5, 3])));
    // The search is a substring, with LIKE's wildcards taken literally.
    for (search, expected) in [("A", ids(&[3])), ("%", vec![]), ("e", ids(&[5]))] {
        let q = DeploymentQuery {
            services: Some(ServiceQuery {
                search: Some(search.into()),
                ..Default::default()
            }),
            ..per_service.clone()
        };
        assert_eq!(list(q).await.1, expected, "search {search:?}");
    }
    let no_service = DeploymentQuery {
        services: Some(ServiceQuery {
            team: Some("nobody".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(list(no_service).await, (0, vec![]));
}

async fn deployments(store: Arc<dyn Store>) {
    let actor = alice();
    store.create_environment("prod", &actor).await.expect("env");
    store
        .register_service(bare_service("api", "core"), &actor)
        .await
        .expect("register");
    store
        .register_service(bare_service("web", "core"), &actor)
        .await
        .expect("register");

    let first = store
        .create_deployment(deployment("api", "dev"), &actor)
        .await
        .map(|(d, _)| d)
        .expect("deploy");
    assert_eq!(first.status, DeploymentStatus::Queued);
    assert_eq!(first.status_before_destroy, None);
    assert_eq!(
        (first.service.as_str(), first.environment.as_str()),
        ("api", "dev")
    );
    assert_eq!(
        (first.git_ref.as_deref(), first.trigger.as_str()),
        (Some("main"), "api")
    );
    assert_eq!(first.created_at, first.updated_at);
    let id = uuid::Uuid::parse_str(&first.id).expect("uuid id");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(store.get_deployment(&first.id).await.expect("get"), first);
    assert_not_found(store.get_deployment("nope").await, "deployment");

    assert_not_found(
        store
            .create_deployment(deployment("nope", "dev"), &actor)
            .await
            .map(|(d, _)| d),
        "service",
    );
    assert_not_found(
        store
            .create_deployment(deployment("api", "nope"), &actor)
            .await
            .map(|(d, _)| d),
        "environment",
    );

    let mut created = vec![first.clone()];
    for (service, env) in [
        ("api", "prod"),
        ("web", "dev"),
        ("api", "dev"),
        ("web", "prod"),
        ("api", "prod"),
    ] {
        let mut new = deployment(service, env);
        new.source = DeploymentSource::Build { git_ref: None };
        new.trigger = "cli".into();
        created.push(
            store
                .create_deployment(new, &actor)
                .await
                .map(|(d, _)| d)
                .expect("deploy"),
        );
    }
    let newest_first: Vec<String> = created.iter().rev().map(|d| d.id.clone()).collect();

    let page = store
        .list_deployments(&DeploymentQuery::default())
        .await
        .expect("list");
    assert_eq!(page.total, 6);
    assert_eq!(names(&page.items, |d| &d.id), newest_first);
    assert_eq!(page.items.last(), Some(&first));

    let q = DeploymentQuery {
        service: Some("api".into()),
        ..Default::default()
    };
    let page = store.list_deployments(&q).await.expect("list");
    assert_eq!(page.total, 4);
    assert!(page.items.iter().all(|d| d.service == "api"));
    let q = DeploymentQuery {
        service: Some("api".into()),
        environment: Some("prod".into()),
        ..Default::default()
    };
    let page = store.list_deployments(&q).await.expect("list");
    assert_eq!(
        names(&page.items, |d| &d.id),
        [created[5].id.clone(), created[1].id.clone()]
    );
    let q = DeploymentQuery {
        environment: Some("dev".into()),
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    let page = store.list_deployments(&q).await.expect("list");
    assert_eq!(
        (page.total, names(&page.items, |d| &d.id)),
        (3, vec![created[2].id.clone(), created[0].id.clone()])
    );
    let q = DeploymentQuery {
        status: Some(DeploymentStatus::Queued),
        ..Default::default()
    };
    assert_eq!(store.list_deployments(&q).await.expect("list").total, 6);
    let q = DeploymentQuery {
        status: Some(DeploymentStatus::Failed),
        ..Default::default()
    };
    let page = store.list_deployments(&q).await.expect("list");
    assert_eq!((page.total, page.items.len()), (0, 0));

    assert_eq!(
        store.latest_deployment("api", None).await.expect("latest"),
        Some(created[5].clone())
    );
    assert_eq!(
        store
            .latest_deployment("api", Some("dev"))
            .await
            .expect("latest"),
        Some(created[3].clone())
    );
    assert_eq!(
        store
            .latest_deployment("web", Some("prod"))
            .await
            .expect("latest"),
        Some(created[4].clone())
    );
    assert_eq!(
        store
            .latest_deployment("web", Some("staging"))
            .await
            .expect("latest"),
        None
    );
    assert_eq!(
        store.latest_deployment("nope", None).await.expect("latest"),
        None
    );

    let q = AuditQuery {
        object_kind: Some("deployment".into()),
        object_name: Some(first.id.clone()),
        ..Default::default()
    };
    let events = store.list_audit(&q).await.expect("audit").items;
    assert_eq!(names(&events, |e| &e.action), ["deployment.create"]);
    assert_eq!(events[0].detail["service"], "api");
    assert_eq!(events[0].detail["environment"], "dev");
    assert_eq!(events[0].detail["ref"], "main");
    let q = AuditQuery {
        action: Some("deployment.create".into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_audit(&q).await.expect("audit").total,
        6,
        "failed creations are not audited"
    );
}

// ---------------------------------------------------------------------------------------------------
// Audit

async fn audit_log(store: Arc<dyn Store>) {
    let bob = Actor {
        name: "bob".into(),
        remote_addr: None,
    };
    store.create_team("core", &bob).await.expect("team");
    store.create_environment("prod", &bob).await.expect("env");
    store
        .register_service(bare_service("api", "core"), &bob)
        .await
        .expect("register");
    store
        .update_service("api", ServiceUpdate::default(), &bob)
        .await
        .expect("update");
    let deployed = store
        .create_deployment(deployment("api", "prod"), &bob)
        .await
        .map(|(d, _)| d)
        .expect("deploy");
    store.delete_service("api", &bob).await.expect("delete");
    store.create_environment("tmp", &bob).await.expect("env");
    store.delete_environment("tmp", &bob).await.expect("env");

    let page = store
        .list_audit(&AuditQuery::default())
        .await
        .expect("audit");
    assert_eq!(page.total, 8);
    assert_eq!(
        names(&page.items, |e| &e.action),
        [
            "environment.delete",
            "environment.create",
            "service.delete",
            "deployment.create",
            "service.update",
            "service.register",
            "environment.create",
            "team.create",
        ]
    );
    let ids: Vec<i64> = page.items.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(page.items.windows(2).all(|w| w[0].at >= w[1].at));
    assert!(page
        .items
        .iter()
        .all(|e| e.actor == "bob" && e.remote_addr.is_none() && e.result == "success"));
    assert_eq!(page.items[3].object_name, deployed.id);
    assert_eq!(page.items[3].at, deployed.created_at);

    let q = AuditQuery {
        object_kind: Some("service".into()),
        ..Default::default()
    };
    assert_eq!(
        audit_actions(&store, q).await,
        ["service.delete", "service.update", "service.register"]
    );
    let q = AuditQuery {
        object_kind: Some("environment".into()),
        object_name: Some("prod".into()),
        ..Default::default()
    };
    assert_eq!(audit_actions(&store, q).await, ["environment.create"]);
    let q = AuditQuery {
        action: Some("environment.create".into()),
        ..Default::default()
    };
    let page = store.list_audit(&q).await.expect("audit");
    let objects: BTreeSet<&str> = page.items.iter().map(|e| e.object_name.as_str()).collect();
    assert_eq!(objects, BTreeSet::from(["prod", "tmp"]));

    let q = AuditQuery {
        limit: 3,
        offset: 3,
        ..Default::default()
    };
    let page = store.list_audit(&q).await.expect("audit");
    assert_eq!(page.total, 8);
    assert_eq!(
        names(&page.items, |e| &e.action),
        ["deployment.create", "service.update", "service.register"]
    );
}

// ---------------------------------------------------------------------------------------------------
// The deployment engine: transitions, idempotency, jobs, logs, releases, variables, instances

const LONG: Duration = Duration::from_secs(3600);

async fn deployable(store: &Arc<dyn Store>) {
    store
        .register_service(bare_service("api", "core"), &alice())
        .await
        .expect("register");
}

async fn deploy_job_of(store: &Arc<dyn Store>, id: &str) -> Job {
    store
        .latest_job_for(id)
        .await
        .expect("job lookup")
        .expect("a job")
}

async fn deployment_enqueues_its_job_and_records_transitions(store: Arc<dyn Store>) {
    deployable(&store).await;
    let (d, replayed) = store
        .create_deployment(deployment("api", "dev"), &alice())
        .await
        .expect("deploy");
    assert!(!replayed);
    assert_eq!(d.reason.as_deref(), Some("queued: build ref \"main\""));
    let job = deploy_job_of(&store, &d.id).await;
    assert_eq!(
        (job.kind.as_str(), job.queue.as_str(), job.status),
        ("deploy", DEPLOY_QUEUE, JobStatus::Queued)
    );
    assert_eq!(job.concurrency_key.as_deref(), Some("deploy:api/dev"));
    assert_eq!(job.payload["deployment_id"], d.id.as_str());

    let moved = store
        .transition_deployment(
            &d.id,
            DeploymentStatus::Analyzing,
            "cloning",
            Default::default(),
        )
        .await
        .expect("move");
    assert_eq!(moved.status, DeploymentStatus::Analyzing);
    assert_eq!(moved.reason.as_deref(), Some("cloning"));
    match store
        .transition_deployment(&d.id, DeploymentStatus::Exposed, "skip", Default::default())
        .await
    {
        Err(StoreError::Refused(msg)) => assert!(msg.contains("ANALYZING"), "{msg}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    let built = store
        .transition_deployment(
            &d.id,
            DeploymentStatus::Building,
            "building abc",
            TransitionUpdate {
                release_id: Some("r1".into()),
                commit_sha: Some("abc".into()),
                url: None,
            },
        )
        .await
        .expect("move");
    assert_eq!(
        (built.release_id.as_deref(), built.commit_sha.as_deref()),
        (Some("r1"), Some("abc"))
    );
    // Steps through several states at once; a step the machine forbids changes nothing.
    match store
        .transition_deployment_through(
            &d.id,
            &[
                (DeploymentStatus::Failed, "boom".into()),
                (DeploymentStatus::Exposed, "nope".into()),
            ],
        )
        .await
    {
        Err(StoreError::Refused(_)) => {}
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(
        store.get_deployment(&d.id).await.expect("get").status,
        DeploymentStatus::Building
    );
    let failed = store
        .transition_deployment_through(&d.id, &[(DeploymentStatus::Failed, "boom".into())])
        .await
        .expect("fail");
    let destroyed = store
        .transition_deployment(
            &d.id,
            DeploymentStatus::Destroyed,
            "gone",
            Default::default(),
        )
        .await
        .expect("destroy");
    assert_eq!(destroyed.status_before_destroy, Some(failed.status));
    let events = store.deployment_events(&d.id).await.expect("events");
    let statuses: Vec<_> = events.iter().map(|e| (e.seq, e.status)).collect();
    use DeploymentStatus::*;
    assert_eq!(
        statuses,
        [
            (1, Queued),
            (2, Analyzing),
            (3, Building),
            (4, Failed),
            (5, Destroyed)
        ]
    );
    assert_eq!(events[3].reason, "boom");
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    assert_not_found(store.deployment_events("nope").await, "deployment");
}

async fn idempotency_keys_return_the_same_deployment(store: Arc<dyn Store>) {
    deployable(&store).await;
    let keyed = |scope: &str, key: &str, fingerprint: &str| NewDeployment {
        idempotency: Some(IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
            fingerprint: fingerprint.into(),
        }),
        ..deployment("api", "dev")
    };
    let (first, replayed) = store
        .create_deployment(keyed("alice POST /d", "k1", "f1"), &alice())
        .await
        .expect("deploy");
    assert!(!replayed);
    let (again, replayed) = store
        .create_deployment(keyed("alice POST /d", "k1", "f1"), &alice())
        .await
        .expect("replay");
    assert!(replayed);
    assert_eq!(again, first);
    match store
        .create_deployment(keyed("alice POST /d", "k1", "other body"), &alice())
        .await
    {
        Err(StoreError::IdempotencyMismatch(k)) => assert_eq!(k, "k1"),
        other => panic!("expected IdempotencyMismatch, got {other:?}"),
    }
    let (other_scope, _) = store
        .create_deployment(keyed("bob POST /d", "k1", "f1"), &alice())
        .await
        .expect("deploy");
    assert_ne!(other_scope.id, first.id);

    // Concurrent retries of one request make one deployment.
    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        let new = keyed("carol POST /d", "k2", "f2");
        tasks.spawn(async move { store.create_deployment(new, &alice()).await });
    }
    let mut ids = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        ids.insert(r.expect("task").expect("deploy").0.id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let all = store
        .list_deployments(&DeploymentQuery::default())
        .await
        .expect("list");
    assert_eq!(all.total, 3);
}

fn job(key: Option<&str>, max_attempts: i32) -> NewJob {
    NewJob {
        queue: "test".into(),
        kind: "noop".into(),
        subject: "s".into(),
        payload: serde_json::json!({ "n": 1 }),
        concurrency_key: key.map(String::from),
        max_attempts,
    }
}

async fn jobs_lease_heartbeat_and_takeover(store: Arc<dyn Store>) {
    let id = store.enqueue_job(job(None, 3)).await.expect("enqueue");
    assert!(store
        .claim_job(&["other"], "w1", LONG)
        .await
        .expect("claim")
        .is_none());
    let claimed = store
        .claim_job(&["test"], "w1", LONG)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!((claimed.id, claimed.attempts), (id, 1));
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.payload, serde_json::json!({ "n": 1 }));
    assert!(store
        .claim_job(&["test"], "w2", LONG)
        .await
        .expect("claim")
        .is_none());
    assert_eq!(
        store.heartbeat_job(id, "w1", LONG).await.expect("hb"),
        Some(false)
    );
    assert_eq!(store.heartbeat_job(id, "w2", LONG).await.expect("hb"), None);

    // w1 stops heartbeating: its lease runs out and w2 takes the job over.
    assert_eq!(
        store
            .heartbeat_job(id, "w1", Duration::ZERO)
            .await
            .expect("hb"),
        Some(false)
    );
    let taken = store
        .claim_job(&["test"], "w2", LONG)
        .await
        .expect("claim")
        .expect("taken over");
    assert_eq!((taken.id, taken.attempts), (id, 2));
    assert_eq!(taken.lease_owner.as_deref(), Some("w2"));
    assert_eq!(store.heartbeat_job(id, "w1", LONG).await.expect("hb"), None);
    assert!(!store
        .finish_job(id, "w1", JobOutcome::Succeeded)
        .await
        .expect("finish"));
    assert!(store
        .finish_job(id, "w2", JobOutcome::Succeeded)
        .await
        .expect("finish"));
    let done = store.get_job(id).await.expect("get");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.lease_owner, None);
    assert!(store
        .claim_job(&["test"], "w2", LONG)
        .await
        .expect("claim")
        .is_none());
}

async fn jobs_retry_fail_and_give_up(store: Arc<dyn Store>) {
    let id = store.enqueue_job(job(None, 2)).await.expect("enqueue");
    store
        .claim_job(&["test"], "w", LONG)
        .await
        .expect("claim")
        .expect("job");
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(store
        .finish_job(
            id,
            "w",
            JobOutcome::Retry {
                at: later,
                error: "timeout".into()
            }
        )
        .await
        .expect("retry"));
    let queued = store.get_job(id).await.expect("get");
    assert_eq!(queued.status, JobStatus::Queued);
    assert_eq!(queued.last_error.as_deref(), Some("timeout"));
    assert!(
        store
            .claim_job(&["test"], "w", LONG)
            .await
            .expect("claim")
            .is_none(),
        "not before its time"
    );

    // A job whose worker keeps dying is given up once its attempts are used.
    let dies = store.enqueue_job(job(None, 1)).await.expect("enqueue");
    store
        .claim_job(&["test"], "w", Duration::ZERO)
        .await
        .expect("claim")
        .expect("job");
    assert!(store
        .claim_job(&["test"], "w2", LONG)
        .await
        .expect("claim")
        .is_none());
    let gone = store.get_job(dies).await.expect("get");
    assert_eq!(gone.status, JobStatus::Failed);
    assert!(
        gone.last_error.as_deref().unwrap_or("").contains("lease"),
        "{gone:?}"
    );

    let permanent = store.enqueue_job(job(None, 5)).await.expect("enqueue");
    store
        .claim_job(&["test"], "w", LONG)
        .await
        .expect("claim")
        .expect("job");
    store
        .finish_job(
            permanent,
            "w",
            JobOutcome::Failed {
                error: "bad input".into(),
            },
        )
        .await
        .expect("fail");
    let failed = store.get_job(permanent).await.expect("get");
    assert_eq!(
        (failed.status, failed.last_error.as_deref()),
        (JobStatus::Failed, Some("bad input"))
    );
}

async fn jobs_sharing_a_key_run_one_at_a_time_in_order(store: Arc<dyn Store>) {
    let a1 = store.enqueue_job(job(Some("a"), 3)).await.expect("enqueue");
    let a2 = store.enqueue_job(job(Some("a"), 3)).await.expect("enqueue");
    let b1 = store.enqueue_job(job(Some("b"), 3)).await.expect("enqueue");
    let first = store.claim_job(&["test"], "w1", LONG).await.expect("claim");
    assert_eq!(first.map(|j| j.id), Some(a1));
    let second = store.claim_job(&["test"], "w2", LONG).await.expect("claim");
    assert_eq!(second.map(|j| j.id), Some(b1), "a2 waits behind a1");
    assert!(store
        .claim_job(&["test"], "w3", LONG)
        .await
        .expect("claim")
        .is_none());
    // A retried a1 still goes before a2.
    store
        .finish_job(
            a1,
            "w1",
            JobOutcome::Retry {
                at: chrono::Utc::now() - chrono::Duration::seconds(1),
                error: "transient".into(),
            },
        )
        .await
        .expect("retry");
    let again = store.claim_job(&["test"], "w3", LONG).await.expect("claim");
    assert_eq!(again.map(|j| (j.id, j.attempts)), Some((a1, 2)));
    assert!(store
        .finish_job(a1, "w3", JobOutcome::Succeeded)
        .await
        .expect("finish"));
    let next = store.claim_job(&["test"], "w1", LONG).await.expect("claim");
    assert_eq!(next.map(|j| j.id), Some(a2));
}

async fn concurrent_workers_claim_each_job_once(store: Arc<dyn Store>) {
    for _ in 0..40 {
        store.enqueue_job(job(None, 3)).await.expect("enqueue");
    }
    let mut tasks = JoinSet::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(j) = store
                .claim_job(&["test"], &worker, LONG)
                .await
                .expect("claim")
            {
                assert!(store
                    .finish_job(j.id, &worker, JobOutcome::Succeeded)
                    .await
                    .expect("finish"));
                mine.push(j.id);
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.expect("task"));
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (40, 40));
}

async fn cancel_queued_and_running_deployments(store: Arc<dyn Store>) {
    deployable(&store).await;
    let (queued, _) = store
        .create_deployment(deployment("api", "dev"), &alice())
        .await
        .expect("deploy");
    let cancelled = store
        .cancel_deployment(&queued.id, &alice())
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, DeploymentStatus::Cancelled);
    assert_eq!(
        deploy_job_of(&store, &queued.id).await.status,
        JobStatus::Cancelled
    );
    match store.cancel_deployment(&queued.id, &alice()).await {
        Err(StoreError::Refused(msg)) => assert!(msg.contains("CANCELLED"), "{msg}"),
        other => panic!("expected Refused, got {other:?}"),
    }

    let (running, _) = store
        .create_deployment(deployment("api", "dev"), &alice())
        .await
        .expect("deploy");
    let job = store
        .claim_job(&[DEPLOY_QUEUE], "w", LONG)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(job.subject, running.id);
    let still = store
        .cancel_deployment(&running.id, &alice())
        .await
        .expect("cancel");
    assert_eq!(still.status, DeploymentStatus::Queued, "the worker ends it");
    assert_eq!(
        store.heartbeat_job(job.id, "w", LONG).await.expect("hb"),
        Some(true)
    );

    let destroyed = store
        .request_destroy(&queued.id, &alice())
        .await
        .expect("destroy");
    assert_eq!(destroyed.status, DeploymentStatus::Cancelled);
    let destroy = deploy_job_of(&store, &queued.id).await;
    assert_eq!(destroy.kind, "destroy");
    let actions = audit_actions(&store, AuditQuery::default()).await;
    assert!(actions.contains(&"deployment.cancel".to_string()));
    assert!(actions.contains(&"deployment.destroy".to_string()));
}

async fn logs_releases_variables_and_instances(store: Arc<dyn Store>) {
    deployable(&store).await;
    let (d, _) = store
        .create_deployment(deployment("api", "dev"), &alice())
        .await
        .expect("deploy");
    let line = |s: &str| NewLogLine {
        at: chrono::Utc::now(),
        stream: LogStream::Stdout,
        line: s.into(),
    };
    store
        .append_logs(&d.id, &[line("one"), line("two")])
        .await
        .expect("append");
    let many: Vec<_> = (0..2500).map(|i| line(&format!("l{i}"))).collect();
    store.append_logs(&d.id, &many).await.expect("append many");
    let first = store.deployment_logs(&d.id, 0, 3).await.expect("logs");
    assert_eq!(
        first
            .iter()
            .map(|l| (l.seq, l.line.as_str()))
            .collect::<Vec<_>>(),
        [(1, "one"), (2, "two"), (3, "l0")]
    );
    let tail = store.deployment_logs(&d.id, 2500, 100).await.expect("logs");
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[1].seq, 2502);
    assert_eq!(tail[1].line, "l2499");

    let mut variables = std::collections::BTreeMap::new();
    variables.insert("GREETING".to_string(), "hello 'world'".to_string());
    variables.insert("EMPTY".to_string(), String::new());
    store
        .set_variables("api", "dev", &variables, &alice())
        .await
        .expect("set");
    assert_eq!(
        store.get_variables("api", "dev").await.expect("get"),
        variables
    );
    assert!(store
        .get_variables("api", "prod")
        .await
        .expect("get")
        .is_empty());
    assert_not_found(
        store
            .set_variables("nope", "dev", &variables, &alice())
            .await,
        "service",
    );
    assert_not_found(
        store
            .set_variables("api", "nope", &variables, &alice())
            .await,
        "environment",
    );
    store
        .set_variables("api", "dev", &Default::default(), &alice())
        .await
        .expect("clear");
    assert!(store
        .get_variables("api", "dev")
        .await
        .expect("get")
        .is_empty());

    let release = Release {
        id: "r1".into(),
        service: "api".into(),
        environment: "dev".into(),
        deployment_id: d.id.clone(),
        commit_sha: "0123abcd".into(),
        plan: serde_json::json!({ "language": "python", "start": "python3 app.py" }),
        variables: variables.clone(),
        created_at: chrono::Utc::now().trunc_subsecs(6),
        healthy_at: None,
    };
    store.create_release(&release).await.expect("release");
    assert_eq!(store.get_release("r1").await.expect("get"), release);
    store.mark_release_healthy("r1").await.expect("healthy");
    let healthy = store.get_release("r1").await.expect("get");
    assert!(healthy.healthy_at.is_some());
    let r2 = Release {
        id: "r2".into(),
        created_at: release.created_at + chrono::Duration::seconds(1),
        ..release.clone()
    };
    store.create_release(&r2).await.expect("release");
    let listed: Vec<_> = store
        .list_releases("api", "dev")
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, ["r2", "r1"]);
    assert_not_found(store.get_release("nope").await, "release");

    let instance = Instance {
        service: "api".into(),
        environment: "dev".into(),
        release_id: "r1".into(),
        slot: 0,
        pid: 4242,
        pid_start: 99,
        port: 40001,
        state: "starting".into(),
        started_at: chrono::Utc::now().trunc_subsecs(6),
    };
    store.put_instance(&instance).await.expect("put");
    let serving = Instance {
        state: "serving".into(),
        ..instance.clone()
    };
    store.put_instance(&serving).await.expect("update");
    assert_eq!(
        store
            .list_instances(Some(("api", "dev")))
            .await
            .expect("list"),
        std::slice::from_ref(&serving)
    );
    assert!(store
        .list_instances(Some(("api", "prod")))
        .await
        .expect("list")
        .is_empty());
    store
        .delete_instance("api", "dev", "r1", 0)
        .await
        .expect("delete");
    assert!(store.list_instances(None).await.expect("list").is_empty());
}

/// A write whose future is dropped part-way (a client that hangs up, an aborted worker) must not
/// leave the connection inside a transaction.
async fn cancelled_writes_leave_the_store_usable(store: Arc<dyn Store>) {
    for i in 0..400u64 {
        let s = store.clone();
        let task = tokio::spawn(async move { s.enqueue_job(job(None, 1)).await });
        // Abort after a varying number of scheduler turns, landing at different points of the write.
        std::thread::sleep(Duration::from_micros(i % 400));
        task.abort();
        let _ = task.await;
    }
    tokio::time::timeout(Duration::from_secs(10), store.enqueue_job(job(None, 1)))
        .await
        .expect("a write after cancelled writes does not hang")
        .expect("a write after cancelled writes succeeds");
}

async fn runtime_samples_are_kept_and_pruned(store: Arc<dyn Store>) {
    deployable(&store).await;
    let t0 = chrono::Utc::now().trunc_subsecs(6) - chrono::Duration::minutes(10);
    let sample = |minutes: i64, requests: i64| RuntimeSample {
        service: "api".into(),
        environment: "dev".into(),
        at: t0 + chrono::Duration::minutes(minutes),
        instances: 2,
        cpu_percent: 12.5,
        memory_bytes: 50 << 20,
        requests,
        errors: 1,
        latency_p50_ms: Some(1.5),
        latency_p99_ms: None,
    };
    let samples: Vec<_> = (0..5).map(|m| sample(m * 2, m * 10)).collect();
    store.record_samples(&samples).await.expect("record");
    // A sample of an unknown service is dropped, not an error (it may have just been deleted).
    let mut ghost = sample(1, 1);
    ghost.service = "ghost".into();
    store.record_samples(&[ghost]).await.expect("record ghost");
    let all = store
        .runtime_samples("api", "dev", t0)
        .await
        .expect("samples");
    assert_eq!(all, samples);
    let recent = store
        .runtime_samples("api", "dev", t0 + chrono::Duration::minutes(5))
        .await
        .expect("samples");
    assert_eq!(recent.len(), 2);
    let pruned = store
        .prune_samples(t0 + chrono::Duration::minutes(3))
        .await
        .expect("prune");
    assert_eq!(pruned, 2);
    assert_eq!(
        store
            .runtime_samples("api", "dev", t0)
            .await
            .expect("samples")
            .len(),
        3
    );
}

async fn users_memberships_and_tokens(store: Arc<dyn Store>) {
    let actor = alice();
    store.create_team("core", &actor).await.expect("team");
    let u = store
        .create_user(
            NewUser {
                name: "bob".into(),
                email: Some("bob@example.com".into()),
                password_hash: Some("$argon2id$x".into()),
                admin: false,
            },
            &actor,
        )
        .await
        .expect("user");
    assert_eq!(u.name, "bob");
    assert_conflict(
        store
            .create_user(
                NewUser {
                    name: "bob".into(),
                    email: None,
                    password_hash: None,
                    admin: true,
                },
                &actor,
            )
            .await,
        "user",
    );
    store
        .set_membership("bob", "core", Some(Role::TeamMember), &actor)
        .await
        .expect("member");
    store
        .set_membership("bob", "core", Some(Role::TeamMaintainer), &actor)
        .await
        .expect("promote");
    assert_not_found(
        store
            .set_membership("bob", "ghost", Some(Role::Viewer), &actor)
            .await,
        "team",
    );
    let bob = store.get_user("bob").await.expect("get");
    assert_eq!(
        bob.memberships,
        [Membership {
            team: "core".into(),
            role: Role::TeamMaintainer
        }]
    );
    assert_eq!(
        store.password_hash("bob").await.expect("hash").as_deref(),
        Some("$argon2id$x")
    );
    store.ensure_user("carol").await.expect("ensure");
    store.ensure_user("carol").await.expect("ensure again");
    store
        .replace_memberships(
            "carol",
            &[
                Membership {
                    team: "core".into(),
                    role: Role::Viewer,
                },
                Membership {
                    team: "ghost".into(),
                    role: Role::Viewer,
                },
            ],
        )
        .await
        .expect("replace");
    assert_eq!(
        store
            .get_user("carol")
            .await
            .expect("get")
            .memberships
            .len(),
        1
    );
    assert_eq!(store.list_users().await.expect("list").len(), 2);

    let t = store
        .create_token(
            NewToken {
                id: "tok1".into(),
                token_hash: "h1".into(),
                name: "ci".into(),
                owner: TokenOwner::Team {
                    team: "core".into(),
                    role: Role::TeamMember,
                },
                expires_at: None,
            },
            &actor,
        )
        .await
        .expect("token");
    assert_eq!(
        store.token_by_hash("h1").await.expect("find"),
        Some(t.clone())
    );
    assert_eq!(store.token_by_hash("nope").await.expect("find"), None);
    assert_not_found(
        store
            .create_token(
                NewToken {
                    id: "tok2".into(),
                    token_hash: "h2".into(),
                    name: "x".into(),
                    owner: TokenOwner::User {
                        user: "ghost".into(),
                    },
                    expires_at: None,
                },
                &actor,
            )
            .await,
        "user",
    );
    let revoked = store.revoke_token("tok1", &actor).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    assert!(store
        .token_by_hash("h1")
        .await
        .expect("find")
        .unwrap()
        .revoked_at
        .is_some());
    assert_eq!(store.list_tokens().await.expect("list").len(), 1);
    assert_not_found(store.revoke_token("nope", &actor).await, "token");
}

async fn a_deploy_job_whose_workers_keep_dying_fails_its_deployment(store: Arc<dyn Store>) {
    deployable(&store).await;
    let (d, _) = store
        .create_deployment(deployment("api", "dev"), &alice())
        .await
        .expect("deploy");
    for _ in 0..5 {
        let job = store
            .claim_job(&[DEPLOY_QUEUE], "w", Duration::ZERO)
            .await
            .expect("claim")
            .expect("job");
        assert_eq!(job.subject, d.id);
    }
    assert!(store
        .claim_job(&[DEPLOY_QUEUE], "w", LONG)
        .await
        .expect("claim")
        .is_none());
    let failed = store.get_deployment(&d.id).await.expect("get");
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(failed.reason.unwrap_or_default().contains("lease"));
}

async fn service_uids_are_allocated_once_and_never_shared(store: Arc<dyn Store>) {
    deployable(&store).await;
    store
        .register_service(bare_service("web", "core"), &alice())
        .await
        .expect("register");
    let a = store.service_uid("api", 200_000).await.expect("uid");
    let b = store.service_uid("web", 200_000).await.expect("uid");
    assert_eq!(a, 200_000);
    assert_eq!(b, 200_001);
    assert_eq!(store.service_uid("api", 200_000).await.expect("uid"), a);
    assert_not_found(store.service_uid("ghost", 200_000).await, "service");
}

/// A scaffold's push: pending at registration, then failed and pushed, each finished attempt
/// counted and audited in the same transaction; the record goes with its service.
async fn scaffold_pushes_are_recorded_audited_and_counted(store: Arc<dyn Store>) {
    use slipway_core::{ScaffoldPush, ScaffoldPushStatus};
    let actor = alice();
    store
        .register_service(bare_service("ledger", "finance"), &actor)
        .await
        .expect("register");
    assert_eq!(store.scaffold_push("ledger").await.expect("read"), None);
    let mut push = ScaffoldPush {
        service: "ledger".into(),
        remote: "https://***@git.example.com/finance/ledger".into(),
        branch: "main".into(),
        status: ScaffoldPushStatus::Pending,
        commit: None,
        error: None,
        attempts: 99,
        updated_at: chrono::Utc::now(),
    };
    let stored = store
        .record_scaffold_push(&push, &actor)
        .await
        .expect("pending");
    assert_eq!(
        (stored.status, stored.attempts, stored.error.as_deref()),
        (ScaffoldPushStatus::Pending, 0, None)
    );
    push.status = ScaffoldPushStatus::Failed;
    push.error = Some("pre-receive hook declined".into());
    let failed = store
        .record_scaffold_push(&push, &actor)
        .await
        .expect("failed");
    assert_eq!(
        (failed.status, failed.attempts),
        (ScaffoldPushStatus::Failed, 1)
    );
    assert!(failed.updated_at >= stored.updated_at);
    push.status = ScaffoldPushStatus::Pushed;
    push.error = None;
    push.commit = Some("a".repeat(40));
    let pushed = store
        .record_scaffold_push(&push, &actor)
        .await
        .expect("pushed");
    assert_eq!(
        store.scaffold_push("ledger").await.expect("read"),
        Some(pushed.clone())
    );
    assert_eq!(
        (
            pushed.status,
            pushed.attempts,
            pushed.error,
            pushed.commit.as_deref()
        ),
        (
            ScaffoldPushStatus::Pushed,
            2,
            None,
            Some("a".repeat(40).as_str())
        )
    );
    assert_eq!(pushed.remote, "https://***@git.example.com/finance/ledger");

    let audit = store
        .list_audit(&AuditQuery {
            action: Some("service.scaffold_push".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let results: Vec<_> = audit.items.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(
        results,
        ["success", "failed"],
        "newest first; pending is not audited"
    );
    assert_eq!(audit.items[1].detail["error"], "pre-receive hook declined");
    assert_eq!(audit.items[1].object_name, "ledger");

    push.service = "nobody".into();
    assert!(matches!(
        store.record_scaffold_push(&push, &actor).await,
        Err(StoreError::NotFound {
            kind: "service",
            ..
        })
    ));
    store
        .delete_service("ledger", &actor)
        .await
        .expect("delete");
    assert_eq!(store.scaffold_push("ledger").await.expect("read"), None);
}

/// The pending record of a scaffold's push is written by the registration itself, so that no
/// process stop can leave a registered scaffold without it; pending pushes are listed oldest
/// first until an attempt finishes.
async fn a_scaffold_push_is_pending_from_its_registration_on(store: Arc<dyn Store>) {
    use slipway_core::{ScaffoldPush, ScaffoldPushStatus};
    let actor = alice();
    let push = |service: &str| ScaffoldPush {
        service: service.into(),
        remote: format!("https://git.example.com/finance/{service}"),
        branch: "main".into(),
        // Whatever it says, a registration records the push as pending.
        status: ScaffoldPushStatus::Failed,
        commit: None,
        error: Some("not yet".into()),
        attempts: 7,
        updated_at: chrono::Utc::now(),
    };
    assert_eq!(store.pending_scaffold_pushes().await.expect("list"), []);
    for name in ["ledger", "billing"] {
        store
            .register_service(
                NewService {
                    scaffold_push: Some(push(name)),
                    ..bare_service(name, "finance")
                },
                &actor,
            )
            .await
            .expect("register");
    }
    let ledger = store
        .scaffold_push("ledger")
        .await
        .expect("read")
        .expect("recorded with the registration");
    assert_eq!(
        (
            ledger.status,
            ledger.attempts,
            ledger.error.as_deref(),
            ledger.remote.as_str()
        ),
        (
            ScaffoldPushStatus::Pending,
            0,
            None,
            "https://git.example.com/finance/ledger"
        )
    );
    let pending = store.pending_scaffold_pushes().await.expect("list");
    assert_eq!(names(&pending, |p| &p.service), ["ledger", "billing"]);
    assert_eq!(pending[0], ledger);
    let registered = store
        .list_audit(&AuditQuery {
            action: Some("service.register".into()),
            object_name: Some("ledger".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(
        registered.items[0].detail["scaffold_push"]["remote"],
        "https://git.example.com/finance/ledger"
    );

    // A registration that fails writes no push either.
    store
        .register_service(bare_service("plain", "finance"), &actor)
        .await
        .expect("register");
    assert_conflict(
        store
            .register_service(
                NewService {
                    scaffold_push: Some(push("plain")),
                    ..bare_service("plain", "finance")
                },
                &actor,
            )
            .await,
        "service",
    );
    assert_eq!(store.scaffold_push("plain").await.expect("read"), None);

    // A finished attempt takes it off the list.
    store
        .record_scaffold_push(
            &ScaffoldPush {
                status: ScaffoldPushStatus::Pushed,
                commit: Some("b".repeat(40)),
                error: None,
                ..push("ledger")
            },
            &actor,
        )
        .await
        .expect("pushed");
    let pending = store.pending_scaffold_pushes().await.expect("list");
    assert_eq!(names(&pending, |p| &p.service), ["billing"]);
    store
        .delete_service("billing", &actor)
        .await
        .expect("delete");
    assert_eq!(store.pending_scaffold_pushes().await.expect("list"), []);
}
