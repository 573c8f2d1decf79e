//! `slipway up` and the offline maintenance commands that work on a data directory.

use crate::config::Settings;
use anyhow::{bail, Context};
use slipway_platform_repo::PlatformRepo;
use slipway_server::{reconcile, AppState};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// How often a replica on PostgreSQL reconciles its platform repository with the shared database.
const REPLICA_RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Holds the data directory's lock: one Slipway process per data directory.
pub struct DataDirLock(#[allow(dead_code)] File);

pub fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let path = dir.join("slipway.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match try_lock_for_this_process(&file) {
        Ok(true) => Ok(DataDirLock(file)),
        Ok(false) => bail!(
            "another Slipway process is using the data directory {}; stop it first or choose another --data-dir",
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Takes a POSIX record lock (`fcntl(F_SETLK)`) on the whole file: `Ok(false)` when another
/// process holds it. Not `flock`: a `flock` lock belongs to the open file, which every child
/// shares between `fork` and `exec` — so a `kill -9` while Slipway was starting a build left the
/// lock held by that child for a moment, and a restart right then was refused. A record lock
/// belongs to this process alone and ends with it.
#[cfg(unix)]
fn try_lock_for_this_process(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` is plain data for which all zeroes is valid (l_start = l_len = 0: the whole
    // file); fcntl only reads it, and the descriptor is open for the call.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EAGAIN) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(unix))]
fn try_lock_for_this_process(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// How workloads are kept from Slipway's data.
enum Isolation {
    Off,
    /// Each service as its own uid (Slipway runs as root).
    Uids,
    /// Each build command and instance in a user namespace (bubblewrap; Slipway is not root).
    Namespace(slipway_engine::userns::Namespace),
}

/// Decides `--isolate-workloads`: per-service uids where Slipway runs as root and other users can
/// reach the data directory; else, when Slipway is not root, a user namespace where bubblewrap can
/// create one. `auto` warns naming why neither works, `on` refuses to start, `off` never isolates.
async fn isolation(settings: &Settings) -> anyhow::Result<Isolation> {
    if settings.isolate_workloads == Some(false) {
        tracing::warn!("workloads run as Slipway's own user (--isolate-workloads off)");
        return Ok(Isolation::Off);
    }
    let Some(why) = slipway_engine::local::isolation_blocker(&settings.data_dir) else {
        return Ok(Isolation::Uids);
    };
    let why = if slipway_engine::userns::running_as_root() {
        why
    } else {
        match slipway_engine::userns::probe().await {
            Ok(bwrap) => {
                let mut hide = vec![settings.data_dir.clone()];
                hide.extend(
                    settings
                        .config_file
                        .iter()
                        .filter_map(|f| std::path::absolute(f).ok()),
                );
                return Ok(Isolation::Namespace(slipway_engine::userns::Namespace {
                    bwrap,
                    hide,
                    limits: slipway_engine::local::Isolation::default(),
                }));
            }
            Err(e) => format!("{why}, and no user namespace is available: {e}"),
        }
    };
    if settings.isolate_workloads == Some(true) {
        bail!("--isolate-workloads on: {why}");
    }
    tracing::warn!(
        "workloads run as Slipway's own user, not isolated: {why} (see docs/security.md)"
    );
    Ok(Isolation::Off)
}

pub async fn up(mut settings: Settings) -> anyhow::Result<()> {
    if let Some(dir) = &settings.templates_dir {
        // Every template is rendered now: a broken override stops the start, not a registration.
        let set = slipway_golden_paths::TemplateSet::with_overrides(dir)
            .with_context(|| format!("the templates in {} do not render", dir.display()))?;
        slipway_golden_paths::install_templates(set);
        tracing::info!(dir = %dir.display(), "template overrides loaded");
    }
    let _lock = lock_data_dir(&settings.data_dir)?;
    settings.data_dir = std::fs::canonicalize(&settings.data_dir)?;
    if let Some(f) = &settings.config_file {
        tracing::info!(file = %f.display(), "configuration file loaded");
    }
    let store = slipway_store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                slipway_store::redact_url(&settings.database_url)
            )
        })?;
    tracing::info!(
        backend = store.backend(),
        "database ready (migrations applied)"
    );
    let repo_path = settings.data_dir.join("platform-repo");
    let repo = Arc::new(PlatformRepo::open(&repo_path).await.with_context(|| {
        format!(
            "cannot open the platform repository {}",
            repo_path.display()
        )
    })?);
    let report = reconcile::reconcile(store.as_ref(), &repo)
        .await
        .context("cannot reconcile the platform repository with the database")?;
    if report != reconcile::ReconcileReport::default() {
        tracing::warn!(?report, "platform repository repaired from the database");
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let crash_point = std::env::var("SLIPWAY_CRASH_POINT")
        .ok()
        .filter(|s| !s.is_empty());
    let mut engine_config =
        slipway_engine::EngineConfig::new(settings.data_dir.clone(), settings.proxy_listen);
    engine_config.keep_releases = settings.keep_releases;
    engine_config.resource_limits = settings.resource_limits;
    engine_config.default_resources = settings.default_resources;
    engine_config.max_per_deployment = settings.max_per_deployment;
    engine_config.allow_private_repo_hosts = settings.allow_private_repo_hosts;
    match isolation(&settings).await? {
        Isolation::Off => {}
        Isolation::Uids => {
            engine_config.isolation = Some(slipway_engine::local::Isolation::default());
            tracing::info!("workloads run as their own uid per service (isolated)");
        }
        Isolation::Namespace(ns) => {
            tracing::info!(
                bwrap = %ns.bwrap.display(),
                "workloads run in a user namespace each (bubblewrap; isolated): the data \
                 directory is hidden from them"
            );
            engine_config.namespace = Some(ns);
        }
    }
    engine_config.secrets_key = Some(load_secrets_key(&settings.data_dir)?);
    engine_config.sample_retention =
        std::time::Duration::from_secs(settings.metrics_retention_hours * 3600);
    let engine = slipway_engine::Engine::start(store.clone(), engine_config)
        .await
        .with_context(|| {
            format!(
                "cannot start the deployment engine (proxy on {})",
                settings.proxy_listen
            )
        })?;
    let mut state = AppState::with_engine(
        store,
        repo.clone(),
        crash_point,
        Some(engine.clone()),
        settings.allow_local_repos,
    );
    if settings.auth_required {
        let config = auth_config(&settings)?;
        state = state.require_auth(config);
        bootstrap_admin_token(&state, &settings.data_dir).await?;
    } else {
        tracing::warn!("authentication is off (--auth off): every caller is an administrator; keep Slipway on loopback");
        if !settings.listen.ip().is_loopback() {
            eprintln!(
                "WARNING: --auth off on {}: anyone who reaches this address administers Slipway",
                settings.listen
            );
        }
    }
    state = state.with_quotas(slipway_server::guard::Quotas {
        services_per_team: settings.max_services_per_team,
        concurrent_deployments_per_team: settings.max_concurrent_deployments_per_team,
        replicas_per_deployment: settings.max_replicas_per_deployment,
    });
    if settings.rate_limit > 0.0 {
        state = state.limit_rate(slipway_server::guard::RateLimit {
            per_second: settings.rate_limit,
            // A page load or a CLI script may send a burst; four seconds' worth, at least 20.
            burst: (settings.rate_limit * 4.0).max(20.0),
        });
    }
    if state.store.backend() == "postgres" {
        // Other replicas change the catalog too: bring this replica's projection up to date.
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REPLICA_RECONCILE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; start-up already reconciled
            loop {
                tick.tick().await;
                match reconcile::reconcile_now(&state).await {
                    Ok(report) if report != reconcile::ReconcileReport::default() => {
                        tracing::info!(
                            ?report,
                            "platform repository updated with other replicas' changes"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "periodic reconcile failed"),
                }
            }
        });
    }
    // Scaffold pushes a stopped process left unfinished (their pending record is written with the
    // registration): read before serving, so a registration made meanwhile pushes its own.
    let unfinished = state
        .store
        .pending_scaffold_pushes()
        .await
        .context("cannot read the scaffold pushes")?;
    if !unfinished.is_empty() {
        tracing::warn!(
            pushes = unfinished.len(),
            "scaffold pushes did not finish before Slipway stopped; pushing them in the background"
        );
        let state = state.clone();
        tokio::spawn(async move {
            slipway_server::catalog::resume_scaffold_pushes(&state, unfinished).await;
        });
    }
    let shutdown = shutdown_signal()?;
    eprintln!(
        "Slipway {} listening on http://{addr}  (API /api/v1, seed API /platform, docs /docs)\n  apps: http://<service>.<env>.localhost:{}/  data: {}  database: {}",
        env!("CARGO_PKG_VERSION"),
        engine.proxy_addr.port(),
        settings.data_dir.display(),
        slipway_store::redact_url(&settings.database_url),
    );
    slipway_server::serve(listener, state, shutdown).await?;
    tracing::info!("shutting down: stopping workers and apps (they resume at the next start)");
    engine.shutdown().await;
    tracing::info!("shutting down: flushing the platform repository");
    repo.flush().await?;
    eprintln!("Slipway stopped.");
    Ok(())
}

/// The secrets key: `SLIPWAY_SECRETS_KEY` (base64 of 32 bytes), else `<data-dir>/secrets.key`
/// (created with a new random key, mode 0600, at first start).
pub fn load_secrets_key(data_dir: &Path) -> anyhow::Result<slipway_engine::secrets::SecretKey> {
    use slipway_engine::secrets::SecretKey;
    if data_dir.join("secrets.key.new").exists() {
        bail!(
            "a secrets key rotation was interrupted ({} exists): run `slipway secrets rotate-key` again to finish it",
            data_dir.join("secrets.key.new").display()
        );
    }
    match std::env::var("SLIPWAY_SECRETS_KEY") {
        Ok(text) if !text.trim().is_empty() => {
            SecretKey::from_base64(&text).context("SLIPWAY_SECRETS_KEY is not usable")
        }
        _ => SecretKey::load_or_create(&data_dir.join("secrets.key"))
            .context("cannot load the secrets key"),
    }
}

fn auth_config(settings: &Settings) -> anyhow::Result<slipway_server::auth::AuthConfig> {
    use jsonwebtoken::{Algorithm, DecodingKey};
    let jwt = match &settings.jwt {
        None => None,
        Some(j) => {
            let bytes = std::fs::read(&j.key_file)
                .with_context(|| format!("cannot read {}", j.key_file.display()))?;
            let (key, algorithm) = match j.algorithm.as_str() {
                "HS256" => {
                    let secret = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
                    if secret.len() < 32 {
                        bail!(
                            "the JWT secret in {} must be at least 32 bytes",
                            j.key_file.display()
                        );
                    }
                    (DecodingKey::from_secret(&secret), Algorithm::HS256)
                }
                "ES256" => (DecodingKey::from_ec_pem(&bytes)?, Algorithm::ES256),
                _ => (DecodingKey::from_rsa_pem(&bytes)?, Algorithm::RS256),
            };
            Some(slipway_server::auth::JwtConfig {
                key,
                algorithm,
                issuer: j.issuer.clone(),
                audience: j.audience.clone(),
                groups_claim: j.groups_claim.clone(),
            })
        }
    };
    Ok(slipway_server::auth::AuthConfig {
        required: true,
        jwt,
    })
}

/// On the first start with authentication, an administrator and a token for it: the token goes to
/// `<data-dir>/admin-token` (mode 0600), where the CLI finds it, and is printed once.
async fn bootstrap_admin_token(state: &AppState, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("admin-token");
    if path.exists() {
        return Ok(());
    }
    let system = slipway_core::Actor {
        name: "slipway".into(),
        remote_addr: None,
    };
    match state
        .store
        .create_user(
            slipway_core::NewUser {
                name: "admin".into(),
                email: None,
                password_hash: None,
                admin: true,
            },
            &system,
        )
        .await
    {
        Ok(_) | Err(slipway_store::StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let (token, token_hash) = slipway_server::auth::new_token()
        .map_err(|e| anyhow::anyhow!("cannot make a token: {e:?}"))?;
    state
        .store
        .create_token(
            slipway_core::NewToken {
                id: uuid_like(),
                token_hash,
                name: "admin (created at first start)".into(),
                owner: slipway_core::TokenOwner::User {
                    user: "admin".into(),
                },
                expires_at: None,
            },
            &system,
        )
        .await?;
    slipway_engine::secrets::write_private(&path, &format!("{token}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "An administrator token was created and saved to {} (mode 0600); the CLI uses it from there.\n  admin token: {token}\n  (shown once; create more with `slipway token create`)",
        path.display()
    );
    Ok(())
}

fn uuid_like() -> String {
    use sha2::Digest;
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    format!("{:x}", sha2::Sha256::digest(seed.as_bytes()))[..32].to_string()
}

/// `slipway secrets rotate-key`: every secret is opened with the current key and sealed with the new
/// one in one transaction; the new key is written to `secrets.key.new` first and renamed over
/// `secrets.key` last, so a crash at any point leaves a state that a second run completes.
pub async fn rotate_secrets_key(
    mut settings: Settings,
    new_key_file: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use slipway_engine::secrets::{write_private, SecretKey};
    require_existing_data(&settings)?;
    let _lock = lock_data_dir(&settings.data_dir)?;
    settings.data_dir = std::fs::canonicalize(&settings.data_dir)?;
    let from_env = std::env::var("SLIPWAY_SECRETS_KEY")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let key_path = settings.data_dir.join("secrets.key");
    let pending = settings.data_dir.join("secrets.key.new");
    let old = match &from_env {
        Some(text) => SecretKey::from_base64(text).context("SLIPWAY_SECRETS_KEY is not usable")?,
        None => SecretKey::from_base64(
            &std::fs::read_to_string(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?,
        )?,
    };
    let new_text = match (&new_key_file, pending.exists()) {
        (Some(f), _) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .trim()
            .to_string(),
        (None, true) => std::fs::read_to_string(&pending)?.trim().to_string(),
        (None, false) => SecretKey::generate()?,
    };
    let new = SecretKey::from_base64(&new_text).context("the new key is not usable")?;
    if from_env.is_none() && !pending.exists() {
        write_private(&pending, &format!("{new_text}\n"))
            .with_context(|| format!("cannot write {}", pending.display()))?;
    }
    let store = slipway_store::connect(&settings.database_url).await?;
    let sealed = store.sealed_secrets(None).await?;
    let mut resealed = Vec::new();
    for s in &sealed {
        if s.key_id == new.id() {
            continue; // done by an interrupted run
        }
        let value = old.open(s)?;
        let mut next = new.seal(&s.service, &s.environment, &s.name, &value)?;
        next.version = s.version;
        resealed.push(next);
    }
    store.reseal_secrets(&resealed).await?;
    match from_env {
        None => {
            std::fs::rename(&pending, &key_path)
                .with_context(|| format!("cannot move {} into place", pending.display()))?;
            eprintln!(
                "{} secrets re-encrypted with key {} (was {}); {} holds the new key.",
                resealed.len(),
                new.id(),
                old.id(),
                key_path.display()
            );
        }
        Some(_) => {
            eprintln!(
                "{} secrets re-encrypted with key {} (was {}). Set SLIPWAY_SECRETS_KEY to the new key before the next start:\n{new_text}",
                resealed.len(),
                new.id(),
                old.id()
            );
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled, so a signal that arrives right after start-up is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("signal received, finishing in-flight requests");
    })
}

/// Offline commands work on an existing data directory: a mistyped --data-dir must not pass for a
/// real one (an empty database would, e.g., rebuild an empty repository).
fn require_existing_data(settings: &Settings) -> anyhow::Result<()> {
    let embedded = settings.data_dir.join("slipway.db");
    let uses_embedded = settings.database_url == format!("sqlite://{}", embedded.display());
    if !settings.data_dir.is_dir() || (uses_embedded && !embedded.exists()) {
        bail!(
            "no Slipway data in {}: check --data-dir (and --database-url)",
            settings.data_dir.display()
        );
    }
    Ok(())
}

/// `slipway platform-repo rebuild`: recreates the platform repository from the database as one commit.
pub async fn rebuild_platform_repo(mut settings: Settings) -> anyhow::Result<()> {
    require_existing_data(&settings)?;
    let _lock = lock_data_dir(&settings.data_dir)?;
    settings.data_dir = std::fs::canonicalize(&settings.data_dir)?;
    let store = slipway_store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                slipway_store::redact_url(&settings.database_url)
            )
        })?;
    let files: Vec<(String, Vec<u8>)> = store
        .all_platform_artifacts()
        .await?
        .into_iter()
        .map(|a| (a.path, a.content))
        .collect();
    let n = files.len();
    let repo_path = settings.data_dir.join("platform-repo");
    let repo = PlatformRepo::rebuild(
        &repo_path,
        files,
        "rebuild the platform repository from the database\n",
        chrono_now(),
    )
    .await?;
    repo.flush().await?;
    println!("rebuilt {} with {n} files", repo_path.display());
    Ok(())
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(all(test, unix))]
mod tests {
    use super::lock_data_dir;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Duration;

    const TEST: &str = "up::tests::a_child_between_fork_and_exec_does_not_hold_the_lock";

    /// Whether another process takes the lock of `dir`: this test binary run again on the test
    /// below, which then only takes the lock (`SLIPWAY_TEST_LOCK_DIR`) and reports.
    fn lock_from_another_process(dir: &std::path::Path) -> bool {
        Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", TEST, "--quiet"])
            .env("SLIPWAY_TEST_LOCK_DIR", dir)
            .output()
            .expect("the test binary runs")
            .status
            .success()
    }

    /// A child Slipway forked (to start a build or an app) holds none of its lock while it has
    /// not exec'd yet: once the lock's holder lets go — as a killed Slipway does — another process
    /// gets it at once. (With `flock` the child shared the lock until its `exec`.)
    #[test]
    fn a_child_between_fork_and_exec_does_not_hold_the_lock() {
        if let Ok(dir) = std::env::var("SLIPWAY_TEST_LOCK_DIR") {
            // Run by `lock_from_another_process`: only take the lock.
            lock_data_dir(std::path::Path::new(&dir)).expect("the data directory is free");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = lock_data_dir(dir.path()).expect("lock");
        assert!(
            !lock_from_another_process(dir.path()),
            "a second process is refused while the lock is held"
        );
        let child = std::thread::spawn(|| {
            let mut cmd = Command::new("true");
            // SAFETY: only sleeps (nanosleep) between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    std::thread::sleep(Duration::from_secs(3));
                    Ok(())
                });
            }
            cmd.status().expect("true runs")
        });
        // The child is now between fork and exec, for three seconds.
        std::thread::sleep(Duration::from_millis(500));
        drop(lock);
        assert!(
            lock_from_another_process(dir.path()),
            "the lock is free although a forked child has not exec'd yet"
        );
        assert!(child.join().expect("thread").success());
    }
}
