//! The client side of the proxy: HTTP/1.0 and HTTP/1.1 on the client's connection, read and
//! written by the one task that serves the connection (no dispatcher task, no body channel, and
//! the answer's head goes out in the same write as the first part of its body).
//!
//! A request head is parsed with `httparse`, and its framing is checked strictly (RFC 9112 §6),
//! because a proxy that reads a body differently from its backend lets a second request be
//! smuggled past it:
//!
//! - `Transfer-Encoding` must end in `chunked` (400 otherwise, and in an HTTP/1.0 request); with
//!   it, a `Content-Length` is dropped and the connection closes after the answer;
//! - `Content-Length` must be one decimal number (repeats of the same number are accepted);
//! - obs-fold, malformed lines, several `Host` headers and an HTTP/1.1 request without one are
//!   refused (400); more than 100 header fields or a head over 64 KiB too (431).
//!
//! Keep-alive follows the request's version and `Connection` header; pipelined requests are
//! answered in order.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::headers;
use crate::upstream::{self, Chunk, Framing, Step};

/// Header fields accepted in one request head.
const MAX_HEADERS: usize = 100;
/// Longest request head accepted (431 beyond).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 8 * 1024;
/// What a client that sent `Expect: 100-continue` gets before its body is read.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// How long a closing connection keeps reading (and dropping) what the client still sends, so
/// that the kernel does not answer those bytes with a reset that could destroy the answer before
/// the client read it (nginx's lingering close).
const LINGER: Duration = Duration::from_secs(2);
/// At most this much is read and dropped while lingering.
const LINGER_BYTES: usize = 256 * 1024;

/// The client's connection: its socket, the bytes read from it and not used yet, and where the
/// body of the request being served stands.
pub(crate) struct ClientIo {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    /// The rest of the current request's body, as it is framed on the wire.
    body: Framing,
    /// Bytes of `100 Continue` still owed to the client before its body is read.
    continue_left: usize,
    /// How long a write may wait for a client that reads nothing.
    write_timeout: Duration,
}

impl ClientIo {
    pub(crate) fn new(stream: TcpStream, write_timeout: Duration) -> Self {
        ClientIo {
            stream,
            buf: BytesMut::new(),
            body: Framing::Done,
            continue_left: 0,
            write_timeout,
        }
    }

    /// Reads what the socket has into `buf`; `Ok(0)` at the end of the stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        upstream::poll_read_into(&mut self.stream, &mut self.buf, READ_SIZE, cx)
    }

    /// Whether the current request has body bytes left to read.
    pub(crate) fn has_body(&self) -> bool {
        self.body != Framing::Done
    }

    /// The next part of the current request's body (decoded from chunked encoding); `None` at
    /// its end. Trailers are read and dropped.
    pub(crate) fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            match upstream::body_step(&mut self.body, &mut self.buf) {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Step::End) => return Poll::Ready(None),
                Ok(Step::NeedMore) => {
                    if ready!(self.poll_fill_body(cx))? == 0 {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the client closed the connection before the end of the request body",
                        ))));
                    }
                }
                Err(why) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("malformed chunked request body: {why}"),
                    ))))
                }
            }
        }
    }

    /// Reads more of the body, after writing the `100 Continue` the client waits for, if owed.
    fn poll_fill_body(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while self.continue_left > 0 {
            let from = CONTINUE.len() - self.continue_left;
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &CONTINUE[from..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.continue_left -= n;
        }
        self.poll_fill(cx)
    }

    /// Sets up the connection for serving `head`'s body.
    pub(crate) fn start_request(&mut self, head: &RequestHead) {
        self.body = head.body;
        self.continue_left = if head.expect_continue {
            CONTINUE.len()
        } else {
            0
        };
    }

    /// The `100 Continue` still partly owed when the final answer goes out instead (written
    /// first, so that the client does not read half an interim answer); nothing when it was not
    /// begun. Nothing is owed afterwards.
    pub(crate) fn take_owed_continue(&mut self) -> &'static [u8] {
        let left = std::mem::take(&mut self.continue_left);
        if left == 0 || left == CONTINUE.len() {
            return b"";
        }
        &CONTINUE[CONTINUE.len() - left..]
    }

    /// After an answer: whether the connection can carry the next request (the current
    /// request's body was read whole, or all of its rest is in the buffer and is dropped; false
    /// when some of it is still to come).
    pub(crate) fn finish_request(&mut self) -> bool {
        self.continue_left = 0;
        loop {
            match upstream::body_step(&mut self.body, &mut self.buf) {
                Ok(Step::Data(_)) => {}
                Ok(Step::End) => return true,
                Ok(Step::NeedMore) | Err(_) => return false,
            }
        }
    }

    /// Writes all of `parts` (in one system call when the socket takes them). A client that
    /// takes nothing for `write_timeout` is given up on (`TimedOut`); the timer is armed only
    /// when the socket is full.
    pub(crate) async fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut written = 0;
        while written < total {
            let mut slices = [IoSlice::new(&[]); 4];
            let mut count = 0;
            let mut skip = written;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                if count == slices.len() {
                    break;
                }
                slices[count] = IoSlice::new(&part[skip..]);
                skip = 0;
                count += 1;
            }
            let n = match self.stream.try_write_vectored(&slices[..count]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match tokio::time::timeout(self.write_timeout, self.stream.writable()).await {
                        Ok(ready) => {
                            ready?;
                            continue;
                        }
                        Err(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the client read nothing for the idle timeout",
                            ))
                        }
                    }
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
    }

    /// Ends the connection: a FIN after the answer, then whatever the client still sends is read
    /// and dropped for a while, so that closing does not reset the connection under an answer
    /// the client has not read yet.
    pub(crate) async fn close(mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let linger = async {
            let mut dropped = 0;
            let mut sink = [0u8; 4096];
            while dropped < LINGER_BYTES {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => dropped += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, linger).await;
    }
}

