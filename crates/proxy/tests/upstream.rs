//! The proxy's HTTP/1.1 client side against backends that misbehave in precise ways: framing
//! (chunked, Content-Length, read-until-close, HEAD/204/304), keep-alive reuse and its limits,
//! timeouts, backends that die, and requests built to confuse framing (smuggling attempts).
//! Most backends here are raw TCP, so that the test decides every byte they send.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{header, within, Conn, TestBackend, TestProxy};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Request, StatusCode};
use slipway_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(30);
const HOST: &str = "api.dev.localhost";

/// A backend on 127.0.0.1:0 whose connections are served by `handler(stream, n)` (`n` counts
/// connections from 0); records every request head it reads with `read_head`.
struct RawBackend {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RawBackend {
    async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(TcpStream, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let n = counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handler(stream, n));
            }
        });
        RawBackend {
            addr,
            connections,
            task,
        }
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one message head (through the empty line), byte by byte so nothing after it is taken;
/// `None` when the peer closed first.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8(head).unwrap())
}

/// Reads a request head and its Content-Length body; `None` when the peer closed.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let head = read_head(stream).await?;
    let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// A keep-alive backend that answers every request with `answer(head, body)`, written as is.
async fn answering(answer: impl Fn(&str, &[u8]) -> Vec<u8> + Send + Sync + 'static) -> RawBackend {
    let answer = Arc::new(answer);
    RawBackend::start(move |mut stream, _| {
        let answer = Arc::clone(&answer);
        async move {
            while let Some((head, body)) = read_request(&mut stream).await {
                if stream.write_all(&answer(&head, &body)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

async fn proxy_to(addr: SocketAddr) -> TestProxy {
    proxy_with(addr, ProxyConfig::default()).await
}

async fn proxy_with(addr: SocketAddr, config: ProxyConfig) -> TestProxy {
    let proxy = TestProxy::start(config).await;
    proxy.proxy.set_backends("api", "dev", vec![addr]);
    proxy
}

/// Sends raw bytes to the proxy and reads everything until it closes the connection.
async fn raw_exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request body fed by the test, one chunk at a time (sent chunked: no length is known).
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
async fn forwards_chunked_request_bodies_chunked() {
    within(LIMIT, async {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = Arc::clone(&seen);
        let backend = RawBackend::start(move |mut stream, _| {
            let record = Arc::clone(&record);
            async move {
                let head = read_head(&mut stream).await.unwrap();
                // Decode the chunked body by hand, keeping the wire form.
                let mut wire = Vec::new();
                while !wire.ends_with(b"0\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    stream.read_exact(&mut byte).await.unwrap();
                    wire.push(byte[0]);
                }
                record.lock().unwrap().push(head);
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8(wire).unwrap());
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        let (chunks, rx) = mpsc::channel::<Bytes>(4);
        let req = Request::post("/upload")
            .header("host", HOST)
            .body(Chunks(rx).boxed())
            .unwrap();
        let answer = tokio::spawn(async move { conn.send(req).await.unwrap() });
        for part in ["hello ", "chunked ", "world"] {
            chunks.send(Bytes::from(part)).await.unwrap();
        }
        drop(chunks);
        let answer = common::Answer::read(answer.await.unwrap()).await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "ok")
        );
        let seen = seen.lock().unwrap().clone();
        let head = seen[0].to_ascii_lowercase();
        assert!(head.starts_with("post /upload http/1.1\r\n"), "{head}");
        assert_eq!(header(&head, "transfer-encoding"), Some("chunked"));
        assert_eq!(header(&head, "content-length"), None);
        // Whatever the frames, the chunks decode to the body the client sent.
        assert_eq!(dechunk(seen[1].as_bytes()), b"hello chunked world");
        proxy.shutdown().await;
    })
    .await;
}

fn dechunk(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = wire.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&wire[..line_end]).unwrap(), 16).unwrap();
        wire = &wire[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&wire[..size]);
        assert_eq!(&wire[size..size + 2], b"\r\n");
        wire = &wire[size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_chunked_responses_sent_in_pieces() {
    within(LIMIT, async {
        let backend = RawBackend::start(|mut stream, _| async move {
            while read_request(&mut stream).await.is_some() {
                // Split at awkward places: inside the size line, the data, the CRLFs, the
                // trailers; with an extension and a trailer the client does not get.
                let pieces: [&[u8]; 7] = [
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                    b"6;ext=\"x\"\r\nhel",
                    b"lo \r",
                    b"\n1",
                    b"0\r\nsixteen bytes!!!\r\n0\r\n",
                    b"x-checksum: 1\r\n",
                    b"\r\n",
                ];
                for piece in pieces {
                    stream.write_all(piece).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..3 {
            let answer = conn.get(HOST, "/").await.unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.body, "hello sixteen bytes!!!");
            assert!(answer.headers.get("x-checksum").is_none());
        }
        // A complete chunked answer leaves the connection reusable.
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

/// Peak resident memory of this test process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_large_bodies_without_holding_them() {
    within(Duration::from_secs(120), async {
        const SIZE: usize = 128 * 1024 * 1024;
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let backend = TestBackend::start("big").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let before = peak_rss();

        // Up: 128 MiB in 64 KiB frames (chunked), counted by the backend.
        let mut conn = Conn::open(proxy.addr).await;
        let (chunks, rx) = mpsc::channel::<Bytes>(1);
        let req = Request::post("/count")
            .header("host", HOST)
            .body(Chunks(rx).boxed())
            .unwrap();
        let feeder = tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
            for _ in 0..SIZE / chunk.len() {
                chunks.send(chunk.clone()).await.unwrap();
            }
        });
        let answer = common::Answer::read(conn.send(req).await.unwrap())
            .await
            .unwrap();
        feeder.await.unwrap();
        assert_eq!(answer.body, SIZE.to_string());

        // Down: 128 MiB streamed by the backend, counted (not kept) by the client.
        let response = conn
            .send(common::request(HOST, &format!("/bytes/{SIZE}")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut received = 0;
        while let Some(frame) = body.frame().await {
            received += frame.unwrap().data_ref().map_or(0, Bytes::len);
        }
        assert_eq!(received, SIZE);

        // Holding either body whole would have raised the peak by 128 MiB.
        let grown = peak_rss().saturating_sub(before);
        assert!(
            grown < 32 * 1024 * 1024,
            "peak memory grew by {} MiB",
            grown >> 20
        );
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuses_backend_connections() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let backend = TestBackend::start("a").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        for i in 0..20 {
            let answer = if i % 2 == 0 {
                conn.get(HOST, "/").await.unwrap()
            } else {
                let req = Request::post("/echo")
                    .header("host", HOST)
                    .body(common::text("body"))
                    .unwrap();
                common::Answer::read(conn.send(req).await.unwrap())
                    .await
                    .unwrap()
            };
            assert_eq!(answer.status, StatusCode::OK);
        }
        assert_eq!(backend.served(), 20);
        // One client connection, served on one thread: one backend connection carried all.
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn does_not_reuse_connections_the_backend_closes() {
    within(LIMIT, async {
        // Answers one request per connection, saying so, then closes; odd connections answer
        // HTTP/1.0-style without a length (the body ends where the connection does).
        let backend = RawBackend::start(|mut stream, n| async move {
            if read_request(&mut stream).await.is_none() {
                return;
            }
            let answer: &[u8] = if n % 2 == 0 {
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nclose"
            } else {
                b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
            };
            stream.write_all(answer).await.unwrap();
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        for i in 0..6 {
            let answer = conn.get(HOST, "/").await.unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            let expected = if i % 2 == 0 { "close" } else { "until the end" };
            assert_eq!(answer.body, expected);
            // Hop-by-hop: the backend's `Connection: close` is not the client's business.
            assert!(answer.headers.get("connection").is_none());
        }
        assert_eq!(backend.connections(), 6);
        assert!(!conn.is_closed());
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_backends_closing_idle_pooled_connections() {
    within(LIMIT, async {
        // Keep-alive answers, but the backend closes each connection after its first answer
        // (an app server whose keep-alive timeout is short), and says when it has.
        let (closed_tx, mut closed) = mpsc::unbounded_channel::<()>();
        let backend = RawBackend::start(move |mut stream, _| {
            let closed_tx = closed_tx.clone();
            async move {
                if read_request(&mut stream).await.is_some() {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                }
                drop(stream);
                let _ = closed_tx.send(());
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..10 {
            let answer = conn.get(HOST, "/").await.unwrap();
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (StatusCode::OK, "ok")
            );
            // The pooled connection is closed before the next request: found dead when taken
            // from the pool (or, should the close still be on its way, the GET is repeated).
            closed.recv().await.unwrap();
        }
        assert_eq!(backend.connections(), 10);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_idempotent_requests_once_when_a_pooled_connection_was_closed() {
    within(LIMIT, async {
        // The first connection answers once, then takes the next request and closes without
        // answering: the race of a request meeting the app's keep-alive timeout. Later
        // connections answer normally.
        let backend = RawBackend::start(|mut stream, n| async move {
            let mut answered = 0;
            while let Some((head, _)) = read_request(&mut stream).await {
                if n == 0 && answered == 1 {
                    return;
                }
                let path = head.split(' ').nth(1).unwrap().to_owned();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{path}",
                    path.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
                answered += 1;
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        assert_eq!(conn.get(HOST, "/first").await.unwrap().body, "/first");
        // Goes out on the pooled connection, which closes: repeated on a new one.
        let answer = conn.get(HOST, "/second").await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "/second")
        );
        assert_eq!(backend.connections(), 2);

        // The same race for a POST: not repeated (it may have had effects), 502.
        let backend = RawBackend::start(|mut stream, n| async move {
            let mut answered = 0;
            while read_request(&mut stream).await.is_some() {
                if n == 0 && answered == 1 {
                    return;
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                answered += 1;
            }
        })
        .await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let post = || {
            Request::post("/")
                .header("host", HOST)
                .body(common::text("x"))
                .unwrap()
        };
        let first = common::Answer::read(conn.send(post()).await.unwrap()).await;
        assert_eq!(first.unwrap().status, StatusCode::OK);
        let second = common::Answer::read(conn.send(post()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(second.status, StatusCode::BAD_GATEWAY);
        assert!(
            second
                .body
                .contains("closed the connection without answering"),
            "{}",
            second.body
        );
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_bodies_to_head_204_and_304() {
    within(LIMIT, async {
        // Each answer announces a length but (correctly) sends no body; the next answer on
        // the same connection must be read from the right place.
        let backend = answering(|head, _| {
            let path = head.split(' ').nth(1).unwrap();
            match path {
                "/head" => b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n".to_vec(),
                "/204" => b"HTTP/1.1 204 No Content\r\nx-kind: none\r\n\r\n".to_vec(),
                "/304" => {
                    b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 99\r\n\r\n"
                        .to_vec()
                }
                _ => b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody".to_vec(),
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..2 {
            let req = Request::head("/head")
                .header("host", HOST)
                .body(common::empty())
                .unwrap();
            let answer = common::Answer::read(conn.send(req).await.unwrap())
                .await
                .unwrap();
            assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, ""));
            assert_eq!(answer.headers["content-length"], "1234");
            assert_eq!(conn.get(HOST, "/").await.unwrap().body, "body");

            let answer = conn.get(HOST, "/204").await.unwrap();
            assert_eq!(answer.status, StatusCode::NO_CONTENT);
            assert_eq!(
                (
                    answer.headers["x-kind"].to_str().unwrap(),
                    answer.body.as_str()
                ),
                ("none", "")
            );
            assert_eq!(conn.get(HOST, "/").await.unwrap().body, "body");

            let answer = conn.get(HOST, "/304").await.unwrap();
            assert_eq!(answer.status, StatusCode::NOT_MODIFIED);
            assert_eq!(
                (
                    answer.headers["etag"].to_str().unwrap(),
                    answer.body.as_str()
                ),
                ("\"v1\"", "")
            );
            assert_eq!(conn.get(HOST, "/").await.unwrap().body, "body");
        }
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skips_interim_answers() {
    within(LIMIT, async {
        let backend = answering(|_, body| {
            let mut answer =
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n"
                    .to_vec();
            answer.extend_from_slice(
                format!(
                    "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            answer.extend_from_slice(body);
            answer
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut conn = Conn::open(proxy.addr).await;
        for _ in 0..2 {
            let req = Request::post("/")
                .header("host", HOST)
                .header("expect", "100-continue")
                .body(common::text("payload"))
                .unwrap();
            let answer = common::Answer::read(conn.send(req).await.unwrap())
                .await
                .unwrap();
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (StatusCode::CREATED, "payload")
            );
        }
        assert_eq!(backend.connections(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_504_for_a_slow_backend_and_recovers() {
    within(LIMIT, async {
        let config = ProxyConfig {
            request_timeout: Some(Duration::from_millis(200)),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("slow").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        let answer = conn.get(HOST, "/sleep/2000").await.unwrap();
        assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(answer.body, "slipway: the app did not answer in time\n");
        // The late answer's connection is not reused; the next request is served.
        let answer = conn.get(HOST, "/").await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "slow")
        );
        assert_eq!(backend.connections(), 2);
        let stats = proxy.proxy.stats("api", "dev").unwrap();
        assert_eq!((stats.requests, stats.errors, stats.in_flight), (2, 1, 0));
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_the_answer_when_the_backend_dies_mid_response() {
    within(LIMIT, async {
        let backend = RawBackend::start(|mut stream, _| async move {
            let Some((head, _)) = read_request(&mut stream).await else {
                return;
            };
            let answer: &[u8] = if head.starts_with("GET /chunked") {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten.."
            };
            stream.write_all(answer).await.unwrap();
            // Dies: the connection closes with the answer unfinished.
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        for path in ["/length", "/chunked"] {
            let mut conn = Conn::open(proxy.addr).await;
            // The client sees the answer cut off — no answer at all when the head had not left
            // the proxy yet, or an error instead of the end of the body — and no hang.
            match conn.send(common::request(HOST, path)).await {
                Err(e) => assert!(e.is_incomplete_message(), "{path}: {e}"),
                Ok(response) => {
                    assert_eq!(response.status(), StatusCode::OK);
                    let result = response.into_body().collect().await;
                    assert!(
                        result.is_err(),
                        "{path}: the truncated answer looked complete"
                    );
                }
            }
            assert!(common::eventually(LIMIT, || conn.is_closed()).await);
        }
        let stats = proxy.proxy.stats("api", "dev").unwrap();
        assert_eq!((stats.requests, stats.in_flight), (2, 0));
        assert!(proxy.proxy.drain(&[backend.addr], LIMIT).await);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_malformed_backend_answers_with_502() {
    within(LIMIT, async {
        let backend = answering(|head, _| match head.split(' ').nth(1).unwrap() {
            "/folded" => b"HTTP/1.1 200 OK\r\nx-folded: a\r\n  b\r\ncontent-length: 0\r\n\r\n".to_vec(),
            "/lengths" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc".to_vec(),
            "/garbage" => b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 2\r\n\r\nok"
                .to_vec(),
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        for path in ["/folded", "/lengths", "/garbage"] {
            let answer = common::get(proxy.addr, HOST, path).await;
            assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{path}");
            assert_eq!(answer.body, "slipway: the app sent a malformed response\n");
        }
        // Repeated headers pass through, each line.
        let answer = common::get(proxy.addr, HOST, "/").await;
        let cookies: Vec<_> = answer.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_repeated_request_headers_and_refuses_obs_fold() {
    within(LIMIT, async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let backend = TestBackend::start("h").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        let req = Request::get("/headers")
            .header("host", HOST)
            .header("x-dup", "one")
            .header("x-dup", "two")
            .header("cookie", "a=1")
            .body(common::empty())
            .unwrap();
        let answer = common::Answer::read(conn.send(req).await.unwrap())
            .await
            .unwrap();
        let dups: Vec<_> = answer
            .body
            .lines()
            .filter(|l| l.starts_with("x-dup: "))
            .collect();
        assert_eq!(dups, ["x-dup: one", "x-dup: two"]);

        let answer = raw_exchange(
            proxy.addr,
            b"GET /headers HTTP/1.1\r\nHost: api.dev.localhost\r\nX-Folded: a\r\n b\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert_eq!(backend.served(), 1);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_invalid_request_framing_before_the_backend_sees_it() {
    within(LIMIT, async {
        let backend = answering(|_, _| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()).await;
        let proxy = proxy_to(backend.addr).await;
        for request in [
            &b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: abc\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: 3, 4\r\n\r\nabcd",
            b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
        ] {
            let answer = raw_exchange(proxy.addr, request).await;
            let shown = String::from_utf8_lossy(request);
            assert!(answer.starts_with("HTTP/1.1 400"), "{shown}: {answer}");
        }
        // Refused by the client-side parser: no request was routed, the backend saw nothing.
        assert_eq!(backend.connections(), 0);
        assert_eq!(proxy.proxy.stats("api", "dev").unwrap().requests, 0);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_no_room_for_request_smuggling() {
    within(LIMIT, async {
        let seen = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
        let record = Arc::clone(&seen);
        let backend = RawBackend::start(move |mut stream, _| {
            let record = Arc::clone(&record);
            async move {
                loop {
                    let Some(head) = read_head(&mut stream).await else {
                        return;
                    };
                    let mut body = Vec::new();
                    if header(&head, "transfer-encoding").is_some() {
                        while !body.ends_with(b"0\r\n\r\n") {
                            let mut byte = [0u8; 1];
                            stream.read_exact(&mut byte).await.unwrap();
                            body.push(byte[0]);
                        }
                    } else if let Some(length) = header(&head, "content-length") {
                        body = vec![0; length.parse().unwrap()];
                        stream.read_exact(&mut body).await.unwrap();
                    }
                    record.lock().unwrap().push((head, body));
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                }
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        // CL.TE and TE.CL: a second request hidden where one framing sees body and the other
        // sees the next request.
        for request in [
            &b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: 57\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: api.dev.localhost\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: api.dev.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4a\r\nGET /smuggled HTTP/1.1\r\nHost: api.dev.localhost\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
        ] {
            seen.lock().unwrap().clear();
            let answer = raw_exchange(proxy.addr, request).await;
            // Transfer-Encoding wins (RFC 9112 §6.3), the Content-Length is dropped, and the
            // client connection is closed after the answer, so nothing after the chunked body
            // is read as a request.
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{seen:?}");
            let (head, _) = &seen[0];
            assert!(head.starts_with("POST / "), "{head}");
            assert_eq!(header(head, "transfer-encoding"), Some("chunked"));
            assert_eq!(header(head, "content-length"), None, "{head}");
            assert!(!head.contains("smuggled"));
        }
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hands_bytes_sent_right_after_a_101_to_the_tunnel() {
    within(LIMIT, async {
        // The backend's first tunnel bytes arrive in the same segment as its 101.
        let backend = RawBackend::start(|mut stream, _| async move {
            read_request(&mut stream).await.unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nearly",
                )
                .await
                .unwrap();
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(b"GET /ws HTTP/1.1\r\nHost: api.dev.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stream).await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        let mut early = [0u8; 5];
        stream.read_exact(&mut early).await.unwrap();
        assert_eq!(&early, b"early");
        stream.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_off_streamed_bodies_over_the_limit() {
    within(LIMIT, async {
        let config = ProxyConfig {
            max_request_body: Some(8),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("count").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut conn = Conn::open(proxy.addr).await;
        // No Content-Length to refuse up front: the limit is found while streaming.
        let (chunks, rx) = mpsc::channel::<Bytes>(4);
        let req = Request::post("/count")
            .header("host", HOST)
            .body(Chunks(rx).boxed())
            .unwrap();
        chunks.send(Bytes::from_static(b"12345")).await.unwrap();
        chunks.send(Bytes::from_static(b"67890")).await.unwrap();
        drop(chunks);
        let answer = common::Answer::read(conn.send(req).await.unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        // The backend never got a whole request.
        assert_eq!(backend.served(), 0);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_header_cannot_take_the_framing_away() {
    within(LIMIT, async {
        let seen = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
        let record = Arc::clone(&seen);
        let backend = RawBackend::start(move |mut stream, _| {
            let record = Arc::clone(&record);
            async move {
                while let Some((head, body)) = read_request(&mut stream).await {
                    record.lock().unwrap().push((head, body));
                    // The answer names its own length in Connection too.
                    let answer: &[u8] =
                        b"HTTP/1.1 200 OK\r\nconnection: content-length\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        // Without its length, the backend would read the body as a second request.
        let hidden = "GET /smuggled HTTP/1.1\r\nHost: api.dev.localhost\r\n\r\n";
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {HOST}\r\nConnection: content-length\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        );
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let head = read_head(&mut stream).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(header(&head, "content-length"), Some("2"), "{head}");
        let mut body = [0u8; 2];
        stream.read_exact(&mut body).await.unwrap();
        // The client connection goes on: the answer was framed.
        stream
            .write_all(format!("GET /next HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        assert!(read_head(&mut stream).await.unwrap().starts_with("HTTP/1.1 200"));
        {
            let seen = seen.lock().unwrap();
            let heads: Vec<_> = seen.iter().map(|(h, _)| h.lines().next().unwrap()).collect();
            assert_eq!(heads, ["POST / HTTP/1.1", "GET /next HTTP/1.1"]);
            assert_eq!(seen[0].1, hidden.as_bytes());
        }
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_breaks_off_ends_the_exchange() {
    within(LIMIT, async {
        // The backend answers at once and then waits for the whole body.
        let backend = RawBackend::start(|mut stream, _| async move {
            let Some(_head) = read_head(&mut stream).await else {
                return;
            };
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                .await
                .unwrap();
            let mut body = vec![0u8; 100];
            if stream.read_exact(&mut body).await.is_ok() {
                let _ = stream.write_all(b"0\r\n\r\n").await;
            }
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(
                format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\nhalf").as_bytes(),
            )
            .await
            .unwrap();
        let head = read_head(&mut stream).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // The client gives up half way; the proxy must not wait with the backend forever.
        drop(stream);
        assert!(
            common::eventually(LIMIT, || proxy.proxy.stats("api", "dev").unwrap().in_flight == 0)
                .await
        );
        assert!(proxy.proxy.drain(&[backend.addr], LIMIT).await);

        // A malformed chunked body is the client's fault: 400, not a 5xx of the app.
        let backend = TestBackend::start("count").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let answer = raw_exchange(
            proxy.addr,
            format!("POST /count HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("malformed or ended early"), "{answer}");
        assert_eq!(proxy.proxy.stats("api", "dev").unwrap().errors, 0);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_a_client_that_reads_nothing() {
    within(LIMIT, async {
        let config = ProxyConfig {
            client_idle_timeout: Duration::from_millis(300),
            ..ProxyConfig::default()
        };
        let proxy = TestProxy::start(config).await;
        let backend = TestBackend::start("api").await;
        proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        // 64 MiB the client never reads: the socket buffers fill, then the proxy waits for at
        // most the idle timeout.
        stream
            .write_all(format!("GET /bytes/67108864 HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        assert!(
            common::eventually(LIMIT, || {
                let stats = proxy.proxy.stats("api", "dev").unwrap();
                stats.requests == 1 && stats.in_flight == 0
            })
            .await
        );
        proxy.shutdown().await;
        drop(stream);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_a_close_delimited_answer_the_backend_cut_off() {
    within(LIMIT, async {
        let backend = RawBackend::start(|mut stream, _| async move {
            if read_head(&mut stream).await.is_none() {
                return;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .await;
            // Dies before the last chunk.
        })
        .await;
        let proxy = proxy_to(backend.addr).await;
        // An HTTP/1.0 client reads the answer until the connection ends: a clean end would
        // look like a whole answer, so the proxy resets the connection instead.
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(format!("GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer).await;
        assert!(
            read.is_err(),
            "a clean end after {:?}",
            String::from_utf8_lossy(&answer)
        );
        proxy.shutdown().await;
    })
    .await;
}
