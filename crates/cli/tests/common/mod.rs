//! Shared by the CLI's integration tests: `slipway up` on port 0 with a temporary data directory
//! (authentication off unless asked for), and the CLI run against it. Use with `mod common;`.
//!
//! [`Server::start`] covers most tests; [`Server::builder`] the rest (a fixed proxy port, a working
//! directory, authentication on, another user, a start that must fail).
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_slipway");

/// How long `slipway up` may take to listen (a loaded 2-core CI machine runs many at once).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A loopback port that was free a moment ago (bound, then released), for an address a test must
/// know before the server starts, e.g. the proxy's, which stays the same across restarts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running `slipway up`; stopped (SIGTERM, then SIGKILL after 30 s) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// The server's standard error, line by line (read on a thread, so it never blocks).
    stderr: mpsc::Receiver<String>,
    /// What it printed so far, the start-up log included.
    log: Mutex<Vec<String>>,
}

/// How to start `slipway up`, from [`Server::builder`]. By default: `up --listen 127.0.0.1:0`, the
/// proxy on port 0, `SLIPWAY_AUTH=off`, `SLIPWAY_LOG=warn`, and none of the test process's own
/// `SLIPWAY_*` variables (so a developer's settings never leak in).
#[derive(Default)]
pub struct ServerBuilder {
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    proxy_port: Option<u16>,
    current_dir: Option<PathBuf>,
    auth: bool,
    binary: Option<PathBuf>,
    wrapper: Option<(OsString, Vec<OsString>)>,
}

/// A `slipway up` that ended (or was killed after a minute) without listening.
#[derive(Debug)]
pub struct StartFailure {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything it printed on standard error.
    pub log: String,
}

impl ServerBuilder {
    /// `--data-dir <dir>`; without it, `up` uses its own default (`./.slipway`, or the config's).
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// `--config <file>` instead of `--listen 127.0.0.1:0`: the file says where to listen.
    pub fn config(mut self, file: impl AsRef<Path>) -> Self {
        self.config = Some(file.as_ref().to_path_buf());
        self
    }

    /// More arguments of `up`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// An environment variable, set after (and so over) the defaults.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Starts from an empty environment: only the defaults and what [`Self::env`] sets.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    /// `--proxy-listen 127.0.0.1:<port>` instead of port 0, for a test that reaches deployed apps
    /// (see [`free_port`]).
    pub fn proxy_port(mut self, port: u16) -> Self {
        self.proxy_port = Some(port);
        self
    }

    /// The working directory of `up`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// `--auth required` (no `SLIPWAY_AUTH=off`): the first start saves an admin token in the data
    /// directory.
    pub fn auth(mut self, required: bool) -> Self {
        self.auth = required;
        self
    }

    /// Runs this copy of the binary instead of the one cargo built.
    pub fn binary(mut self, path: impl AsRef<Path>) -> Self {
        self.binary = Some(path.as_ref().to_path_buf());
        self
    }

    /// Runs `program args… slipway up …`, e.g. `setpriv` to start it as another user; the wrapper
    /// must exec the binary, so that signals reach `up` itself.
    pub fn wrap<I, S>(mut self, program: impl AsRef<OsStr>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args = args.into_iter().map(|a| a.as_ref().to_os_string());
        self.wrapper = Some((program.as_ref().to_os_string(), args.collect()));
        self
    }

    /// Starts it; panics with what it printed when it does not listen within a minute.
    pub fn start(self) -> Server {
        self.try_start().unwrap_or_else(|f| {
            panic!(
                "slipway up did not start (exit code {:?}):\n{}",
                f.code, f.log
            )
        })
    }