/// A request head from the client.
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    /// The request target as the client sent it: origin form (`/path?query`), absolute form
    /// (`http://host/path`) or `*`.
    pub(crate) target: Bytes,
    pub(crate) http11: bool,
    /// Every header field, in order; a `Content-Length` beside `Transfer-Encoding` is dropped.
    pub(crate) headers: HeaderMap,
    /// How the body is framed (`Done`: no body; `Length`: the length the client said up front).
    pub(crate) body: Framing,
    /// Whether the connection may carry another request after this one.
    pub(crate) keep_alive: bool,
    /// Whether the request asks for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
    pub(crate) upgrade: bool,
    /// Whether the client waits for `100 Continue` before it sends its body.
    pub(crate) expect_continue: bool,
}

impl RequestHead {
    /// The target as the backend gets it: the origin form (`/path?query`), whatever form the
    /// client used.
    pub(crate) fn origin_form(&self) -> Cow<'_, [u8]> {
        match absolute_form(&self.target) {
            // `http://host` and `http://host?q`: the path is empty, the backend gets `/`.
            Some((_, rest)) if rest.first() != Some(&b'/') => {
                let mut path = Vec::with_capacity(rest.len() + 1);
                path.push(b'/');
                path.extend_from_slice(rest);
                Cow::Owned(path)
            }
            Some((_, rest)) => Cow::Borrowed(rest),
            None => Cow::Borrowed(&self.target),
        }
    }
}

/// Splits an absolute-form target into its authority and the rest (path and query).
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    if target.first() == Some(&b'/') {
        return None;
    }
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let after = &target[scheme_end + 3..];
    let end = after
        .iter()
        .position(|b| *b == b'/' || *b == b'?')
        .unwrap_or(after.len());
    Some((&after[..end], &after[end..]))
}

/// Why a request head was refused; the connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 400, with what is wrong.
    Malformed(&'static str),
    /// 431: too many header fields or too long a head.
    TooLarge,
    /// 505: not HTTP/1.x.
    Version,
    /// 405: `CONNECT`, which an app behind this proxy cannot serve.
    Connect,
    /// 501: a transfer coding other than `chunked` on the request body (RFC 9112 §6.1).
    Coding,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::Version => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            Refusal::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Coding => StatusCode::NOT_IMPLEMENTED,
        }
    }

    fn text(self) -> String {
        match self {
            Refusal::Malformed(why) => format!("slipway: bad request: {why}\n"),
            Refusal::TooLarge => "slipway: the request head is too large\n".to_owned(),
            Refusal::Version => "slipway: only HTTP/1.0 and HTTP/1.1 are served\n".to_owned(),
            Refusal::Connect => "slipway: CONNECT is not served here\n".to_owned(),
            Refusal::Coding => {
                "slipway: a request body may only be sent with the chunked transfer coding\n"
                    .to_owned()
            }
        }
    }
}

