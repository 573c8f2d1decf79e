//! Hop-by-hop headers (RFC 9110 §7.6.1) and the X-Forwarded-* headers.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never the message: a proxy must not forward them.
/// `Transfer-Encoding` is re-done on each side from the body streamed there.
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

/// Headers a `Connection` header may not name away.
static FRAMING: [HeaderName; 2] = [header::CONTENT_LENGTH, header::HOST];

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
            // The message's framing and its Host are not the connection's to take away: a
            // `Connection: content-length` would leave a body without its length, which the next
            // hop would read as the start of another request.
            .filter(|name| !FRAMING.contains(name))
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

/// Whether the header is one of the `X-Forwarded-*` headers the proxy writes itself.
pub(crate) fn is_forwarded(name: &HeaderName) -> bool {
    *name == X_FORWARDED_FOR || *name == X_FORWARDED_PROTO || *name == X_FORWARDED_HOST
}

/// Writes `X-Forwarded-For` (the client address appended to the earlier hops the request
/// carries, however many lines they take), `X-Forwarded-Proto: http` and `X-Forwarded-Host` (the
/// Host the client asked for, if any) as header lines. `client_ip` is the client's IP address as
/// a header value, prepared once per connection.
pub(crate) fn write_forwarded(out: &mut Vec<u8>, headers: &HeaderMap, client_ip: &HeaderValue) {
    out.extend_from_slice(b"x-forwarded-for: ");
    for earlier in headers.get_all(&X_FORWARDED_FOR) {
        out.extend_from_slice(earlier.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(host) = headers.get(header::HOST) {
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
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
    fn keeps_the_framing_whatever_connection_names() {
        let mut h = map(&[
            ("connection", "content-length, host, x-secret"),
            ("content-length", "40"),
            ("host", "a.b.localhost"),
            ("x-secret", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "host"]);
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
        let written = |h: &HeaderMap| {
            let mut out = Vec::new();
            write_forwarded(&mut out, h, &ip);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(&map(&[("host", "a.b.localhost")])),
            "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: a.b.localhost\r\n"
        );
        let h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        assert_eq!(
            written(&h),
            "x-forwarded-for: 1.1.1.1, 2.2.2.2, 127.0.0.1\r\nx-forwarded-proto: http\r\n"
        );
        assert!(is_forwarded(&X_FORWARDED_HOST));
        assert!(!is_forwarded(&header::HOST));
    }
}
