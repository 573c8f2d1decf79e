use slipway_core::model::Artifact;
use slipway_golden_paths::{render_registration, Rendered, ServiceSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The service of seed 000's example request.
pub const SAMPLE: ServiceSpec<'static> = ServiceSpec {
    name: "payments",
    team: "core-platform",
    repo_url: "https://github.com/org/payments",
    environment: "dev",
};

/// A repository URL that passed the API's validation but is full of characters that mean
/// something in HCL templates, YAML, Groovy and shell.
pub const TRICKY_REPO_URL: &str = "https://example.com/o/r$x{y}%z${x}%{if}'q'\\b";

pub fn sample() -> Rendered {
    render_registration(&SAMPLE).expect("sample renders")
}

pub fn all_files(rendered: &Rendered) -> impl Iterator<Item = &Artifact> {
    rendered.artifacts.iter().chain(&rendered.platform_files)
}

pub fn text(artifact: &Artifact) -> &str {
    std::str::from_utf8(&artifact.content).expect("generated files are UTF-8")
}

pub fn file<'a>(rendered: &'a Rendered, path: &str) -> &'a str {
    all_files(rendered)
        .find(|a| a.path == path)
        .map(text)
        .unwrap_or_else(|| panic!("no generated file {path}"))
}

/// Writes every file under `dir` at its repository path.
pub fn write_tree(rendered: &Rendered, dir: &Path) {
    for artifact in all_files(rendered) {
        let path = dir.join(&artifact.path);
        std::fs::create_dir_all(path.parent().expect("paths have a parent")).unwrap();
        std::fs::write(&path, &artifact.content).unwrap();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds an external checker on `PATH` (or in `extra_dirs`). When it is absent the check is
/// skipped with a message, but under `CI` a missing checker is a failure: CI must install it.
pub fn checker(name: &str, install_hint: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    find_checker(name, install_hint, extra_dirs, in_ci())
}

/// Like [`checker`], for a tool no reachable package registry provides (Terraform): its check is
/// skipped with a message when it is absent, in CI too.
pub fn optional_checker(name: &str, install_hint: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    find_checker(name, install_hint, extra_dirs, false)
}

fn find_checker(
    name: &str,
    install_hint: &str,
    extra_dirs: &[&str],
    required: bool,
) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate));
    if found.is_none() {
        if required {
            panic!(
                "{name} is required when CI is set but was not found; install it: {install_hint}"
            );
        }
        eprintln!(
            "SKIPPED: {name} not found on PATH; install it to run this check: {install_hint}"
        );
    }
    found
}

/// For a checker that is not an executable (a Python module): skips its check with a message,
/// but under `CI` a missing checker is a failure.
pub fn checker_missing(name: &str, install_hint: &str) {
    if in_ci() {
        panic!("{name} is required when CI is set but was not found; install it: {install_hint}");
    }
    eprintln!("SKIPPED: {name} not found; install it to run this check: {install_hint}");
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a checker and returns its output; a checker that cannot start is a failure.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A scaffold's (or any test) server, stopped (SIGKILL) when dropped so a failed assertion leaves nothing
/// running; its standard output arrives line by line on `lines`.
pub struct ScaffoldServer {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl ScaffoldServer {
    /// Starts `command` with its standard output piped to `lines`.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        ScaffoldServer { child, lines }
    }

    /// The next line of standard output that `wanted` accepts, within `limit`.
    pub fn line_where(
        &self,
        limit: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no such log line within {limit:?}: {e}"));
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("a log line that is not one JSON object ({e}): {line:?}")
            });
            if wanted(&entry) {
                return entry;
            }
        }
    }
}

impl Drop for ScaffoldServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:port over a fresh connection: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// A free port on 127.0.0.1 (closed again: the server under test binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`, failing after 20 s or when the server exits.
pub fn wait_until_listening(server: &mut ScaffoldServer, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("the server exited before it listened on {port}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listened on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
