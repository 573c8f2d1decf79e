//! Following a deployment: its log as the engine writes it, where it is, and how it ended.

use crate::client::{enc, exit, CliError, Client};
use crate::{output, Format};
use serde_json::Value;
use slipway_core::DeploymentStatus;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The states of a deployment that goes well, in order (a rollback skips the build steps).
const STEPS: [DeploymentStatus; 7] = [
    DeploymentStatus::Queued,
    DeploymentStatus::Analyzing,
    DeploymentStatus::Building,
    DeploymentStatus::Provisioning,
    DeploymentStatus::Deploying,
    DeploymentStatus::Healthy,
    DeploymentStatus::Exposed,
];

/// The state a deployment log line announces. The engine writes one system line per transition:
/// `2025-01-01T00:00:00.000Z [system] BUILDING: <reason>`.
pub fn status_in_line(line: &str) -> Option<DeploymentStatus> {
    let (_, rest) = line.split_once(" [system] ")?;
    let (word, _) = rest.split_once(':')?;
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    word.parse().ok()
}

/// What a terminal shows while a deployment runs: one status line on standard error, redrawn in
/// place, with the log lines scrolling above it. Elsewhere only the log lines are written.
struct Progress {
    live: bool,
    /// JSON output keeps standard output for the final document.
    logs_to_stderr: bool,
    status: String,
    since: Instant,
    shown: bool,
}

impl Progress {
    fn new(format: Format, status: &str) -> Self {
        Progress {
            live: std::io::stderr().is_terminal(),
            logs_to_stderr: format == Format::Json,
            status: status.to_string(),
            since: Instant::now(),
            shown: false,
        }
    }

    fn label(&self) -> String {
        let step = self
            .status
            .parse::<DeploymentStatus>()
            .ok()
            .and_then(|s| STEPS.iter().position(|x| *x == s));
        let secs = self.since.elapsed().as_secs();
        match step {
            Some(i) => format!("[{}/{}] {} … {secs}s", i + 1, STEPS.len(), self.status),
            None => format!("[-/{}] {} … {secs}s", STEPS.len(), self.status),
        }
    }

    fn draw(&mut self) {
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", self.label());
            let _ = err.flush();
            self.shown = true;
        }
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }

    fn set_status(&mut self, status: &str) {
        if status != self.status {
            self.status = status.to_string();
            self.draw();
        }
    }

    fn line(&mut self, text: &str) {
        self.clear();
        if self.logs_to_stderr {
            eprintln!("{text}");
        } else {
            // The deployment's outcome still decides the exit code when nobody reads the log.
            output::line(text);
        }
        self.draw();
    }
}

/// Streams the deployment's log until it ends, then prints how it ended: `Ok` when it is
/// EXPOSED, an error with [`exit::DEPLOYMENT_FAILED`] otherwise.
pub async fn follow_deployment(
    client: &Client,
    format: Format,
    id: &str,
    status: &str,
) -> Result<(), CliError> {
    let path = format!("/api/v1/deployments/{}/logs?follow=true", enc(id));
    let mut stream = client.events(&path).await?;
    eprintln!("following deployment {id} (Ctrl-C stops following, not the deployment)");
    let mut progress = Progress::new(format, status);
    progress.draw();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_seq: Option<i64> = None;
    let ended = loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Ok(Some(ev)) if ev.event == "log" => {
                    if let Some(seq) = ev.id.as_deref().and_then(|i| i.parse().ok()) {
                        last_seq = Some(seq);
                    }
                    if let Some(s) = status_in_line(&ev.data) {
                        progress.set_status(s.as_str());
                    }
                    progress.line(&ev.data);
                }
                Ok(Some(ev)) if ev.event == "end" => break Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => break Err(CliError {
                    code: exit::UNREACHABLE,
                    message: format!(
                        "the server closed the log stream before deployment {id} ended; see `slipway deployment show {id}`"
                    ),
                }),
                Err(e) => break Err(e),
            },
            _ = tick.tick() => progress.draw(),
        }
    };
    if let Err(e) = ended {
        progress.clear();
        return Err(e);
    }
    let d = settle(client, id).await;
    // Lines written while the outcome settled.
    if let Ok(d) = &d {
        if let Some(s) = d["status"].as_str() {
            progress.set_status(s);
        }
        let after = last_seq.map_or(String::new(), |s| format!("?after={s}"));
        if let Ok(text) = client
            .get_text(&format!("/api/v1/deployments/{}/logs{after}", enc(id)))
            .await
        {
            for line in text.lines() {
                progress.line(line);
            }
        }
    }
    progress.clear();
    let d = d?;
    output::deployment_outcome(format, &d);
    outcome(&d)
}

