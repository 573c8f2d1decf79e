//! The deployment engine: the orchestrator on the durable job queue, repository sources, deployment
//! logs, and the built-in `local` target with its reverse proxy.

pub mod cgroup;
pub mod local;
pub mod logs;
pub mod metrics;
pub mod orchestrator;
pub mod process;
pub mod sampler;
pub mod secrets;
pub mod source;
pub mod userns;

use local::{LocalConfig, LocalTarget};
use logs::LogHub;
use orchestrator::Orchestrator;
use slipway_core::DEPLOY_QUEUE;
use slipway_jobs::WorkerConfig;
use slipway_proxy::{Proxy, ProxyConfig};
use slipway_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `<data-dir>`: releases and app logs go under `apps/`.
    pub data_dir: PathBuf,
    /// Where the proxy listens (`--proxy-listen`, default 127.0.0.1:7780).
    pub proxy_listen: SocketAddr,
    /// Jobs run at once.
    pub workers: usize,
    pub lease: Duration,
    pub heartbeat: Duration,
    /// Adjustments of the local target (tests shorten timeouts).
    pub tune_local: Option<fn(&mut LocalConfig)>,
    /// The key that opens secrets (`None`: secrets cannot be used).
    pub secrets_key: Option<secrets::SecretKey>,
    /// Run each service's workloads as its own uid with limits (needs root).
    pub isolation: Option<local::Isolation>,
    /// Run every workload in a user namespace that hides the data directory (bubblewrap; for a
    /// Slipway that does not run as root).
    pub namespace: Option<userns::Namespace>,
    /// `--allow-private-repo-hosts`: repositories may live on loopback, private or link-local
    /// addresses (refused by default: server-side request forgery).
    pub allow_private_repo_hosts: bool,
    /// Releases kept on disk per service and environment (besides the serving one and its
    /// rollback target).
    pub keep_releases: usize,
    /// How often runtime figures are written to the database, and how long they are kept.
    pub sample_every: Duration,
    pub sample_retention: Duration,
    /// Enforce instances' memory and CPU with control groups where the host allows it.
    pub resource_limits: bool,
    /// Memory and CPU per instance when neither the deployment nor the repository says.
    pub default_resources: slipway_core::Resources,
    /// The most one deployment may use in all (replicas × per instance); `None`: unlimited.
    pub max_per_deployment: slipway_core::Resources,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf, proxy_listen: SocketAddr) -> Self {
        Self {
            data_dir,
            proxy_listen,
            workers: 4,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            tune_local: None,
            secrets_key: None,
            allow_private_repo_hosts: false,
            isolation: None,
            namespace: None,
            keep_releases: 5,
            sample_every: Duration::from_secs(15),
            sample_retention: Duration::from_secs(24 * 3600),
            resource_limits: true,
            default_resources: slipway_core::Resources {
                memory_mb: Some(512),
                cpu_millis: Some(1000),
            },
            max_per_deployment: slipway_core::Resources {
                memory_mb: Some(8192),
                cpu_millis: Some(4000),
            },
        }
    }
}

fn restrict_data_files(data_dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "slipway.db",
        "slipway.db-wal",
        "slipway.db-shm",
        "secrets.key",
        "admin-token",
    ] {
        let p = data_dir.join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let repo = data_dir.join("platform-repo");
    if repo.exists() {
        std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A running engine.
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub local: Arc<LocalTarget>,
    pub proxy: Proxy,
    pub logs: Arc<LogHub>,
    pub metrics: Arc<metrics::EngineMetrics>,
    /// The proxy's bound address.
    pub proxy_addr: SocketAddr,
    /// How repositories are fetched (limits, the private-address guard).
    pub fetch_limits: source::FetchLimits,
    stop: CancellationToken,
    tasks: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// Binds the proxy, stops what a previous run left and restarts what served, and starts the
    /// workers.
    pub async fn start(
        store: Arc<dyn Store>,
        config: EngineConfig,
    ) -> std::io::Result<Arc<Engine>> {
        let listener = TcpListener::bind(config.proxy_listen).await?;
        let proxy_addr = listener.local_addr()?;
        let proxy = Proxy::new(ProxyConfig::default());
        let mut local_config = LocalConfig::new(config.data_dir.join("apps"), proxy_addr.port());
        local_config.keep_releases = config.keep_releases;
        local_config.resource_limits = config.resource_limits;
        local_config.default_resources = config.default_resources;
        local_config.max_per_deployment = config.max_per_deployment;
        local_config.isolation = config.isolation;
        local_config.namespace = config.namespace.clone();
        if config.isolation.is_some() && !userns::running_as_root() {
            return Err(std::io::Error::other(
                "workload isolation runs each service as its own uid and needs Slipway to run as root",
            ));
        }
        // The database (SQLite gives its WAL and shm files the same mode), the keys and the
        // platform repository are Slipway's alone — also when isolated workloads may pass through
        // the data directory (mode 0711) to reach their releases.
        restrict_data_files(&config.data_dir)?;
        if let Some(tune) = config.tune_local {
            tune(&mut local_config);
        }
        let engine_metrics = Arc::new(metrics::EngineMetrics::default());
        let local = LocalTarget::new(
            local_config,
            config.secrets_key.clone(),
            store.clone(),
            proxy.clone(),
            engine_metrics.clone(),
        );
        let logs = Arc::new(LogHub::default());
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let proxy = proxy.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = proxy
                    .serve(listener, async move { stop.cancelled().await })
                    .await
                {
                    tracing::error!(error = %e, "the proxy stopped");
                }
            }));
        }
        if store.backend() == "sqlite" {
            // One process owns a SQLite data directory: whatever ran when it stopped is ours to resume.
            store
                .expire_all_leases()
                .await
                .map_err(std::io::Error::other)?;
        }
        local.recover().await.map_err(std::io::Error::other)?;
        let fetch_limits = source::FetchLimits {
            allow_private_hosts: config.allow_private_repo_hosts,
            ..source::FetchLimits::default()
        };
        let orchestrator = Arc::new(Orchestrator {
            metrics: engine_metrics.clone(),
            store: store.clone(),
            local: local.clone(),
            logs: logs.clone(),
            fetch_limits: fetch_limits.clone(),
        });
        let mut workers = WorkerConfig::new(&[DEPLOY_QUEUE]);
        workers.concurrency = config.workers;
        workers.lease = config.lease;
        workers.heartbeat = config.heartbeat;
        {
            let store = store.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(slipway_jobs::run_workers(
                store,
                orchestrator,
                workers,
                async move { stop.cancelled().await },
            )));
        }
        {
            let local = local.clone();
            let store = store.clone();
            let stop = stop.clone();
            let (every, keep) = (config.sample_every, config.sample_retention);
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = sampler::run(local, store, every, keep) => {}
                    _ = stop.cancelled() => {}
                }
            }));
        }
        Ok(Arc::new(Engine {
            store,
            local,
            proxy,
            logs,
            metrics: engine_metrics,
            proxy_addr,
            fetch_limits,
            stop,
            tasks: tokio::sync::Mutex::new(tasks),
        }))
    }

    /// Stops the workers (their jobs resume at the next start), the proxy and the apps (restarted
    /// at the next start).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().await);
        for t in tasks {
            let _ = t.await;
        }
        self.local.shutdown().await;
    }
}
