//! Settings for `slipway up` and the offline commands, layered: defaults < `slipway.toml` < environment
//! < flags. Flags and environment come through clap (`#[arg(env = …)]`), so a value clap has came from
//! one of those two and wins over the file.

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:7780";
pub const DEFAULT_DATA_DIR: &str = ".slipway";
pub const CONFIG_FILE: &str = "slipway.toml";

/// Where Slipway keeps its state; shared by `up` and the offline maintenance commands.
#[derive(Debug, Clone, Args, Default)]
pub struct ServerArgs {
    /// Directory for the embedded database and the platform repository [default: ./.slipway]
    #[arg(long, env = "SLIPWAY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of the embedded SQLite database
    #[arg(
        long,
        env = "SLIPWAY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Configuration file [default: ./slipway.toml when it exists]
    #[arg(long, env = "SLIPWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Settings of the deployment engine that `up` runs.
#[derive(Debug, Clone, Args, Default)]
pub struct EngineArgs {
    /// Address of the reverse proxy that serves deployed apps as <service>.<env>.localhost [default: 127.0.0.1:7780]
    #[arg(long, env = "SLIPWAY_PROXY_LISTEN", value_name = "ADDR:PORT")]
    pub proxy_listen: Option<String>,
    /// Accept local paths and file:// URLs as repositories (single-user installs and tests)
    #[arg(long, env = "SLIPWAY_ALLOW_LOCAL_REPOS")]
    pub allow_local_repos: bool,
    /// Run each service's builds and processes as its own unprivileged uid, with process and file limits: `auto` does when Slipway runs as root, `on` requires root, `off` runs them as Slipway's user [default: auto]
    #[arg(
        long,
        env = "SLIPWAY_ISOLATE_WORKLOADS",
        value_name = "auto|on|off",
        num_args = 0..=1,
        default_missing_value = "on"
    )]
    pub isolate_workloads: Option<String>,
    /// Allow repository hosts on loopback, private or link-local addresses (refused by default)
    #[arg(long, env = "SLIPWAY_ALLOW_PRIVATE_REPO_HOSTS")]
    pub allow_private_repo_hosts: bool,
    /// Releases kept on disk per service and environment, besides the serving one and its rollback target [default: 5]
    #[arg(long, env = "SLIPWAY_KEEP_RELEASES", value_name = "N")]
    pub keep_releases: Option<usize>,
    /// Requests per second allowed per client address before 429 (0 turns rate limiting off) [default: 50]
    #[arg(long, env = "SLIPWAY_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<f64>,
    /// `required`: every route but /health, /ready, /metrics and the docs needs a token (the CLI uses <data-dir>/admin-token); `off`: every caller is an administrator [default: required]
    #[arg(long, env = "SLIPWAY_AUTH", value_name = "required|off")]
    pub auth: Option<String>,
    /// HS256 secret for JWT bearer tokens (a file holding it)
    #[arg(long, env = "SLIPWAY_JWT_SECRET_FILE", value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// RS256 or ES256 public key (PEM file) for JWT bearer tokens
    #[arg(long, env = "SLIPWAY_JWT_PUBLIC_KEY_FILE", value_name = "FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Issuer JWTs must carry (`iss`)
    #[arg(long, env = "SLIPWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Audience JWTs must carry (`aud`)
    #[arg(long, env = "SLIPWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Claim holding `team:role` strings [default: groups]
    #[arg(long, env = "SLIPWAY_JWT_GROUPS_CLAIM")]
    pub jwt_groups_claim: Option<String>,
    /// A directory of template overrides, laid out like crates/golden-paths/templates/ (checked at start: an error names the file and line)
    #[arg(long, env = "SLIPWAY_TEMPLATES_DIR", value_name = "DIR")]
    pub templates_dir: Option<PathBuf>,
    /// Services a team may have (0: unlimited) [default: 0]
    #[arg(long, env = "SLIPWAY_MAX_SERVICES_PER_TEAM", value_name = "N")]
    pub max_services_per_team: Option<u64>,
    /// Deployments in progress a team may have at once (0: unlimited) [default: 0]
    #[arg(
        long,
        env = "SLIPWAY_MAX_CONCURRENT_DEPLOYMENTS_PER_TEAM",
        value_name = "N"
    )]
    pub max_concurrent_deployments_per_team: Option<u64>,
    /// Instances one deployment may ask for [default: 16]
    #[arg(long, env = "SLIPWAY_MAX_REPLICAS_PER_DEPLOYMENT", value_name = "N")]
    pub max_replicas_per_deployment: Option<u32>,
    /// How long sampled runtime figures are kept, in hours [default: 24]
    #[arg(long, env = "SLIPWAY_METRICS_RETENTION_HOURS", value_name = "HOURS")]
    pub metrics_retention_hours: Option<u64>,
    /// `on`: limit each instance's memory and CPU with control groups where the host allows it; `off`: never [default: on]
    #[arg(long, env = "SLIPWAY_RESOURCE_LIMITS", value_name = "on|off")]
    pub resource_limits: Option<String>,
    /// Memory per instance when neither the deployment nor the repository says (e.g. 512Mi) [default: 512Mi]
    #[arg(long, env = "SLIPWAY_DEFAULT_MEMORY", value_name = "QUANTITY")]
    pub default_memory: Option<String>,
    /// CPU per instance when neither the deployment nor the repository says (e.g. 500m, 1) [default: 1]
    #[arg(long, env = "SLIPWAY_DEFAULT_CPU", value_name = "QUANTITY")]
    pub default_cpu: Option<String>,
    /// Memory one deployment may use in all, replicas × per instance (0: unlimited) [default: 8Gi]
    #[arg(
        long,
        env = "SLIPWAY_MAX_MEMORY_PER_DEPLOYMENT",
        value_name = "QUANTITY"
    )]
    pub max_memory_per_deployment: Option<String>,
    /// CPU one deployment may use in all, replicas × per instance (0: unlimited) [default: 4]
    #[arg(long, env = "SLIPWAY_MAX_CPU_PER_DEPLOYMENT", value_name = "QUANTITY")]
    pub max_cpu_per_deployment: Option<String>,
}

