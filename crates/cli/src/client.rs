//! The CLI's HTTP client: one place that turns transport failures and problem documents into messages
//! and exit codes scripts can rely on.

use crate::sse::{SseEvent, SseParser};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;

/// How long a patient client waits out the rate limit for one request before it gives up.
const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Exit codes (documented in docs/cli.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const UNREACHABLE: i32 = 3;
    pub const NOT_FOUND: i32 = 4;
    pub const CONFLICT: i32 = 5;
    pub const INVALID: i32 = 6;
    pub const SERVER: i32 = 7;
    /// A followed deployment ended without serving (FAILED, ROLLED_BACK, CANCELLED, DESTROYED).
    pub const DEPLOYMENT_FAILED: i32 = 8;
    /// 401 or 403: no valid credential, or a permission missing.
    pub const DENIED: i32 = 9;
}

#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub struct Client {
    base: String,
    http: reqwest::Client,
    /// For streams, which stay open as long as they have something to say: no overall time limit.
    streaming: reqwest::Client,
    /// Waits out `429 Too Many Requests` (as `Retry-After` says) instead of failing: for commands
    /// that send many requests in a row.
    patient: bool,
}

#[derive(serde::Deserialize)]
struct Problem {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct FieldError {
    field: String,
    message: String,
}

/// The API token to send: `SLIPWAY_TOKEN`, else the administrator token `slipway up` saved in its
/// data directory (`SLIPWAY_DATA_DIR`, default `./.slipway`).
pub fn discover_token() -> Option<String> {
    if let Ok(t) = std::env::var("SLIPWAY_TOKEN") {
        if !t.trim().is_empty() {
            return Some(t.trim().to_string());
        }
    }
    let dir = std::env::var_os("SLIPWAY_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(".slipway"));
    std::fs::read_to_string(dir.join("admin-token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

impl Client {
    pub fn new(base: &str) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_string();
        if base.starts_with("https://") {
            // Slipway serves plain HTTP on loopback today; TLS arrives with the security work.
            return Err(CliError {
                code: exit::USAGE,
                message: format!(
                    "--server {base:?}: this build of the CLI speaks plain HTTP only; use an http:// URL"
                ),
            });
        }
        if !base.starts_with("http://") {
            return Err(CliError {
                code: exit::USAGE,
                message: format!("--server {base:?} must start with http://"),
            });
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = discover_token() {
            if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
                v.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, v);
            }
        }
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .user_agent(concat!("slipway-cli/", env!("CARGO_PKG_VERSION")))
                .default_headers(headers.clone())
        };
        let built = |r: reqwest::Result<reqwest::Client>| {
            r.map_err(|e| CliError {
                code: exit::ERROR,
                message: format!("cannot build the HTTP client: {e}"),
            })
        };
        let http = built(
            builder()
                .timeout(std::time::Duration::from_secs(120))
                .build(),
        )?;
        let streaming = built(builder().build())?;
        Ok(Client {
            base,
            http,
            streaming,
            patient: false,
        })
    }

    /// The same client, waiting out the server's rate limit instead of failing on it (a 429 is
    /// answered before the request is handled, so sending it again is safe).
    pub fn patient(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: self.http.clone(),
            streaming: self.streaming.clone(),
            patient: true,
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.send::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// A PUT answered with no body (`204`).
    pub async fn put_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<(), CliError> {
        let res = self.request(Method::PUT, path, Some(body)).await?;
        check(res).await.map(|_| ())
    }

    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        let res = self.request::<()>(Method::DELETE, path, None).await?;
        check(res).await.map(|_| ())
    }

    /// A DELETE whose answer has a body (`202` with the resource).
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.send::<(), T>(Method::DELETE, path, None).await
    }

    /// A GET answered with plain text (logs).
    pub async fn get_text(&self, path: &str) -> Result<String, CliError> {
        let res = self.request::<()>(Method::GET, path, None).await?;
        check(res).await?.text().await.map_err(|e| CliError {
            code: exit::ERROR,
            message: format!("the server's answer could not be read: {e}"),
        })
    }

    /// Opens a Server-Sent Events stream.
    pub async fn events(&self, path: &str) -> Result<EventStream, CliError> {
        let url = format!("{}{}", self.base, path);
        let req = self
            .streaming
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let res = req
            .send()
            .await
            .map_err(|e| self.transport_error(&url, e))?;
        Ok(EventStream {
            res: check(res).await?,
            parser: SseParser::new(),
            pending: VecDeque::new(),
        })
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, CliError> {
        let res = self.request(method, path, body).await?;
        let res = check(res).await?;
        res.json::<T>().await.map_err(|e| CliError {
            code: exit::ERROR,
            message: format!("the server's answer could not be read: {e}"),
        })
    }

    async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{}", self.base, path);
        let mut waited = std::time::Duration::ZERO;
        loop {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = req
                .send()
                .await
                .map_err(|e| self.transport_error(&url, e))?;
            if !self.patient
                || res.status() != StatusCode::TOO_MANY_REQUESTS
                || waited >= MAX_RATE_LIMIT_WAIT
            {
                return Ok(res);
            }
            let wait = res
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 30);
            let wait = std::time::Duration::from_secs(wait);
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// A POST whose refusal (an HTTP error answer) is returned as a value with its field errors, for
    /// commands that report each item of a batch instead of stopping at the first failure.
    pub async fn post_or_refusal<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Result<T, Refusal>, CliError> {
        let res = self.request(Method::POST, path, Some(body)).await?;
        if !res.status().is_success() {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let problem = serde_json::from_str::<Problem>(&text).ok();
            let mut detail = problem
                .as_ref()
                .map(|p| p.detail.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| status.to_string());
            if let Some(id) = problem.as_ref().and_then(|p| p.request_id.as_deref()) {
                detail.push_str(&format!(" (request id {id})"));
            }
            return Ok(Err(Refusal {
                status: status.as_u16(),
                code: exit_code(status),
                detail,
                errors: problem
                    .map(|p| p.errors.into_iter().map(|e| (e.field, e.message)).collect())
                    .unwrap_or_default(),
            }));
        }
        res.json::<T>().await.map(Ok).map_err(|e| CliError {
            code: exit::ERROR,
            message: format!("the server's answer could not be read: {e}"),
        })
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> CliError {
        let message = if e.is_timeout() {
            format!(
                "the Slipway server at {} did not answer in time; the request may still have been applied, so check (e.g. `slipway service show`) before retrying",
                self.base
            )
        } else if e.is_connect() {
            format!(
                "cannot reach the Slipway server at {}: is it running? Start it with `slipway up`, or point --server / SLIPWAY_URL at it.",
                self.base
            )
        } else {
            format!("request to {url} failed: {e}")
        };
        CliError {
            code: exit::UNREACHABLE,
            message,
        }
    }
}

/// An open event stream of the server.
pub struct EventStream {
    res: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
}

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, CliError> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(Some(ev));
            }
            match self.res.chunk().await {
                Ok(Some(bytes)) => self.pending.extend(self.parser.feed(&bytes)),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(CliError {
                        code: exit::UNREACHABLE,
                        message: format!("the event stream broke off: {e}"),
                    })
                }
            }
        }
    }
}

async fn check(res: reqwest::Response) -> Result<reqwest::Response, CliError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let text = res.text().await.unwrap_or_default();
    let mut message = match serde_json::from_str::<Problem>(&text) {
        Ok(p) => {
            let mut m = p.detail;
            for e in p.errors {
                m.push_str(&format!("\n  {}: {}", e.field, e.message));
            }
            if let Some(id) = p.request_id {
                m.push_str(&format!(" (request id {id})"));
            }
            m
        }
        Err(_) => text.chars().take(500).collect(),
    };
    if message.is_empty() {
        message = status.to_string();
    }
    Err(CliError {
        code: exit_code(status),
        message: format!("{} {}", status.as_u16(), message),
    })
}

/// The exit code of an HTTP error answer (docs/cli.md).
fn exit_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::NOT_FOUND => exit::NOT_FOUND,
        StatusCode::CONFLICT => exit::CONFLICT,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::DENIED,
        s if s.is_client_error() => exit::INVALID,
        _ => exit::SERVER,
    }
}

/// The server refused a request: its status, the exit code it maps to, and the problem document's
/// detail and field errors.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: i32,
    pub detail: String,
    pub errors: Vec<(String, String)>,
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
