//! Slipway's reverse proxy for the `local` deployment target.
//!
//! Requests for `Host: <service>.<environment>.localhost` go to the backends the deployment
//! engine set for that route. The engine swaps releases without dropping a request:
//!
//! 1. start the new release on a new port and health-check it;
//! 2. [`Proxy::set_backends`] with the new addresses — from the moment it returns, new requests
//!    only go to the new set;
//! 3. [`Proxy::drain`] the old addresses — waits until the requests already sent to them have
//!    been answered completely (bodies included) and closes the pooled idle connections to them;
//! 4. stop the old release.
//!
//! See `docs/proxy.md` for routing rules, metrics and limits.

mod backend;
mod body;
mod client;
mod forward;
mod headers;
mod host;
mod metrics;
mod serve;
mod upstream;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use backend::{Backend, InFlight, PoolSettings};
use metrics::RouteMetrics;

pub use metrics::RouteStats;

/// Settings of a [`Proxy`].
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// How long opening a TCP connection to a backend may take before the next backend is tried.
    pub connect_timeout: Duration,
    /// How long a backend may take to send its response headers once the request was sent
    /// (504 after that); `None` waits as long as the client does. Streaming the body afterwards
    /// is not limited.
    pub request_timeout: Option<Duration>,
    /// Largest request body forwarded, in bytes: a larger `Content-Length` is answered 413
    /// at once; a streamed body that grows past it is cut off (the backend sees an aborted
    /// request). `None` leaves the limit to the app.
    pub max_request_body: Option<u64>,
    /// How long an idle keep-alive connection to a backend is kept for reuse. Shorter than the
    /// keep-alive timeouts of common app servers (Node's 5 s), so that the proxy drops an idle
    /// connection before the app does and never sends a request on one the app is closing.
    pub pool_idle_timeout: Duration,
    /// At most this many idle connections are kept per backend (and worker thread).
    pub pool_max_idle_per_backend: usize,
    /// A client connection on which no new request began for this long is closed (after the
    /// request in progress, if any) — between one and two periods, as it is checked once per
    /// period. This also ends clients that never finish sending a request's headers.
    pub client_idle_timeout: Duration,
    /// A client connection is closed after this many requests: the answer to the last one carries
    /// `Connection: close` and the client opens a new connection for its next request, which the
    /// accept loop hands to the least busy worker thread again. Keep-alive connections otherwise
    /// stay on the thread they were first given, however the load moves; this lets the
    /// placement follow it (nginx's `keepalive_requests`, also 1000 by default). `None` keeps a
    /// connection open for as many requests as the client sends.
    pub client_max_requests: Option<u64>,
    /// Threads the proxy serves on, each with its own single-threaded runtime and its own
    /// connections to the backends, so a request never hops between cores (the design of
    /// nginx's workers). 0 serves on the runtime that calls [`Proxy::serve`] instead.
    /// Default: one per CPU.
    pub worker_threads: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Some(Duration::from_secs(60)),
            max_request_body: None,
            pool_idle_timeout: Duration::from_secs(4),
            pool_max_idle_per_backend: 256,
            client_idle_timeout: Duration::from_secs(60),
            client_max_requests: Some(1000),
            worker_threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The reverse proxy. Cheap to clone; clones share routes, connections and counters.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    pool: PoolSettings,
    /// Routes by key `service.environment` (lower case), one identical copy per pool slot so
    /// that the worker threads never share a lock word (see `backend::pool_slot`). Routes are
    /// never taken out, only emptied by `remove`, so that their counters stay monotonic.
    routes: Box<[RouteTable]>,
    /// Serializes changes to the route tables.
    admin: Mutex<()>,
    /// Every backend some route or some in-flight request still holds, so that `drain` finds
    /// the in-flight count of an address that is no longer routed.
    backends: Mutex<HashMap<SocketAddr, Weak<Backend>>>,
    /// Requests answered 404 because their Host matched no route.
    unrouted: AtomicU64,
}

// Two cache lines, so that neighbouring tables never share one.
#[repr(align(128))]
struct RouteTable(RwLock<HashMap<Box<str>, Arc<RouteHandle>>>);

/// A route as one thread's table holds it: each table has its own handles, so the reference
/// count a request bumps is only ever touched by that table's thread.
struct RouteHandle(Arc<Route>);

impl std::ops::Deref for RouteHandle {
    type Target = Route;
    fn deref(&self) -> &Route {
        &self.0
    }
}

struct Route {
    service: Box<str>,
    environment: Box<str>,
    metrics: RouteMetrics,
    /// The backends, one identical copy per pool slot (like the route tables): `None` once
    /// removed (404); an empty set answers 503.
    backends: Box<[BackendSet]>,
    next: AtomicUsize,
}