/// `slipway.toml`. Every key is optional; unknown keys are an error so typos don't pass silently.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub proxy_listen: Option<String>,
    pub allow_local_repos: Option<bool>,
    pub allow_private_repo_hosts: Option<bool>,
    pub isolate_workloads: Option<bool>,
    pub templates_dir: Option<PathBuf>,
    pub max_services_per_team: Option<u64>,
    pub max_concurrent_deployments_per_team: Option<u64>,
    pub max_replicas_per_deployment: Option<u32>,
    pub keep_releases: Option<usize>,
    pub metrics_retention_hours: Option<u64>,
    pub resource_limits: Option<String>,
    pub default_memory: Option<String>,
    pub default_cpu: Option<String>,
    pub max_memory_per_deployment: Option<String>,
    pub max_cpu_per_deployment: Option<String>,
    pub rate_limit: Option<f64>,
    pub auth: Option<String>,
    pub jwt_secret_file: Option<PathBuf>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_groups_claim: Option<String>,
    /// Log filter, e.g. `info` or `slipway=debug,info` (overridden by `SLIPWAY_LOG`).
    pub log: Option<String>,
}

/// Where JWT keys come from.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    /// (file, algorithm): `HS256` for a secret, `RS256`/`ES256` for a PEM public key.
    pub key_file: PathBuf,
    pub algorithm: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub groups_claim: String,
}

/// The settings in force after layering.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub proxy_listen: SocketAddr,
    pub allow_local_repos: bool,
    pub allow_private_repo_hosts: bool,
    /// `None`: auto (isolated when Slipway runs as root and other users can reach its data).
    pub isolate_workloads: Option<bool>,
    pub templates_dir: Option<PathBuf>,
    pub max_services_per_team: Option<u64>,
    pub max_concurrent_deployments_per_team: Option<u64>,
    pub max_replicas_per_deployment: u32,
    pub keep_releases: usize,
    pub metrics_retention_hours: u64,
    pub resource_limits: bool,
    /// Per instance, when neither the deployment nor the repository says.
    pub default_resources: slipway_core::Resources,
    /// Per deployment in all; `None` values: unlimited.
    pub max_per_deployment: slipway_core::Resources,
    /// Requests per second per client address; 0 is off.
    pub rate_limit: f64,
    pub auth_required: bool,
    pub jwt: Option<JwtSettings>,
    pub log: Option<String>,
    /// Which file, if any, contributed.
    pub config_file: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<(FileConfig, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(CONFIG_FILE);
                if !p.exists() {
                    return Ok((FileConfig::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        let cfg: FileConfig = toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))?;
        Ok((cfg, Some(path)))
    }
}

