//! The accept loop and the client connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::body::ProxyBody;
use crate::forward::{self, Client};
use crate::{backend, Inner};

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_idle(Arc::clone(&inner)));
    let workers = inner.config.worker_threads;
    let result = if workers == 0 {
        accept_loop(inner, listener, shutdown).await;
        Ok(())
    } else {
        serve_on_workers(inner, listener, workers, shutdown).await
    };
    sweeper.abort();
    result
}

/// Runs `workers` threads, each with a single-threaded runtime accepting from the same listening
/// socket, until `shutdown`; returns once every worker has finished its connections.
async fn serve_on_workers(
    inner: Arc<Inner>,
    listener: TcpListener,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Workers watch `stopping`; each holds a receiver until its connections are done, so the
    // sender learns that all are done when no receiver is left.
    let (stopping, stop_rx) = watch::channel(false);
    let listener = listener.into_std()?;
    let mut started = Vec::with_capacity(workers);
    for slot in 1..=workers {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = listener.try_clone()?;
        let inner = Arc::clone(&inner);
        let mut stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("slipway-proxy-{slot}"))
            .spawn(move || {
                backend::set_pool_slot(slot);
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(inner, listener, stopped(&mut stop)).await,
                        Err(e) => tracing::error!(error = %e, "proxy worker could not listen"),
                    }
                });
            });
        match thread {
            Ok(thread) => started.push(thread),
            Err(e) => {
                // Stop the workers already running before reporting.
                let _ = stopping.send(true);
                return Err(e);
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    shutdown.await;
    // Fails only when every worker is gone already.
    let _ = stopping.send(true);
    stopping.closed().await;
    Ok(())
}

/// Accepts and serves connections until `shutdown`, then lets them finish their request in
/// progress and returns when all are closed.
async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    // Connections watch `stopping`; the sender learns they are all gone when every receiver
    // has been dropped.
    let (stopping, stop_rx) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(connection(
                    Arc::clone(&inner),
                    Arc::clone(&http),
                    stream,
                    peer,
                    stop_rx.clone(),
                ));
            }
            Err(e) => {
                // Per-connection failures (a client that reset before accept) and running out of
                // file descriptors; neither ends the proxy. Back off a little on the latter.
                tracing::warn!(error = %e, "accepting a connection failed");
                if matches!(e.raw_os_error(), Some(23 | 24)) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    // No receiver left means no connection left, which is all `send` could fail on.
    let _ = stopping.send(true);
    stopping.closed().await;
}

async fn connection(
    inner: Arc<Inner>,
    http: Arc<http1::Builder>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = ConnService(Arc::new(ConnState {
        inner,
        client: Client::new(peer),
    }));
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(&mut stop) => {
            // Finish the request in progress (if any), then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(client = %peer, error = %e, "client connection ended with an error");
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

/// Resolves once the proxy is stopping (or its `serve` is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it before any other await.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

struct ConnState {
    inner: Arc<Inner>,
    client: Client,
}

struct ConnService(Arc<ConnState>);

impl Service<Request<Incoming>> for ConnService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let state = Arc::clone(&self.0);
        Box::pin(async move { Ok(forward::handle(&state.inner, &state.client, req).await) })
    }
}
