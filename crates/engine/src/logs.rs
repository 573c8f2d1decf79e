//! Deployment logs: lines go to the store in small batches (so a follower on any replica sees them)
//! and wake local followers at once.

use chrono::Utc;
use slipway_core::{LogStream, NewLogLine};
use slipway_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Longest line kept; longer lines are cut (a minified bundle printed by a build, say).
const MAX_LINE: usize = 8 * 1024;
/// How long lines wait to be written together.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const BATCH: usize = 500;

/// Wakes followers of a deployment's log when lines land.
#[derive(Default)]
pub struct LogHub {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
}

impl LogHub {
    /// The notifier of one deployment's log.
    pub fn notifier(&self, deployment_id: &str) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters
            .entry(deployment_id.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    fn wake(&self, deployment_id: &str) {
        let waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = waiters.get(deployment_id) {
            n.notify_waiters();
        }
    }

    /// Forgets a deployment whose log has ended (after waking its followers one last time).
    pub fn close(&self, deployment_id: &str) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = waiters.remove(deployment_id) {
            n.notify_waiters();
        }
    }
}

/// A writer of one deployment's log. Cheap to clone; lines are written in order.
#[derive(Clone)]
pub struct DeploymentLog {
    tx: mpsc::UnboundedSender<Msg>,
    /// Values never to show (secrets); replaced by `[redacted]` in every line.
    redact: Arc<Vec<String>>,
}

enum Msg {
    Line(NewLogLine),
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl DeploymentLog {
    /// Starts the writer task of `deployment_id`'s log.
    pub fn start(store: Arc<dyn Store>, hub: Arc<LogHub>, deployment_id: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, hub, deployment_id.to_string(), rx));
        Self {
            tx,
            redact: Arc::new(Vec::new()),
        }
    }

    /// A log that goes nowhere (for work no deployment watches).
    pub fn detached() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        Self {
            tx,
            redact: Arc::new(Vec::new()),
        }
    }

    /// The same log, with `values` masked in every line written through the result.
    pub fn redacting(&self, values: Vec<String>) -> Self {
        let mut all: Vec<String> = values.into_iter().filter(|v| v.len() >= 4).collect();
        all.extend(self.redact.iter().cloned());
        // Longest first, so a value containing another is masked whole.
        all.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Self {
            tx: self.tx.clone(),
            redact: Arc::new(all),
        }
    }

    pub fn line(&self, stream: LogStream, text: &str) {
        let mut text = text.trim_end_matches(['\r', '\n']).to_string();
        for secret in self.redact.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" …[line cut]");
        }
        let _ = self.tx.send(Msg::Line(NewLogLine {
            at: Utc::now(),
            stream,
            line: text,
        }));
    }

    /// A line from Slipway itself.
    pub fn system(&self, text: impl AsRef<str>) {
        self.line(LogStream::System, text.as_ref());
    }

    /// Waits until every line sent so far is in the store.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    hub: Arc<LogHub>,
    id: String,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut batch: Vec<NewLogLine> = Vec::new();
    let mut flushed: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    loop {
        let first = rx.recv().await;
        let mut open = first.is_some();
        if let Some(msg) = first {
            take(msg, &mut batch, &mut flushed);
            // Gather what arrives within the flush interval, up to a batch.
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            while flushed.is_empty() && batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(msg)) => take(msg, &mut batch, &mut flushed),
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if !batch.is_empty() {
            let lines = std::mem::take(&mut batch);
            // A log that cannot be written is not worth failing a deployment for; retry a little.
            for attempt in 0..3 {
                match store.append_logs(&id, &lines).await {
                    Ok(()) => break,
                    Err(e) if attempt == 2 => {
                        tracing::error!(deployment = %id, error = %e, lines = lines.len(), "deployment log lines lost")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            hub.wake(&id);
        }
        for f in flushed.drain(..) {
            let _ = f.send(());
        }
        if !open {
            return;
        }
    }
}

fn take(
    msg: Msg,
    batch: &mut Vec<NewLogLine>,
    flushed: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) {
    match msg {
        Msg::Line(l) => batch.push(l),
        Msg::Flush(f) => flushed.push(f),
    }
}
