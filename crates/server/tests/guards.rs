//! Guards every route shares: rate limiting and security headers.

use slipway_platform_repo::PlatformRepo;
use slipway_server::guard::RateLimit;
use slipway_server::AppState;
use std::net::SocketAddr;
use std::sync::Arc;

async fn server(limit: Option<RateLimit>) -> (String, tempfile::TempDir) {
    server_with(limit, None).await
}

async fn server_with(
    limit: Option<RateLimit>,
    quotas: Option<slipway_server::guard::Quotas>,
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = slipway_store::connect(&format!(
        "sqlite://{}",
        dir.path().join("slipway.db").display()
    ))
    .await
    .unwrap();
    let repo = Arc::new(
        PlatformRepo::open(&dir.path().join("platform-repo"))
            .await
            .unwrap(),
    );
    let mut state = AppState::new(store, repo, None);
    if let Some(l) = limit {
        state = state.limit_rate(l);
    }
    if let Some(q) = quotas {
        state = state.with_quotas(q);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(slipway_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    (format!("http://{addr}"), dir)
}

#[tokio::test]
async fn clients_over_their_budget_get_429_with_retry_after() {
    let (url, _dir) = server(Some(RateLimit {
        per_second: 1.0,
        burst: 5.0,
    }))
    .await;
    let http = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            http.get(format!("{url}/api/v1/services"))
                .send()
                .await
                .unwrap(),
        );
    }
    let statuses: Vec<u16> = codes.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(&statuses[..5], [200; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = codes.pop().unwrap();
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Monitors are never limited.
    for _ in 0..20 {
        let r = http.get(format!("{url}/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let (url, _dir) = server(None).await;
    for path in ["/health", "/api/v1/services", "/docs", "/no-such-route"] {
        let r = reqwest::get(format!("{url}{path}")).await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    let docs = reqwest::get(format!("{url}/docs")).await.unwrap();
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let api = reqwest::get(format!("{url}/api/v1/services"))
        .await
        .unwrap();
    assert!(
        api.headers().get("content-security-policy").is_none(),
        "JSON needs no CSP"
    );
}

#[tokio::test]
async fn team_quotas_are_enforced_with_a_403_naming_them() {
    let (url, _dir) = server_with(
        None,
        Some(slipway_server::guard::Quotas {
            services_per_team: Some(2),
            concurrent_deployments_per_team: Some(1),
            replicas_per_deployment: 4,
        }),
    )
    .await;
    let http = reqwest::Client::new();
    let register = |name: &str| {
        http.post(format!("{url}/platform/services")).json(&serde_json::json!({
            "service_name": name, "team_name": "core", "repo_url": format!("https://git.example.com/{name}")
        }))
    };
    for name in ["a", "b"] {
        let r = register(name).send().await.unwrap();
        let status = r.status();
        assert_eq!(status, 201, "{}", r.text().await.unwrap());
    }
    let third = register("c").send().await.unwrap();
    assert_eq!(third.status(), 403);
    let body: serde_json::Value = third.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("services_per_team = 2"),
        "{body}"
    );

    let deploy = |service: &str, replicas: u32| {
        http.post(format!("{url}/api/v1/deployments"))
            .json(&serde_json::json!({ "service": service, "replicas": replicas }))
    };
    let big = deploy("a", 5).send().await.unwrap();
    assert_eq!(big.status(), 422);
    // No engine runs here: the first deployment stays QUEUED, so it is in progress.
    assert_eq!(deploy("a", 1).send().await.unwrap().status(), 202);
    let second = deploy("b", 1).send().await.unwrap();
    assert_eq!(second.status(), 403);
    let body: serde_json::Value = second.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("concurrent_deployments_per_team = 1"),
        "{body}"
    );
}
