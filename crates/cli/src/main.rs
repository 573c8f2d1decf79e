//! `slipway`: runs the platform (`up`) and talks to it over HTTP (everything else).

mod client;
mod config;
mod output;
mod up;

use clap::{Parser, Subcommand, ValueEnum};
use client::{enc, exit, CliError, Client};
use config::ServerArgs;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "slipway",
    version,
    about = "Slipway: a self-hosted internal developer platform in one binary"
)]
struct Cli {
    /// Slipway server to talk to
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_URL",
        default_value = "http://127.0.0.1:7700"
    )]
    server: String,
    /// Output format
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run Slipway: API, portal and workers, with an embedded SQLite database by default
    Up {
        /// Address to listen on [default: 127.0.0.1:7700]
        #[arg(long, env = "SLIPWAY_LISTEN", value_name = "ADDR:PORT")]
        listen: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        engine: config::EngineArgs,
    },
    /// Register, list, show and delete services
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Deploy a service (records a deployment; see `slipway deployment show`)
    Deploy {
        service: String,
        /// Target environment
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        /// Branch, tag or commit (default: the repository's default branch)
        #[arg(long = "ref")]
        git_ref: Option<String>,
    },
    /// Inspect deployments
    #[command(subcommand)]
    Deployment(DeploymentCmd),
    /// Maintain the platform repository (offline: stop `slipway up` first)
    #[command(subcommand, name = "platform-repo")]
    PlatformRepo(PlatformRepoCmd),
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Register a service and generate its golden-path artifacts
    Create {
        name: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        repo_url: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List services
    List {
        #[arg(long)]
        team: Option<String>,
        /// Substring of the name
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Show a service with its artifacts and latest deployment
    Show { name: String },
    /// Delete a service, its artifacts and its deployment records
    Delete { name: String },
}

#[derive(Subcommand)]
enum DeploymentCmd {
    /// Show one deployment
    Show { id: String },
    /// List deployments, newest first
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long = "env")]
        environment: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum PlatformRepoCmd {
    /// Recreate <data-dir>/platform-repo from the database as a single commit
    Rebuild {
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::ERROR
        }
    };
    std::process::exit(code);
}

fn init_logging(default: Option<&str>) {
    let filter = std::env::var("SLIPWAY_LOG")
        .ok()
        .or_else(|| default.map(str::to_string))
        .unwrap_or_else(|| "info,sqlx=warn,tower_http=warn".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Up {
            listen,
            server,
            engine,
        } => match config::resolve(&server, listen.as_deref(), &engine) {
            Ok(settings) => {
                init_logging(settings.log.as_deref());
                up::up(settings).await.map_err(local_error)
            }
            Err(e) => Err(usage_error(e)),
        },
        Command::PlatformRepo(PlatformRepoCmd::Rebuild { server }) => {
            match config::resolve(&server, None, &config::EngineArgs::default()) {
                Ok(settings) => {
                    init_logging(Some("warn"));
                    up::rebuild_platform_repo(settings)
                        .await
                        .map_err(local_error)
                }
                Err(e) => Err(usage_error(e)),
            }
        }
        command => match Client::new(&cli.server) {
            Ok(client) => remote(&client, cli.output, command).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}

fn local_error(e: anyhow::Error) -> CliError {
    CliError {
        code: exit::ERROR,
        message: format!("{e:#}"),
    }
}

fn usage_error(e: anyhow::Error) -> CliError {
    CliError {
        code: exit::USAGE,
        message: format!("{e:#}"),
    }
}

/// Checks a name before it becomes part of a URL path (`..` would change the route).
fn label(field: &str, value: &str) -> Result<(), CliError> {
    slipway_core::validate::dns_label(field, value).map_err(|e| CliError {
        code: exit::INVALID,
        message: format!("{}: {}", e.field, e.message),
    })
}

/// Deployment ids are UUIDs.
fn deployment_id(value: &str) -> Result<(), CliError> {
    if !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        Ok(())
    } else {
        Err(CliError {
            code: exit::INVALID,
            message: format!("{value:?} is not a deployment id (a UUID such as 0192c7e4-…)"),
        })
    }
}

async fn remote(client: &Client, format: Format, command: Command) -> Result<(), CliError> {
    match command {
        Command::Service(ServiceCmd::Create {
            name,
            team,
            repo_url,
            description,
        }) => {
            let mut body = json!({ "name": name, "team": team, "repo_url": repo_url });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v: Value = client.post("/api/v1/services", &body).await?;
            output::service_detail(format, &v);
        }
        Command::Service(ServiceCmd::List {
            team,
            search,
            limit,
            offset,
        }) => {
            let mut q = format!("?limit={limit}&offset={offset}");
            if let Some(t) = team {
                q.push_str(&format!("&team={}", enc(&t)));
            }
            if let Some(s) = search {
                q.push_str(&format!("&search={}", enc(&s)));
            }
            let v: Value = client.get(&format!("/api/v1/services{q}")).await?;
            output::service_list(format, &v);
        }
        Command::Service(ServiceCmd::Show { name }) => {
            label("name", &name)?;
            let v: Value = client
                .get(&format!("/api/v1/services/{}", enc(&name)))
                .await?;
            output::service_detail(format, &v);
        }
        Command::Service(ServiceCmd::Delete { name }) => {
            label("name", &name)?;
            client
                .delete(&format!("/api/v1/services/{}", enc(&name)))
                .await?;
            output::message(
                format,
                &json!({ "deleted": name }),
                &format!("deleted service {name}"),
            );
        }
        Command::Deploy {
            service,
            environment,
            git_ref,
        } => {
            let mut body = json!({ "service": service, "environment": environment });
            if let Some(r) = git_ref {
                body["ref"] = json!(r);
            }
            let v: Value = client.post("/api/v1/deployments", &body).await?;
            output::deployment(format, &v);
        }
        Command::Deployment(DeploymentCmd::Show { id }) => {
            deployment_id(&id)?;
            let v: Value = client
                .get(&format!("/api/v1/deployments/{}", enc(&id)))
                .await?;
            output::deployment(format, &v);
        }
        Command::Deployment(DeploymentCmd::List {
            service,
            environment,
            status,
            limit,
        }) => {
            let mut q = format!("?limit={limit}");
            for (k, v) in [
                ("service", service),
                ("environment", environment),
                ("status", status),
            ] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={}", enc(&v)));
                }
            }
            let v: Value = client.get(&format!("/api/v1/deployments{q}")).await?;
            output::deployment_list(format, &v);
        }
        Command::Up { .. } | Command::PlatformRepo(_) => unreachable!("handled locally"),
    }
    Ok(())
}
