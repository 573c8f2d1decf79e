//! The bookkeeping of one request, carried until its answer is done: its route's counters, its
//! backend's in-flight count and the backend connection, which goes back to the pool once the
//! answer was read whole.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{InFlight, PoolSettings};
use crate::upstream::Conn;
use crate::RouteHandle;

pub(crate) struct Exchange {
    pub(crate) route: Arc<RouteHandle>,
    pub(crate) started: Instant,
    pub(crate) status: u16,
    pub(crate) upstream: Option<Upstream>,
    /// Whether the request was counted as done.
    finished: bool,
}

pub(crate) struct Upstream {
    pub(crate) in_flight: InFlight,
    pub(crate) pool: PoolSettings,
}

impl Exchange {
    pub(crate) fn new(route: Arc<RouteHandle>, started: Instant) -> Self {
        route.metrics.start();
        Exchange {
            route,
            started,
            status: 0,
            upstream: None,
            finished: false,
        }
    }

    /// Counts the request as done; `reusable` is its backend connection when the exchange on it
    /// is complete.
    pub(crate) fn finish(&mut self, reusable: Option<Conn>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let now = Instant::now();
        if let Some(upstream) = self.upstream.take() {
            if let Some(conn) = reusable {
                upstream.in_flight.backend().put(conn, now, &upstream.pool);
            }
            // `upstream.in_flight` drops here: the backend's in-flight count goes down only after
            // the answer is complete, which is what `drain` relies on.
        }
        self.route
            .metrics
            .finish(self.status, now.saturating_duration_since(self.started));
    }
}

impl Drop for Exchange {
    /// An answer that was not finished (the client went away, the proxy stopped) still counts,
    /// and its backend connection is not reused.
    fn drop(&mut self) {
        self.finish(None);
    }
}
