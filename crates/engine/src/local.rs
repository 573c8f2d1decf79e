//! The `local` target: builds releases on this host with its own toolchains, runs them as supervised
//! process groups on loopback ports, health-checks them, and swaps the proxy's route only once the
//! new release is healthy (zero downtime). Single-node by design.
//!
//! Layout under the target's root (`<data-dir>/apps`):
//! `<service>/<env>/releases/<release-id>/` (checkout + build output, one per release),
//! `<service>/<env>/home/` (the app's `$HOME`: package caches survive releases),
//! `<service>/<env>/logs/app.log` (stdout/stderr of every instance, rotated).

use crate::cgroup::Cgroups;
use crate::logs::DeploymentLog;
use crate::process::{self, Probe};
use slipway_core::{Instance, LogStream, Resources};
use slipway_proxy::Proxy;
use slipway_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// The evidence rule of the limits a release was built with (see [`LocalTarget::resources_of`]).
pub const RESOURCES_RULE: &str =
    "limits of this release: the deployment's request, else the repository's, else Slipway's defaults";

/// How often a starting instance is probed while nothing listens on its port yet.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// The longest pause between probes of an instance that answers, but not healthy.
const PROBE_INTERVAL_MAX: Duration = Duration::from_secs(1);

/// Settings of the local target.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `<data-dir>/apps`.
    pub root: PathBuf,
    /// The proxy's public port, for URLs.
    pub proxy_port: u16,
    /// Releases kept on disk per service and environment (the serving one and the rollback target
    /// are always kept).
    pub keep_releases: usize,
    /// How long a new release has to answer its health check.
    pub health_timeout: Duration,
    /// How long install + build may take.
    pub build_timeout: Duration,
    /// SIGTERM → SIGKILL.
    pub stop_grace: Duration,
    /// How long in-flight requests to an old release may take to finish after a swap.
    pub drain_timeout: Duration,
    /// App log rotation.
    pub log_max_bytes: u64,
    pub log_keep: usize,
    /// Exits of a starting instance that fail its deployment.
    pub crash_loop_exits: u32,
    /// Run each service's builds and processes as its own unprivileged uid (Slipway must run as
    /// root), with process and file limits. `None`: they run as Slipway's user.
    pub isolation: Option<Isolation>,
    /// Run every build command and app instance in a user namespace (bubblewrap) that hides the
    /// data directory: for a Slipway that does not run as root. `None`: no namespace.
    pub namespace: Option<crate::userns::Namespace>,
    /// Enforce instances' memory and CPU with control groups where the host lets Slipway
    /// (otherwise memory with `RLIMIT_DATA`, see [`LocalTarget::memory_rlimit`]).
    pub resource_limits: bool,
    /// Try control groups at all (`false`: `RLIMIT_DATA` for memory only).
    pub use_cgroups: bool,
    /// Memory and CPU of an instance whose deployment and plan say nothing.
    pub default_resources: Resources,
    /// The most one deployment may use in all (replicas × per instance): seed 002's
    /// `max_memory_per_deployment` and `max_cpu_per_deployment`. `None`: no limit.
    pub max_per_deployment: Resources,
}

/// Workload isolation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isolation {
    /// The first uid of the range services get theirs from.
    pub first_uid: u32,
    /// Processes one service may run at once (a fork bomb stops here).
    pub max_processes: u64,
    /// Open files per process.
    pub max_open_files: u64,
}

impl Default for Isolation {
    fn default() -> Self {
        Self {
            first_uid: 200_000,
            max_processes: 256,
            max_open_files: 4096,
        }
    }
}

/// Who a workload runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sandbox {
    pub uid: u32,
    pub limits: Isolation,
}

/// Sets the uid, gid and limits of a command about to be spawned (no-op without a sandbox).
fn confine(cmd: &mut Command, sandbox: Option<Sandbox>) {
    let Some(sb) = sandbox else {
        return;
    };
    // std drops supplementary groups (setgroups(0)) when root sets a uid.
    cmd.uid(sb.uid).gid(sb.uid);
    set_limits(cmd, sb.limits);
}

/// Sets the process, open-file and core limits of a command about to be spawned (they stay in
/// force across exec, also inside bubblewrap's namespaces).
fn set_limits(cmd: &mut Command, limits: Isolation) {
    let (nproc, nofile) = (limits.max_processes, limits.max_open_files);
    // SAFETY: runs in the child between fork and exec; setrlimit is async-signal-safe and
    // touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let set = |res, n: u64| {
                let lim = libc::rlimit {
                    rlim_cur: n as libc::rlim_t,
                    rlim_max: n as libc::rlim_t,
                };
                if libc::setrlimit(res, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            set(libc::RLIMIT_NPROC, nproc)?;
            set(libc::RLIMIT_NOFILE, nofile)?;
            set(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
}

/// Limits a command's data memory (`RLIMIT_DATA`), for hosts without writable control groups.
fn limit_data(cmd: &mut Command, bytes: u64) {
    // SAFETY: runs in the child between fork and exec; setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A build's control group, removed (best effort) when the build ends however it ends; a group
/// left behind because a process was still leaving is removed at the next start.
struct BuildGroup(Option<crate::cgroup::Group>);

impl Drop for BuildGroup {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            let _ = g.remove();
        }
    }
}

/// Gives a directory tree to a uid (after Slipway, as root, wrote it).
fn chown_tree(root: &Path, uid: u32) -> std::io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid))?;
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}

/// Why services' workloads cannot run as their own uids with the data in `data_dir`, if they
/// cannot: Slipway is not root, or a directory above the data directory does not let other users
/// pass through (Slipway makes the data directory itself passable, not its parents).
pub fn isolation_blocker(data_dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if !crate::userns::running_as_root() {
        return Some(
            "Slipway does not run as root, which giving each service its own uid needs".into(),
        );
    }
    let absolute = std::path::absolute(data_dir).ok()?;
    for dir in absolute.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            return Some(format!(
                "{} (mode {:o}) does not let other users pass through to the data directory {}; \
                 put the data directory where they can (e.g. /var/lib/slipway) or allow it \
                 with `chmod o+x {}`",
                dir.display(),
                mode & 0o7777,
                absolute.display(),
                dir.display()
            ));
        }
    }
    None
}

/// Lets other users pass through a directory Slipway owns (mode 0711) without listing it.
fn traversable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
}

impl LocalConfig {
    pub fn new(root: PathBuf, proxy_port: u16) -> Self {
        Self {
            root,
            proxy_port,
            keep_releases: 5,
            health_timeout: Duration::from_secs(60),
            build_timeout: Duration::from_secs(20 * 60),
            stop_grace: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 3,
            crash_loop_exits: 3,
            isolation: None,
            namespace: None,
            resource_limits: true,
            use_cgroups: true,
            default_resources: Resources {
                memory_mb: Some(512),
                cpu_millis: Some(1000),
            },
            max_per_deployment: Resources {
                memory_mb: Some(8192),
                cpu_millis: Some(4000),
            },
        }
    }
}