/// Layers flags/env (`args`, `listen`) over the file over the defaults.
pub fn resolve(
    args: &ServerArgs,
    listen: Option<&str>,
    engine: &EngineArgs,
) -> anyhow::Result<Settings> {
    let (file, config_file) = FileConfig::load(args.config.as_deref())?;
    let listen_text = listen
        .map(str::to_string)
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("--listen {listen_text:?} is not an address:port such as 127.0.0.1:7700")
    })?;
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if data_dir.as_os_str().is_empty() {
        bail!("the data directory must not be empty");
    }
    let database_url = match args.database_url.clone().or(file.database_url) {
        Some(url) => url,
        None => sqlite_url(&data_dir.join("slipway.db")),
    };
    let proxy_text = engine
        .proxy_listen
        .clone()
        .or(file.proxy_listen)
        .unwrap_or_else(|| DEFAULT_PROXY_LISTEN.to_string());
    let proxy_listen: SocketAddr = proxy_text.parse().with_context(|| {
        format!("--proxy-listen {proxy_text:?} is not an address:port such as 127.0.0.1:7780")
    })?;
    let auth_required = match engine.auth.clone().or(file.auth.clone()).as_deref() {
        Some("required") | None => true,
        Some("off") => false,
        Some(other) => bail!("--auth {other:?}: use required or off"),
    };
    let secret = engine
        .jwt_secret_file
        .clone()
        .or(file.jwt_secret_file.clone());
    let public = engine
        .jwt_public_key_file
        .clone()
        .or(file.jwt_public_key_file.clone());
    let jwt = match (secret, public) {
        (Some(_), Some(_)) => bail!("give a JWT secret file or a public key file, not both"),
        (Some(f), None) => Some((f, "HS256".to_string())),
        (None, Some(f)) => {
            let pem = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read the JWT public key {}", f.display()))?;
            // An EC key is ES256; anything else PEM is taken as RSA (RS256).
            let alg = if pem.contains("EC PUBLIC KEY") || looks_like_ec(&pem) {
                "ES256"
            } else {
                "RS256"
            };
            Some((f, alg.to_string()))
        }
        (None, None) => None,
    }
    .map(|(key_file, algorithm)| JwtSettings {
        key_file,
        algorithm,
        issuer: engine.jwt_issuer.clone().or(file.jwt_issuer.clone()),
        audience: engine.jwt_audience.clone().or(file.jwt_audience.clone()),
        groups_claim: engine
            .jwt_groups_claim
            .clone()
            .or(file.jwt_groups_claim.clone())
            .unwrap_or_else(|| "groups".into()),
    });
    Ok(Settings {
        auth_required,
        jwt,
        listen,
        data_dir,
        database_url,
        proxy_listen,
        allow_local_repos: engine.allow_local_repos || file.allow_local_repos.unwrap_or(false),
        allow_private_repo_hosts: engine.allow_private_repo_hosts
            || file.allow_private_repo_hosts.unwrap_or(false),
        isolate_workloads: match engine
            .isolate_workloads
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(v) if matches!(v.as_str(), "on" | "true" | "1") => Some(true),
            Some(v) if matches!(v.as_str(), "off" | "false" | "0") => Some(false),
            Some(v) if v == "auto" => None,
            Some(v) => bail!("isolate_workloads must be auto, on or off, not {v:?}"),
            None => file.isolate_workloads,
        },
        templates_dir: engine.templates_dir.clone().or(file.templates_dir.clone()),
        max_services_per_team: engine
            .max_services_per_team
            .or(file.max_services_per_team)
            .filter(|n| *n > 0),
        max_concurrent_deployments_per_team: engine
            .max_concurrent_deployments_per_team
            .or(file.max_concurrent_deployments_per_team)
            .filter(|n| *n > 0),
        max_replicas_per_deployment: match engine
            .max_replicas_per_deployment
            .or(file.max_replicas_per_deployment)
            .unwrap_or(16)
        {
            0 => bail!("max_replicas_per_deployment must be at least 1"),
            n => n,
        },
        keep_releases: engine.keep_releases.or(file.keep_releases).unwrap_or(5),
        rate_limit: match engine.rate_limit.or(file.rate_limit).unwrap_or(50.0) {
            r if r.is_finite() && r >= 0.0 => r,
            r => bail!("rate_limit {r} must be a number of requests per second, 0 or more"),
        },
        metrics_retention_hours: match engine
            .metrics_retention_hours
            .or(file.metrics_retention_hours)
            .unwrap_or(24)
        {
            0 => bail!("metrics_retention_hours must be at least 1"),
            h => h,
        },
        resource_limits: match engine
            .resource_limits
            .as_deref()
            .or(file.resource_limits.as_deref())
            .unwrap_or("on")
        {
            "on" => true,
            "off" => false,
            other => bail!("resource_limits must be on or off, not {other:?}"),
        },
        default_resources: slipway_core::Resources {
            memory_mb: Some(quantity(
                "default_memory",
                engine
                    .default_memory
                    .as_deref()
                    .or(file.default_memory.as_deref()),
                "512Mi",
                slipway_core::validate::memory_quantity,
            )?)
            .filter(|m| *m > 0),
            cpu_millis: Some(quantity(
                "default_cpu",
                engine
                    .default_cpu
                    .as_deref()
                    .or(file.default_cpu.as_deref()),
                "1",
                slipway_core::validate::cpu_quantity,
            )?)
            .filter(|c| *c > 0),
        },
        max_per_deployment: slipway_core::Resources {
            memory_mb: Some(quantity(
                "max_memory_per_deployment",
                engine
                    .max_memory_per_deployment
                    .as_deref()
                    .or(file.max_memory_per_deployment.as_deref()),
                "8Gi",
                slipway_core::validate::memory_quantity,
            )?)
            .filter(|m| *m > 0),
            cpu_millis: Some(quantity(
                "max_cpu_per_deployment",
                engine
                    .max_cpu_per_deployment
                    .as_deref()
                    .or(file.max_cpu_per_deployment.as_deref()),
                "4",
                slipway_core::validate::cpu_quantity,
            )?)
            .filter(|c| *c > 0),
        },
        log: file.log,
        config_file,
    })
}

