//! The backend side of the proxy: HTTP/1.1 over our own keep-alive connections, driven by the
//! task that serves the client connection (no connection task and no channel per backend
//! connection, unlike hyper's client: a request never wakes another task).
//!
//! - The request head goes out in one write (with the first frame of a body that is already
//!   there), hop-by-hop headers removed and `X-Forwarded-*` written as it is encoded.
//! - The response head is parsed with `httparse` (obs-fold and malformed heads are refused);
//!   interim 1xx answers other than 101 are skipped.
//! - Bodies stream both ways, framed by `Content-Length` or chunked encoding; a response without
//!   either is read until the backend closes.
//! - A connection goes back to the pool only after a complete exchange: the response read to its
//!   end and nothing left over, the request body sent whole, and no `Connection: close`.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::client::ClientIo;
use crate::headers;

/// Headers accepted in one response head (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// Longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line or trailer section accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 16 * 1024;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 * 1024;

/// A keep-alive connection to a backend.
pub(crate) struct Conn {
    stream: TcpStream,
    /// Bytes read from the backend and not consumed yet.
    buf: BytesMut,
    /// Whether an earlier exchange used this connection (the backend may have closed it since).
    pub(crate) reused: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: BytesMut::new(),
            reused: false,
        }
    }

    /// Whether the connection looks usable for a new request: the backend has neither closed it
    /// nor sent anything unasked. Costs no system call in the usual case: tokio remembers whether
    /// the socket became readable since the last read that drained it.
    pub(crate) fn is_open(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            // Readable: the backend closed the connection (or sent bytes nobody asked for), or
            // the last read happened to fill its buffer exactly; only a read tells.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Poll::Ready(Err(_)) => false,
        }
    }

    /// Reads what the socket has into `buf`; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_read_into(&mut self.stream, &mut self.buf, READ_SIZE, cx)
    }

    /// The socket and the bytes already read past the response head (for a tunnel).
    pub(crate) fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }
}

/// Reads what `stream` has into `buf`, after making room for `read_size` bytes when less than a
/// quarter of that is free; `Ok(0)` at the end of the stream.
pub(crate) fn poll_read_into(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    read_size: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < read_size / 4 {
        buf.reserve(read_size);
    }
    let spare = buf.spare_capacity_mut();
    let mut read = ReadBuf::uninit(spare);
    ready!(Pin::new(stream).poll_read(cx, &mut read))?;
    let n = read.filled().len();
    // SAFETY: `poll_read` initialized the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Poll::Ready(Ok(n))
}