/// What an instance runs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub service: String,
    pub environment: String,
    pub release_id: String,
    /// The app directory inside the release.
    pub dir: PathBuf,
    /// The start command (`sh -c`): the repository's own command, run as the service's workload.
    pub start: String,
    pub variables: BTreeMap<String, String>,
    pub health_path: Option<String>,
    /// The app listens on this port whatever `PORT` says.
    pub fixed_port: Option<u16>,
    /// Values masked in the app's log (its secrets).
    pub redact: Vec<String>,
    /// Who it runs as.
    pub sandbox: Option<Sandbox>,
    /// Memory and CPU per instance (enforced where control groups are available).
    pub resources: Resources,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Starting,
    Serving,
    Stopping,
}

impl InstanceState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Serving => "serving",
            Self::Stopping => "stopping",
        }
    }
}

/// One supervised instance of a release.
pub struct InstanceHandle {
    pub release_id: String,
    pub slot: i32,
    pub port: u16,
    pgid: AtomicI64,
    exits: AtomicU32,
    last_exit: Mutex<Option<String>>,
    state: Mutex<InstanceState>,
    stop: CancellationToken,
    finished: CancellationToken,
    started: Instant,
    /// Where its output also goes while a deployment watches it start.
    deploy_log: Mutex<Option<DeploymentLog>>,
    cpu_prev: Mutex<Option<(u64, Instant)>>,
}

impl InstanceHandle {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn exits(&self) -> u32 {
        self.exits.load(Ordering::Acquire)
    }
    pub fn last_exit(&self) -> Option<String> {
        self.last_exit.lock().ok().and_then(|l| l.clone())
    }
    pub fn state(&self) -> InstanceState {
        self.state
            .lock()
            .map(|s| *s)
            .unwrap_or(InstanceState::Stopping)
    }
    fn set_state(&self, s: InstanceState) {
        if let Ok(mut st) = self.state.lock() {
            *st = s;
        }
    }
    fn running(&self) -> bool {
        !self.finished.is_cancelled() && process::group_alive(self.pgid.load(Ordering::Acquire))
    }
}

impl Drop for InstanceHandle {
    /// An instance whose supervisor went away without stopping it (the runtime shut down, a test
    /// ended) takes its processes with it.
    fn drop(&mut self) {
        if !self.finished.is_cancelled() {
            process::signal_group(self.pgid.load(Ordering::Acquire), libc::SIGKILL);
        }
    }
}

/// Per service and environment: its instances and its app log.
struct App {
    instances: Mutex<Vec<Arc<InstanceHandle>>>,
    log: AppLog,
    /// Serializes swaps of this app.
    swap: tokio::sync::Mutex<()>,
}

