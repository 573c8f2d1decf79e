//! The answer the proxy streams back to the client, which carries the bookkeeping of the request
//! (metrics, in-flight count, the backend connection) until it is done.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::backend::{InFlight, PoolSettings};
use crate::upstream::{BodyError, Conn, ResponseBody};
use crate::RouteHandle;

/// What a request holds until its answer is done: its route's counters, its backend's in-flight
/// count and the backend connection, which goes back to the pool once the answer was read whole.
pub(crate) struct Exchange {
    pub(crate) route: Arc<RouteHandle>,
    pub(crate) started: Instant,
    pub(crate) status: u16,
    pub(crate) upstream: Option<Upstream>,
}

pub(crate) struct Upstream {
    pub(crate) in_flight: InFlight,
    pub(crate) pool: PoolSettings,
}

impl Exchange {
    /// Counts the request as done; `reusable` is its backend connection when the exchange on it
    /// is complete.
    fn finish(&mut self, reusable: Option<Conn>) {
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

/// The answer sent to the client: either a short text the proxy wrote itself, or the backend's
/// body streamed through.
pub struct ProxyBody {
    kind: Kind,
    /// Set until the request is counted as done (body finished or dropped).
    exchange: Option<Exchange>,
}

enum Kind {
    Text(Option<Bytes>),
    Upstream(ResponseBody),
}

impl ProxyBody {
    pub(crate) fn text(text: Bytes, exchange: Option<Exchange>) -> Self {
        ProxyBody {
            kind: Kind::Text((!text.is_empty()).then_some(text)),
            exchange,
        }
    }

    pub(crate) fn upstream(body: ResponseBody, exchange: Exchange) -> Self {
        ProxyBody {
            kind: Kind::Upstream(body),
            exchange: Some(exchange),
        }
    }

    fn complete(&mut self, body_complete: bool) {
        if let Some(mut exchange) = self.exchange.take() {
            let reusable = match &mut self.kind {
                Kind::Upstream(body) if body_complete => body.take_reusable(),
                _ => None,
            };
            exchange.finish(reusable);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = match &mut this.kind {
            Kind::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            Kind::Upstream(body) => body.poll_frame(cx),
        };
        match &polled {
            Poll::Ready(None) => this.complete(true),
            Poll::Ready(Some(Err(_))) => this.complete(false),
            Poll::Ready(Some(Ok(_))) if this.is_end_stream() => this.complete(true),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Text(text) => text.is_none(),
            Kind::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Text(Some(text)) => SizeHint::with_exact(text.len() as u64),
            Kind::Text(None) => SizeHint::with_exact(0),
            Kind::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // An answer hyper never polled (a HEAD, a 204, an empty body) is complete if nothing of it
        // is left; one the client walked away from is not, and its connection is not reused.
        let complete = self.is_end_stream();
        self.complete(complete);
    }
}
