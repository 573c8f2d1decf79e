//! One request: find the route, pick a backend, forward, stream the answer back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::{PathAndQuery, Uri};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::backend::{Backend, InFlight};
use crate::body::{Exchange, ProxyBody, Upstream, UpstreamBody};
use crate::headers;
use crate::{host, Inner, Pick};

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
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                "slipway: the request body is larger than this proxy forwards\n",
                exchange,
            );
        }
    }

    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    headers::add_forwarded(&mut parts.headers, &client.ip);
    // Backends get the origin form (`/path?query`), whatever form the client used.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
    }
    let mut req = Request::from_parts(parts, UpstreamBody::new(body, config.max_request_body));

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
        let (mut sender, pooled) = match backend.checkout(&inner.pool) {
            Some(sender) => (sender, true),
            None => match backend.connect(&inner.pool).await {
                Ok(sender) => (sender, false),
                Err(e) => {
                    tracing::warn!(error = %e, "backend unreachable; trying another");
                    failed.push(backend.addr);
                    continue;
                }
            },
        };
        let sent = sender.try_send_request(req);
        let result = match config.request_timeout {
            Some(limit) => match tokio::time::timeout(limit, sent).await {
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
            Ok(response) => {
                return respond(inner, response, sender, in_flight, client_upgrade, exchange);
            }
            Err(mut e) => match e.take_message() {
                // The connection closed before the request went out (a pooled connection the
                // backend had just closed): nothing was sent, so try again.
                Some(unsent) => {
                    tracing::debug!(backend = %backend.addr, error = %e.error(), "retrying a request not sent");
                    if !pooled {
                        // Even a fresh connection failed: count the backend as unreachable, so
                        // that the retries end.
                        failed.push(backend.addr);
                    }
                    req = unsent;
                }
                None => {
                    tracing::warn!(backend = %backend.addr, error = %e.error(), "backend failed the request");
                    return failure(
                        StatusCode::BAD_GATEWAY,
                        "slipway: the app closed the connection without answering\n",
                        exchange,
                    );
                }
            },
        }
    }
}

fn respond(
    inner: &Inner,
    mut response: Response<Incoming>,
    sender: crate::backend::Sender,
    in_flight: InFlight,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    mut exchange: Exchange,
) -> Response<ProxyBody> {
    exchange.status = response.status().as_u16();
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
        let backend_upgrade = hyper::upgrade::on(&mut response);
        // The tunnel counts as in flight to its backend until it closes.
        tokio::spawn(tunnel(client_upgrade, backend_upgrade, in_flight));
        headers::strip_hop_by_hop(response.headers_mut(), true);
        // A 101 has no body; the bytes that follow belong to the tunnel.
        let (parts, _empty) = response.into_parts();
        return Response::from_parts(parts, ProxyBody::text(Bytes::new(), Some(exchange)));
    }
    headers::strip_hop_by_hop(response.headers_mut(), false);
    exchange.upstream = Some(Upstream {
        in_flight,
        sender: (!switching).then_some(sender),
        pool: inner.pool,
    });
    response.map(|body| ProxyBody::upstream(body, exchange))
}

async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
    in_flight: InFlight,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut backend = TokioIo::new(backend);
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
