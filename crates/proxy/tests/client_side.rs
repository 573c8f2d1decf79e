//! The proxy's HTTP/1 server side, as raw clients see it: pipelining, HTTP/1.0, `100 Continue`,
//! absolute-form targets, refused heads, and what happens to a body the proxy does not forward.

mod common;

use std::time::Duration;

use common::{header, within, TestBackend, TestProxy};
use slipway_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(20);
const HOST: &str = "api.dev.localhost";

async fn proxy_and_backend() -> (TestProxy, TestBackend) {
    let proxy = TestProxy::start(ProxyConfig::default()).await;
    let backend = TestBackend::start("api").await;
    proxy.proxy.set_backends("api", "dev", vec![backend.addr]);
    (proxy, backend)
}

async fn send(stream: &mut TcpStream, bytes: impl AsRef<[u8]>) {
    stream.write_all(bytes.as_ref()).await.unwrap();
}

/// Reads one answer: its head (up to the blank line) and then a body of `Content-Length` bytes
/// (none without one). Returns the head and the body.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> (String, String) {
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before a whole head: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(pending.drain(..head_end).collect()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while pending.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed mid-body");
        pending.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(pending.drain(..length).collect()).unwrap();
    (head, body)
}

/// Whether the proxy closed the connection (reads to the end within a second).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_pipelined_requests_in_order() {
    within(LIMIT, async {
        let (proxy, backend) = proxy_and_backend().await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let requests = format!(
            "GET /status/201 HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
             POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\r\nhello\
             GET /status/202 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        );
        send(&mut stream, requests).await;
        let mut pending = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(read_answer(&mut stream, &mut pending).await);
        }
        let statuses: Vec<_> = answers.iter().map(|(h, _)| &h[..12]).collect();
        assert_eq!(statuses, ["HTTP/1.1 201", "HTTP/1.1 200", "HTTP/1.1 202"]);
        assert_eq!(answers[0].1, "201 from api");
        assert_eq!(answers[1].1, "hello");
        // Every answer carries a Date (the backend's, or the proxy's when it sent none).
        assert!(answers.iter().all(|(h, _)| header(h, "date").is_some()));
        assert_eq!(backend.served(), 3);
        // Still open for more.
        send(
            &mut stream,
            format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        )
        .await;
        assert_eq!(read_answer(&mut stream, &mut pending).await.1, "api");
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_http10_clients_without_chunking() {
    within(LIMIT, async {
        let (proxy, _backend) = proxy_and_backend().await;
        // A body of unknown length (the backend sends it chunked) goes to an HTTP/1.0 client as
        // is, delimited by the end of the connection.
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        send(
            &mut stream,
            format!("GET /bytes/100000 HTTP/1.0\r\nHost: {HOST}\r\n\r\n"),
        )
        .await;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let at = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&answer[..at]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header(&head, "transfer-encoding"), None, "{head}");
        assert_eq!(header(&head, "connection"), Some("close"), "{head}");
        assert_eq!(answer.len() - at, 100_000);
        assert!(answer[at..].iter().all(|b| *b == b'x'));

        // Keep-alive when the HTTP/1.0 client asks for it, and says so.
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let mut pending = Vec::new();
        for _ in 0..2 {
            send(
                &mut stream,
                format!("GET / HTTP/1.0\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n"),
            )
            .await;
            let (head, body) = read_answer(&mut stream, &mut pending).await;
            assert_eq!(header(&head, "connection"), Some("keep-alive"), "{head}");
            assert_eq!(body, "api");
        }
        // Without it, the connection closes after the answer.
        send(
            &mut stream,
            format!("GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n"),
        )
        .await;
        let (head, _) = read_answer(&mut stream, &mut pending).await;
        assert_eq!(header(&head, "connection"), Some("close"), "{head}");
        assert!(closed(&mut stream).await);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_100_continue_before_reading_a_body() {
    within(LIMIT, async {
        let (proxy, _backend) = proxy_and_backend().await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        send(&mut stream, format!(
                    "POST /echo HTTP/1.1\r\nHost: {HOST}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
                )).await;
        // The client sends nothing more until the proxy asks for the body.
        let mut pending = Vec::new();
        let (interim, _) = read_answer(&mut stream, &mut pending).await;
        assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
        send(&mut stream, b"hello").await;
        let (head, body) = read_answer(&mut stream, &mut pending).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "hello");

        // No interim answer when the proxy answers without the body: the connection closes
        // instead, since the body may still come.
        send(&mut stream, b"POST / HTTP/1.1\r\nHost: nowhere.dev.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await;
        let (head, _) = read_answer(&mut stream, &mut pending).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        assert_eq!(header(&head, "connection"), Some("close"), "{head}");
        assert!(closed(&mut stream).await);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_connection_when_an_unforwarded_body_is_all_there() {
    within(LIMIT, async {
        let (proxy, _backend) = proxy_and_backend().await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let mut pending = Vec::new();
        // Answered by the proxy itself (no such app): the small bodies already sent are
        // dropped, and the next request on the connection is served.
        for request in [
            &b"POST / HTTP/1.1\r\nHost: nowhere.dev.localhost\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"POST / HTTP/1.1\r\nHost: nowhere.dev.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ] {
            send(&mut stream, request).await;
            let (head, _) = read_answer(&mut stream, &mut pending).await;
            assert!(head.starts_with("HTTP/1.1 404"), "{head}");
            assert_eq!(header(&head, "connection"), None, "{head}");
            send(&mut stream, format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n")).await;
            assert_eq!(read_answer(&mut stream, &mut pending).await.1, "api");
        }
        // A body that has not all come cannot be skipped: the connection closes.
        send(&mut stream, b"POST / HTTP/1.1\r\nHost: nowhere.dev.localhost\r\nContent-Length: 100\r\n\r\nhello").await;
        let (head, _) = read_answer(&mut stream, &mut pending).await;
        assert_eq!(header(&head, "connection"), Some("close"), "{head}");
        assert!(closed(&mut stream).await);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_absolute_form_targets_by_their_authority() {
    within(LIMIT, async {
        let (proxy, backend) = proxy_and_backend().await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        send(&mut stream, b"GET http://api.dev.localhost:7780/status/203?x=1 HTTP/1.1\r\nHost: other.dev.localhost\r\n\r\n").await;
        let mut pending = Vec::new();
        let (head, body) = read_answer(&mut stream, &mut pending).await;
        assert!(head.starts_with("HTTP/1.1 203"), "{head}");
        assert_eq!(body, "203 from api");
        // The app sees the host it was reached by, not the Host line the target overrode.
        send(&mut stream, b"GET http://api.dev.localhost/headers HTTP/1.1\r\nHost: evil.example\r\n\r\n").await;
        let (_, body) = read_answer(&mut stream, &mut pending).await;
        assert!(body.contains("host: api.dev.localhost\n"), "{body}");
        assert!(body.contains("x-forwarded-host: api.dev.localhost\n"), "{body}");
        assert!(!body.contains("evil"), "{body}");
        assert_eq!(backend.served(), 2);
        // Only http(s) URLs and paths are targets.
        for target in ["ftp://api.dev.localhost/x", "api.dev.localhost/x", "*"] {
            let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
            send(&mut stream, format!("GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n")).await;
            let (head, _) = read_answer(&mut stream, &mut Vec::new()).await;
            assert!(head.starts_with("HTTP/1.1 400"), "{target}: {head}");
        }
        assert_eq!(backend.served(), 2);
        proxy.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_heads_it_cannot_serve_and_closes() {
    within(LIMIT, async {
        let (proxy, backend) = proxy_and_backend().await;
        let many_headers = format!(
            "GET / HTTP/1.1\r\nHost: {HOST}\r\n{}\r\n",
            "x-filler: 1\r\n".repeat(101)
        );
        let long_target = format!(
            "GET /{} HTTP/1.1\r\nHost: {HOST}\r\n\r\n",
            "a".repeat(70_000)
        );
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n".to_owned(), "400", "Host"),
            (
                format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: {HOST}\r\n\r\n"),
                "400",
                "Host",
            ),
            (
                format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n"),
                "405",
                "CONNECT",
            ),
            (many_headers, "431", "too large"),
            (long_target, "431", "too large"),
            (
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
                "505",
                "HTTP/1",
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n".to_owned(),
                "400",
                "malformed",
            ),
        ];
        for (request, status, says) in cases {
            let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
            send(&mut stream, &request).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            let answer = String::from_utf8_lossy(&answer);
            let shown: String = request.chars().take(60).collect();
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{shown}: {answer}"
            );
            assert!(answer.contains(says), "{shown}: {answer}");
            assert_eq!(header(&answer, "connection"), Some("close"), "{answer}");
        }
        assert_eq!(backend.served(), 0);
        assert_eq!(proxy.proxy.stats("api", "dev").unwrap().requests, 0);
        proxy.shutdown().await;
    })
    .await;
}
