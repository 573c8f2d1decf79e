//! The accept loop and the client connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::{self, BodyOut, ClientIo, ConnOut};
use crate::forward::{self, Answer, Client};
use crate::upstream::{Framing, ResponseBody};
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
    // Every worker holds a receiver of `workers_done` until its connections are closed, so the
    // sender learns that all are done when no receiver is left.
    let (workers_done, done_rx) = watch::channel(());
    let workers = start_workers(&inner, &done_rx)?;
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
            let conn = connection(Arc::clone(&inner), stream, peer);
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
fn start_workers(inner: &Arc<Inner>, done: &watch::Receiver<()>) -> std::io::Result<Vec<Worker>> {
    let mut workers = Vec::with_capacity(inner.config.worker_threads);
    for slot in 1..=inner.config.worker_threads {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (connections, mut handed) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        let (inner, done, worker_load) = (Arc::clone(inner), done.clone(), Arc::clone(&load));
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
                                let conn = connection(Arc::clone(&inner), stream, peer);
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
    stream: TcpStream,
    state: ConnState,
}

fn connection(inner: Arc<Inner>, stream: TcpStream, peer: SocketAddr) -> Connection {
    let _ = stream.set_nodelay(true);
    Connection {
        stream,
        state: ConnState {
            inner,
            client: Client::new(peer),
        },
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
        let io = ClientIo::new(self.stream, self.state.inner.config.client_idle_timeout);
        serve_requests(&self.state, io, &mut close).await;
        set.remove(id);
        if let Some(load) = load {
            load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Whether the connection goes on after an answer.
enum After {
    Next,
    Close,
    /// Already ended (closed, or handed to a tunnel).
    Gone,
}

/// Serves requests on the connection one after another (pipelined ones in order).
async fn serve_requests(state: &ConnState, mut io: ClientIo, close: &mut oneshot::Receiver<()>) {
    let config = &state.inner.config;
    let idle = config.client_idle_timeout;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + idle, idle);
    // After a long request, one late tick, then a whole period again.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut begun, mut seen) = (0u64, 0u64);
    let mut out = Vec::with_capacity(512);
    loop {
        // How far the buffer was searched for the end of the head.
        let mut scanned = 0;
        let head = loop {
            // Parsed when the first bytes come (so that garbage is refused at once), then only
            // once the head may be complete or is too long.
            let first = scanned == 0 && !io.buf.is_empty();
            if first
                || client::head_may_be_complete(&io.buf, &mut scanned)
                || io.buf.len() > client::MAX_HEAD
            {
                scanned = scanned.max(1);
                match client::parse_request(&mut io.buf) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(refusal) => {
                        tracing::debug!(client = %state.client.addr, ?refusal, "refused a request head");
                        client::refuse(io, refusal).await;
                        return;
                    }
                }
            }
            // Every branch is polled whenever the task wakes, so they are kept cheap: this
            // connection's own channel and timer, no shared lock.
            let filled = tokio::select! {
                biased;
                _ = &mut *close => return,
                filled = std::future::poll_fn(|cx| io.poll_fill(cx)) => filled,
                _ = ticks.tick() => {
                    if begun == seen {
                        // No request began in a whole period: this also ends clients that
                        // never finish a head.
                        return;
                    }
                    seen = begun;
                    continue;
                }
            };
            match filled {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(client = %state.client.addr, error = %e, "client connection ended with an error");
                    return;
                }
            }
        };
        begun += 1;
        let last = config.client_max_requests.is_some_and(|max| begun >= max);
        let keep_alive = head.keep_alive && !last;
        let (http11, head_request) = (head.http11, head.method == Method::HEAD);
        io.start_request(&head);
        let answer = forward::handle(&state.inner, &state.client, head, &mut io).await;
        out.clear();
        out.extend_from_slice(io.take_owed_continue());
        let after = match answer {
            Answer::Text {
                status,
                text,
                exchange,
            } => {
                // The body the proxy did not forward is dropped if it is all here; otherwise the
                // connection cannot go on.
                let keep_alive = io.finish_request() && keep_alive;
                client::encode_text_head(
                    &mut out,
                    status,
                    text.len(),
                    conn_out(keep_alive, http11),
                );
                drop(exchange);
                let body: &[u8] = if head_request { b"" } else { &text };
                match io.write_parts(&[&out, body]).await {
                    Ok(()) if keep_alive => After::Next,
                    Ok(()) => After::Close,
                    Err(_) => After::Gone,
                }
            }
            Answer::Upstream {
                status,
                headers,
                codings,
                body,
                exchange,
            } => {
                // An answer may begin before the request's body was read whole (a streaming echo,
                // an early 413): its head cannot know yet whether the connection will go on, and
                // `finish_request` decides after it (closing without `Connection: close` is
                // allowed, RFC 9112 §9.6).
                let (out_body, keep_alive) = match body.framing() {
                    Framing::Chunked(_) | Framing::UntilClose if http11 => {
                        (BodyOut::Chunked, keep_alive)
                    }
                    Framing::Chunked(_) | Framing::UntilClose => (BodyOut::UntilClose, false),
                    Framing::Length(_) | Framing::Done => (BodyOut::AsIs, keep_alive),
                };
                client::encode_head(
                    &mut out,
                    status,
                    &headers,
                    out_body,
                    conn_out(keep_alive, http11),
                    codings.as_ref(),
                );
                match stream_answer(&mut io, &out, body, out_body, exchange).await {
                    Ok(()) if keep_alive && io.finish_request() => After::Next,
                    Ok(()) => After::Close,
                    // Cut off: the client must not take what it got for the whole answer.
                    Err(()) => After::Gone,
                }
            }
            Answer::Upgrade {
                headers,
                conn,
                in_flight,
                exchange,
            } => {
                client::encode_head(
                    &mut out,
                    StatusCode::SWITCHING_PROTOCOLS,
                    &headers,
                    BodyOut::AsIs,
                    ConnOut::Default,
                    None,
                );
                drop(exchange);
                if io.write_parts(&[&out]).await.is_ok() {
                    // Its own task, so that stopping the proxy does not wait for tunnels.
                    tokio::spawn(forward::tunnel(io, conn, in_flight));
                }
                return;
            }
        };
        match after {
            After::Next => {}
            After::Close => {
                io.close().await;
                return;
            }
            After::Gone => return,
        }
    }
}

/// The connection header an answer carries: `close` when the connection ends after it,
/// `keep-alive` for an HTTP/1.0 client that keeps it.
fn conn_out(keep_alive: bool, http11: bool) -> ConnOut {
    match (keep_alive, http11) {
        (false, _) => ConnOut::Close,
        (true, false) => ConnOut::KeepAlive,
        (true, true) => ConnOut::Default,
    }
}

/// Writes the answer's head (`head`) and streams its body from the backend, the head together
/// with the first part of the body when that is already there. `Err` when the answer was cut
/// off (the backend failed mid-body, or the client went away).
async fn stream_answer(
    io: &mut ClientIo,
    head: &[u8],
    mut body: ResponseBody,
    out_body: BodyOut,
    mut exchange: crate::body::Exchange,
) -> Result<(), ()> {
    let mut pending_head = head;
    loop {
        // Polled once without waiting when the head is still unwritten, so that a body that is
        // already here goes out in the same write as the head.
        let polled = std::future::poll_fn(|cx| {
            let polled = body.poll_data(cx, io);
            if polled.is_pending() && !pending_head.is_empty() {
                return Poll::Ready(None);
            }
            polled.map(Some)
        })
        .await;
        let part = match polled {
            // Nothing yet: the head goes out alone.
            None => {
                if io.write_parts(&[pending_head]).await.is_err() {
                    return Err(());
                }
                pending_head = b"";
                continue;
            }
            Some(part) => part,
        };
        let (data, end) = match part {
            Some(Ok(data)) => {
                let end = body.is_end_stream();
                (data, end)
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "the answer was cut off");
                // What came is passed on; then the connection is reset rather than closed, so
                // that even a client reading until the end (HTTP/1.0) sees the answer is not whole.
                let _ = io.write_parts(&[pending_head]).await;
                // A zero linger only makes the close a reset; it never blocks.
                #[allow(deprecated)]
                let _ = io.stream.set_linger(Some(Duration::ZERO));
                return Err(());
            }
            None => (Bytes::new(), true),
        };
        if end {
            // Counted (and the backend connection pooled) before the client can see the end
            // of the answer, so that whoever got an answer finds it in the metrics.
            exchange.finish(body.take_reusable());
        }
        let written = match (out_body, data.is_empty()) {
            (BodyOut::Chunked, false) => {
                let size = format!("{:x}\r\n", data.len());
                let tail: &[u8] = if end { b"\r\n0\r\n\r\n" } else { b"\r\n" };
                io.write_parts(&[pending_head, size.as_bytes(), &data, tail])
                    .await
            }
            (BodyOut::Chunked, true) if end => io.write_parts(&[pending_head, b"0\r\n\r\n"]).await,
            _ => io.write_parts(&[pending_head, &data]).await,
        };
        pending_head = b"";
        if let Err(e) = written {
            tracing::debug!(error = %e, "the client went away mid-answer");
            return Err(());
        }
        if end {
            return Ok(());
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
}
