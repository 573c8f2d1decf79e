//! One request: find the route, pick a backend, forward, stream the answer back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::backend::{Backend, InFlight};
use crate::body::{Exchange, ProxyBody, Upstream};
use crate::upstream::{self, Conn, ExchangeError, Head, ResponseBody, Send, SendError};
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

pub(crate) async fn handle(
    inner: &Inner,
    client: &Client,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let route = {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        host.and_then(host::route_key)
            .and_then(|key| inner.route_by_key(&key))
    };
    let Some(route) = route else {
        return unrouted(inner, &req);
    };
    route.metrics.start();
    let exchange = Exchange {
        route,
        started,
        status: 0,
        upstream: None,
    };
    forward(inner, client, req, exchange).await
}

fn unrouted(inner: &Inner, req: &Request<Incoming>) -> Response<ProxyBody> {
    inner
        .unrouted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let text = format!(
        "slipway: no app is deployed at host {host:?}; apps answer at <service>.<environment>.localhost\n"
    );
    text_response(StatusCode::NOT_FOUND, Bytes::from(text), None)
}

fn text_response(
    status: StatusCode,
    text: Bytes,
    exchange: Option<Exchange>,
) -> Response<ProxyBody> {
    let mut exchange = exchange;
    if let Some(exchange) = &mut exchange {
        exchange.status = status.as_u16();
    }
    let mut response = Response::new(ProxyBody::text(text, exchange));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn failure(status: StatusCode, text: &'static str, exchange: Exchange) -> Response<ProxyBody> {
    text_response(status, Bytes::from_static(text.as_bytes()), Some(exchange))
}

async fn forward(
    inner: &Inner,
    client: &Client,
    mut req: Request<Incoming>,
    exchange: Exchange,
) -> Response<ProxyBody> {
    let config = &inner.config;
    if let (Some(limit), Some(length)) = (config.max_request_body, content_length(&req)) {
        if length > limit {
            return too_large(exchange);
        }
    }

    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // hyper has checked the client's framing: a Transfer-Encoding ends in `chunked` (and any
    // Content-Length beside it was dropped), a Content-Length is one valid number.
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    let mut body = (!body.is_end_stream()).then_some(body);
    // A request that failed on a reused connection before any answer came is repeated once on a
    // new connection, when that is harmless: an idempotent method and no body taken.
    let mut may_retry = upstream::is_idempotent(&parts.method);
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
        // Backends get the origin form (`/path?query`), whatever form the client used.
        let head = upstream::encode_head(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &client.ip,
            chunked,
        );
        let mut send = Send::new(head, body.take(), chunked, config.max_request_body);
        let sent = upstream::exchange(&mut conn, &mut send, &parts.method);
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
            Ok(head) => {
                return respond(inner, head, conn, send, in_flight, client_upgrade, exchange);
            }
            Err(ExchangeError::Closed { partial, cause })
                if may_retry && conn.reused && !partial && !send.body_taken =>
            {
                // A kept-alive connection the backend closed as the request went out.
                tracing::debug!(backend = %backend.addr, error = %cause, "retrying on a new connection");
                may_retry = false;
                retrying = true;
                body = send.into_body();
            }
            Err(ExchangeError::Send(SendError::TooLarge(_))) => return too_large(exchange),
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

fn too_large(exchange: Exchange) -> Response<ProxyBody> {
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
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    mut exchange: Exchange,
) -> Response<ProxyBody> {
    let Head {
        status,
        mut headers,
        framing,
        keep_alive,
    } = head;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            tracing::warn!(backend = %in_flight.backend().addr, "backend switched protocols unasked");
            return failure(
                StatusCode::BAD_GATEWAY,
                "slipway: the app sent a malformed response\n",
                exchange,
            );
        };
        exchange.status = status.as_u16();
        // The tunnel counts as in flight to its backend until it closes.
        tokio::spawn(tunnel(client_upgrade, conn, in_flight));
        headers::strip_hop_by_hop(&mut headers, true);
        // A 101 has no body; the bytes that follow belong to the tunnel.
        let mut response = Response::new(ProxyBody::text(Bytes::new(), Some(exchange)));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return response;
    }
    exchange.status = status.as_u16();
    headers::strip_hop_by_hop(&mut headers, false);
    exchange.upstream = Some(Upstream {
        in_flight,
        pool: inner.pool,
    });
    let body = ResponseBody::new(conn, send, framing, keep_alive);
    let mut response = Response::new(ProxyBody::upstream(body, exchange));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

async fn tunnel(client: hyper::upgrade::OnUpgrade, backend: Conn, in_flight: InFlight) {
    let client = match client.await {
        Ok(client) => client,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let (mut backend, early) = backend.into_parts();
    // Bytes the backend sent right after its 101 came in with the head.
    if !early.is_empty() {
        if let Err(e) = client.write_all(&early).await {
            tracing::debug!(error = %e, "upgraded connection ended with an error");
            return;
        }
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
    drop(in_flight);
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