/// Whether a retry of this method is harmless (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Encodes the request head as the backend gets it: origin-form target, the client's headers
/// minus hop-by-hop ones (already stripped by the caller) and minus any `X-Forwarded-*`, then
/// `X-Forwarded-For` (earlier hops + the client), `-Proto: http`, `-Host` (the client's Host),
/// and the body's framing when it is chunked.
pub(crate) fn encode_head(
    method: &Method,
    target: &[u8],
    headers: &HeaderMap,
    client_ip: &HeaderValue,
    chunked: bool,
) -> Vec<u8> {
    let size = method.as_str().len()
        + target.len()
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 160;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if headers::is_forwarded(name) {
            continue;
        }
        put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    headers::write_forwarded(&mut out, headers, client_ip);
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub(crate) fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Why a request body could not be sent whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("reading the request body from the client: {0}")]
    Client(#[source] io::Error),
    #[error("the request body is larger than the configured limit of {0} bytes")]
    TooLarge(u64),
    #[error("writing to the backend: {0}")]
    Upstream(#[source] io::Error),
}

/// The request on its way to the backend: the head, then the client's body frame by frame
/// (re-chunked when the client sent it chunked), with an optional size limit.
pub(crate) struct Send {
    /// The request head and how much of it was written.
    head: Vec<u8>,
    head_written: usize,
    /// Encoded body bytes not written yet (no allocation for a request without a body).
    queue: VecDeque<Bytes>,
    /// Whether the client's body (read from its connection) is still to be sent.
    body: bool,
    chunked: bool,
    remaining: Option<u64>,
    limit: u64,
    /// Whether the body's first frame was looked for before the first write.
    coalesced: bool,
    /// Whether anything of the client's body was taken (then the request cannot be repeated).
    pub(crate) body_taken: bool,
    pub(crate) done: bool,
}

impl Send {
    pub(crate) fn new(head: Vec<u8>, body: bool, chunked: bool, limit: Option<u64>) -> Self {
        Send {
            head,
            head_written: 0,
            queue: VecDeque::new(),
            coalesced: !body,
            body,
            chunked,
            remaining: limit,
            limit: limit.unwrap_or(u64::MAX),
            body_taken: false,
            done: false,
        }
    }

    /// Writes the request on; ready once all of it was written.
    pub(crate) fn poll_send(
        &mut self,
        stream: &mut TcpStream,
        client: &mut ClientIo,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        if !self.coalesced {
            // A small body is usually there with its head: send both in one write.
            self.coalesced = true;
            if let Poll::Ready(polled) = self.poll_body(client, cx) {
                polled?;
            }
        }
        loop {
            while self.head_written < self.head.len() || !self.queue.is_empty() {
                let mut slices = [IoSlice::new(&[]); 4];
                let head = &self.head[self.head_written..];
                let mut count = 0;
                if !head.is_empty() {
                    slices[0] = IoSlice::new(head);
                    count = 1;
                }
                for part in &self.queue {
                    if count == slices.len() {
                        break;
                    }
                    slices[count] = IoSlice::new(part);
                    count += 1;
                }
                let written =
                    ready!(Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count]))
                        .map_err(SendError::Upstream)?;
                if written == 0 {
                    return Poll::Ready(Err(SendError::Upstream(io::ErrorKind::WriteZero.into())));
                }
                self.advance(written);
            }
            if !self.body {
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_body(client, cx))?;
        }
    }

    fn advance(&mut self, mut written: usize) {
        let from_head = written.min(self.head.len() - self.head_written);
        self.head_written += from_head;
        written -= from_head;
        while written > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if written >= front.len() {
                written -= front.len();
                self.queue.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }

    /// Takes the next part of the client's body into the queue (or its end).
    fn poll_body(
        &mut self,
        client: &mut ClientIo,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>> {
        if !self.body {
            return Poll::Ready(Ok(()));
        }
        loop {
            let data = match ready!(client.poll_body(cx)) {
                Some(Ok(data)) => data,
                Some(Err(e)) => return Poll::Ready(Err(SendError::Client(e))),
                None => {
                    self.body_taken = true;
                    if self.chunked {
                        self.queue.push_back(Bytes::from_static(b"0\r\n\r\n"));
                    }
                    self.body = false;
                    return Poll::Ready(Ok(()));
                }
            };
            self.body_taken = true;
            if data.is_empty() {
                continue;
            }
            let len = data.len() as u64;
            if let Some(remaining) = self.remaining {
                if len > remaining {
                    return Poll::Ready(Err(SendError::TooLarge(self.limit)));
                }
                self.remaining = Some(remaining - len);
            }
            if self.chunked {
                self.queue
                    .push_back(Bytes::from(format!("{:x}\r\n", data.len())));
                self.queue.push_back(data);
                self.queue.push_back(Bytes::from_static(b"\r\n"));
            } else {
                self.queue.push_back(data);
            }
            return Poll::Ready(Ok(()));
        }
    }
}

/// Why no usable response head came back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The backend closed or reset the connection before a whole response head. `partial`: some
    /// bytes of a response had come.
    #[error("the backend closed the connection ({cause})")]
    Closed { partial: bool, cause: io::Error },
    #[error("malformed response from the backend: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Send(SendError),
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Until the backend closes the connection.
    UntilClose,
    Done,
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// A response head from the backend.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// Whether the backend lets the connection be reused after this response.
    pub(crate) keep_alive: bool,
    /// Transfer codings of the body other than the chunked framing (`gzip` of
    /// `gzip, chunked`): they belong to the body and go on with it.
    pub(crate) codings: Option<HeaderValue>,
}

