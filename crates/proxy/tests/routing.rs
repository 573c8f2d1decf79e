//! Routing, answers the proxy writes itself, balancing and failover, streaming, headers,
//! upgrades and metrics — against real backends on 127.0.0.1.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{dead_addr, get, within, Conn, TestBackend, TestProxy};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame};
use hyper::{Request, StatusCode};
use slipway_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_with_port_and_any_case() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let api = TestBackend::start("api-dev").await;
        let web = TestBackend::start("web-prod").await;
        proxy.proxy.set_backends("api", "dev", vec![api.addr]);
        proxy.proxy.set_backends("Web", "PROD", vec![web.addr]);
        assert_eq!(proxy.proxy.backends("api", "dev"), vec![api.addr]);
        assert_eq!(proxy.proxy.backends("web", "prod"), vec![web.addr]);

        for (host, expected) in [
            ("api.dev.localhost", "api-dev"),
            ("api.dev.localhost:7780", "api-dev"),
            ("API.Dev.LOCALHOST", "api-dev"),
            ("web.prod.localhost", "web-prod"),
            ("WEB.prod.localhost:1", "web-prod"),
        ] {
            let answer = get(proxy.addr, host, "/").await;
            assert_eq!(answer.status, StatusCode::OK, "{host}");
            assert_eq!(answer.body, expected, "{host}");
        }
        for host in [
            "web.dev.localhost",
            "api.dev.example.com",
            "localhost",
            "api.dev.localhost:port",
        ] {
            let answer = get(proxy.addr, host, "/").await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host}");
            assert!(
                answer.body.contains("no app is deployed"),
                "{}",
                answer.body
            );
        }
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_404_after_remove_503_without_backends_502_when_unreachable() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let api = TestBackend::start("api").await;
        proxy.proxy.set_backends("api", "dev", vec![api.addr]);
        assert_eq!(get(proxy.addr, "api.dev.localhost", "/").await.status, 200);

        proxy.proxy.set_backends("api", "dev", vec![]);
        let answer = get(proxy.addr, "api.dev.localhost", "/").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            answer.body.contains("no running instance"),
            "{}",
            answer.body
        );

        proxy
            .proxy
            .set_backends("api", "dev", vec![dead_addr().await, dead_addr().await]);
        let answer = get(proxy.addr, "api.dev.localhost", "/").await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        assert!(
            answer
                .body
                .contains("no instance of the app could be reached"),
            "{}",
            answer.body
        );

        proxy.proxy.remove("api", "dev");
        assert!(proxy.proxy.backends("api", "dev").is_empty());
        let answer = get(proxy.addr, "api.dev.localhost", "/").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);

        // The route's counters survive its removal.
        let stats = proxy.proxy.stats("api", "dev").unwrap();
        assert_eq!(stats.by_class, [0, 1, 0, 1, 2]);
        assert_eq!(api.served(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_round_robin_across_backends() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let a = TestBackend::start("a").await;
        let b = TestBackend::start("b").await;
        proxy.proxy.set_backends("api", "dev", vec![a.addr, b.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        let mut seen = Vec::new();
        for _ in 0..20 {
            let answer = conn.get("api.dev.localhost", "/").await.unwrap();
            assert_eq!(answer.status, 200);
            seen.push(answer.body);
        }
        assert_eq!(a.served(), 10);
        assert_eq!(b.served(), 10);
        // Strictly alternating.
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_another_backend_when_connecting_fails() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let live = TestBackend::start("live").await;
        let dead = dead_addr().await;
        proxy
            .proxy
            .set_backends("api", "dev", vec![dead, live.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..10 {
            let answer = conn.get("api.dev.localhost", "/").await.unwrap();
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body, "live");
        }
        // A request with a body fails over too: nothing of it was sent to the dead backend.
        for _ in 0..4 {
            let req = Request::post("/echo")
                .header("host", "api.dev.localhost")
                .body(common::text("payload"))
                .unwrap();
            let answer = common::Answer::read(conn.send(req).await.unwrap())
                .await
                .unwrap();
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body, "payload");
        }
        assert_eq!(live.served(), 14);
        let stats = proxy.proxy.stats("api", "dev").unwrap();
        assert_eq!((stats.requests, stats.errors), (14, 0));
        proxy.shutdown().await;
    })
    .await;
}

/// A request body fed by the test, one chunk at a time.
struct Chunks(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_bodies_both_ways_without_buffering() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let echo = TestBackend::start("echo").await;
        proxy.proxy.set_backends("api", "dev", vec![echo.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        let (chunks, rx) = mpsc::channel::<Bytes>(1);
        let req = Request::post("/echo")
            .header("host", "api.dev.localhost")
            .body(Chunks(rx).boxed())
            .unwrap();
        chunks.send(Bytes::from_static(b"first")).await.unwrap();
        // The answer starts while the request body is still open: the proxy buffers neither.
        let response = conn.send(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        for chunk in ["first", "second", "third"] {
            if chunk != "first" {
                chunks.send(Bytes::from(chunk)).await.unwrap();
            }
            // Each chunk comes back before the next one is sent.
            let mut got = Vec::new();
            while got.len() < chunk.len() {
                let frame = body.frame().await.unwrap().unwrap();
                got.extend_from_slice(frame.data_ref().unwrap());
            }
            assert_eq!(got, chunk.as_bytes());
        }
        drop(chunks);
        assert!(body.frame().await.is_none() || body.is_end_stream());
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strips_hop_by_hop_headers_and_adds_forwarded_headers() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let backend = TestBackend::start("headers").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        let req = Request::get("/headers")
            .header("host", "Api.Dev.localhost:7780")
            .header("connection", "keep-alive, X-Hop")
            .header("x-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("te", "trailers")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("proxy-connection", "keep-alive")
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("x-end-to-end", "kept")
            .body(common::empty())
            .unwrap();
        let answer = common::Answer::read(conn.send(req).await.unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        let seen: Vec<(&str, &str)> = answer
            .body
            .lines()
            .filter_map(|l| l.split_once(": "))
            .collect();
        let value = |name: &str| {
            seen.iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
        };
        for gone in [
            "connection",
            "x-hop",
            "keep-alive",
            "te",
            "proxy-authorization",
            "proxy-connection",
        ] {
            assert!(
                value(gone).is_empty(),
                "{gone} reached the backend: {seen:?}"
            );
        }
        assert_eq!(value("x-end-to-end"), ["kept"]);
        assert_eq!(value("host"), ["Api.Dev.localhost:7780"]);
        assert_eq!(value("x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
        assert_eq!(value("x-forwarded-proto"), ["http"]);
        assert_eq!(value("x-forwarded-host"), ["Api.Dev.localhost:7780"]);

        // Hop-by-hop headers of the answer stay between the backend and the proxy.
        assert_eq!(answer.headers["x-public"], "1");
        assert!(answer.headers.get("x-private").is_none());
        assert!(answer.headers.get("keep-alive").is_none());
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_http11_upgrades_through() {
    within(LIMIT, async {
        // Also as the connection's last request under `client_max_requests`: a 101 does not get
        // `Connection: close`, the tunnel goes on.
        for client_max_requests in [Some(1000), Some(1)] {
            upgrade_through(ProxyConfig {
                client_max_requests,
                ..ProxyConfig::default()
            })
            .await;
        }
    })
    .await;
}

async fn upgrade_through(config: ProxyConfig) {
    {
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("ws").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(
                b"GET /upgrade HTTP/1.1\r\nHost: api.dev.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        for message in ["hello", "through the tunnel"] {
            stream.write_all(message.as_bytes()).await.unwrap();
            let mut back = vec![0u8; message.len()];
            stream.read_exact(&mut back).await.unwrap();
            assert_eq!(back, message.as_bytes());
        }
        // The open tunnel counts as in flight to its backend; closing it ends that.
        assert!(!proxy.proxy.drain(&[backend.addr], Duration::ZERO).await);
        drop(stream);
        assert!(proxy.proxy.drain(&[backend.addr], LIMIT).await);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bodies_over_the_limit() {
    within(LIMIT, async {
        let config = ProxyConfig {
            max_request_body: Some(4),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let echo = TestBackend::start("echo").await;
        proxy.proxy.set_backends("api", "dev", vec![echo.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        for (body, status) in [("1234", 200), ("12345", 413)] {
            let req = Request::post("/echo")
                .header("host", "api.dev.localhost")
                .body(common::text(body))
                .unwrap();
            let answer = common::Answer::read(conn.send(req).await.unwrap())
                .await
                .unwrap();
            assert_eq!(answer.status, status, "{body}");
        }
        assert_eq!(echo.served(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_the_callers_runtime_too() {
    within(LIMIT, async {
        let config = ProxyConfig {
            worker_threads: 0,
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let a = TestBackend::start("a").await;
        proxy.proxy.set_backends("api", "dev", vec![a.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..5 {
            assert_eq!(conn.get("api.dev.localhost", "/").await.unwrap().body, "a");
        }
        drop(conn);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_requests_and_renders_prometheus_text() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let api = TestBackend::start("api").await;
        proxy.proxy.set_backends("api", "dev", vec![api.addr]);
        proxy.proxy.set_backends("web", "prod", vec![]);
        let mut conn = Conn::open(proxy.addr).await;
        for path in [
            "/",
            "/",
            "/status/201",
            "/status/302",
            "/status/404",
            "/status/500",
        ] {
            conn.get("api.dev.localhost", path).await.unwrap();
        }
        conn.get("web.prod.localhost", "/").await.unwrap(); // 503
        conn.get("nothing.here.localhost", "/").await.unwrap(); // 404, unrouted

        let api_stats = proxy.proxy.stats("api", "dev").unwrap();
        assert_eq!(api_stats.requests, 6);
        assert_eq!(api_stats.errors, 1);
        assert_eq!(api_stats.by_class, [0, 3, 1, 1, 1]);
        assert_eq!(api_stats.in_flight, 0);
        assert_eq!(api_stats.latency_buckets.last().unwrap().1, 6);
        assert!(api_stats.latency_sum > Duration::ZERO);
        let web_stats = proxy.proxy.stats("web", "prod").unwrap();
        assert_eq!((web_stats.requests, web_stats.errors), (1, 1));
        assert!(proxy.proxy.stats("nothing", "here").is_none());

        let mut text = String::from("# other metrics before\n");
        proxy.proxy.render_prometheus(&mut text);
        let samples = parse_exposition(&text);
        let sample = |name: &str, labels: &str| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && l == labels)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in\n{text}"))
        };
        let api = r#"service="api",environment="dev""#;
        let web = r#"service="web",environment="prod""#;
        assert_eq!(
            sample(
                "slipway_proxy_requests_total",
                &format!("{api},code_class=\"2xx\"")
            ),
            3.0
        );
        assert_eq!(
            sample(
                "slipway_proxy_requests_total",
                &format!("{api},code_class=\"3xx\"")
            ),
            1.0
        );
        assert_eq!(
            sample(
                "slipway_proxy_requests_total",
                &format!("{api},code_class=\"5xx\"")
            ),
            1.0
        );
        assert_eq!(
            sample(
                "slipway_proxy_requests_total",
                &format!("{web},code_class=\"5xx\"")
            ),
            1.0
        );
        assert_eq!(
            sample("slipway_proxy_request_duration_seconds_count", api),
            6.0
        );
        assert_eq!(
            sample(
                "slipway_proxy_request_duration_seconds_bucket",
                &format!("{api},le=\"+Inf\"")
            ),
            6.0
        );
        assert!(sample("slipway_proxy_request_duration_seconds_sum", api) > 0.0);
        assert_eq!(sample("slipway_proxy_requests_in_flight", api), 0.0);
        assert_eq!(sample("slipway_proxy_unrouted_requests_total", ""), 1.0);
        // Buckets are cumulative and in order of their bounds.
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == "slipway_proxy_request_duration_seconds_bucket" && l.starts_with(api)
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(buckets.len(), 15);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
        proxy.shutdown().await;
    })
    .await;
}

/// Checks the text exposition format line by line (comments are `# HELP`/`# TYPE`, each family
/// has both before its samples, sample lines are `name{labels} value`) and returns the samples
/// as `(name, labels, value)`.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name, rest) = (words.next().unwrap(), words.next(), words.next());
            match kind {
                "HELP" => assert!(name.is_some() && rest.is_some(), "{line}"),
                "TYPE" => {
                    let t = rest.unwrap();
                    assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                    typed.insert(name.unwrap().to_owned(), t.to_owned());
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in exposition");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            assert!(
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        if name.starts_with("slipway_proxy_") {
            assert!(
                typed.contains_key(family),
                "sample before its # TYPE: {line}"
            );
        }
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    samples
}
