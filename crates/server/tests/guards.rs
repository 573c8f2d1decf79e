//! Guards every route shares: rate limiting and security headers.

use slipway_platform_repo::PlatformRepo;
use slipway_server::guard::RateLimit;
use slipway_server::AppState;
use std::net::SocketAddr;
use std::sync::Arc;

async fn server(limit: Option<RateLimit>) -> (String, tempfile::TempDir) {
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
}
