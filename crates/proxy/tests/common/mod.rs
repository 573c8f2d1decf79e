//! Test backends, a proxy on port 0 and a small HTTP client, all on real sockets.
#![allow(dead_code)] // each test file uses a part of this

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use slipway_proxy::{Proxy, ProxyConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub type Body = BoxBody<Bytes, hyper::Error>;

pub fn text(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// The value of a header in a raw message head (status or request line first; first match, any
/// case).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Polls `condition` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A proxy serving on 127.0.0.1:0 until dropped or shut down.
pub struct TestProxy {
    pub proxy: Proxy,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestProxy {
    pub async fn start(config: ProxyConfig) -> Self {
        let proxy = Proxy::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = proxy.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        TestProxy {
            proxy,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A backend on 127.0.0.1:0. Paths:
/// - `/` answers 200 with its name (also in `x-backend`);
/// - `/status/{code}` answers that status;
/// - `/headers` answers the request headers, one `name: value` line each;
/// - `/echo` streams the request body back as it arrives;
/// - `/slow` answers its name after a few milliseconds of work, `/sleep/{ms}` after `ms`;
/// - `/upgrade` switches protocols and echoes the bytes of the upgraded connection;
/// - `/count` reads the request body and answers its length in bytes;
/// - `/bytes/{n}` streams `n` bytes (chunked, 64 KiB frames).
pub struct TestBackend {
    pub name: String,
    pub addr: SocketAddr,
    served: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TestBackend {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(backend_loop(
            listener,
            name.to_owned(),
            Arc::clone(&served),
            Arc::clone(&connections),
            stop_rx,
        ));
        TestBackend {
            name: name.to_owned(),
            addr,
            served,
            connections,
            stop,
            task,
        }
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets requests in progress finish, closes idle connections, returns when
    /// every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

async fn backend_loop(
    listener: TcpListener,
    name: String,
    served: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let (conns_done, conns_rx) = watch::channel(());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.unwrap(),
            () = stopped(&mut stop) => break,
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let name = name.clone();
        let served = Arc::clone(&served);
        let mut stop = stop.clone();
        let conns_rx = conns_rx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let name = name.clone();
                let served = Arc::clone(&served);
                async move {
                    let response = answer(&name, req).await;
                    served.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(response)
                }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(conns_rx);
        });
    }
    drop(listener);
    drop(conns_rx);
    conns_done.closed().await;
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn answer(name: &str, mut req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let mut response = match path.as_str() {
        "/" => Response::new(text(name.to_owned())),
        "/slow" => {
            // Simulated work, so that requests are in flight while the test swaps backends.
            tokio::time::sleep(Duration::from_millis(3)).await;
            Response::new(text(name.to_owned()))
        }
        "/headers" => {
            let mut dump = String::new();
            for (k, v) in req.headers() {
                dump.push_str(&format!("{k}: {}\n", v.to_str().unwrap()));
            }
            let mut r = Response::new(text(dump));
            r.headers_mut()
                .insert("connection", "x-private".parse().unwrap());
            r.headers_mut().insert("x-private", "1".parse().unwrap());
            r.headers_mut()
                .insert("keep-alive", "timeout=5".parse().unwrap());
            r.headers_mut().insert("x-public", "1".parse().unwrap());
            r
        }
        "/echo" => Response::new(req.into_body().boxed()),
        "/count" => {
            let mut body = req.into_body();
            let mut count = 0usize;
            while let Some(frame) = body.frame().await {
                count += frame.unwrap().data_ref().map_or(0, Bytes::len);
            }
            Response::new(text(count.to_string()))
        }
        "/upgrade" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let upgraded = upgrade.await.unwrap();
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            r.headers_mut().insert("upgrade", "echo".parse().unwrap());
            r
        }
        other if other.starts_with("/bytes/") => {
            let mut left: usize = other["/bytes/".len()..].parse().unwrap();
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                while left > 0 {
                    let n = left.min(chunk.len());
                    if tx.send(chunk.slice(..n)).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
            let frames = channel_body(rx);
            Response::new(frames)
        }
        other if other.starts_with("/sleep/") => {
            // Work that takes the given number of milliseconds.
            let ms = other["/sleep/".len()..].parse().unwrap();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(text(name.to_owned()))
        }
        other => match other.strip_prefix("/status/") {
            Some(code) => {
                let mut r = Response::new(text(format!("{code} from {name}")));
                *r.status_mut() = StatusCode::from_u16(code.parse().unwrap()).unwrap();
                r
            }
            None => panic!("unexpected path {other}"),
        },
    };
    response
        .headers_mut()
        .insert("x-backend", name.parse().unwrap());
    response
}

/// A body of the frames a channel delivers, for streaming answers.
fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    struct Frames(tokio::sync::mpsc::Receiver<Bytes>);
    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = hyper::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
        }
    }
    Frames(rx).boxed()
}

/// One keep-alive client connection.
pub struct Conn {
    sender: SendRequest<Body>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        Conn { sender }
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub async fn send(&mut self, req: Request<Body>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    /// Sends a GET and reads the whole answer.
    pub async fn get(&mut self, host: &str, path: &str) -> hyper::Result<Answer> {
        let response = self.send(request(host, path)).await?;
        Answer::read(response).await
    }
}

pub fn request(host: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", host)
        .body(empty())
        .unwrap()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn read(response: Response<Incoming>) -> hyper::Result<Self> {
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// A GET on a new connection.
pub async fn get(proxy: SocketAddr, host: &str, path: &str) -> Answer {
    Conn::open(proxy).await.get(host, path).await.unwrap()
}

/// Runs `f` with a deadline, so a broken test fails instead of hanging.
pub async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("the test did not finish in time")
}

/// An address nothing listens on (connection refused).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
