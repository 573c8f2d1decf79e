//! `slipway user`, `slipway team add-member|remove-member`, `slipway token`, `slipway whoami`.

use crate::client::{enc, exit, CliError, Client};
use crate::Format;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user (admins). With --password-stdin, the first line of stdin is its portal password
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles
    List,
}

#[derive(Subcommand)]
pub enum TeamCmd {
    /// Give a user a role in a team: viewer, team-member or team-maintainer
    AddMember {
        team: String,
        user: String,
        #[arg(long, default_value = "team-member")]
        role: String,
    },
    /// Remove a user from a team
    RemoveMember { team: String, user: String },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an API token (shown once): for you, another user (--user, admins) or a team's service account (--team)
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (admins): never the tokens themselves
    List,
    /// Revoke a token by id
    Revoke { id: String },
}

fn role(value: &str) -> Result<(), CliError> {
    if slipway_core::Role::parse(value).is_some() {
        Ok(())
    } else {
        Err(CliError {
            code: exit::USAGE,
            message: format!("--role {value:?}: use viewer, team-member or team-maintainer"),
        })
    }
}

fn print(format: Format, v: &Value, line: impl Fn(&Value) -> String) {
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        Format::Table => match v.as_array() {
            Some(items) => items.iter().for_each(|i| outln!("{}", line(i))),
            None => outln!("{}", line(v)),
        },
    }
}

fn roles(u: &Value) -> String {
    u["memberships"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    format!(
                        "{}:{}",
                        m["team"].as_str().unwrap_or(""),
                        m["role"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub async fn user(client: &Client, format: Format, cmd: UserCmd) -> Result<(), CliError> {
    match cmd {
        UserCmd::Create {
            name,
            email,
            admin,
            password_stdin,
        } => {
            let mut body = json!({ "name": name, "admin": admin });
            if let Some(e) = email {
                body["email"] = json!(e);
            }
            if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| CliError {
                        code: exit::USAGE,
                        message: format!("cannot read the password from stdin: {e}"),
                    })?;
                body["password"] = json!(line.trim_end_matches(['\r', '\n']));
            }
            let v: Value = client.post("/api/v1/users", &body).await?;
            print(format, &v, |u| {
                format!("created user {}", u["name"].as_str().unwrap_or(""))
            });
        }
        UserCmd::List => {
            let v: Value = client.get("/api/v1/users").await?;
            print(format, &v, |u| {
                format!(
                    "{:<24} {:<6} {}",
                    u["name"].as_str().unwrap_or(""),
                    if u["admin"].as_bool() == Some(true) {
                        "admin"
                    } else {
                        ""
                    },
                    roles(u)
                )
            });
        }
    }
    Ok(())
}

pub async fn team(client: &Client, cmd: TeamCmd) -> Result<(), CliError> {
    match cmd {
        TeamCmd::AddMember {
            team,
            user,
            role: r,
        } => {
            crate::label("team", &team)?;
            crate::label("user", &user)?;
            role(&r)?;
            client
                .put_empty(
                    &format!("/api/v1/teams/{}/members/{}", enc(&team), enc(&user)),
                    &json!({ "role": r }),
                )
                .await?;
            outln!("{user} is {r} of {team}");
        }
        TeamCmd::RemoveMember { team, user } => {
            crate::label("team", &team)?;
            crate::label("user", &user)?;
            client
                .delete(&format!(
                    "/api/v1/teams/{}/members/{}",
                    enc(&team),
                    enc(&user)
                ))
                .await?;
            outln!("{user} removed from {team}");
        }
    }
    Ok(())
}

pub async fn token(client: &Client, format: Format, cmd: TokenCmd) -> Result<(), CliError> {
    match cmd {
        TokenCmd::Create {
            name,
            team,
            role: r,
            user,
            expires_in_days,
        } => {
            if let Some(r) = &r {
                role(r)?;
            }
            let body = json!({ "name": name, "team": team, "role": r, "user": user, "expires_in_days": expires_in_days });
            let v: Value = client.post("/api/v1/tokens", &body).await?;
            match format {
                Format::Json => {
                    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Format::Table => {
                    outln!("{}", v["token"].as_str().unwrap_or(""));
                    eprintln!(
                        "token {} created; it is shown only now. Use it with SLIPWAY_TOKEN=… or Authorization: Bearer …",
                        v["id"].as_str().unwrap_or("")
                    );
                }
            }
        }
        TokenCmd::List => {
            let v: Value = client.get("/api/v1/tokens").await?;
            print(format, &v, |t| {
                let owner = &t["owner"];
                let who = owner["user"]["user"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| owner["team"]["team"].as_str().map(|t| format!("team:{t}")))
                    .unwrap_or_default();
                format!(
                    "{:<34} {:<20} {:<24} {}",
                    t["id"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or(""),
                    who,
                    if t["revoked_at"].is_null() {
                        "active"
                    } else {
                        "revoked"
                    }
                )
            });
        }
        TokenCmd::Revoke { id } => {
            if id.is_empty()
                || id.len() > 64
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(CliError {
                    code: exit::INVALID,
                    message: format!("{id:?} is not a token id"),
                });
            }
            let _: Value = client
                .delete_json(&format!("/api/v1/tokens/{}", enc(&id)))
                .await?;
            outln!("revoked {id}");
        }
    }
    Ok(())
}

pub async fn whoami(client: &Client, format: Format) -> Result<(), CliError> {
    let v: Value = client.get("/api/v1/whoami").await?;
    print(format, &v, |w| {
        format!(
            "{}{} {}",
            w["name"].as_str().unwrap_or(""),
            if w["admin"].as_bool() == Some(true) {
                " (admin)"
            } else {
                ""
            },
            w["teams"]
                .as_object()
                .map(|m| m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default()
        )
    });
    Ok(())
}
