//! The accept loop and the client connections.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::body::ProxyBody;
use crate::forward::{self, Client};
use crate::{backend, Inner};

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_idle(Arc::clone(&inner)));
    let result = accept_loop(inner, listener, shutdown).await;
    sweeper.abort();
    result
}

/// A worker thread as the accept loop sees it.
struct Worker {
    connections: mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>,
    /// Client connections it serves now.
    load: Arc<AtomicUsize>,
}

/// Accepts connections until `shutdown` and hands each to the least busy worker thread (or
/// serves it on this runtime when there are none); then has every connection finish its request
/// in progress and returns once all are closed.
async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    // Idle and slow clients are handled by `client_idle_timeout` per connection instead of
    // hyper's header timeout, which would arm a timer for every request.
    http.keep_alive(true).header_read_timeout(None);
    let http = Arc::new(http);
    // Every worker holds a receiver of `workers_done` until its connections are closed, so the
    // sender learns that all are done when no receiver is left.
    let (workers_done, done_rx) = watch::channel(());
    let workers = start_workers(&inner, &http, &done_rx)?;
    // The connections served on this runtime (when there are no workers).
    let local = Arc::new(ConnSet::default());
    let (local_alive, local_alive_rx) = watch::channel(());
    let mut next = 0;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Per-connection failures (a client that reset before accept) and running out of
                // file descriptors; neither ends the proxy. Back off a little on the latter.
                tracing::warn!(error = %e, "accepting a connection failed");
                if matches!(e.raw_os_error(), Some(23 | 24)) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        if workers.is_empty() {
            let conn = connection(Arc::clone(&inner), Arc::clone(&http), stream, peer);
            let (set, alive) = (Arc::clone(&local), local_alive_rx.clone());
            // Registered before the task starts, so that a shutdown right now still reaches it.
            let registration = set.add();
            tokio::spawn(async move {
                conn.run(&set, registration, None).await;
                drop(alive);
            });
            continue;
        }
        // Least busy first, round-robin among equals, so that keep-alive connections (and the
        // load they carry) spread evenly over the cores.
        next = (next + 1) % workers.len();
        let worker = (0..workers.len())
            .map(|i| &workers[(next + i) % workers.len()])
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .unwrap_or(&workers[0]); // not empty: checked above
        match stream.into_std() {
            Ok(stream) => {
                worker.load.fetch_add(1, Ordering::Relaxed);
                if worker.connections.send((stream, peer)).is_err() {
                    worker.load.fetch_sub(1, Ordering::Relaxed);
                    tracing::error!("a proxy worker thread is gone; connection dropped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "handing a connection to a worker failed"),
        }
    }
    drop(listener);
    // Closing the hand-over channels makes the workers close their connections and end.
    drop(workers);
    drop(done_rx);
    local.close_all();
    drop(local_alive_rx);
    local_alive.closed().await;
    workers_done.closed().await;
    Ok(())
}

/// Starts `worker_threads` threads, each with a single-threaded runtime serving the connections
/// handed to it, so a request and its backend connection stay on one core (nginx's design).
fn start_workers(
    inner: &Arc<Inner>,
    http: &Arc<http1::Builder>,
    done: &watch::Receiver<()>,
) -> std::io::Result<Vec<Worker>> {
    let mut workers = Vec::with_capacity(inner.config.worker_threads);
    for slot in 1..=inner.config.worker_threads {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (connections, mut handed) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        let (inner, http, done, worker_load) = (
            Arc::clone(inner),
            Arc::clone(http),
            done.clone(),
            Arc::clone(&load),
        );
        std::thread::Builder::new()
            .name(format!("slipway-proxy-{slot}"))
            .spawn(move || {
                backend::set_pool_slot(slot);
                runtime.block_on(async move {
                    // This worker's connections hold `alive` receivers; the worker ends after
                    // the last one, and only then drops `done`, which `accept_loop` waits on.
                    let set = Arc::new(ConnSet::default());
                    let (alive, alive_rx) = watch::channel(());
                    while let Some((stream, peer)) = handed.recv().await {
                        match TcpStream::from_std(stream) {
                            Ok(stream) => {
                                let conn =
                                    connection(Arc::clone(&inner), Arc::clone(&http), stream, peer);
                                let token = alive_rx.clone();
                                let set = Arc::clone(&set);
                                let load = Arc::clone(&worker_load);
                                let registration = set.add();
                                tokio::spawn(async move {
                                    conn.run(&set, registration, Some(&load)).await;
                                    drop(token);
                                });
                            }
                            Err(e) => {
                                worker_load.fetch_sub(1, Ordering::Relaxed);
                                tracing::warn!(error = %e, "a worker could not take a connection");
                            }
                        }
                    }
                    // The proxy is stopping.
                    set.close_all();
                    drop(alive_rx);
                    alive.closed().await;
                    drop(done);
                });
            })?;
        workers.push(Worker { connections, load });
    }
    Ok(workers)
}

/// A client connection about to be served.
struct Connection {
    http: Arc<http1::Builder>,
    stream: TcpStream,
    state: Arc<ConnState>,
}

fn connection(
    inner: Arc<Inner>,
    http: Arc<http1::Builder>,
    stream: TcpStream,
    peer: SocketAddr,
) -> Connection {
    let _ = stream.set_nodelay(true);
    Connection {
        http,
        stream,
        state: Arc::new(ConnState {
            inner,
            client: Client::new(peer),
            requests: AtomicU64::new(0),
        }),
    }
}

impl Connection {
    /// Serves the connection until the client closes it, it stays idle for the idle timeout, or
    /// `set` closes it; the last two let the request in progress finish first.
    async fn run(
        self,
        set: &ConnSet,
        (id, mut close): (u64, oneshot::Receiver<()>),
        load: Option<&AtomicUsize>,
    ) {
        let state = self.state;
        let idle = state.inner.config.client_idle_timeout;
        let conn = self
            .http
            .serve_connection(TokioIo::new(self.stream), service(Arc::clone(&state)))
            .with_upgrades();
        tokio::pin!(conn);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + idle, idle);
        let mut seen = 0;
        // Every branch is polled whenever the task wakes (several times per request), so they
        // are kept cheap: no shared lock, only this connection's own channel and timer.
        let result = loop {
            tokio::select! {
                biased;
                result = conn.as_mut() => break result,
                _ = &mut close => {
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
                _ = ticks.tick() => {
                    let requests = state.requests.load(Ordering::Relaxed);
                    if requests == seen {
                        // No request began in a whole period: close once the one in progress
                        // (if any) is done. This also ends clients that never finish a header.
                        conn.as_mut().graceful_shutdown();
                        break conn.await;
                    }
                    seen = requests;
                }
            }
        };
        set.remove(id);
        if let Err(e) = result {
            tracing::debug!(client = %state.client.addr, error = %e, "client connection ended with an error");
        }
        if let Some(load) = load {
            load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The client connections served in one place (a worker thread, or the caller's runtime), so
/// that they can be told to close when the proxy stops.
#[derive(Default)]
struct ConnSet {
    next_id: AtomicU64,
    closers: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl ConnSet {
    fn closers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        // Only whole entries go in and out; a poisoned map is still consistent.
        self.closers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self) -> (u64, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (closer, close) = oneshot::channel();
        self.closers().insert(id, closer);
        (id, close)
    }

    fn remove(&self, id: u64) {
        self.closers().remove(&id);
    }

    /// Tells every connection to close after its request in progress.
    fn close_all(&self) {
        for (_, closer) in self.closers().drain() {
            // A connection that ended meanwhile no longer listens; nothing to do for it.
            let _ = closer.send(());
        }
    }
}

/// Closes pooled backend connections that stayed idle past the idle timeout even when no new
/// request comes to take them out of the pool.
async fn sweep_idle(inner: Arc<Inner>) {
    let period = inner.pool.idle_timeout.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let backends: Vec<_> = inner
            .registry()
            .values()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        for backend in backends {
            backend.close_idle(Some(inner.pool.idle_timeout));
        }
    }
}

struct ConnState {
    inner: Arc<Inner>,
    client: Client,
    /// Requests begun on this connection.
    requests: AtomicU64,
}

/// The per-connection request handler. A closure rather than a `Service` impl, so that its future
/// needs no box.
fn service(
    state: Arc<ConnState>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ProxyBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send,
> {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let begun = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let last = state
            .inner
            .config
            .client_max_requests
            .is_some_and(|max| begun >= max);
        let state = Arc::clone(&state);
        async move {
            let mut response = forward::handle(&state.inner, &state.client, req).await;
            // hyper closes the connection after an answer that says so. Not on a 101: the
            // connection goes on as the tunnel.
            if last && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            Ok(response)
        }
    })
}