type Backends = Option<Arc<[BackendHandle]>>;

/// A backend as one thread's copy of a backend set holds it (see `RouteHandle`).
type BackendHandle = Arc<backend::Handle>;

// Two cache lines, so that neighbouring copies never share one.
#[repr(align(128))]
struct BackendSet(RwLock<Backends>);

/// What choosing a backend of a route gave.
enum Pick {
    Removed,
    NoBackends,
    /// Every backend was tried and failed.
    Exhausted,
    Backend(InFlight),
}

impl Route {
    /// This thread's copy of the backends.
    fn backends(&self) -> RwLockReadGuard<'_, Backends> {
        let copy = &self.backends[backend::pool_slot() % self.backends.len()];
        // The lock only guards a pointer swap; a panic elsewhere cannot leave it half-written.
        copy.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces every copy (each with its own handles). Each copy is swapped under its write
    /// lock, so once this returns no thread can pick from the old set any more, and those that
    /// did are counted in flight.
    fn set(&self, backends: Option<&[Arc<Backend>]>) {
        for copy in &self.backends {
            let handles: Backends = backends.map(|set| {
                set.iter()
                    .map(|b| Arc::new(backend::Handle(Arc::clone(b))))
                    .collect()
            });
            *copy
                .0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = handles;
        }
    }

    /// Chooses the next backend round-robin, skipping `tried`, and counts the request in flight
    /// to it *while the set cannot change*: once `set_backends` has returned, no request can still
    /// pick an old backend without `drain` seeing it.
    fn pick(&self, tried: &[SocketAddr]) -> Pick {
        let guard = self.backends();
        let Some(set) = guard.as_ref() else {
            return Pick::Removed;
        };
        if set.is_empty() {
            return Pick::NoBackends;
        }
        if let [only] = &set[..] {
            // One backend (the usual case): no shared counter to bump.
            return if tried.contains(&only.addr) {
                Pick::Exhausted
            } else {
                Pick::Backend(only.enter())
            };
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..set.len())
            .map(|i| &set[(start + i) % set.len()])
            .find(|b| !tried.contains(&b.addr))
            .map_or(Pick::Exhausted, |b| Pick::Backend(b.enter()))
    }
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        let pool = PoolSettings {
            connect_timeout: config.connect_timeout,
            idle_timeout: config.pool_idle_timeout,
            max_idle: config.pool_max_idle_per_backend,
        };
        let routes = (0..config.worker_threads + 1)
            .map(|_| RouteTable(RwLock::new(HashMap::new())))
            .collect();
        Proxy {
            inner: Arc::new(Inner {
                config,
                pool,
                routes,
                admin: Mutex::new(()),
                backends: Mutex::new(HashMap::new()),
                unrouted: AtomicU64::new(0),
            }),
        }
    }

    /// Atomically replaces the backends of `<service>.<environment>.localhost` (creating the
    /// route if needed). New requests go only to the new set from the moment this returns;
    /// requests already in flight to old backends finish normally. Names are matched
    /// case-insensitively; a name that is not a DNS-1123 label can never be reached and is
    /// ignored with a warning.
    pub fn set_backends(&self, service: &str, environment: &str, backends: Vec<SocketAddr>) {
        let Some(key) = host::key_of(service, environment) else {
            tracing::warn!(service, environment, "not DNS-1123 labels; route ignored");
            return;
        };
        let set: Vec<Arc<Backend>> = {
            let mut registry = self.inner.registry();
            registry.retain(|_, backend| backend.strong_count() > 0);
            let mut set: Vec<Arc<Backend>> = Vec::with_capacity(backends.len());
            for addr in backends {
                if set.iter().any(|b| b.addr == addr) {
                    continue;
                }
                let backend = registry
                    .get(&addr)
                    .and_then(Weak::upgrade)
                    .unwrap_or_else(|| Arc::new(Backend::new(addr, self.inner.pool_slots())));
                registry.insert(addr, Arc::downgrade(&backend));
                set.push(backend);
            }
            set
        };
        let admin = self.inner.admin();
        let route = self.inner.route_or_insert(&admin, key);
        route.set(Some(&set));
    }

    /// Removes the route: requests for its host are then answered 404 (no app deployed), as for
    /// a host never routed. Its counters are kept. To answer 503 instead (the app exists but has
    /// no running instance), set an empty backend list.
    pub fn remove(&self, service: &str, environment: &str) {
        let _admin = self.inner.admin();
        if let Some(route) = self.inner.route(service, environment) {
            route.set(None);
        }
    }

    /// Current backends of a route (empty when there is no such route).
    pub fn backends(&self, service: &str, environment: &str) -> Vec<SocketAddr> {
        self.inner
            .route(service, environment)
            .and_then(|route| {
                route
                    .backends()
                    .as_ref()
                    .map(|set| set.iter().map(|b| b.addr).collect())
            })
            .unwrap_or_default()
    }

    /// Waits until no request is in flight to any of `backends` (after they were swapped out),
    /// or `timeout`; returns true when drained. A request is in flight until its response body
    /// was sent completely (or the client went away); upgraded connections (WebSocket) count
    /// until they close. Once drained, idle pooled connections to these backends are closed.
    pub async fn drain(&self, backends: &[SocketAddr], timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let held: Vec<Arc<Backend>> = {
            let registry = self.inner.registry();
            backends
                .iter()
                .filter_map(|addr| registry.get(addr).and_then(Weak::upgrade))
                .collect()
        };
        let mut drained = true;
        for backend in &held {
            drained &= backend.wait_idle(deadline).await;
        }
        if drained {
            for backend in &held {
                if !self.inner.is_routed(backend) {
                    backend.close_idle(None);
                }
            }
        }
        drained
    }

    /// Per-route counters since start, or `None` for a route never set.
    pub fn stats(&self, service: &str, environment: &str) -> Option<RouteStats> {
        self.inner
            .route(service, environment)
            .map(|route| route.metrics.snapshot())
    }

    /// Appends the Prometheus text exposition of all routes' metrics to `out`:
    /// `slipway_proxy_requests_total{service,environment,code_class}`,
    /// `slipway_proxy_request_duration_seconds` (histogram),
    /// `slipway_proxy_requests_in_flight` and `slipway_proxy_unrouted_requests_total`.
    pub fn render_prometheus(&self, out: &mut String) {
        let mut routes: Vec<Arc<RouteHandle>> = self.inner.routes().values().cloned().collect();
        routes.sort_by(|a, b| (&a.service, &a.environment).cmp(&(&b.service, &b.environment)));
        let rows: Vec<(&str, &str, &RouteMetrics)> = routes
            .iter()
            .map(|r| (&*r.service, &*r.environment, &r.metrics))
            .collect();
        metrics::render(out, &rows, self.inner.unrouted.load(Ordering::Relaxed));
    }

    /// Serves on the listener until `shutdown` resolves, then stops accepting, lets the requests
    /// in flight finish and closes idle client connections before returning.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve::serve(Arc::clone(&self.inner), listener, shutdown).await
    }
}

