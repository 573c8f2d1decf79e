//! One request: find the route, pick a backend, forward, stream the answer back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::backend::{Backend, InFlight};
use crate::body::{Exchange, Upstream};
use crate::client::{ClientIo, RequestHead};
use crate::upstream::{self, Conn, ExchangeError, Framing, Head, ResponseBody, Send, SendError};
use crate::{headers, host, Inner, Pick};

/// What the proxy knows about the client connection a request came on.
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    /// The client's IP address, ready to go into `X-Forwarded-For`.
    pub(crate) ip: HeaderValue,
}

impl Client {
    pub(crate) fn new(peer: SocketAddr) -> Self {
        let ip = HeaderValue::from_str(&peer.ip().to_string())
            // An IP address is always a valid header value.
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Client { addr: peer, ip }
    }
}

/// What the proxy answers a request with.
pub(crate) enum Answer {
    /// A short text the proxy wrote itself; `exchange` is `None` for a request that matched no
    /// route.
    Text {
        status: StatusCode,
        text: Bytes,
        exchange: Option<Exchange>,
    },
    /// The backend's answer, its body still to stream.
    Upstream {
        status: StatusCode,
        headers: HeaderMap,
        /// The body's transfer codings other than chunked, which go on with it.
        codings: Option<HeaderValue>,
        body: ResponseBody,
        exchange: Exchange,
    },
    /// The backend switched protocols: after the head, the client connection and `conn` are
    /// joined into a tunnel.
    Upgrade {
        headers: HeaderMap,
        conn: Conn,
        in_flight: InFlight,
        exchange: Exchange,
    },
}

pub(crate) async fn handle(
    inner: &Inner,
    client: &Client,
    head: RequestHead,
    io: &mut ClientIo,
) -> Answer {
    let started = Instant::now();
    // An absolute-form target's authority has replaced Host already (client.rs).
    let route = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host::route_key)
        .and_then(|key| inner.route_by_key(&key));
    let Some(route) = route else {
        return unrouted(inner, &head);
    };
    let exchange = Exchange::new(route, started);
    forward(inner, client, head, io, exchange).await
}

fn unrouted(inner: &Inner, head: &RequestHead) -> Answer {
    inner
        .unrouted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let text = format!(
        "slipway: no app is deployed at host {host:?}; apps answer at <service>.<environment>.localhost\n"
    );
    Answer::Text {
        status: StatusCode::NOT_FOUND,
        text: Bytes::from(text),
        exchange: None,
    }
}

fn failure(status: StatusCode, text: &'static str, mut exchange: Exchange) -> Answer {
    exchange.status = status.as_u16();
    Answer::Text {
        status,
        text: Bytes::from_static(text.as_bytes()),
        exchange: Some(exchange),
    }
}

