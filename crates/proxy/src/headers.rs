//! Hop-by-hop headers (RFC 9110 §7.6.1) and the X-Forwarded-* headers.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never the message: a proxy must not forward them.
/// `Transfer-Encoding` is re-done by hyper on each side from the body it streams.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
];

static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the hop-by-hop headers, including those the `Connection` header names. When `upgrade`
/// is set, the `Upgrade` header is kept and `Connection: upgrade` is put back, so that an HTTP/1.1
/// upgrade (WebSocket) passes through.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry none of them: one pass over the names is cheaper than nine removals.
    if !upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    // Only look at `Connection` tokens when there is one: the common request has none, or just
    // `keep-alive`, and pays no allocation here.
    if let Some(connection) = headers.get(header::CONNECTION) {
        let named: Vec<HeaderName> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("keep-alive")
                    && !t.eq_ignore_ascii_case("close")
                    && !t.eq_ignore_ascii_case("upgrade")
            })
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if upgrade && *name == header::UPGRADE {
            continue;
        }
        headers.remove(name);
    }
    headers.remove(&PROXY_CONNECTION);
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == PROXY_CONNECTION || HOP_BY_HOP.contains(name)
}

/// Whether a request asks for an HTTP/1.1 protocol upgrade (`Connection: upgrade` + `Upgrade`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto: http` and
/// `X-Forwarded-Host` (the Host the client asked for). `client_ip` is the client's IP address as
/// a header value, prepared once per connection.
pub(crate) fn add_forwarded(headers: &mut HeaderMap, client_ip: &HeaderValue) {
    let host = headers.get(header::HOST).cloned();
    // Several X-Forwarded-For lines are one list; keep the earlier hops and append this one.
    let mut earlier = headers.get_all(&X_FORWARDED_FOR).iter();
    let forwarded_for = match (earlier.next(), earlier.next()) {
        (None, _) => client_ip.clone(),
        (Some(one), None) => joined(&[one], client_ip),
        (Some(_), Some(_)) => {
            let all: Vec<&HeaderValue> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
            joined(&all, client_ip)
        }
    };
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
}

fn joined(earlier: &[&HeaderValue], client_ip: &HeaderValue) -> HeaderValue {
    let mut value = Vec::with_capacity(64);
    for v in earlier {
        value.extend_from_slice(v.as_bytes());
        value.extend_from_slice(b", ");
    }
    value.extend_from_slice(client_ip.as_bytes());
    // Made of valid header values joined by ", ", so it is a valid header value; fall back to
    // this hop alone should that ever not hold.
    HeaderValue::from_bytes(&value).unwrap_or_else(|_| client_ip.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("x-kept", "1"),
            ("content-length", "3"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept", "content-length"]);
    }

    #[test]
    fn keeps_upgrade_when_upgrading() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn appends_forwarded_for() {
        let ip = HeaderValue::from_static("127.0.0.1");
        let mut h = map(&[("host", "a.b.localhost")]);
        add_forwarded(&mut h, &ip);
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "a.b.localhost");

        let mut h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        add_forwarded(&mut h, &ip);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 127.0.0.1");
        assert!(!h.contains_key("x-forwarded-host"));
    }
}
