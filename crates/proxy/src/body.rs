//! The bodies the proxy streams: the client's request body on its way to the backend, and the
//! answer on its way back (which carries the bookkeeping of the request until it is done).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::backend::{InFlight, PoolSettings, Sender};
use crate::RouteHandle;

/// Why a request body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the request body from the client: {0}")]
    Client(#[from] hyper::Error),
    #[error("the request body is larger than the configured limit of {0} bytes")]
    TooLarge(u64),
}

/// The client's request body, streamed to the backend frame by frame, with an optional size limit.
pub struct UpstreamBody {
    inner: Incoming,
    remaining: Option<u64>,
    limit: u64,
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, limit: Option<u64>) -> Self {
        UpstreamBody {
            inner,
            remaining: limit,
            limit: limit.unwrap_or(u64::MAX),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let (Some(remaining), Some(data)) = (self.remaining, frame.data_ref()) {
            let len = data.len() as u64;
            if len > remaining {
                return Poll::Ready(Some(Err(BodyError::TooLarge(self.limit))));
            }
            self.remaining = Some(remaining - len);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

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
    /// `None` when the connection cannot be reused (an upgrade took it).
    pub(crate) sender: Option<Sender>,
    pub(crate) pool: PoolSettings,
}

impl Exchange {
    fn finish(&mut self, body_complete: bool) {
        if let Some(upstream) = self.upstream.take() {
            if let (true, Some(sender)) = (body_complete, upstream.sender) {
                upstream.in_flight.backend().put(sender, &upstream.pool);
            }
            // `upstream.in_flight` drops here: the backend's in-flight count goes down only after
            // the answer is complete, which is what `drain` relies on.
        }
        self.route
            .metrics
            .finish(self.status, self.started.elapsed());
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
    Upstream(Incoming),
}

impl ProxyBody {
    pub(crate) fn text(text: Bytes, exchange: Option<Exchange>) -> Self {
        ProxyBody {
            kind: Kind::Text((!text.is_empty()).then_some(text)),
            exchange,
        }
    }

    pub(crate) fn upstream(body: Incoming, exchange: Exchange) -> Self {
        ProxyBody {
            kind: Kind::Upstream(body),
            exchange: Some(exchange),
        }
    }

    fn complete(&mut self, body_complete: bool) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.finish(body_complete);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.kind {
            Kind::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            Kind::Upstream(body) => Pin::new(body).poll_frame(cx),
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