/// Sends the request (head, then body) while waiting for the response head; returns once the head
/// is in. The request body may still be going out then (`send.done` tells).
pub(crate) async fn exchange(
    conn: &mut Conn,
    send: &mut Send,
    method: &Method,
    client: &mut ClientIo,
) -> Result<Head, ExchangeError> {
    let head_request = *method == Method::HEAD;
    let mut send_failed: Option<SendError> = None;
    std::future::poll_fn(|cx| {
        if !send.done && send_failed.is_none() {
            match send.poll_send(&mut conn.stream, client, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(SendError::Upstream(e))) => {
                    // The backend may have answered before it stopped reading (an early 413):
                    // read on; a closed connection shows there too.
                    send_failed = Some(SendError::Upstream(e));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Send(e))),
                Poll::Pending => {}
            }
        }
        loop {
            if let Some(head) = parse_head(&mut conn.buf, head_request)? {
                return Poll::Ready(Ok(head));
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    let cause = match send_failed.take() {
                        Some(SendError::Upstream(e)) => e,
                        _ => io::ErrorKind::UnexpectedEof.into(),
                    };
                    return Poll::Ready(Err(ExchangeError::Closed {
                        partial: !conn.buf.is_empty(),
                        cause,
                    }));
                }
                Ok(_) => {}
                Err(cause) => {
                    return Poll::Ready(Err(ExchangeError::Closed {
                        partial: !conn.buf.is_empty(),
                        cause,
                    }))
                }
            }
        }
    })
    .await
}

/// Parses a complete response head off the front of `buf`, if there is one; interim 1xx answers
/// (other than 101) are consumed and skipped.
fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, ExchangeError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        // Left uninitialized: httparse writes the slots it fills.
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut slots,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(ExchangeError::Malformed("response head too large"))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ExchangeError::Malformed("too many response headers"))
            }
            Err(_) => return Err(ExchangeError::Malformed("unparsable response head")),
        };
        let code = response.code.unwrap_or(0);
        let Ok(status) = StatusCode::from_u16(code) else {
            return Err(ExchangeError::Malformed("invalid status code"));
        };
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue, 102, 103: the final answer follows.
            buf.advance(len);
            continue;
        }
        let http11 = response.version == Some(1);
        // Where each header sits in the head, so that the values can be slices of it once it is
        // split off the buffer (no copies).
        let base = buf.as_ptr() as usize;
        let mut spans = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
        let parsed = response.headers.len();
        for (span, h) in spans.iter_mut().zip(response.headers.iter()) {
            *span = (
                (h.name.as_ptr() as usize).wrapping_sub(base),
                h.name.len(),
                (h.value.as_ptr() as usize).wrapping_sub(base),
                h.value.len(),
            );
        }
        let head_bytes = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(parsed);
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding: Option<Vec<u8>> = None;
        let mut close = !http11;
        for &(name_at, name_len, value_at, value_len) in &spans[..parsed] {
            if name_at.saturating_add(name_len) > len || value_at.saturating_add(value_len) > len {
                // Cannot happen: httparse hands out slices of the buffer it parsed.
                return Err(ExchangeError::Malformed("header outside the head"));
            }
            let name = HeaderName::from_bytes(&head_bytes[name_at..name_at + name_len])
                .map_err(|_| ExchangeError::Malformed("invalid header name"))?;
            let value =
                HeaderValue::from_maybe_shared(head_bytes.slice(value_at..value_at + value_len))
                    .map_err(|_| ExchangeError::Malformed("invalid header value"))?;
            if name == header::CONTENT_LENGTH {
                let length = parse_content_length(value.as_bytes())
                    .ok_or(ExchangeError::Malformed("invalid Content-Length"))?;
                if content_length.is_some_and(|earlier| earlier != length) {
                    return Err(ExchangeError::Malformed("conflicting Content-Length"));
                }
                content_length = Some(length);
            } else if name == header::TRANSFER_ENCODING {
                add_codings(&mut transfer_encoding, value.as_bytes());
            } else if name == header::CONNECTION {
                for token in value.as_bytes().split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        close = false;
                    }
                }
            }
            headers.append(name, value);
        }
        let no_body = head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::SWITCHING_PROTOCOLS;
        let framing = if no_body {
            Framing::Done
        } else if let Some(te) = &transfer_encoding {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); a message with both
            // is suspect, so its connection is not reused.
            if content_length.is_some() {
                headers.remove(header::CONTENT_LENGTH);
                close = true;
            }
            if is_chunked(te) {
                Framing::Chunked(Chunk::Size)
            } else {
                close = true;
                Framing::UntilClose
            }
        } else if let Some(length) = content_length {
            if length == 0 {
                Framing::Done
            } else {
                Framing::Length(length)
            }
        } else {
            close = true;
            Framing::UntilClose
        };
        let codings = transfer_encoding
            .as_deref()
            .filter(|_| !no_body)
            .and_then(codings_before_chunked);
        return Ok(Some(Head {
            status,
            headers,
            framing,
            keep_alive: !close,
            codings,
        }));
    }
}