impl App {
    /// The instances now (a copy: supervisors add and remove theirs).
    fn snapshot(&self) -> Vec<Arc<InstanceHandle>> {
        self.instances.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Figures of what runs for a service in an environment, read from `/proc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub instances: u32,
    pub cpu_percent: f64,
    pub memory_bytes: u64,
}

/// What to build: commands run in order in `dir`.
pub struct BuildSpec<'a> {
    pub service: &'a str,
    pub environment: &'a str,
    pub dir: &'a Path,
    pub commands: &'a [String],
    pub variables: &'a BTreeMap<String, String>,
    pub sandbox: Option<Sandbox>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("`{command}` failed ({status}); last lines of its output:\n{tail}")]
    Failed {
        command: String,
        status: String,
        tail: String,
    },
    #[error("the build took longer than {0:?} and was stopped")]
    Timeout(Duration),
    #[error("the build was cancelled")]
    Cancelled,
    #[error("the build could not start: {0}")]
    Spawn(String),
}

pub struct LocalTarget {
    pub config: LocalConfig,
    /// Opens secrets for injection; `None` when no key is configured (then no secret may exist).
    pub secrets: Option<crate::secrets::SecretKey>,
    store: Arc<dyn Store>,
    proxy: Proxy,
    apps: Mutex<HashMap<(String, String), Arc<App>>>,
    /// Set while Slipway stops: instances stop but stay recorded, to be started again next time.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Where instances' control groups go; `Err`: why limits are not enforced.
    pub cgroups: Result<Cgroups, String>,
    /// The engine's counters (instance restarts, for `slipway_instance_restarts_total`).
    metrics: Arc<crate::metrics::EngineMetrics>,
}

/// Environment every app and build gets (the rest of Slipway's environment is not passed on).
fn base_env(home: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let mut env = vec![
        ("PATH".to_string(), path),
        ("HOME".to_string(), home.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
    ];
    // Package managers' settings, mirrors and certificates the operator configured for builds.
    for key in [
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "NPM_CONFIG_REGISTRY",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "GOPATH",
        "GOPROXY",
        "SSL_CERT_FILE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
    ] {
        if let Ok(v) = std::env::var(key) {
            env.push((key.to_string(), v));
        }
    }
    env
}

impl LocalTarget {
    pub fn new(
        config: LocalConfig,
        secrets: Option<crate::secrets::SecretKey>,
        store: Arc<dyn Store>,
        proxy: Proxy,
        metrics: Arc<crate::metrics::EngineMetrics>,
    ) -> Arc<Self> {
        let cgroups = if config.resource_limits && !config.use_cgroups {
            Err("control groups are not used (use_cgroups = false)".to_string())
        } else if config.resource_limits {
            // One place per data directory, so that two Slipways on a host keep theirs apart.
            use sha2::Digest;
            let scope = sha2::Sha256::digest(config.root.as_os_str().as_encoded_bytes());
            let scope: String = scope[..6].iter().map(|b| format!("{b:02x}")).collect();
            Cgroups::detect(&scope)
        } else {
            Err("resource limits are off (--resource-limits off)".to_string())
        };
        match &cgroups {
            Ok(c) => {
                c.remove_empty();
                tracing::info!(cgroups = ?c, "instances' memory and CPU are limited with control groups");
            }
            Err(why) => tracing::warn!("instances' memory and CPU limits are NOT enforced: {why}"),
        }
        Arc::new(Self {
            config,
            secrets,
            store,
            proxy,
            apps: Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            metrics,
            cgroups,
        })
    }

    /// The memory and CPU per instance of a plan: the limits recorded when its release was built
    /// (the deployment's request, else the repository's, else the defaults), or the repository's
    /// own (`slipway.toml`, `score.yaml`), else the defaults. A detector's guess is a hint shown
    /// in the plan, never a limit.
    pub fn resources_of(&self, plan: &slipway_analyzer::BuildPlan) -> Resources {
        let decided = plan
            .evidence
            .iter()
            .rev()
            .find(|e| e.field == "resources")
            .is_some_and(|e| e.source.is_some() || e.rule == RESOURCES_RULE);
        let from_plan = match &plan.resources {
            Some(r) if decided => Resources {
                memory_mb: (r.memory_mb > 0).then_some(r.memory_mb),
                cpu_millis: (r.cpu > 0.0).then(|| (r.cpu * 1000.0).round() as u32),
            },
            _ => Resources::default(),
        };
        from_plan.or(self.config.default_resources)
    }

    /// The memory limit set with `RLIMIT_DATA` (bytes) when limits are on but control groups are
    /// not available: the kernel then refuses an instance's allocations beyond it (a `MemoryError`,
    /// a failed `malloc`) instead of killing it. CPU has no rlimit that means a rate, so it stays
    /// unlimited there.
    pub fn memory_rlimit(&self, r: Resources) -> Option<u64> {
        (self.config.resource_limits && self.cgroups.is_err())
            .then_some(r.memory_mb)
            .flatten()
            .map(|m| u64::from(m) * 1024 * 1024)
    }

    /// Puts a command about to be spawned under `limits`: into the control group `name` (created,
    /// or its limits reset), which the child joins itself before it runs anything (see
    /// [`crate::cgroup::Group::joined`] for the one case joined after the spawn); where groups are
    /// unavailable, memory with `RLIMIT_DATA`. `Ok(None)`: no group.
    fn limit(
        &self,
        cmd: &mut Command,
        name: &str,
        limits: Resources,
        sandbox: Option<Sandbox>,
    ) -> std::io::Result<Option<crate::cgroup::Group>> {
        let Ok(cgroups) = &self.cgroups else {
            if let Some(bytes) = self.memory_rlimit(limits) {
                limit_data(cmd, bytes);
            }
            return Ok(None);
        };
        let g = cgroups.create(name, limits)?;
        if let Some(sb) = sandbox {
            g.allow(sb.uid)?;
        }
        if !(g.v2 && sandbox.is_some()) {
            g.attach(cmd);
        }
        Ok(Some(g))
    }

    /// How the deployment log describes the enforcement of an instance's resources.
    pub fn limits_note(&self) -> String {
        match &self.cgroups {
            Ok(crate::cgroup::Cgroups::V1 { .. }) => "enforced with cgroup v1".to_string(),
            Ok(crate::cgroup::Cgroups::V2 { .. }) => "enforced with cgroup v2".to_string(),
            Err(why) if self.config.resource_limits => format!(
                "memory enforced with RLIMIT_DATA (allocations beyond it fail), CPU NOT enforced: {why}"
            ),
            Err(why) => format!("NOT enforced: {why}"),
        }
    }

    /// `Err` naming the quota when `replicas` instances of `per_instance` are more than one
    /// deployment may use.
    pub fn check_deployment_resources(
        &self,
        replicas: u32,
        per_instance: Resources,
    ) -> Result<(), String> {
        let max = self.config.max_per_deployment;
        let n = u64::from(replicas.max(1));
        if let (Some(m), Some(limit)) = (per_instance.memory_mb, max.memory_mb) {
            if n * u64::from(m) > u64::from(limit) {
                return Err(format!(
                    "{n} × {m} MiB of memory is more than one deployment may use \
                     (max_memory_per_deployment = {limit} MiB)"
                ));
            }
        }
        if let (Some(c), Some(limit)) = (per_instance.cpu_millis, max.cpu_millis) {
            if n * u64::from(c) > u64::from(limit) {
                return Err(format!(
                    "{n} × {c}m of CPU is more than one deployment may use \
                     (max_cpu_per_deployment = {limit}m)"
                ));
            }
        }
        Ok(())
    }

    /// Stops every instance, keeping their records so the next start runs them again.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let all: Vec<Arc<InstanceHandle>> = {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            apps.values().flat_map(|a| a.snapshot()).collect()
        };
        for inst in &all {
            inst.stop.cancel();
        }
        for inst in &all {
            inst.finished.cancelled().await;
        }
        // Groups of stopped instances and the data directory's own place go with Slipway (the
        // kernel keeps an empty group until it is removed); the next start creates them again.
        if let Ok(cgroups) = &self.cgroups {
            cgroups.remove_all_empty();
        }
    }

    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// `http://<service>.<env>.localhost:<proxy port>/`
    pub fn url(&self, service: &str, environment: &str) -> String {
        format!(
            "http://{service}.{environment}.localhost:{}/",
            self.config.proxy_port
        )
    }

    pub fn app_dir(&self, service: &str, environment: &str) -> PathBuf {
        self.config.root.join(service).join(environment)
    }

    pub fn release_dir(&self, service: &str, environment: &str, release: &str) -> PathBuf {
        self.app_dir(service, environment)
            .join("releases")
            .join(release)
    }

    fn home_dir(&self, service: &str, environment: &str) -> PathBuf {
        self.app_dir(service, environment).join("home")
    }

    fn app(&self, service: &str, environment: &str) -> Arc<App> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.entry((service.to_string(), environment.to_string()))
            .or_insert_with(|| {
                Arc::new(App {
                    instances: Mutex::new(Vec::new()),
                    log: AppLog::start(
                        self.app_dir(service, environment).join("logs"),
                        self.config.log_max_bytes,
                        self.config.log_keep,
                    ),
                    swap: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Runs the plan's install and build commands in `dir`, streaming their output to `log`.
    pub async fn build(
        &self,
        build: BuildSpec<'_>,
        log: &DeploymentLog,
        cancel: &CancellationToken,
    ) -> Result<(), BuildError> {
        let BuildSpec {
            service,
            environment,
            dir,
            commands,
            variables,
            sandbox,
        } = build;
        let home = self.home_dir(service, environment);
        tokio::fs::create_dir_all(&home)
            .await
            .map_err(|e| BuildError::Spawn(format!("cannot create {}: {e}", home.display())))?;
        if let Some(sb) = sandbox {
            self.hand_over(service, environment, dir, sb.uid)
                .map_err(|e| BuildError::Spawn(format!("cannot prepare the sandbox: {e}")))?;
        }
        let deadline = tokio::time::Instant::now() + self.config.build_timeout;
        // A build is part of a deployment: it may use what one deployment may use in all.
        let limits = self.config.max_per_deployment;
        let group_name = format!(
            "{service}.{environment}.build-{}",
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        );
        let mut build_group = BuildGroup(None);
        if self.config.resource_limits && !commands.is_empty() {
            log.system(format!(
                "build limits: {} MiB of memory, {} CPU (the most one deployment may use); {}",
                limits
                    .memory_mb
                    .map_or("unlimited".into(), |m| m.to_string()),
                limits
                    .cpu_millis
                    .map_or("unlimited".into(), |c| format!("{c}m")),
                self.limits_note()
            ));
        }
        for command in commands {
            log.system(format!("$ {command}"));
            let (mut cmd, _) = self.workload_command(service, environment, dir, command);
            cmd.current_dir(dir)
                .env_clear()
                .envs(base_env(&home))
                .env("CI", "true")
                .envs(variables)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            confine(&mut cmd, sandbox);
            match self.limit(&mut cmd, &group_name, limits, sandbox) {
                Ok(g) => build_group.0 = g,
                Err(e) => log.system(format!("build limits could not be applied: {e}")),
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| BuildError::Spawn(format!("`{command}`: {e}")))?;
            if let Some(g) = &build_group.0 {
                if let Err(e) = g.joined(child.id(), sandbox.is_some()) {
                    log.system(format!("build limits could not be applied: {e}"));
                }
            }
            let pgid = i64::from(child.id().unwrap_or(0));
            // Whatever happens to this future, the command's whole group ends with it.
            let _group = process::GroupGuard(pgid);
            // Recorded so that a Slipway killed mid-build stops it at its next start.
            let build_row = Instance {
                service: service.to_string(),
                environment: environment.to_string(),
                release_id: format!("build:{}", dir.display()),
                slot: -1,
                pid: pgid,
                pid_start: process::start_time(pgid).unwrap_or(0),
                port: 0,
                state: "building".to_string(),
                started_at: chrono::Utc::now(),
            };
            if let Err(e) = self.store.put_instance(&build_row).await {
                tracing::warn!(error = %e, "cannot record a build process");
            }
            let tail = Arc::new(Mutex::new(std::collections::VecDeque::<String>::new()));
            let readers = [
                child
                    .stdout
                    .take()
                    .map(|o| spawn_lines(o, LogStream::Stdout, log.clone(), tail.clone())),
                child
                    .stderr
                    .take()
                    .map(|o| spawn_lines(o, LogStream::Stderr, log.clone(), tail.clone())),
            ];
            let status = tokio::select! {
                s = child.wait() => s.map_err(|e| BuildError::Spawn(e.to_string()))?,
                _ = tokio::time::sleep_until(deadline) => {
                    process::stop_group(pgid, Duration::from_secs(2)).await;
                    return Err(BuildError::Timeout(self.config.build_timeout));
                }
                _ = cancel.cancelled() => {
                    process::stop_group(pgid, Duration::from_secs(2)).await;
                    return Err(BuildError::Cancelled);
                }
            };
            // Whatever the command left running in its group goes with it.
            process::signal_group(pgid, libc::SIGKILL);
            let _ = self
                .store
                .delete_instance(service, environment, &build_row.release_id, -1)
                .await;
            for r in readers.into_iter().flatten() {
                let _ = r.await;
            }
            if !status.success() {
                let tail = tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                return Err(BuildError::Failed {
                    command: command.clone(),
                    status: status.to_string(),
                    tail,
                });
            }
        }
        Ok(())
    }

    /// Starts `replicas` instances of a release (state `starting`), each on its own port, under
    /// supervision. Their output also goes to `deploy_log` until they serve.
    pub async fn start(
        self: &Arc<Self>,
        spec: RunSpec,
        replicas: u32,
        ports: Option<Vec<u16>>,
        deploy_log: Option<DeploymentLog>,
    ) -> std::io::Result<Vec<Arc<InstanceHandle>>> {
        let app = self.app(&spec.service, &spec.environment);
        tokio::fs::create_dir_all(self.home_dir(&spec.service, &spec.environment)).await?;
        if spec.sandbox.is_some() {
            self.open_path(&spec.service, &spec.environment)?;
        }
        let spec = Arc::new(spec);
        let mut started = Vec::new();
        for slot in 0..replicas.max(1) {
            let port = match (
                spec.fixed_port,
                ports.as_ref().and_then(|p| p.get(slot as usize)),
            ) {
                (Some(p), _) => p,
                (None, Some(p)) if !process::port_in_use(*p).await => *p,
                _ => {
                    let taken: Vec<u16> = app
                        .instances
                        .lock()
                        .map(|i| i.iter().map(|h| h.port).collect())
                        .unwrap_or_default();
                    process::free_port(&taken)?
                }
            };
            let handle = Arc::new(InstanceHandle {
                release_id: spec.release_id.clone(),
                slot: i32::try_from(slot).unwrap_or(i32::MAX),
                port,
                pgid: AtomicI64::new(0),
                exits: AtomicU32::new(0),
                last_exit: Mutex::new(None),
                state: Mutex::new(InstanceState::Starting),
                stop: CancellationToken::new(),
                finished: CancellationToken::new(),
                started: Instant::now(),
                deploy_log: Mutex::new(deploy_log.clone()),
                cpu_prev: Mutex::new(None),
            });
            if let Ok(mut list) = app.instances.lock() {
                list.push(handle.clone());
            }
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(supervise(
                self.clone(),
                app.clone(),
                handle.clone(),
                spec.clone(),
                ready_tx,
            ));
            // The first spawn has happened (or failed) before we go on, so callers see a pid.
            let _ = ready_rx.await;
            started.push(handle);
        }
        Ok(started)
    }

    /// Waits until every instance answers its health check. Fails on a crash loop, on the deadline,
    /// or when cancelled. Returns when the last instance first answered.
    pub async fn wait_healthy(
        &self,
        instances: &[Arc<InstanceHandle>],
        health_path: Option<&str>,
        log: &DeploymentLog,
        cancel: &CancellationToken,
    ) -> Result<Instant, String> {
        let deadline = Instant::now() + self.config.health_timeout;
        let mut healthy = vec![false; instances.len()];
        let mut last = String::from("no probe answered yet");
        // Every 20 ms while the app is not listening yet, so that it is seen the moment it is;
        // once it answers unhealthy, the interval doubles up to 1 s: each probe is a request in the
        // app's own log, and an app that answers 500 for a minute would otherwise log 3,000 of them.
        let mut interval = PROBE_INTERVAL;
        loop {
            let mut answered = false;
            for (i, inst) in instances.iter().enumerate() {
                if healthy[i] {
                    continue;
                }
                if inst.exits() >= self.config.crash_loop_exits {
                    return Err(format!(
                        "instance {} exited {} times while starting (crash loop); last: {}",
                        inst.slot,
                        inst.exits(),
                        inst.last_exit().unwrap_or_default()
                    ));
                }
                match process::probe(inst.port, health_path, Duration::from_secs(2)).await {
                    Probe::Healthy(msg) => {
                        healthy[i] = true;
                        log.system(format!(
                            "instance {} on port {}: {msg} after {} ms",
                            inst.slot,
                            inst.port,
                            inst.started.elapsed().as_millis()
                        ));
                    }
                    Probe::Unhealthy(msg) => {
                        answered = true;
                        last = msg;
                    }
                    Probe::Refused(msg) => last = msg,
                }
            }
            if healthy.iter().all(|h| *h) {
                return Ok(Instant::now());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no healthy answer within {:?} (health check {}); last probe: {last}",
                    self.config.health_timeout,
                    health_path.map_or("TCP connect".to_string(), |p| format!("GET {p}"))
                ));
            }
            if answered {
                interval = (interval * 2).min(PROBE_INTERVAL_MAX);
            }
            let pause = interval.min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = cancel.cancelled() => return Err("cancelled".into()),
            }
        }
    }

    /// Moves traffic of the service's environment to `new` and returns the instances that served
    /// before (now `stopping`; the caller retires them).
    pub async fn swap(
        &self,
        service: &str,
        environment: &str,
        new: &[Arc<InstanceHandle>],
    ) -> Vec<Arc<InstanceHandle>> {
        let app = self.app(service, environment);
        let _guard = app.swap.lock().await;
        let is_new = |inst: &Arc<InstanceHandle>| new.iter().any(|n| Arc::ptr_eq(n, inst));
        self.proxy
            .set_backends(service, environment, new.iter().map(|i| i.addr()).collect());
        let mut old = Vec::new();
        let all: Vec<Arc<InstanceHandle>> = app.snapshot();
        for inst in all {
            if is_new(&inst) {
                inst.set_state(InstanceState::Serving);
                if let Ok(mut l) = inst.deploy_log.lock() {
                    *l = None;
                }
                self.record(service, environment, &inst).await;
            } else if inst.state() == InstanceState::Serving {
                inst.set_state(InstanceState::Stopping);
                self.record(service, environment, &inst).await;
                old.push(inst);
            }
        }
        old
    }

    /// Waits for in-flight requests to `old` to finish, then stops them.
    pub async fn retire(&self, old: Vec<Arc<InstanceHandle>>) {
        if old.is_empty() {
            return;
        }
        let addrs: Vec<SocketAddr> = old.iter().map(|i| i.addr()).collect();
        self.proxy.drain(&addrs, self.config.drain_timeout).await;
        self.stop(&old).await;
    }

    /// Stops instances and waits for their supervisors to finish.
    pub async fn stop(&self, instances: &[Arc<InstanceHandle>]) {
        for inst in instances {
            inst.set_state(InstanceState::Stopping);
            inst.stop.cancel();
        }
        for inst in instances {
            inst.finished.cancelled().await;
        }
    }

    /// The release serving a service's environment, if any.
    pub fn serving_release(&self, service: &str, environment: &str) -> Option<String> {
        let app = self.app(service, environment);
        let list = app.instances.lock().ok()?;
        list.iter()
            .find(|i| i.state() == InstanceState::Serving)
            .map(|i| i.release_id.clone())
    }

    /// Serving instances of a service's environment.
    pub fn serving(&self, service: &str, environment: &str) -> Vec<Arc<InstanceHandle>> {
        let app = self.app(service, environment);
        let list = app.snapshot();
        list.into_iter()
            .filter(|i| i.state() == InstanceState::Serving)
            .collect()
    }

    /// Stops everything a release runs in a service's environment; when it was serving, the
    /// route goes too. Returns whether anything ran.
    pub async fn destroy_release(&self, service: &str, environment: &str, release: &str) -> bool {
        let app = self.app(service, environment);
        let _guard = app.swap.lock().await;
        let mine: Vec<Arc<InstanceHandle>> = app
            .instances
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|i| i.release_id == release)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if mine.iter().any(|i| i.state() == InstanceState::Serving) {
            self.proxy.remove(service, environment);
        }
        let any = !mine.is_empty();
        self.stop(&mine).await;
        any
    }

    /// Removes directories of the releases in `known` (newest first) except the newest
    /// `keep_releases` of `healthy` (newest first), those in `keep`, and any with instances.
    pub async fn clean_releases(
        &self,
        service: &str,
        environment: &str,
        known: &[String],
        healthy: &[String],
        keep: &[String],
    ) {
        let releases = self.app_dir(service, environment).join("releases");
        let Ok(mut entries) = tokio::fs::read_dir(&releases).await else {
            return;
        };
        let mut on_disk = Vec::new();
        while let Ok(Some(e)) = entries.next_entry().await {
            on_disk.push(e.file_name().to_string_lossy().to_string());
        }
        let recent: Vec<&String> = healthy.iter().take(self.config.keep_releases).collect();
        for dir in on_disk {
            let running = self
                .app(service, environment)
                .instances
                .lock()
                .map(|l| l.iter().any(|i| i.release_id == dir))
                .unwrap_or(true);
            if running || keep.contains(&dir) || recent.contains(&&dir) {
                continue;
            }
            // Only directories of releases the store knows as older are removed; anything else
            // (a build in progress) stays.
            if known.contains(&dir) {
                process::remove_dir(&releases.join(&dir)).await;
            }
        }
    }

    /// After a restart of Slipway: stops what the previous process left running (it cannot be
    /// supervised: its output pipes went with that process) and starts the releases that were
    /// serving again, on the same ports where they are free.
    pub async fn recover(self: &Arc<Self>) -> Result<(), slipway_store::StoreError> {
        let rows = self.store.list_instances(None).await?;
        let mut serving: BTreeMap<(String, String, String), Vec<u16>> = BTreeMap::new();
        for row in &rows {
            if process::is_alive(row.pid, row.pid_start) {
                tracing::info!(service = %row.service, environment = %row.environment, pid = row.pid, "stopping an instance left by the previous run");
                process::stop_group(row.pid, self.config.stop_grace).await;
            }
            self.store
                .delete_instance(&row.service, &row.environment, &row.release_id, row.slot)
                .await?;
            if row.state == InstanceState::Serving.as_str() {
                serving
                    .entry((
                        row.service.clone(),
                        row.environment.clone(),
                        row.release_id.clone(),
                    ))
                    .or_default()
                    .push(u16::try_from(row.port).unwrap_or(0));
            }
        }
        for ((service, environment, release_id), ports) in serving {
            let release = match self.store.get_release(&release_id).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%service, %environment, %release_id, error = %e, "cannot restart a release");
                    continue;
                }
            };
            let Some(mut spec) = self.spec_for(&release) else {
                tracing::warn!(%service, %environment, %release_id, "release has no start command; not restarted");
                continue;
            };
            match self.sandbox(&service).await {
                Ok(sb) => spec.sandbox = sb,
                Err(e) => {
                    tracing::error!(%service, %environment, error = %e, "no sandbox; not restarted");
                    continue;
                }
            }
            match self.secret_env(&service, &environment).await {
                Ok(secrets) => {
                    spec.redact = secrets.values().cloned().collect();
                    spec.variables.extend(secrets);
                }
                Err(e) => {
                    tracing::error!(%service, %environment, error = %e, "cannot open the release's secrets; not restarted");
                    continue;
                }
            }
            let health = spec.health_path.clone();
            let replicas = u32::try_from(ports.len()).unwrap_or(1);
            match self.start(spec, replicas, Some(ports), None).await {
                Ok(instances) => {
                    let target = self.clone();
                    tokio::spawn(async move {
                        let log = DeploymentLog::detached();
                        match target
                            .wait_healthy(
                                &instances,
                                health.as_deref(),
                                &log,
                                &CancellationToken::new(),
                            )
                            .await
                        {
                            Ok(_) => {
                                let old = target.swap(&service, &environment, &instances).await;
                                target.retire(old).await;
                                tracing::info!(%service, %environment, %release_id, "release restarted after a restart of Slipway");
                            }
                            Err(e) => {
                                tracing::error!(%service, %environment, %release_id, error = %e, "restarted release is not healthy");
                                // Keep trying under supervision, routed: it is all there is.
                                let old = target.swap(&service, &environment, &instances).await;
                                target.retire(old).await;
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::error!(%service, %environment, %release_id, error = %e, "cannot restart a release")
                }
            }
        }
        Ok(())
    }

    /// How to run a stored release.
    pub fn spec_for(&self, release: &slipway_core::Release) -> Option<RunSpec> {
        let plan: slipway_analyzer::BuildPlan =
            serde_json::from_value(release.plan.clone()).ok()?;
        let root = self.release_dir(&release.service, &release.environment, &release.id);
        let dir = if plan.app_dir.is_empty() || plan.app_dir == "." {
            root
        } else {
            root.join(&plan.app_dir)
        };
        let start = match (&plan.start, &plan.static_dir) {
            (Some(start), _) => start.clone(),
            // A static site is served by Python's standard-library server (present wherever
            // Slipway's own tests run); the directory name comes from the plan, quoted for sh.
            (None, Some(static_dir)) => format!(
                "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 --directory {}",
                shell_quote(static_dir)
            ),
            (None, None) => return None,
        };
        let mut variables = plan.env.clone();
        variables.extend(release.variables.clone());
        Some(RunSpec {
            service: release.service.clone(),
            environment: release.environment.clone(),
            release_id: release.id.clone(),
            dir,
            start,
            variables,
            health_path: plan.health_path.clone(),
            fixed_port: (!plan.reads_port_env).then_some(plan.port).flatten(),
            redact: Vec::new(),
            sandbox: None,
            resources: self.resources_of(&plan),
        })
    }

    /// Stops everything a deleted service ran, in every environment, removes its routes and its
    /// releases, logs and home directories.
    pub async fn remove_service(&self, service: &str) {
        let apps: Vec<((String, String), Arc<App>)> = {
            let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<(String, String)> =
                apps.keys().filter(|(s, _)| s == service).cloned().collect();
            keys.into_iter()
                .filter_map(|k| apps.remove(&k).map(|a| (k, a)))
                .collect()
        };
        for ((svc, env), app) in apps {
            self.proxy.remove(&svc, &env);
            let all = app.snapshot();
            self.stop(&all).await;
        }
        process::remove_dir(&self.config.root.join(service)).await;
    }

    /// The sandbox of a service's workloads (`None` without isolation).
    pub async fn sandbox(&self, service: &str) -> Result<Option<Sandbox>, String> {
        let Some(limits) = self.config.isolation else {
            return Ok(None);
        };
        let uid = self
            .store
            .service_uid(service, limits.first_uid)
            .await
            .map_err(|e| format!("cannot allocate the service's uid: {e}"))?;
        Ok(Some(Sandbox { uid, limits }))
    }

    /// The directory of the release that `dir` (the release or an app directory in it) belongs to.
    fn release_root(&self, service: &str, environment: &str, dir: &Path) -> PathBuf {
        let releases = self.app_dir(service, environment).join("releases");
        dir.ancestors()
            .find(|p| p.parent() == Some(releases.as_path()))
            .unwrap_or(dir)
            .to_path_buf()
    }

    /// `sh -c <command>` as a workload of a service, in `dir`: inside the user namespace when
    /// there is one (then `true`; the release and the service's home are its only writable
    /// places), else as is; either way in a process group of its own. The caller sets the rest.
    fn workload_command(
        &self,
        service: &str,
        environment: &str,
        dir: &Path,
        command: &str,
    ) -> (Command, bool) {
        match &self.config.namespace {
            Some(ns) => {
                let release = self.release_root(service, environment, dir);
                let home = self.home_dir(service, environment);
                let mut cmd = ns.command(dir, &[&release, &home], command);
                set_limits(&mut cmd, ns.limits);
                (cmd, true)
            }
            None => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(command).process_group(0);
                (cmd, false)
            }
        }
    }

    /// Makes the directories above a service's releases and home passable by other users, not
    /// listable: `slipway up` closes the data directory again at every start, and a release
    /// started then (a restart, a rollback) needs the way open as much as a new build does.
    fn open_path(&self, service: &str, environment: &str) -> std::io::Result<()> {
        let app = self.app_dir(service, environment);
        for d in [
            self.config.root.parent().map(Path::to_path_buf),
            Some(self.config.root.clone()),
            Some(self.config.root.join(service)),
            Some(app.clone()),
            Some(app.join("releases")),
        ]
        .into_iter()
        .flatten()
        {
            if d.exists() {
                traversable(&d)?;
            }
        }
        Ok(())
    }

    /// Makes a release directory and the app's home the uid's own, and the directories above them
    /// passable but not listable (the rest of the data directory stays Slipway's alone).
    fn hand_over(
        &self,
        service: &str,
        environment: &str,
        dir: &Path,
        uid: u32,
    ) -> std::io::Result<()> {
        let release_root = self.release_root(service, environment, dir);
        self.open_path(service, environment)?;
        chown_tree(&release_root, uid)?;
        let home = self.home_dir(service, environment);
        chown_tree(&home, uid)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&release_root, std::fs::Permissions::from_mode(0o700))?;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// The opened secrets a service's app receives in an environment, name → value: all but the
    /// repository credentials.
    pub async fn secret_env(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        self.open_secrets(service, environment, |name| {
            !slipway_core::validate::is_git_credential(name)
        })
        .await
    }

    /// The repository credentials of a service in an environment (secrets named
    /// `SLIPWAY_GIT_*`), opened for one fetch or push.
    pub async fn git_credentials(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<crate::source::GitCredentials, String> {
        let mut opened = self
            .open_secrets(
                service,
                environment,
                slipway_core::validate::is_git_credential,
            )
            .await?;
        Ok(crate::source::GitCredentials {
            username: opened.remove("SLIPWAY_GIT_USERNAME"),
            token: opened.remove("SLIPWAY_GIT_TOKEN"),
            ssh_key: opened.remove("SLIPWAY_GIT_SSH_KEY"),
            known_hosts: opened.remove("SLIPWAY_GIT_KNOWN_HOSTS"),
        })
    }

    async fn open_secrets(
        &self,
        service: &str,
        environment: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, String>, String> {
        let sealed: Vec<_> = self
            .store
            .sealed_secrets(Some((service, environment)))
            .await
            .map_err(|e| format!("cannot read secrets: {e}"))?
            .into_iter()
            .filter(|s| wanted(&s.name))
            .collect();
        if sealed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let Some(key) = &self.secrets else {
            return Err("the service has secrets but Slipway has no secrets key configured".into());
        };
        sealed
            .iter()
            .map(|s| {
                key.open(s)
                    .map(|v| (s.name.clone(), v))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Services and environments that have serving instances.
    pub fn serving_apps(&self) -> Vec<(String, String)> {
        let apps: Vec<((String, String), Arc<App>)> = {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            apps.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        apps.into_iter()
            .filter(|(_, app)| {
                app.instances
                    .lock()
                    .map(|l| l.iter().any(|i| i.state() == InstanceState::Serving))
                    .unwrap_or(false)
            })
            .map(|(k, _)| k)
            .collect()
    }

    /// Instance count, CPU and memory of a service's serving instances, from `/proc`.
    pub fn usage(&self, service: &str, environment: &str) -> Option<Usage> {
        let serving = self.serving(service, environment);
        if serving.is_empty() {
            return None;
        }
        let ticks = process::ticks_per_second() as f64;
        let mut usage = Usage {
            instances: 0,
            cpu_percent: 0.0,
            memory_bytes: 0,
        };
        for inst in serving {
            if !inst.running() {
                continue;
            }
            let pgid = inst.pgid.load(Ordering::Acquire);
            let Some((cpu, rss)) = process::group_usage(pgid) else {
                continue;
            };
            usage.instances += 1;
            usage.memory_bytes += rss;
            let now = Instant::now();
            let mut prev = inst.cpu_prev.lock().unwrap_or_else(|e| e.into_inner());
            let (base_cpu, base_at) = match *prev {
                Some((c, at)) if now.duration_since(at) >= Duration::from_millis(200) => (c, at),
                // No recent reading: the average since the instance started.
                _ => (0, inst.started),
            };
            let wall = now.duration_since(base_at).as_secs_f64();
            if wall > 0.0 {
                usage.cpu_percent += (cpu.saturating_sub(base_cpu) as f64 / ticks) / wall * 100.0;
            }
            *prev = Some((cpu, now));
        }
        Some(usage)
    }

    /// The app log of a service's environment: the last `lines` lines on disk, and a receiver of
    /// the lines that follow.
    pub async fn app_log(
        &self,
        service: &str,
        environment: &str,
        lines: usize,
    ) -> (Vec<String>, broadcast::Receiver<Arc<str>>) {
        let app = self.app(service, environment);
        let rx = app.log.live.subscribe();
        app.log.flush().await;
        let path = self
            .app_dir(service, environment)
            .join("logs")
            .join("app.log");
        let tail = tokio::task::spawn_blocking(move || tail_lines(&path, lines))
            .await
            .unwrap_or_default();
        (tail, rx)
    }

    async fn record(&self, service: &str, environment: &str, inst: &InstanceHandle) {
        let pgid = inst.pgid.load(Ordering::Acquire);
        let row = Instance {
            service: service.to_string(),
            environment: environment.to_string(),
            release_id: inst.release_id.clone(),
            slot: inst.slot,
            pid: pgid,
            pid_start: process::start_time(pgid).unwrap_or(0),
            port: i32::from(inst.port),
            state: inst.state().as_str().to_string(),
            started_at: chrono::Utc::now(),
        };
        if let Err(e) = self.store.put_instance(&row).await {
            tracing::error!(%service, %environment, error = %e, "cannot record an instance");
        }
    }
}

/// Runs one instance: starts it, restarts it with backoff when it exits, stops it when asked.
async fn supervise(
    target: Arc<LocalTarget>,
    app: Arc<App>,
    inst: Arc<InstanceHandle>,
    spec: Arc<RunSpec>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(500);
    let home = target.home_dir(&spec.service, &spec.environment);
    let prefix = format!("{}/{}", short(&spec.release_id), inst.slot);
    let group_name = format!(
        "{}.{}.{}-{}",
        spec.service,
        spec.environment,
        short(&spec.release_id),
        inst.slot
    );
    let mut group = None;
    loop {
        if inst.stop.is_cancelled() {
            break;
        }
        let (mut cmd, in_namespace) =
            target.workload_command(&spec.service, &spec.environment, &spec.dir, &spec.start);
        cmd.current_dir(&spec.dir)
            .env_clear()
            .envs(base_env(&home))
            .env("NODE_ENV", "production")
            .envs(&spec.variables)
            .env("PORT", inst.port.to_string())
            .env("SLIPWAY_SERVICE", &spec.service)
            .env("SLIPWAY_ENVIRONMENT", &spec.environment)
            .env("SLIPWAY_RELEASE", &spec.release_id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        confine(&mut cmd, spec.sandbox);
        // Created (again) before every start: its limits are the spec's whatever happened to it.
        group = match target.limit(&mut cmd, &group_name, spec.resources, spec.sandbox) {
            Ok(g) => g,
            Err(e) => {
                app.log.line(
                    &prefix,
                    LogStream::System,
                    &format!("memory and CPU limits could not be applied: {e}"),
                );
                None
            }
        };
        let oom_kills = group.as_ref().map_or(0, |g| g.oom_kills());
        let ran_from = Instant::now();
        match cmd.spawn() {
            Err(e) => {
                inst.exits.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut l) = inst.last_exit.lock() {
                    *l = Some(format!("could not start `{}`: {e}", spec.start));
                }
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
            Ok(mut child) => {
                if let Some(g) = &group {
                    if let Err(e) = g.joined(child.id(), spec.sandbox.is_some()) {
                        app.log.line(
                            &prefix,
                            LogStream::System,
                            &format!("memory and CPU limits could not be applied: {e}"),
                        );
                    }
                }
                let pgid = i64::from(child.id().unwrap_or(0));
                inst.pgid.store(pgid, Ordering::Release);
                target.record(&spec.service, &spec.environment, &inst).await;
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let redact = Arc::new(spec.redact.clone());
                if let Some(out) = child.stdout.take() {
                    tokio::spawn(pump(
                        out,
                        LogStream::Stdout,
                        prefix.clone(),
                        app.clone(),
                        inst.clone(),
                        redact.clone(),
                    ));
                }
                if let Some(err) = child.stderr.take() {
                    tokio::spawn(pump(
                        err,
                        LogStream::Stderr,
                        prefix.clone(),
                        app.clone(),
                        inst.clone(),
                        redact,
                    ));
                }
                tokio::select! {
                    status = child.wait() => {
                        let mut what = match status {
                            Ok(s) => format!("exited ({s})"),
                            Err(e) => format!("could not be waited for: {e}"),
                        };
                        if let Some(g) = group.as_ref().filter(|g| g.oom_kills() > oom_kills) {
                            what.push_str(&format!(
                                ": killed for going over its memory limit ({} MiB)",
                                g.memory_mb.unwrap_or_default()
                            ));
                        }
                        // Children it left behind go with it.
                        process::signal_group(pgid, libc::SIGKILL);
                        if let Ok(mut l) = inst.last_exit.lock() {
                            *l = Some(what.clone());
                        }
                        inst.exits.fetch_add(1, Ordering::AcqRel);
                        target.metrics.instance_restarted(&spec.service, &spec.environment);
                        app.log.line(&prefix, LogStream::System, &format!("instance {what}; restarting in {} ms", backoff.as_millis()));
                        if let Some(l) = inst.deploy_log.lock().ok().and_then(|l| l.clone()) {
                            l.system(format!("instance {} {what}", inst.slot));
                        }
                    }
                    _ = inst.stop.cancelled() => {
                        // SIGTERM, and reap the child while it stops (an unreaped child would look
                        // alive until the grace period ends); SIGKILL what is left after it. In a
                        // namespace, bwrap itself is spared: it exits once the workload has.
                        if in_namespace {
                            crate::userns::signal_workload(pgid, libc::SIGTERM);
                        } else {
                            process::signal_group(pgid, libc::SIGTERM);
                        }
                        let grace = target.config.stop_grace;
                        if tokio::time::timeout(grace, child.wait()).await.is_err() {
                            process::signal_group(pgid, libc::SIGKILL);
                            let _ = child.wait().await;
                        }
                        process::stop_group(pgid, Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
        if ran_from.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = inst.stop.cancelled() => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    if let Some(g) = group {
        // Its processes were killed above; the kernel lets the group go once they are reaped.
        for _ in 0..50 {
            if g.remove().is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if let Ok(mut list) = app.instances.lock() {
        list.retain(|i| !Arc::ptr_eq(i, &inst));
    }
    let keep_record = target.shutting_down.load(Ordering::Acquire);
    if keep_record {
        // Stopped with Slipway: the record stays so the next start runs it again.
    } else if let Err(e) = target
        .store
        .delete_instance(
            &spec.service,
            &spec.environment,
            &inst.release_id,
            inst.slot,
        )
        .await
    {
        tracing::error!(service = %spec.service, error = %e, "cannot forget an instance");
    }
    inst.finished.cancel();
}

/// Single-quotes a word for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// Copies an instance's output to the app log (and to its deployment's log while it starts).
async fn pump(
    out: impl tokio::io::AsyncRead + Unpin,
    stream: LogStream,
    prefix: String,
    app: Arc<App>,
    inst: Arc<InstanceHandle>,
    redact: Arc<Vec<String>>,
) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(mut line)) = lines.next_line().await {
        for secret in redact.iter().filter(|s| s.len() >= 4) {
            if line.contains(secret.as_str()) {
                line = line.replace(secret.as_str(), "[redacted]");
            }
        }
        app.log.line(&prefix, stream, &line);
        if let Some(l) = inst.deploy_log.lock().ok().and_then(|l| l.clone()) {
            l.line(stream, &line);
        }
    }
}

/// Copies a build command's output to the deployment log, keeping the last lines for the error.
fn spawn_lines(
    out: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    stream: LogStream,
    log: DeploymentLog,
    tail: Arc<Mutex<std::collections::VecDeque<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.line(stream, &line);
            if let Ok(mut t) = tail.lock() {
                t.push_back(line);
                if t.len() > 20 {
                    t.pop_front();
                }
            }
        }
    })
}

/// An app's log file, rotated by size, with a live feed for followers.
struct AppLog {
    tx: mpsc::UnboundedSender<LogMsg>,
    live: broadcast::Sender<Arc<str>>,
}

enum LogMsg {
    Line(String),
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl AppLog {
    fn start(dir: PathBuf, max_bytes: u64, keep: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(1024);
        tokio::spawn(app_log_writer(dir, max_bytes, keep, rx));
        Self { tx, live }
    }

    fn line(&self, prefix: &str, stream: LogStream, text: &str) {
        let line = format!(
            "{} [{prefix} {}] {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            stream.as_str(),
            text.trim_end_matches(['\r', '\n'])
        );
        let _ = self.live.send(Arc::from(line.as_str()));
        let _ = self.tx.send(LogMsg::Line(line));
    }

    async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(LogMsg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn app_log_writer(
    dir: PathBuf,
    max_bytes: u64,
    keep: usize,
    mut rx: mpsc::UnboundedReceiver<LogMsg>,
) {
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        tracing::error!(dir = %dir.display(), error = %e, "cannot create the app log directory");
        return;
    }
    {
        // Other services' workloads must not read this app's output.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let path = dir.join("app.log");
    let open = |path: PathBuf| async move {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
    };
    let Ok(mut file) = open(path.clone()).await else {
        return;
    };
    let mut size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    while let Some(msg) = rx.recv().await {
        match msg {
            LogMsg::Flush(done) => {
                let _ = file.flush().await;
                let _ = done.send(());
            }
            LogMsg::Line(mut line) => {
                line.push('\n');
                if file.write_all(line.as_bytes()).await.is_err() {
                    continue;
                }
                size += line.len() as u64;
                if size >= max_bytes {
                    let _ = file.flush().await;
                    for n in (1..keep).rev() {
                        let from = dir.join(format!("app.log.{n}"));
                        let to = dir.join(format!("app.log.{}", n + 1));
                        let _ = tokio::fs::rename(&from, &to).await;
                    }
                    let _ = tokio::fs::rename(&path, dir.join("app.log.1")).await;
                    let _ = tokio::fs::remove_file(dir.join(format!("app.log.{}", keep + 1))).await;
                    match open(path.clone()).await {
                        Ok(f) => {
                            file = f;
                            size = 0;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot reopen the app log");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The last `n` lines of a file (reads at most its last 1 MiB).
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(1024 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|s| s.to_string()).collect()
}
