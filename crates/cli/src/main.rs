//! `slipway`: runs the platform (`up`) and talks to it over HTTP (everything else).

/// `println!` for a command's results: a reader that went away ends the command quietly (see
/// [`output::write_stdout`]).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for a command's results, like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

mod analyze;
mod catalog;
mod client;
mod config;
mod follow;
mod identity;
mod output;
mod secrets;
mod sse;
mod templates;
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
        engine: Box<config::EngineArgs>,
    },
    /// Register, list, show and delete services
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Deploy a service: build and run it (`--follow` streams the log until it serves or fails)
    Deploy {
        /// A registered service (or the name for a one-off app with --repo-url)
        #[arg(required_unless_present = "repo_url")]
        service: Option<String>,
        /// Deploy a repository as a one-off app: registered (team `adhoc`) if it does not exist
        #[arg(long, value_name = "URL")]
        repo_url: Option<String>,
        /// Name of the one-off app [default: the repository's name]
        #[arg(
            long = "service",
            value_name = "NAME",
            requires = "repo_url",
            conflicts_with = "service"
        )]
        service_name: Option<String>,
        /// Team of a one-off app registered by this deployment
        #[arg(long, requires = "repo_url")]
        team: Option<String>,
        /// Target environment
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        /// Branch, tag or commit (default: the repository's default branch)
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// Instances to run [server default: 1]
        #[arg(long)]
        replicas: Option<u32>,
        /// Memory per instance, e.g. 256Mi or 1Gi [default: the repository's, else the server's]
        #[arg(long, value_name = "QUANTITY")]
        memory: Option<String>,
        /// CPU per instance, e.g. 500m or 2 [default: the repository's, else the server's]
        #[arg(long, value_name = "QUANTITY")]
        cpu: Option<String>,
        /// Stream the deployment's log until it ends; exit 0 only when it serves
        #[arg(long, short)]
        follow: bool,
    },
    /// Roll a deployment back to the release that served before it
    Rollback {
        id: String,
        /// Stream the rollback's log until it ends; exit 0 only when it serves
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a deployment that has not ended (what served keeps serving)
    Cancel { id: String },
    /// Stop what a deployment runs and remove its route; the record stays as DESTROYED
    Destroy { id: String },
    /// A running service's own output (stdout and stderr of every instance)
    Logs {
        service: String,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        /// How many of the latest lines to show first
        #[arg(long, default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines until interrupted
        #[arg(long, short)]
        follow: bool,
    },
    /// A service's environment variables (the next deployment uses them)
    #[command(subcommand)]
    Env(EnvCmd),
    /// Plan how to build and run a directory or repository, with the evidence (no server needed)
    Analyze {
        /// A directory, or a repository URL (https://, ssh://, git@host:path, file://)
        source: String,
        /// Plan this sub-directory of a monorepo
        #[arg(long, value_name = "DIR")]
        app_dir: Option<String>,
        /// Branch, tag or commit to fetch (URLs only)
        #[arg(long = "ref")]
        git_ref: Option<String>,
    },
    /// Inspect deployments
    #[command(subcommand)]
    Deployment(DeploymentCmd),
    /// Golden-path templates: list, show, render a preview
    #[command(subcommand)]
    Templates(templates::TemplatesCmd),
    /// Backstage catalog: export every service's entities, register services from entity files
    #[command(subcommand)]
    Catalog(catalog::CatalogCmd),
    /// Users (admins)
    #[command(subcommand)]
    User(identity::UserCmd),
    /// Team membership
    #[command(subcommand)]
    Team(identity::TeamCmd),
    /// API tokens
    #[command(subcommand)]
    Token(identity::TokenCmd),
    /// Who the server takes you for
    Whoami,
    /// Maintain the platform repository (offline: stop `slipway up` first)
    #[command(subcommand, name = "platform-repo")]
    PlatformRepo(PlatformRepoCmd),
    /// A service's secrets (write-only values; `rotate-key` is offline maintenance)
    #[command(subcommand)]
    Secrets(SecretsCmd),
}