/// A Content-Length value: digits only, possibly a list of the same number repeated.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut found: Option<u64> = None;
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Adds the codings of one `Transfer-Encoding` line to those of the lines before it: several
/// lines form one list (RFC 9110 §5.3).
pub(crate) fn add_codings(list: &mut Option<Vec<u8>>, line: &[u8]) {
    match list {
        Some(list) => {
            list.extend_from_slice(b", ");
            list.extend_from_slice(line);
        }
        None => *list = Some(line.to_vec()),
    }
}

/// The transfer codings before a final `chunked` (all of them when the list does not end in
/// `chunked`), as a header value: `gzip` of `gzip, chunked`; `None` when there are none.
pub(crate) fn codings_before_chunked(list: &[u8]) -> Option<HeaderValue> {
    let mut codings: Vec<&[u8]> = list
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .collect();
    if codings
        .last()
        .is_some_and(|last| last.eq_ignore_ascii_case(b"chunked"))
    {
        codings.pop();
    }
    if codings.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&codings.join(&b", "[..])).ok()
}

/// Whether `chunked` is the last transfer coding.
pub(crate) fn is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the backend closed the connection before the end of the response body")]
    Truncated,
    #[error("reading the response body from the backend: {0}")]
    Io(#[from] io::Error),
    #[error("malformed chunked response body from the backend: {0}")]
    Malformed(&'static str),
    #[error("the request body could not be forwarded whole: {0}")]
    Request(#[source] SendError),
}

/// The backend's response body, read from the connection as the client takes it; also finishes
/// sending the request body, when the backend answered before it had all of it.
pub(crate) struct ResponseBody {
    conn: Option<Conn>,
    send: Option<Send>,
    framing: Framing,
    keep_alive: bool,
}

impl ResponseBody {
    pub(crate) fn new(conn: Conn, send: Send, framing: Framing, keep_alive: bool) -> Self {
        ResponseBody {
            conn: Some(conn),
            send: (!send.done).then_some(send),
            framing,
            keep_alive,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    /// How the rest of the body is delimited.
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// The connection, once the exchange is complete and it may carry another one.
    pub(crate) fn take_reusable(&mut self) -> Option<Conn> {
        if self.framing != Framing::Done || !self.keep_alive || self.send.is_some() {
            return None;
        }
        let mut conn = self.conn.take()?;
        if !conn.buf.is_empty() {
            // Bytes beyond the response: the backend and the proxy disagree on framing.
            return None;
        }
        conn.reused = true;
        Some(conn)
    }

    /// The next part of the body; `None` at its end. Also sends on the rest of the request
    /// body, read from `client`.
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut ClientIo,
    ) -> Poll<Option<Result<Bytes, BodyError>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(send) = self.send.as_mut() {
            match send.poll_send(&mut conn.stream, client, cx) {
                Poll::Ready(Ok(())) => self.send = None,
                // The backend stopped reading (it may have answered early and closed its side):
                // the answer may still be whole; read on.
                Poll::Ready(Err(SendError::Upstream(e))) => {
                    tracing::debug!(error = %e, "request body not sent whole");
                    self.send = None;
                    self.keep_alive = false;
                }
                // The client's body broke off or grew past the limit: the backend would wait for
                // the rest forever, so the exchange ends here.
                Poll::Ready(Err(e)) => {
                    self.send = None;
                    self.conn = None;
                    self.framing = Framing::Done;
                    return Poll::Ready(Some(Err(BodyError::Request(e))));
                }
                Poll::Pending => {}
            }
        }
        loop {
            match body_step(&mut self.framing, &mut conn.buf).map_err(BodyError::Malformed)? {
                Step::Data(data) => return Poll::Ready(Some(Ok(data))),
                Step::End => return Poll::Ready(None),
                Step::NeedMore => {
                    if ready!(conn.poll_fill(cx))? == 0 {
                        if self.framing == Framing::UntilClose {
                            self.framing = Framing::Done;
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Err(BodyError::Truncated)));
                    }
                }
            }
        }
    }
}

/// What the next step of reading a framed body gave.
pub(crate) enum Step {
    Data(Bytes),
    End,
    /// The rest is still to be read from the socket (or, for `UntilClose`, its end).
    NeedMore,
}

/// Takes the next part of a body framed by `framing` off the front of `buf` (decoding chunked
/// encoding; trailers are read and dropped) and advances `framing`. Shared by both sides: the
/// backend's answers and the clients' requests. `Err` says what is malformed.
pub(crate) fn body_step(framing: &mut Framing, buf: &mut BytesMut) -> Result<Step, &'static str> {
    loop {
        match *framing {
            Framing::Done => return Ok(Step::End),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - n as u64;
                *framing = if left == 0 {
                    Framing::Done
                } else {
                    Framing::Length(left)
                };
                return Ok(Step::Data(buf.split_to(n).freeze()));
            }
            Framing::UntilClose => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                return Ok(Step::Data(buf.split().freeze()));
            }
            Framing::Chunked(state) => match decode_chunk(buf, state)? {
                Decoded::Data(data, next) => {
                    *framing = next;
                    return Ok(Step::Data(data));
                }
                Decoded::Next(next) => *framing = next,
                Decoded::NeedMore => return Ok(Step::NeedMore),
            },
        }
    }
}