/// A quantity setting (`512Mi`, `500m`, …) parsed with `parse`, or `default`.
fn quantity(
    key: &str,
    value: Option<&str>,
    default: &str,
    parse: fn(&str, &str) -> Result<u32, slipway_core::FieldError>,
) -> anyhow::Result<u32> {
    parse(key, value.unwrap_or(default)).map_err(|e| anyhow::anyhow!("{key}: {}", e.message))
}

/// A PEM `PUBLIC KEY` holding an EC key: its DER carries the id-ecPublicKey OID.
fn looks_like_ec(pem: &str) -> bool {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map(|der| {
            der.windows(7)
                .any(|w| w == [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])
        })
        .unwrap_or(false)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layering_defaults_file_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("s.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\n",
        )
        .unwrap();

        let none = ServerArgs::default();
        // No file in the cwd of the test runner is assumed; pass one explicitly.
        let s = resolve(
            &ServerArgs {
                config: Some(cfg.clone()),
                ..none.clone()
            },
            None,
            &EngineArgs::default(),
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(s.database_url, "sqlite:///tmp/from-file/slipway.db");

        let s = resolve(
            &ServerArgs {
                config: Some(cfg.clone()),
                data_dir: Some("/tmp/from-flag".into()),
                database_url: Some("postgres://x@h/db".into()),
            },
            Some("127.0.0.1:9100"),
            &EngineArgs::default(),
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(s.data_dir, PathBuf::from("/tmp/from-flag"));
        assert_eq!(s.database_url, "postgres://x@h/db");
    }

    #[test]
    fn bad_file_and_listen_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("s.toml");
        std::fs::write(&cfg, "lisen = \"x\"\n").unwrap();
        let err = resolve(
            &ServerArgs {
                config: Some(cfg),
                ..Default::default()
            },
            None,
            &EngineArgs::default(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err =
            resolve(&ServerArgs::default(), Some("nope"), &EngineArgs::default()).unwrap_err();
        assert!(err.to_string().contains("--listen"));
    }
}
