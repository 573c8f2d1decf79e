//! Shared by the CLI's integration tests: `slipway up` on port 0 with a temporary data directory
//! (authentication off), and the CLI run against it. Use with `mod common;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_slipway");

/// A running `slipway up`; stopped (SIGTERM, then SIGKILL after 30 s) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// The server's standard error, line by line (read on a thread, so it never blocks).
    stderr: mpsc::Receiver<String>,
    /// What it printed so far, the start-up log included.
    log: Mutex<Vec<String>>,
}

impl Server {
    /// Starts `slipway up` with its data in `data_dir` and the `extra` arguments; panics with what
    /// it printed when it does not listen within 30 s.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with(data_dir, extra, &[])
    }

    /// [`Server::start`] with these environment variables set (e.g. `SLIPWAY_CRASH_POINT`).
    pub fn start_with(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .env("SLIPWAY_AUTH", "off")
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("SLIPWAY_DATA_DIR")
            .env_remove("SLIPWAY_DATABASE_URL")
            .env_remove("SLIPWAY_CONFIG")
            .env_remove("SLIPWAY_CRASH_POINT")
            .env("SLIPWAY_LOG", "warn")
            .env("SLIPWAY_PROXY_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slipway starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                seen.push(line);
                return Server {
                    child,
                    url,
                    stderr: rx,
                    log: Mutex::new(seen),
                };
            }
            seen.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("slipway up did not start:\n{}", seen.join("\n"));
    }

    /// Everything the server printed on standard error so far, the start-up log included.
    pub fn log(&self) -> String {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.extend(self.stderr.try_iter());
        log.join("\n")
    }

    /// Waits until a line of the log contains `text` (at most `limit`); the whole log then, or a
    /// panic with it.
    pub fn wait_for_log(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if log.lines().any(|l| l.contains(text)) {
                return log;
            }
            match self
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self
                    .log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line),
                Err(_) => panic!("{text:?} not in the log within {limit:?}:\n{log}"),
            }
        }
    }

    /// The process id of `slipway up`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `limit`) for the process to end by itself, e.g. at a crash point; panics
    /// with its log when it does not.
    pub fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("slipway up still runs after {limit:?}:\n{}", self.log());
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Out {
        cli(&self.url, args)
    }

    /// Runs the CLI against this server and requires exit code 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.cli(args);
        assert_eq!(out.code, 0, "slipway {args:?} failed:\n{}", out.all());
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: `up` stops what it runs before it exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a CLI run printed and its exit code.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.all()))
    }
}

/// Runs the CLI against `url` with no token of the environment.
pub fn cli(url: &str, args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .env("SLIPWAY_AUTH", "off")
        .env("SLIPWAY_URL", url)
        .env_remove("SLIPWAY_TOKEN")
        .env("SLIPWAY_DATA_DIR", "/nonexistent/slipway-test")
        .env("RUST_BACKTRACE", "0")
        .args(args)
        .output()
        .expect("the CLI runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