enum Decoded {
    Data(Bytes, Framing),
    Next(Framing),
    NeedMore,
}

/// One step of the chunked decoder over the bytes in `buf`.
fn decode_chunk(buf: &mut BytesMut, state: Chunk) -> Result<Decoded, &'static str> {
    match state {
        Chunk::Size => {
            let Some(line) = crlf_line(
                buf,
                (
                    "chunk size line not ended by CRLF",
                    "chunk size line too long",
                ),
            )?
            else {
                return Ok(Decoded::NeedMore);
            };
            let digits = line
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(line.len());
            if digits == 0 || digits > 15 {
                return Err("invalid chunk size");
            }
            // After the size: optional whitespace, then nothing or `;` and chunk extensions
            // (RFC 9112 §7.1.1), without control characters.
            let rest = &line[digits..];
            let rest = &rest[rest
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(rest.len())..];
            if !rest.is_empty() && rest[0] != b';' {
                return Err("invalid chunk size");
            }
            if rest.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
                return Err("invalid chunk extension");
            }
            let size = line[..digits].iter().fold(0u64, |n, d| {
                n * 16 + u64::from((*d as char).to_digit(16).unwrap_or(0))
            });
            buf.advance(line.len() + 2);
            Ok(Decoded::Next(Framing::Chunked(if size == 0 {
                Chunk::Trailers(0)
            } else {
                Chunk::Data(size)
            })))
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Decoded::NeedMore);
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let data = buf.split_to(n).freeze();
            let left = left - n as u64;
            let next = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Ok(Decoded::Data(data, Framing::Chunked(next)))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(Decoded::NeedMore);
            }
            if &buf[..2] != b"\r\n" {
                return Err("chunk not followed by CRLF");
            }
            buf.advance(2);
            Ok(Decoded::Next(Framing::Chunked(Chunk::Size)))
        }
        Chunk::Trailers(seen) => {
            let Some(line) = crlf_line(
                buf,
                ("trailer line not ended by CRLF", "trailer line too long"),
            )?
            else {
                return Ok(Decoded::NeedMore);
            };
            // Only an empty line ends the trailers; any other line must be a field line.
            let len = line.len();
            let next = if len == 0 {
                Framing::Done
            } else if !line.contains(&b':')
                || line.iter().any(|b| b.is_ascii_control() && *b != b'\t')
            {
                return Err("malformed trailer line");
            } else if seen + len + 2 > MAX_TRAILERS {
                return Err("trailers too long");
            } else {
                Framing::Chunked(Chunk::Trailers(seen + len + 2))
            };
            buf.advance(len + 2);
            Ok(Decoded::Next(next))
        }
    }
}