/// Whether `buf` may hold a whole request head: an empty line (`\n\n` or `\n\r\n`) in it,
/// looked for from `scanned` on (the bytes before were searched already), so that a head that
/// trickles in byte by byte is not parsed again from its start on every read.
pub(crate) fn head_may_be_complete(buf: &[u8], scanned: &mut usize) -> bool {
    let from = scanned.saturating_sub(2);
    *scanned = buf.len();
    buf[from.min(buf.len())..].iter().enumerate().any(|(i, b)| {
        *b == b'\n' && {
            let rest = &buf[from + i + 1..];
            rest.first() == Some(&b'\n') || rest.starts_with(b"\r\n")
        }
    })
}

/// Parses a complete request head off the front of `buf`, if there is one (`Ok(None)`: more
/// bytes are needed).
pub(crate) fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, Refusal> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Left uninitialized: httparse writes the slots it fills (no 3 KiB of zeroes per request).
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => return Err(Refusal::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(Refusal::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(httparse::Error::Version) => return Err(Refusal::Version),
        Err(_) => return Err(Refusal::Malformed("malformed request head")),
    };
    let method = Method::from_bytes(request.method.unwrap_or("").as_bytes())
        .map_err(|_| Refusal::Malformed("invalid method"))?;
    if method == Method::CONNECT {
        return Err(Refusal::Connect);
    }
    let http11 = request.version == Some(1);
    // Where the target and each header sit in the head, so that they can be slices of it once
    // it is split off the buffer (no copies).
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base);
    let path = request.path.unwrap_or("/").as_bytes();
    let target_span = (at(path), path.len());
    let mut spans = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
    let parsed = request.headers.len();
    for (span, h) in spans.iter_mut().zip(request.headers.iter()) {
        *span = (
            at(h.name.as_bytes()),
            h.name.len(),
            at(h.value),
            h.value.len(),
        );
    }
    let head = buf.split_to(len).freeze();
    let slice = |from: usize, n: usize| {
        // Cannot fail: httparse hands out slices of the buffer it parsed.
        (from.saturating_add(n) <= len)
            .then(|| head.slice(from..from + n))
            .ok_or(Refusal::Malformed("malformed request head"))
    };
    let target = slice(target_span.0, target_span.1)?;

    let mut headers = HeaderMap::with_capacity(parsed);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<Vec<u8>> = None;
    let mut hosts = 0;
    let (mut close, mut keep_alive_token, mut expect_continue) = (false, false, false);
    for &(name_at, name_len, value_at, value_len) in &spans[..parsed] {
        let name = HeaderName::from_bytes(&slice(name_at, name_len)?)
            .map_err(|_| Refusal::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(slice(value_at, value_len)?)
            .map_err(|_| Refusal::Malformed("invalid header value"))?;
        if name == header::CONTENT_LENGTH {
            let length = upstream::parse_content_length(value.as_bytes())
                .ok_or(Refusal::Malformed("invalid Content-Length"))?;
            if content_length.is_some_and(|earlier| earlier != length) {
                return Err(Refusal::Malformed("conflicting Content-Length headers"));
            }
            content_length = Some(length);
        } else if name == header::TRANSFER_ENCODING {
            upstream::add_codings(&mut transfer_encoding, value.as_bytes());
        } else if name == header::HOST {
            hosts += 1;
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name == header::EXPECT {
            expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        }
        headers.append(name, value);
    }
    if hosts > 1 {
        return Err(Refusal::Malformed("more than one Host header"));
    }
    if hosts == 0 && http11 {
        return Err(Refusal::Malformed(
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    // The target: a path, `*` (OPTIONS only), or an http(s) URL, whose authority then replaces
    // Host (RFC 9112 §3.2.2), so that the route and the app see the same host.
    match absolute_form(&target) {
        Some((authority, _)) => {
            if authority.is_empty() {
                return Err(Refusal::Malformed("the request target's URL has no host"));
            }
            let value = HeaderValue::from_maybe_shared(target.slice_ref(authority))
                .map_err(|_| Refusal::Malformed("invalid host in the request target"))?;
            headers.insert(header::HOST, value);
        }
        None if target.first() == Some(&b'/') => {}
        None if &target[..] == b"*" && method == Method::OPTIONS => {}
        None => {
            return Err(Refusal::Malformed(
                "the request target must be a path (or an http:// URL)",
            ))
        }
    }
    let mut keep_alive = if http11 {
        !close
    } else {
        keep_alive_token && !close
    };
    let body = match (transfer_encoding, content_length) {
        (Some(_), _) if !http11 => {
            return Err(Refusal::Malformed(
                "Transfer-Encoding in an HTTP/1.0 request",
            ))
        }
        (Some(codings), length) => {
            if !upstream::is_chunked(&codings) {
                return Err(Refusal::Malformed(
                    "Transfer-Encoding must end in chunked; send the body chunked or with a Content-Length",
                ));
            }
            if upstream::codings_before_chunked(&codings).is_some() {
                return Err(Refusal::Coding);
            }
            if length.is_some() {
                // Both framings: Transfer-Encoding wins, the length goes, and nothing after
                // this request is read as another one (RFC 9112 §6.1, §6.3).
                headers.remove(header::CONTENT_LENGTH);
                keep_alive = false;
            }
            Framing::Chunked(Chunk::Size)
        }
        (None, Some(0) | None) => Framing::Done,
        (None, Some(length)) => Framing::Length(length),
    };
    let upgrade = http11 && headers::wants_upgrade(&headers);
    Ok(Some(RequestHead {
        method,
        target,
        http11,
        headers,
        expect_continue: expect_continue && http11 && body != Framing::Done,
        body,
        keep_alive,
        upgrade,
    }))
}

/// How the answer's body goes out on the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyOut {
    /// As it comes: the head's `Content-Length` (or the status, or HEAD) delimits it.
    AsIs,
    /// Chunked encoding, for a body of unknown length to an HTTP/1.1 client.
    Chunked,
    /// Until the connection closes, for a body of unknown length to an HTTP/1.0 client.
    UntilClose,
}

/// What the head says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnOut {
    /// Nothing: the version's default (HTTP/1.1 keep-alive), or the `Connection` header that the
    /// answer's own headers carry (a 101's `upgrade`).
    Default,
    /// `Connection: keep-alive`, which an HTTP/1.0 client needs to keep the connection.
    KeepAlive,
    /// `Connection: close`.
    Close,
}

/// Encodes an answer head into `out` (appended): the status line, `headers` as they are,
/// then the framing and connection headers and a `Date` when the headers have none.
pub(crate) fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    body: BodyOut,
    conn: ConnOut,
    codings: Option<&HeaderValue>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        upstream::put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if body == BodyOut::Chunked {
        out.extend_from_slice(b"transfer-encoding: ");
        if let Some(codings) = codings {
            // The body's own codings stay; only the chunked framing is redone here.
            out.extend_from_slice(codings.as_bytes());
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"chunked\r\n");
    }
    match conn {
        ConnOut::Default => {}
        ConnOut::KeepAlive => out.extend_from_slice(b"connection: keep-alive\r\n"),
        ConnOut::Close => out.extend_from_slice(b"connection: close\r\n"),
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        http_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the current time as an HTTP date, formatted once per second and thread.
fn http_date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
}

/// Answers a refused request head and closes the connection.
pub(crate) async fn refuse(mut io: ClientIo, refusal: Refusal) {
    let text = refusal.text();
    let mut out = Vec::with_capacity(256);
    encode_text_head(&mut out, refusal.status(), text.len(), ConnOut::Close);
    if io.write_parts(&[&out, text.as_bytes()]).await.is_ok() {
        io.close().await;
    }
}

/// Encodes the head of a short `text/plain` answer the proxy writes itself, `len` bytes long.
pub(crate) fn encode_text_head(out: &mut Vec<u8>, status: StatusCode, len: usize, conn: ConnOut) {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    encode_head(out, status, &headers, BodyOut::AsIs, conn, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, Refusal> {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_request(&mut buf)
    }

    fn refusal(text: &str) -> Refusal {
        match parse(text) {
            Err(refusal) => refusal,
            Ok(_) => panic!("accepted: {text:?}"),
        }
    }

    #[test]
    fn frames_request_bodies_by_rfc_9112() {
        let h = parse("GET / HTTP/1.1\r\nhost: a\r\n\r\n").unwrap().unwrap();
        assert_eq!(
            (h.body, h.keep_alive, h.upgrade),
            (Framing::Done, true, false)
        );
        let h = parse("POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Length(5));
        assert_eq!(&h.target[..], b"/p?q");
        let h = parse("POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Chunked(Chunk::Size));
        assert!(h.keep_alive);
        // Both: chunked wins, the length is dropped, the connection closes after.
        let h = parse(
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.body, Framing::Chunked(Chunk::Size));
        assert!(!h.keep_alive);
        assert!(!h.headers.contains_key("content-length"));
        // Equal repeats are one length.
        let h = parse(
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.body, Framing::Length(2));
        assert!(parse("GET / HTTP/1.1\r\nhost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn keeps_alive_by_version_and_connection_header() {
        let keep = |text: &str| parse(text).unwrap().unwrap().keep_alive;
        assert!(!keep(
            "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        let h = parse(
            "GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.upgrade);
        let h = parse(
            "POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 1\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.expect_continue);
        let h = parse("GET / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.expect_continue, "no body, nothing to wait for");
    }

    #[test]
    fn refuses_what_could_be_read_two_ways() {
        for bad in [
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: abc\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nx-folded: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert!(matches!(refusal(bad), Refusal::Malformed(_)), "{bad:?}");
        }
        assert_eq!(refusal("GET / HTTP/2.0\r\n\r\n"), Refusal::Version);
        // Codings other than chunked on a request body: not implemented (RFC 9112 §6.1), also
        // when spread over several lines.
        for coded in [
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(refusal(coded), Refusal::Coding, "{coded:?}");
        }
        assert_eq!(
            refusal("CONNECT a:443 HTTP/1.1\r\nhost: a:443\r\n\r\n"),
            Refusal::Connect
        );
        let many = format!(
            "GET / HTTP/1.1\r\nhost: a\r\n{}\r\n",
            "x: 1\r\n".repeat(100)
        );
        assert_eq!(refusal(&many), Refusal::TooLarge);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(refusal(&long), Refusal::TooLarge);
    }

    #[test]
    fn gives_backends_the_origin_form() {
        let origin = |target: &str| {
            let h = parse(&format!("GET {target} HTTP/1.1\r\nhost: a\r\n\r\n"))
                .unwrap()
                .unwrap();
            (
                String::from_utf8(h.origin_form().to_vec()).unwrap(),
                h.headers["host"].to_str().unwrap().to_owned(),
            )
        };
        assert_eq!(origin("/p?q=1"), ("/p?q=1".into(), "a".into()));
        // An absolute-form target's authority replaces Host.
        assert_eq!(
            origin("http://api.dev.localhost:7780/p?q=1"),
            ("/p?q=1".into(), "api.dev.localhost:7780".into())
        );
        assert_eq!(
            origin("HTTP://api.dev.localhost"),
            ("/".into(), "api.dev.localhost".into())
        );
        assert_eq!(
            origin("http://api.dev.localhost?q"),
            ("/?q".into(), "api.dev.localhost".into())
        );
        assert_eq!(
            origin("/u?next=http://evil.example/"),
            ("/u?next=http://evil.example/".into(), "a".into())
        );
        let h = parse("OPTIONS * HTTP/1.1\r\nhost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(&h.origin_form()[..], b"*");
        for bad in ["*", "ftp://a/x", "a.dev.localhost/x", "http:///x"] {
            assert!(
                matches!(
                    parse(&format!("GET {bad} HTTP/1.1\r\nhost: a\r\n\r\n")),
                    Err(Refusal::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn looks_for_the_end_of_a_head_only_in_new_bytes() {
        let mut scanned = 0;
        let mut buf = b"GET / HTTP/1.1\r\nhost: a\r".to_vec();
        assert!(!head_may_be_complete(&buf, &mut scanned));
        assert_eq!(scanned, buf.len());
        // The empty line arrives split across reads.
        buf.extend_from_slice(b"\n");
        assert!(!head_may_be_complete(&buf, &mut scanned));
        buf.extend_from_slice(b"\r");
        assert!(!head_may_be_complete(&buf, &mut scanned));
        buf.extend_from_slice(b"\n");
        assert!(head_may_be_complete(&buf, &mut scanned));
        let mut scanned = 0;
        assert!(head_may_be_complete(b"GET / HTTP/1.0\n\n", &mut scanned));
    }

    #[test]
    fn encodes_answer_heads() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.insert(
            "date",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::OK,
            &headers,
            BodyOut::AsIs,
            ConnOut::Close,
            None,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
             connection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::from_u16(299).unwrap(),
            &HeaderMap::new(),
            BodyOut::Chunked,
            ConnOut::KeepAlive,
            None,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 299 \r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\ndate: "
            ),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        // The body's own codings stay in front of the chunked framing.
        let mut out = Vec::new();
        let gzip = HeaderValue::from_static("gzip");
        encode_head(
            &mut out,
            StatusCode::OK,
            &HeaderMap::new(),
            BodyOut::Chunked,
            ConnOut::Default,
            Some(&gzip),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n"),
            "{text}"
        );
    }
}