#[derive(Subcommand)]
enum SecretsCmd {
    /// Set a secret (a new version) from standard input or --from-file; the next deployment uses
    /// it. SLIPWAY_GIT_TOKEN, SLIPWAY_GIT_USERNAME, SLIPWAY_GIT_SSH_KEY and SLIPWAY_GIT_KNOWN_HOSTS
    /// are the repository's credentials, used only to fetch it
    Set {
        service: String,
        name: String,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        /// Read the value from this file instead of standard input
        #[arg(long, value_name = "FILE")]
        from_file: Option<std::path::PathBuf>,
    },
    /// List a service's secrets: names and versions, values masked
    List {
        service: String,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
    /// Remove a secret
    Unset {
        service: String,
        name: String,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
    /// Re-encrypt every secret with a new key (generated, or read from --new-key-file), then make it
    /// the key; an interrupted rotation finishes when run again
    RotateKey {
        #[command(flatten)]
        server: ServerArgs,
        /// A file holding the new key (base64 of 32 bytes) instead of a generated one
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Register a service and generate its golden-path artifacts
    Create {
        name: String,
        #[arg(long)]
        team: String,
        /// The service's repository; with --scaffold, the (empty) remote the new repository is pushed to
        #[arg(long, required_unless_present = "scaffold")]
        repo_url: Option<String>,
        /// Golden-path template (`slipway templates list`); `default` when omitted
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Let Slipway create the repository: the template's starter app (python-api, node-api, go-api, rust-api)
        #[arg(long)]
        scaffold: bool,
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
    /// Push a scaffolded service's repository to its repo_url again (after a failed push)
    PushScaffold { name: String },
}

#[derive(Subcommand)]
enum EnvCmd {
    /// Set variables (others are kept)
    Set {
        service: String,
        /// NAME=value pairs
        #[arg(required = true, value_name = "NAME=VALUE")]
        pairs: Vec<String>,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
    /// Remove variables
    Unset {
        service: String,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
    /// List variables and their values
    List {
        service: String,
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
}

#[derive(Subcommand)]
enum DeploymentCmd {
    /// Show one deployment
    Show { id: String },
    /// A deployment's log (fetch, build, start, health checks)
    Logs {
        id: String,
        /// Keep printing until the deployment ends
        #[arg(long, short)]
        follow: bool,
    },
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
        Command::Secrets(SecretsCmd::RotateKey {
            server,
            new_key_file,
        }) => match config::resolve(&server, None, &config::EngineArgs::default()) {
            Ok(settings) => {
                init_logging(Some("warn"));
                up::rotate_secrets_key(settings, new_key_file)
                    .await
                    .map_err(local_error)
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
        Command::Analyze {
            source,
            app_dir,
            git_ref,
        } => analyze::analyze(cli.output, &source, app_dir, git_ref).await,
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

/// A scaffold whose push failed: registered (or retried), but the command did not do all it was
/// asked; the message says how to retry.
fn scaffold_push_failed(push: &Value) -> Result<(), CliError> {
    if push["status"] != "failed" {
        return Ok(());
    }
    Err(CliError {
        code: exit::ERROR,
        message: format!(
            "the scaffold was not pushed to {}: {}\nretry with: slipway service push-scaffold {}",
            push["remote"].as_str().unwrap_or("its remote"),
            push["error"].as_str().unwrap_or("unknown error"),
            push["service"].as_str().unwrap_or("<name>")
        ),
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
            code: exit::USAGE,
            message: format!("{value:?} is not a deployment id (a UUID such as 0192c7e4-…)"),
        })
    }
}

async fn remote(client: &Client, format: Format, command: Command) -> Result<(), CliError> {
    match command {
        Command::Templates(cmd) => templates::run(client, format, cmd).await?,
        Command::Catalog(cmd) => catalog::run(client, format, cmd).await?,
        Command::User(cmd) => identity::user(client, format, cmd).await?,
        Command::Team(cmd) => identity::team(client, cmd).await?,
        Command::Token(cmd) => identity::token(client, format, cmd).await?,
        Command::Whoami => identity::whoami(client, format).await?,
        Command::Service(ServiceCmd::Create {
            name,
            team,
            repo_url,
            template,
            description,
            scaffold,
        }) => {
            let mut body = json!({ "name": name, "team": team });
            if let Some(url) = repo_url {
                body["repo_url"] = json!(url);
            }
            if scaffold {
                body["scaffold"] = json!(true);
            }
            if let Some(t) = template {
                body["template"] = json!(t);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v: Value = client.post("/api/v1/services", &body).await?;
            output::service_detail(format, &v);
            scaffold_push_failed(&v["scaffold"])?;
        }
        Command::Service(ServiceCmd::PushScaffold { name }) => {
            label("name", &name)?;
            let v: Value = client
                .post(
                    &format!("/api/v1/services/{}/scaffold/push", enc(&name)),
                    &json!(null),
                )
                .await?;
            output::scaffold_push(format, &v);
            scaffold_push_failed(&v)?;
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
            repo_url,
            service_name,
            team,
            environment,
            git_ref,
            replicas,
            memory,
            cpu,
            follow,
        } => {
            let service = service.or(service_name);
            let usage = |e: slipway_core::FieldError| CliError {
                code: exit::USAGE,
                message: format!("--{} {}", e.field, e.message),
            };
            let resources = slipway_core::Resources {
                memory_mb: memory
                    .map(|m| slipway_core::validate::memory_quantity("memory", &m))
                    .transpose()
                    .map_err(usage)?,
                cpu_millis: cpu
                    .map(|c| slipway_core::validate::cpu_quantity("cpu", &c))
                    .transpose()
                    .map_err(usage)?,
            };
            if let (Some(s), None) = (&service, &repo_url) {
                label("service", s)?;
            }
            let mut body = json!({ "environment": environment });
            for (key, value) in [
                ("service", service),
                ("repo_url", repo_url),
                ("team", team),
                ("ref", git_ref),
            ] {
                if let Some(v) = value {
                    body[key] = json!(v);
                }
            }
            if let Some(n) = replicas {
                body["replicas"] = json!(n);
            }
            if !resources.is_empty() {
                body["resources"] = json!(resources);
            }
            let v: Value = client.post("/api/v1/deployments", &body).await?;
            started(client, format, &v, follow).await?;
        }
        Command::Rollback { id, follow } => {
            deployment_id(&id)?;
            let v: Value = client
                .post(
                    &format!("/api/v1/deployments/{}/rollback", enc(&id)),
                    &json!({}),
                )
                .await?;
            started(client, format, &v, follow).await?;
        }
        Command::Cancel { id } => {
            deployment_id(&id)?;
            let v: Value = client
                .post(
                    &format!("/api/v1/deployments/{}/cancel", enc(&id)),
                    &json!({}),
                )
                .await?;
            output::deployment(format, &v);
        }
        Command::Destroy { id } => {
            deployment_id(&id)?;
            let v: Value = client
                .delete_json(&format!("/api/v1/deployments/{}", enc(&id)))
                .await?;
            output::deployment(format, &v);
        }
        Command::Logs {
            service,
            environment,
            lines,
            follow,
        } => {
            label("service", &service)?;
            label("environment", &environment)?;
            let path = format!(
                "/api/v1/services/{}/logs?environment={}&lines={lines}",
                enc(&service),
                enc(&environment)
            );
            follow::app_logs(client, &path, follow).await?;
        }
        Command::Env(cmd) => env(client, format, cmd).await?,
        Command::Deployment(DeploymentCmd::Logs { id, follow }) => {
            deployment_id(&id)?;
            follow::deployment_logs(client, &id, follow).await?;
        }
        Command::Deployment(DeploymentCmd::Show { id }) => {
            deployment_id(&id)?;
            let v: Value = client
                .get(&format!("/api/v1/deployments/{}", enc(&id)))
                .await?;
            output::deployment_detail(format, &v);
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
        Command::Secrets(SecretsCmd::Set {
            service,
            name,
            environment,
            from_file,
        }) => {
            let value = secrets::read_value(from_file.as_deref())?;
            secrets::set(client, format, &service, &environment, &name, value).await?;
        }
        Command::Secrets(SecretsCmd::List {
            service,
            environment,
        }) => secrets::list(client, format, &service, &environment).await?,
        Command::Secrets(SecretsCmd::Unset {
            service,
            name,
            environment,
        }) => secrets::unset(client, &service, &environment, &name).await?,
        Command::Up { .. }
        | Command::PlatformRepo(_)
        | Command::Secrets(SecretsCmd::RotateKey { .. })
        | Command::Analyze { .. } => {
            unreachable!("handled locally")
        }
    }
    Ok(())
}

/// After a deployment was accepted: print it, or follow it to its end.
async fn started(client: &Client, format: Format, d: &Value, follow: bool) -> Result<(), CliError> {
    if !follow {
        output::deployment(format, d);
        return Ok(());
    }
    let id = d["id"].as_str().unwrap_or_default();
    let status = d["status"].as_str().unwrap_or("QUEUED");
    follow::follow_deployment(client, format, id, status).await
}

/// Splits `NAME=value` (the value may contain `=` and may be empty).
fn variable_pair(arg: &str) -> Result<(String, String), CliError> {
    let usage = |why: &str| {
        CliError {
        code: exit::USAGE,
        message: format!(
            "{arg:?} {why}: give each variable as NAME=value, e.g. `slipway env set payments GREETING=hello LOG_LEVEL=debug`"
        ),
    }
    };
    let (name, value) = arg.split_once('=').ok_or_else(|| usage("has no '='"))?;
    variable_name(name).map_err(|_| {
        usage(
            "does not start with a valid NAME (letters, digits and '_', not starting with a digit)",
        )
    })?;
    Ok((name.to_string(), value.to_string()))
}

fn variable_name(name: &str) -> Result<(), CliError> {
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(CliError {
            code: exit::USAGE,
            message: format!(
                "{name:?} is not a variable name: use letters, digits and '_', not starting with a digit (e.g. DATABASE_URL)"
            ),
        })
    }
}

/// What `env set` / `env unset` do to the current variables.
struct VariableChange {
    set: Vec<(String, String)>,
    unset: Vec<String>,
}

async fn env(client: &Client, format: Format, cmd: EnvCmd) -> Result<(), CliError> {
    let (service, environment) = match &cmd {
        EnvCmd::Set {
            service,
            environment,
            ..
        }
        | EnvCmd::Unset {
            service,
            environment,
            ..
        }
        | EnvCmd::List {
            service,
            environment,
        } => (service.clone(), environment.clone()),
    };
    // Checked before anything is sent, so a typo changes nothing.
    let change = match &cmd {
        EnvCmd::Set { pairs, .. } => Some(VariableChange {
            set: pairs
                .iter()
                .map(|p| variable_pair(p))
                .collect::<Result<_, _>>()?,
            unset: Vec::new(),
        }),
        EnvCmd::Unset { names, .. } => {
            for n in names {
                variable_name(n)?;
            }
            Some(VariableChange {
                set: Vec::new(),
                unset: names.clone(),
            })
        }
        EnvCmd::List { .. } => None,
    };
    label("service", &service)?;
    label("environment", &environment)?;
    let path = format!(
        "/api/v1/services/{}/environments/{}/variables",
        enc(&service),
        enc(&environment)
    );
    let current: Value = client.get(&path).await?;
    let Some(VariableChange { set, unset }) = change else {
        output::variables(format, &current);
        return Ok(());
    };
    // The API replaces the whole set: read, change, write back.
    let mut vars = current["variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, value) in &set {
        vars.insert(name.clone(), json!(value));
    }
    let mut missing = Vec::new();
    for name in &unset {
        if vars.remove(name).is_none() {
            missing.push(name.as_str());
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "not set in {service} ({environment}): {}",
            missing.join(", ")
        );
    }
    let removed: Vec<&str> = unset
        .iter()
        .map(String::as_str)
        .filter(|n| !missing.contains(n))
        .collect();
    if set.is_empty() && removed.is_empty() {
        // Nothing changes: no write, no audit entry, no new version of the variables.
        output::variables(format, &current);
        return Ok(());
    }
    let v: Value = client.put(&path, &json!({ "variables": vars })).await?;
    let text = if set.is_empty() {
        format!(
            "unset {} for {service} in {environment}; the next deployment uses the change",
            removed.join(", ")
        )
    } else {
        let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "set {} for {service} in {environment}; the next deployment uses them",
            names.join(", ")
        )
    };
    output::message(format, &v, &text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_pairs() {
        assert_eq!(
            variable_pair("GREETING=hello").unwrap(),
            ("GREETING".into(), "hello".into())
        );
        assert_eq!(
            variable_pair("URL=postgres://x?a=b").unwrap(),
            ("URL".into(), "postgres://x?a=b".into())
        );
        assert_eq!(variable_pair("_E=").unwrap(), ("_E".into(), "".into()));
        for bad in ["GREETING", "=x", "1X=y", "A-B=c", "A B=c"] {
            let e = variable_pair(bad).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{bad}");
            assert!(e.message.contains("NAME=value"), "{}", e.message);
        }
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let ok = |args: &[&str]| Cli::try_parse_from(args).is_ok();
        assert!(ok(&[
            "slipway",
            "deploy",
            "payments",
            "-f",
            "--replicas",
            "2"
        ]));
        assert!(ok(&[
            "slipway",
            "deploy",
            "--repo-url",
            "https://x/y",
            "--service",
            "y"
        ]));
        assert!(!ok(&["slipway", "deploy"]));
        assert!(!ok(&[
            "slipway",
            "deploy",
            "payments",
            "--service",
            "other"
        ]));
        assert!(!ok(&["slipway", "env", "set", "payments"]));
        assert!(ok(&[
            "slipway",
            "-o",
            "json",
            "analyze",
            ".",
            "--app-dir",
            "web"
        ]));
        assert!(ok(&["slipway", "deployment", "logs", "abc", "-f"]));
    }
}
