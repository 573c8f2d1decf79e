//! Timeouts and shutdown: 504 for a silent backend, idle clients closed, requests in flight
//! finished when the proxy stops.

mod common;

use std::time::Duration;

use common::{eventually, within, Conn, TestBackend, TestProxy};
use hyper::StatusCode;
use slipway_proxy::ProxyConfig;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_504_when_the_backend_sends_no_headers_in_time() {
    within(LIMIT, async {
        let config = ProxyConfig {
            request_timeout: Some(Duration::from_millis(200)),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        // Accepts and reads, never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut stream, _) = silent.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                held.push(stream);
            }
        });
        proxy.proxy.set_backends("api", "dev", vec![silent_addr]);
        let answer = common::get(proxy.addr, "api.dev.localhost", "/").await;
        assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(proxy.proxy.stats("api", "dev").unwrap().errors, 1);
        // The timed-out request no longer holds the backend.
        assert!(proxy.proxy.drain(&[silent_addr], LIMIT).await);
        hold.abort();
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_idle_client_connections() {
    within(LIMIT, async {
        let config = ProxyConfig {
            client_idle_timeout: Duration::from_millis(100),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("a").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        assert_eq!(
            conn.get("api.dev.localhost", "/").await.unwrap().status,
            200
        );
        // A client that never sends anything is closed too.
        let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(silent.read(&mut buf).await.unwrap(), 0);
        assert!(eventually(LIMIT, || conn.is_closed()).await);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_client_connections_after_max_requests() {
    within(LIMIT, async {
        let config = ProxyConfig {
            client_max_requests: Some(3),
            worker_threads: 2,
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("a").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        for _ in 0..2 {
            let mut conn = Conn::open(proxy.addr).await;
            for n in 1..=3 {
                let answer = conn.get("api.dev.localhost", "/").await.unwrap();
                assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
                // Only the last answer says the connection ends.
                let close = answer.headers.get("connection").map(|v| v.as_bytes());
                assert_eq!(close, (n == 3).then_some(&b"close"[..]), "request {n}");
            }
            assert!(eventually(LIMIT, || conn.is_closed()).await);
            assert!(conn.get("api.dev.localhost", "/").await.is_err());
        }
        // The limit ends client connections only: backend connections are kept for reuse (one
        // pool per worker thread).
        assert!(backend.connections() <= 2, "{}", backend.connections());

        // Without a limit a connection serves any number of requests.
        let unlimited = TestProxy::start(ProxyConfig {
            client_max_requests: None,
            ..ProxyConfig::default()
        })
        .await;
        unlimited
            .proxy
            .set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(unlimited.addr).await;
        for _ in 0..20 {
            let answer = conn.get("api.dev.localhost", "/").await.unwrap();
            assert!(answer.headers.get("connection").is_none());
        }
        assert!(!conn.is_closed());
        unlimited.shutdown().await;
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    within(LIMIT, async {
        for worker_threads in [0, 2] {
            let config = ProxyConfig {
                worker_threads,
                ..ProxyConfig::default()
            };
            let proxy = TestProxy::start(config).await;
            let backend = TestBackend::start("a").await;
            proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
            let addr = proxy.addr;
            let mut idle = Conn::open(addr).await;
            assert_eq!(
                idle.get("api.dev.localhost", "/").await.unwrap().status,
                200
            );
            let slow = tokio::spawn(async move {
                Conn::open(addr)
                    .await
                    .get("api.dev.localhost", "/sleep/300")
                    .await
                    .unwrap()
            });
            assert!(
                eventually(LIMIT, || proxy.proxy.stats("api", "dev").unwrap().in_flight
                    == 1)
                .await
            );
            proxy.shutdown().await;
            let answer = slow.await.unwrap();
            assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
            // Idle keep-alive connections are closed, and nothing listens any more.
            assert!(eventually(LIMIT, || idle.is_closed()).await);
            assert!(TcpStream::connect(addr).await.is_err());
            backend.shutdown().await;
        }
    })
    .await;
}