/// The line at the front of `buf`, without its CRLF, once all of it is there. A line ended by a
/// bare LF or longer than `MAX_CHUNK_LINE` is malformed: `errors` says how to name either.
fn crlf_line<'a>(
    buf: &'a [u8],
    errors: (&'static str, &'static str),
) -> Result<Option<&'a [u8]>, &'static str> {
    let (bare_lf, too_long) = errors;
    match buf.iter().take(MAX_CHUNK_LINE).position(|b| *b == b'\n') {
        Some(end) if end > 0 && buf[end - 1] == b'\r' => Ok(Some(&buf[..end - 1])),
        Some(_) => Err(bare_lf),
        None if buf.len() >= MAX_CHUNK_LINE => Err(too_long),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, head_request: bool) -> Result<Option<Head>, ExchangeError> {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_head(&mut buf, head_request)
    }

    #[test]
    fn frames_responses_by_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Done);
        for status in [204, 304] {
            let h = head(
                &format!("HTTP/1.1 {status} X\r\ncontent-length: 5\r\n\r\n"),
                false,
            )
            .unwrap()
            .unwrap();
            assert_eq!(h.framing, Framing::Done, "{status}");
        }
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunk::Size));
        assert!(!h.keep_alive);
        assert!(!h.headers.contains_key("content-length"));
        // The body's own coding goes on with it; the chunked framing is redone.
        assert_eq!(h.codings.unwrap(), "gzip");
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: br\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.codings.unwrap(), "br");
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(h.codings.is_none());
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Done, false));
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn skips_interim_answers_and_waits_for_whole_heads() {
        let h = head(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.status, 201);
        assert!(!h.headers.contains_key("link"));
        assert!(head("HTTP/1.1 200 OK\r\ncontent-len", false)
            .unwrap()
            .is_none());
        let h = head(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.status.as_u16(), h.framing), (101, Framing::Done));
    }

    #[test]
    fn refuses_malformed_heads() {
        for bad in [
            "HTTP/1.1 200 OK\r\nx-folded: a\r\n b\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(head(bad, false), Err(ExchangeError::Malformed(_))),
                "{bad:?}"
            );
        }
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(2));
        // Duplicate headers stay, in order.
        let h = head(
            "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        let cookies: Vec<_> = h.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire: &[u8] =
            b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nrest";
        // Feed the decoder one byte more at a time, as a slow socket would.
        let mut buf = BytesMut::new();
        let mut framing = Framing::Chunked(Chunk::Size);
        let mut out = Vec::new();
        let mut fed = 0;
        while framing != Framing::Done {
            let Framing::Chunked(state) = framing else {
                unreachable!()
            };
            match decode_chunk(&mut buf, state).unwrap() {
                Decoded::Data(data, next) => {
                    out.extend_from_slice(&data);
                    framing = next;
                }
                Decoded::Next(next) => framing = next,
                Decoded::NeedMore => {
                    buf.extend_from_slice(&wire[fed..fed + 1]);
                    fed += 1;
                }
            }
        }
        assert_eq!(out, b"hello 0123456789");
        assert_eq!(&wire[fed..], b"rest");
        let long_trailer = [&b"0\r\nx-t: "[..], &[b'a'; 5000], b"\r\n\r\n"].concat();
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"1234567890abcdef0\r\n",
            // Bare LF, junk or a bare CR after the size, control bytes in an extension.
            b"5\nhello\r\n",
            b"5 6\r\nhello\r\n",
            b"5\rX\nhello\r\n",
            b"5;a\x01b\r\nhello\r\n",
            // Trailers: a whitespace line is not their end, a line needs a colon, a long line
            // fails at once rather than waiting for more.
            b"0\r\n \r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
            &long_trailer,
        ] {
            let mut buf = BytesMut::from(bad);
            let mut state = Chunk::Size;
            let result = loop {
                match decode_chunk(&mut buf, state) {
                    Ok(Decoded::Next(Framing::Chunked(next)))
                    | Ok(Decoded::Data(_, Framing::Chunked(next))) => state = next,
                    other => break other,
                }
            };
            assert!(result.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes_request_heads() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.b.localhost"));
        h.append("x-dup", HeaderValue::from_static("1"));
        h.append("x-dup", HeaderValue::from_static("2"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let ip = HeaderValue::from_static("127.0.0.1");
        let head = encode_head(&Method::POST, b"/p?q=1", &h, &ip, true);
        assert_eq!(
            std::str::from_utf8(&head).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: a.b.localhost\r\nx-dup: 1\r\nx-dup: 2\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: a.b.localhost\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