async fn forward(
    inner: &Inner,
    client: &Client,
    mut head: RequestHead,
    io: &mut ClientIo,
    exchange: Exchange,
) -> Answer {
    let config = &inner.config;
    if let (Some(limit), Framing::Length(length)) = (config.max_request_body, head.body) {
        if length > limit {
            return too_large(exchange);
        }
    }

    let upgrade = head.upgrade;
    // The client's framing was checked when its head was parsed: a Transfer-Encoding ends in
    // `chunked` (and any Content-Length beside it was dropped), a Content-Length is one number.
    let chunked = matches!(head.body, Framing::Chunked(_));
    headers::strip_hop_by_hop(&mut head.headers, upgrade);
    let body = io.has_body();
    // Backends get the origin form (`/path?query`), whatever form the client used.
    let target = head.origin_form();
    // A request that failed on a reused connection before any answer came is repeated once on a
    // new connection, when that is harmless: an idempotent method and no body taken.
    let mut may_retry = upstream::is_idempotent(&head.method);
    let mut retrying = false;

    // Backends whose connection failed before anything of the request was sent. Allocated only
    // when one fails.
    let mut failed: Vec<SocketAddr> = Vec::new();
    loop {
        let in_flight = match exchange.route.pick(&failed) {
            Pick::Backend(in_flight) => in_flight,
            Pick::Removed => {
                return failure(
                    StatusCode::NOT_FOUND,
                    "slipway: no app is deployed at this host\n",
                    exchange,
                );
            }
            Pick::NoBackends => {
                return failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "slipway: the app has no running instance\n",
                    exchange,
                );
            }
            Pick::Exhausted => {
                return failure(
                    StatusCode::BAD_GATEWAY,
                    "slipway: no instance of the app could be reached\n",
                    exchange,
                );
            }
        };
        let backend: &Arc<Backend> = in_flight.backend();
        let pooled = if retrying {
            // The retry: a new connection, not another pooled one the backend may have closed.
            None
        } else {
            backend.checkout(exchange.started, &inner.pool)
        };
        // When the request goes out: at once on a pooled connection (the clock was read when
        // the request arrived), after the connect otherwise.
        let (mut conn, sent_at) = match pooled {
            Some(conn) => (conn, exchange.started),
            None => match backend.connect(&inner.pool).await {
                Ok(conn) => (conn, Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "backend unreachable; trying another");
                    failed.push(backend.addr);
                    continue;
                }
            },
        };
        let encoded =
            upstream::encode_head(&head.method, &target, &head.headers, &client.ip, chunked);
        let mut send = Send::new(encoded, body, chunked, config.max_request_body);
        let sent = upstream::exchange(&mut conn, &mut send, &head.method, io);
        let result = match config.request_timeout {
            Some(limit) => match tokio::time::timeout_at((sent_at + limit).into(), sent).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(backend = %backend.addr, "backend sent no response headers in time");
                    return failure(
                        StatusCode::GATEWAY_TIMEOUT,
                        "slipway: the app did not answer in time\n",
                        exchange,
                    );
                }
            },
            None => sent.await,
        };
        match result {
            Ok(answer) => {
                return respond(inner, answer, conn, send, in_flight, upgrade, exchange);
            }
            Err(ExchangeError::Closed { partial, cause })
                if may_retry && conn.reused && !partial && !send.body_taken =>
            {
                // A kept-alive connection the backend closed as the request went out.
                tracing::debug!(backend = %backend.addr, error = %cause, "retrying on a new connection");
                may_retry = false;
                retrying = true;
            }
            Err(ExchangeError::Send(SendError::TooLarge(_))) => return too_large(exchange),
            Err(ExchangeError::Send(SendError::Client(e))) => {
                // The client's fault, not the app's: a 4xx, and not logged as a failing app.
                tracing::debug!(client = %client.addr, error = %e, "request body broke off");
                return failure(
                    StatusCode::BAD_REQUEST,
                    "slipway: the request body was malformed or ended early\n",
                    exchange,
                );
            }
            Err(e @ ExchangeError::Malformed(_)) => {
                tracing::warn!(backend = %backend.addr, error = %e, "backend answered a malformed response");
                return failure(
                    StatusCode::BAD_GATEWAY,
                    "slipway: the app sent a malformed response\n",
                    exchange,
                );
            }
            Err(e) => {
                tracing::warn!(backend = %backend.addr, error = %e, "backend failed the request");
                return failure(
                    StatusCode::BAD_GATEWAY,
                    "slipway: the app closed the connection without answering\n",
                    exchange,
                );
            }
        }
    }
}

fn too_large(exchange: Exchange) -> Answer {
    failure(
        StatusCode::PAYLOAD_TOO_LARGE,
        "slipway: the request body is larger than this proxy forwards\n",
        exchange,
    )
}

fn respond(
    inner: &Inner,
    head: Head,
    conn: Conn,
    send: Send,
    in_flight: InFlight,
    upgrade: bool,
    mut exchange: Exchange,
) -> Answer {
    let Head {
        status,
        mut headers,
        framing,
        keep_alive,
        codings,
    } = head;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if !upgrade {
            tracing::warn!(backend = %in_flight.backend().addr, "backend switched protocols unasked");
            return failure(
                StatusCode::BAD_GATEWAY,
                "slipway: the app sent a malformed response\n",
                exchange,
            );
        }
        exchange.status = status.as_u16();
        headers::strip_hop_by_hop(&mut headers, true);
        return Answer::Upgrade {
            headers,
            conn,
            in_flight,
            exchange,
        };
    }
    exchange.status = status.as_u16();
    headers::strip_hop_by_hop(&mut headers, false);
    exchange.upstream = Some(Upstream {
        in_flight,
        pool: inner.pool,
    });
    Answer::Upstream {
        status,
        headers,
        codings,
        body: ResponseBody::new(conn, send, framing, keep_alive),
        exchange,
    }
}

/// Joins the client connection (after the 101 went out) and the backend connection: first the
/// bytes each side sent early (the client's after its request head, the backend's after its
/// 101), then both ways until either closes. The tunnel counts as in flight to its backend
/// until it closes.
pub(crate) async fn tunnel(mut client: ClientIo, backend: Conn, in_flight: InFlight) {
    let (mut backend, early) = backend.into_parts();
    let result = async {
        if !client.buf.is_empty() {
            backend.write_all(&client.buf).await?;
        }
        if !early.is_empty() {
            client.stream.write_all(&early).await?;
        }
        tokio::io::copy_bidirectional(&mut client.stream, &mut backend).await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
    drop(in_flight);
}