/// The deployment once it has settled. FAILED counts as an end, but when the new release failed
/// its health check the engine moves on from FAILED to ROLLING_BACK and ROLLED_BACK at once: give
/// it a moment to do so.
async fn settle(client: &Client, id: &str) -> Result<Value, CliError> {
    let path = format!("/api/v1/deployments/{}", enc(id));
    let started = Instant::now();
    loop {
        let d: Value = client.get(&path).await?;
        let status = d["status"].as_str().unwrap_or_default();
        let reached_deploying = || {
            d["events"].as_array().is_some_and(|events| {
                events
                    .iter()
                    .any(|e| e["status"] == "DEPLOYING" || e["status"] == "HEALTHY")
            })
        };
        let wait = match status {
            "FAILED" => reached_deploying() && started.elapsed() < Duration::from_secs(2),
            "ROLLING_BACK" => started.elapsed() < Duration::from_secs(120),
            _ => false,
        };
        if !wait {
            return Ok(d);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `Ok` for a deployment that serves; the exit code for one that does not.
fn outcome(d: &Value) -> Result<(), CliError> {
    let status = d["status"].as_str().unwrap_or_default();
    if status == "EXPOSED" {
        return Ok(());
    }
    let reason = d["reason"].as_str().unwrap_or("no reason recorded");
    Err(CliError {
        code: exit::DEPLOYMENT_FAILED,
        message: format!(
            "deployment {} ended {status}: {reason}",
            d["id"].as_str().unwrap_or_default()
        ),
    })
}

/// Prints a deployment's log lines as they come until it ends (`follow`) or what it has so far.
pub async fn deployment_logs(client: &Client, id: &str, follow: bool) -> Result<(), CliError> {
    let base = format!("/api/v1/deployments/{}/logs", enc(id));
    if !follow {
        output::text(&client.get_text(&base).await?);
        return Ok(());
    }
    let mut stream = client.events(&format!("{base}?follow=true")).await?;
    while let Some(ev) = stream.next().await? {
        match ev.event.as_str() {
            "log" if !output::line(&ev.data) => return Ok(()),
            "end" => {
                eprintln!("deployment {id} ended {}", ev.data);
                return Ok(());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Prints an app's own output; with `follow`, keeps printing new lines until interrupted.
pub async fn app_logs(client: &Client, path: &str, follow: bool) -> Result<(), CliError> {
    if !follow {
        output::text(&client.get_text(path).await?);
        return Ok(());
    }
    let mut stream = client.events(&format!("{path}&follow=true")).await?;
    while let Some(ev) = stream.next().await? {
        if ev.event == "log" && !output::line(&ev.data) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_come_from_system_lines_only() {
        let s = |l: &str| status_in_line(l);
        assert_eq!(
            s("2025-01-01T00:00:00.000Z [system] BUILDING: running `pip install`"),
            Some(DeploymentStatus::Building)
        );
        assert_eq!(
            s("2025-01-01T00:00:00.000Z [system] ROLLING_BACK: x"),
            Some(DeploymentStatus::RollingBack)
        );
        assert_eq!(
            s("2025-01-01T00:00:00.000Z [stdout] BUILDING: from the app"),
            None
        );
        assert_eq!(
            s("2025-01-01T00:00:00.000Z [system] instance 0 on port 1: ok"),
            None
        );
        assert_eq!(s("2025-01-01T00:00:00.000Z [system] Building: x"), None);
        assert_eq!(s("garbage"), None);
    }

    #[test]
    fn the_progress_line_counts_the_steps() {
        let mut p = Progress::new(Format::Table, "QUEUED");
        assert!(p.label().starts_with("[1/7] QUEUED … "), "{}", p.label());
        p.status = "EXPOSED".into();
        assert!(p.label().starts_with("[7/7] EXPOSED"));
        p.status = "ROLLING_BACK".into();
        assert!(p.label().starts_with("[-/7] ROLLING_BACK"));
    }

    #[test]
    fn only_exposed_is_success() {
        assert!(outcome(&serde_json::json!({"id": "1", "status": "EXPOSED"})).is_ok());
        for s in ["FAILED", "ROLLED_BACK", "CANCELLED", "DESTROYED"] {
            let e =
                outcome(&serde_json::json!({"id": "1", "status": s, "reason": "why"})).unwrap_err();
            assert_eq!(e.code, exit::DEPLOYMENT_FAILED);
            assert!(e.message.contains(s) && e.message.contains("why"));
        }
    }
}
