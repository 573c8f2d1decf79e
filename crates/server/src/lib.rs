//! Slipway's HTTP server: the canonical `/api/v1`, the seed-000 compatible `/platform` facade, the
//! operator dashboard, OpenAPI and Swagger UI. One router, started on a given listener so tests can
//! bind port 0.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod guard;
pub mod openapi;
pub mod platform;
pub mod portal;
pub mod reconcile;
pub mod upgrade;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::Router;
use slipway_core::Actor;
use slipway_engine::Engine;
use slipway_platform_repo::PlatformRepo;
use slipway_store::Store;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (1 MiB); larger bodies get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

pub struct StateInner {
    pub store: Arc<dyn Store>,
    pub repo: Arc<PlatformRepo>,
    /// Test hook: the named point at which the process aborts (see `docs/operations.md`).
    pub crash_point: Option<String>,
    /// Held from a catalog change's database transaction through its repository commit, so that
    /// commits land in the order the database saw the changes and an update renders from the row
    /// it replaces.
    pub catalog_lock: tokio::sync::Mutex<()>,
    /// The deployment engine, when this process runs one (tests of the catalog alone do not).
    pub engine: Option<Arc<Engine>>,
    /// `--allow-local-repos`: repositories may be local paths or `file://` URLs.
    pub allow_local_repos: bool,
    /// Set once at start when rate limiting is on.
    pub rate_limiter: std::sync::OnceLock<guard::RateLimiter>,
    /// Authentication settings; off unless set with [`AppState::require_auth`].
    pub auth: auth::AuthConfig,
    pub principals: auth::PrincipalCache,
    /// Per-team limits; defaults when never set.
    pub quotas_set: std::sync::OnceLock<guard::Quotas>,
}

impl Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        repo: Arc<PlatformRepo>,
        crash_point: Option<String>,
    ) -> Self {
        Self::with_engine(store, repo, crash_point, None, false)
    }

    pub fn with_engine(
        store: Arc<dyn Store>,
        repo: Arc<PlatformRepo>,
        crash_point: Option<String>,
        engine: Option<Arc<Engine>>,
        allow_local_repos: bool,
    ) -> Self {
        AppState(Arc::new(StateInner {
            store,
            repo,
            crash_point,
            catalog_lock: tokio::sync::Mutex::new(()),
            engine,
            allow_local_repos,
            rate_limiter: std::sync::OnceLock::new(),
            auth: auth::AuthConfig::default(),
            principals: auth::PrincipalCache::default(),
            quotas_set: std::sync::OnceLock::new(),
        }))
    }

    /// Requires a credential on every non-public route. Call before the state is shared.
    pub fn require_auth(self, config: auth::AuthConfig) -> Self {
        match std::sync::Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.auth = config;
                AppState(Arc::new(inner))
            }
            // Already shared: keep it as it is (a programming error, caught by the auth tests).
            Err(shared) => AppState(shared),
        }
    }

    /// Sets the per-team quotas. Only the first call has an effect.
    pub fn with_quotas(self, quotas: guard::Quotas) -> Self {
        let _ = self.0.quotas_set.set(quotas);
        self
    }

    pub fn quotas(&self) -> guard::Quotas {
        self.quotas_set.get().copied().unwrap_or_default()
    }

    /// Turns rate limiting on (per client address). Only the first call has an effect.
    pub fn limit_rate(self, limit: guard::RateLimit) -> Self {
        let _ = self.0.rate_limiter.set(guard::RateLimiter::new(limit));
        self
    }

    /// The engine, or 503 when this process runs none.
    pub fn engine(&self) -> Result<&Arc<Engine>, error::ApiError> {
        self.engine.as_ref().ok_or_else(|| {
            error::ApiError::Unavailable("this Slipway process runs no deployment engine".into())
        })
    }

    /// Aborts the process when the operator asked to crash here (used by the crash-recovery test).
    pub fn crash_point_reached(&self, point: &str) {
        if self.crash_point.as_deref() == Some(point) {
            eprintln!("slipway: crash point {point:?} reached; aborting as requested by SLIPWAY_CRASH_POINT");
            std::process::abort();
        }
    }
}

/// The caller of a request, for the audit log. Identity arrives with the security issue; until then
/// every caller is `anonymous`, identified by address.
pub struct RequestActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let remote_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let name = parts
            .extensions
            .get::<auth::Principal>()
            .map_or_else(|| "anonymous".to_string(), |p| p.name.clone());
        Ok(RequestActor(Actor { name, remote_addr }))
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(platform::router())
        .merge(api::router())
        .merge(dashboard::router())
        .merge(portal::router())
        .merge(openapi::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::rate_limit,
        ))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(api::panic_response))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