    /// Starts it, or returns how it ended and what it printed when it does not listen within a
    /// minute (a start that must be refused).
    pub fn try_start(self) -> Result<Server, StartFailure> {
        let binary = self.binary.unwrap_or_else(|| PathBuf::from(BIN));
        let mut cmd = match &self.wrapper {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        if self.env_clear {
            cmd.env_clear();
        } else {
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("SLIPWAY_") {
                    cmd.env_remove(key);
                }
            }
        }
        cmd.env("SLIPWAY_LOG", "warn");
        cmd.arg("up");
        match &self.config {
            Some(file) => cmd.arg("--config").arg(file),
            None => cmd.args(["--listen", "127.0.0.1:0"]),
        };
        if let Some(dir) = &self.data_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        if self.auth {
            cmd.args(["--auth", "required"]);
        } else {
            cmd.env("SLIPWAY_AUTH", "off");
        }
        match self.proxy_port {
            Some(port) => cmd.arg("--proxy-listen").arg(format!("127.0.0.1:{port}")),
            None => cmd.env("SLIPWAY_PROXY_LISTEN", "127.0.0.1:0"),
        };
        cmd.args(&self.args).envs(self.env);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_LIMIT;
        let mut seen = Vec::new();
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                seen.push(line);
                return Ok(Server {
                    child,
                    url,
                    stderr: rx,
                    log: Mutex::new(seen),
                });
            }
            seen.push(line);
        }
        // It ended (the pipe closed), or it hangs: kill it, then take what is left of its output.
        let _ = child.kill();
        let status = child.wait().expect("slipway up is reaped");
        seen.extend(drain(&rx, Duration::from_secs(10)));
        Err(StartFailure {
            code: status.code(),
            log: seen.join("\n"),
        })
    }
}

/// The lines still to come on `rx` until its sender is gone (the process and everything that
/// shares its standard error exited), at most for `limit`.
fn drain(rx: &mpsc::Receiver<String>, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        rest.push(line);
    }
    rest
}

impl Server {
    /// Starts `slipway up` with its data in `data_dir` and the `extra` arguments; panics with what
    /// it printed when it does not listen within a minute.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with(data_dir, extra, &[])
    }

    /// [`Server::start`] with these environment variables set (e.g. `SLIPWAY_CRASH_POINT`).
    pub fn start_with(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut builder = Self::builder().data_dir(data_dir).args(extra);
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        builder.start()
    }

    /// Everything else: a fixed proxy port, a working directory, authentication on, another user,
    /// a start that must fail.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
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
    pub fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("slipway up still runs after {limit:?}:\n{}", self.log());
    }

    /// Sends `signal` (e.g. `TERM`, `INT`) and waits (at most 30 s) for the process to exit; its
    /// exit status and its whole log, read until its standard error closes (at most 10 s more).
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {}", self.pid());
        let status = self.wait_for_exit(Duration::from_secs(30));
        let rest = drain(&self.stderr, Duration::from_secs(10));
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.extend(rest);
        (status, log.join("\n"))
    }

    /// Kills it with SIGKILL, as `kill -9` would, and reaps it: nothing of `up` runs its shutdown.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("slipway up is reaped");
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Out {
        cli(&self.url, args)
    }

    /// Runs the CLI against this server and requires exit code 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        ok(&self.url, args)
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "slipway up (pid {}) listening on {}",
            self.pid(),
            self.url
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already ended (and reaped): its pid may belong to another process by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
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

/// What a CLI run printed and its exit code (-1 when a signal ended it).
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

/// Runs the CLI against `url` with no token of the environment and no data directory to find an
/// admin token in.
pub fn cli(url: &str, args: &[&str]) -> Out {
    cli_with(url, &[], args)
}

/// Runs the CLI against `url` and requires exit code 0.
pub fn ok(url: &str, args: &[&str]) -> Out {
    let out = cli(url, args);
    assert_eq!(out.code, 0, "slipway {args:?} failed:\n{}", out.all());
    out
}

/// The CLI pointed at `url` with the tests' environment (authentication off, no token, no data
/// directory, no backtraces), to add arguments and pipes to.
pub fn cli_command(url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("SLIPWAY_AUTH", "off")
        .env("SLIPWAY_URL", url)
        .env_remove("SLIPWAY_TOKEN")
        .env("SLIPWAY_DATA_DIR", "/nonexistent/slipway-test")
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// [`cli`] with these environment variables set over its defaults, e.g. `SLIPWAY_TOKEN`, or
/// `SLIPWAY_DATA_DIR` for the admin token `up` saved there.
pub fn cli_with(url: &str, env: &[(&str, &str)], args: &[&str]) -> Out {
    let out = cli_command(url)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the CLI runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
