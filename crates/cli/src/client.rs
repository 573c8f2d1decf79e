//! The CLI's HTTP client: one place that turns transport failures and problem documents into messages
//! and exit codes scripts can rely on.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

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
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(120))
            .user_agent(concat!("slipway-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError {
                code: exit::ERROR,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Client { base, http })
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

    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        let res = self.request::<()>(Method::DELETE, path, None).await?;
        check(res).await.map(|_| ())
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
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.map_err(|e| {
            if e.is_timeout() {
                CliError {
                    code: exit::UNREACHABLE,
                    message: format!(
                        "the Slipway server at {} did not answer in time; the request may still have been applied, so check (e.g. `slipway service show`) before retrying",
                        self.base
                    ),
                }
            } else if e.is_connect() {
                CliError {
                    code: exit::UNREACHABLE,
                    message: format!(
                        "cannot reach the Slipway server at {}: is it running? Start it with `slipway up`, or point --server / SLIPWAY_URL at it.",
                        self.base
                    ),
                }
            } else {
                CliError {
                    code: exit::UNREACHABLE,
                    message: format!("request to {url} failed: {e}"),
                }
            }
        })
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
    let code = match status {
        StatusCode::NOT_FOUND => exit::NOT_FOUND,
        StatusCode::CONFLICT => exit::CONFLICT,
        s if s.is_client_error() => exit::INVALID,
        _ => exit::SERVER,
    };
    Err(CliError {
        code,
        message: format!("{} {}", status.as_u16(), message),
    })
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
