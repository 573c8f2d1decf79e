//! Request guards every route shares: rate limiting (per client address) and security headers.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second allowed per client address, with a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 200.0,
        }
    }
}

/// Token buckets per client address.
pub struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<HashMap<Client, Bucket>>>,
}

/// Whose budget a request spends: its address's, and its token's when it carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Addr(IpAddr),
    /// A hash of the bearer credential (the credential itself is not kept).
    Token(u64),
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

const SHARDS: usize = 16;
/// Buckets idle this long are forgotten (they would be full again anyway).
const IDLE: Duration = Duration::from_secs(300);

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one token for `addr`; `Err(wait)` when none is left.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        self.check_client(Client::Addr(addr))
    }

    /// Takes one token from `client`'s bucket; `Err(wait)` when none is left.
    pub fn check_client(&self, client: Client) -> Result<(), Duration> {
        let shard = match client {
            Client::Addr(IpAddr::V4(v4)) => usize::from(v4.octets()[3]),
            Client::Addr(IpAddr::V6(v6)) => usize::from(v6.octets()[15]),
            Client::Token(h) => (h % SHARDS as u64) as usize,
        } % SHARDS;
        let now = Instant::now();
        let mut buckets = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let b = buckets.entry(client).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        let elapsed = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.limit.per_second.max(f64::MIN_POSITIVE);
            Err(Duration::from_secs_f64(wait.min(3600.0)))
        }
    }
}

/// Per-team limits (seed 002's `limits`). `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub services_per_team: Option<u64>,
    pub concurrent_deployments_per_team: Option<u64>,
    /// Instances one deployment may ask for.
    pub replicas_per_deployment: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            services_per_team: None,
            concurrent_deployments_per_team: None,
            replicas_per_deployment: 16,
        }
    }
}

/// `403` naming the quota when `team` already has as many services as it may.
pub async fn check_service_quota(state: &AppState, team: &str) -> Result<(), ApiError> {
    let Some(max) = state.quotas().services_per_team else {
        return Ok(());
    };
    let have = state
        .store
        .list_services(&slipway_core::ServiceQuery {
            team: Some(team.to_string()),
            limit: 1,
            ..Default::default()
        })
        .await?
        .total;
    if have >= max {
        return Err(ApiError::Forbidden(format!(
            "team {team:?} has {have} services, its quota (services_per_team = {max}); delete one or ask an administrator to raise the quota"
        )));
    }
    Ok(())
}

/// `403` naming the quota when the service's team already runs as many deployments as it may.
pub async fn check_deployment_quota(state: &AppState, service: &str) -> Result<(), ApiError> {
    let Some(max) = state.quotas().concurrent_deployments_per_team else {
        return Ok(());
    };
    let team = match state.store.get_service(service).await {
        Ok(s) => s.team,
        Err(slipway_store::StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let running = state.store.active_deployments_of_team(&team).await?;
    if running >= max {
        return Err(ApiError::Forbidden(format!(
            "team {team:?} has {running} deployments in progress, its quota (concurrent_deployments_per_team = {max}); wait for one to end or cancel it"
        )));
    }
    Ok(())
}

/// Routes a monitor or a browser loading docs must always reach.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
        || path.starts_with("/docs")
        || path.starts_with("/openapi.")
        || path.starts_with("/portal/assets/")
}

/// `429 Too Many Requests` with `Retry-After` once a client address has used its budget.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(limiter) = state.rate_limiter.get() {
        if !exempt(request.uri().path()) {
            let addr = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip());
            let token = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    v.hash(&mut h);
                    h.finish()
                });
            let verdict = addr
                .map(|a| limiter.check_client(Client::Addr(a)))
                .unwrap_or(Ok(()))
                .and(token.map_or(Ok(()), |t| limiter.check_client(Client::Token(t))));
            if let Some(addr) = addr {
                if let Err(wait) = verdict {
                    let secs = wait.as_secs().max(1);
                    let mut res = ApiError::TooManyRequests(format!(
                        "too many requests from {addr} or its credential; retry in {secs} s"
                    ))
                    .into_response();
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        res.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    return res;
                }
            }
        }
    }
    next.run(request).await
}

/// Headers every response carries: no MIME sniffing, no framing, no referrer leaks.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut res = next.run(request).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages load scripts only from this origin (no inline script runs, whatever a page contains);
    // inline styles stay allowed (the dashboard and Swagger UI use them).
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_refuse() {
        let l = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(l.check(b).is_ok(), "addresses have their own budget");
    }
}