impl Inner {
    /// This thread's copy of the route table.
    fn routes(&self) -> RwLockReadGuard<'_, HashMap<Box<str>, Arc<RouteHandle>>> {
        let table = &self.routes[backend::pool_slot() % self.routes.len()];
        // Writers only insert complete entries; a poisoned map is still consistent.
        table
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Weak<Backend>>> {
        self.backends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Slot 0 for the caller's runtime, one per worker thread.
    fn pool_slots(&self) -> usize {
        self.config.worker_threads + 1
    }

    fn route_by_key(&self, key: &str) -> Option<Arc<RouteHandle>> {
        self.routes().get(key).cloned()
    }

    fn route(&self, service: &str, environment: &str) -> Option<Arc<RouteHandle>> {
        host::key_of(service, environment).and_then(|key| self.route_by_key(&key))
    }

    /// Serializes the changes to routes (rare), so that all copies of a table or of a route's
    /// backends always end up the same.
    fn admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The route for `key`, added if missing; the caller holds `admin`.
    fn route_or_insert(
        &self,
        _admin: &std::sync::MutexGuard<'_, ()>,
        key: String,
    ) -> Arc<RouteHandle> {
        if let Some(route) = self.route_by_key(&key) {
            return route;
        }
        let (service, environment) = key.split_once('.').unwrap_or((&key, ""));
        let route = Arc::new(Route {
            service: service.into(),
            environment: environment.into(),
            metrics: RouteMetrics::new(self.pool_slots()),
            backends: (0..self.pool_slots())
                .map(|_| BackendSet(RwLock::new(None)))
                .collect(),
            next: AtomicUsize::new(0),
        });
        let key: Box<str> = key.into();
        for table in &self.routes {
            table
                .0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(key.clone(), Arc::new(RouteHandle(Arc::clone(&route))));
        }
        Arc::new(RouteHandle(route))
    }

    /// Whether some route still sends requests to this backend.
    fn is_routed(&self, backend: &Arc<Backend>) -> bool {
        self.routes().values().any(|route| {
            route
                .backends()
                .as_ref()
                .is_some_and(|set| set.iter().any(|b| Arc::ptr_eq(&b.0, backend)))
        })
    }
}
