//! `slipway secrets set|list|unset`: a service's secrets in an environment, through the API. Values
//! are read from standard input or a file, never from the command line (which lands in shell
//! history and, while the command runs, in `/proc` for every local user to read).

use crate::client::{enc, exit, CliError, Client};
use crate::output::table;
use crate::Format;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

/// Values larger than this are refused by the API as well.
const MAX_VALUE: usize = 64 * 1024;

fn path(service: &str, environment: &str) -> Result<String, CliError> {
    crate::label("service", service)?;
    crate::label("environment", environment)?;
    Ok(format!(
        "/api/v1/services/{}/environments/{}/secrets",
        enc(service),
        enc(environment)
    ))
}

fn secret_name(name: &str) -> Result<(), CliError> {
    slipway_core::validate::secret_name("name", name).map_err(|e| CliError {
        code: exit::USAGE,
        message: format!("secret name {name:?} {}", e.message),
    })
}

/// The value from `file`, or from standard input: a single trailing newline (what `echo` and
/// most editors add) is dropped, anything else is kept as it is (an SSH key keeps its lines).
pub fn read_value(file: Option<&Path>) -> Result<String, CliError> {
    let mut raw = Vec::new();
    let read = match file {
        Some(f) => std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut raw)),
        None => std::io::stdin().lock().read_to_end(&mut raw),
    };
    let from = || match file {
        Some(f) => f.display().to_string(),
        None => "standard input".to_string(),
    };
    read.map_err(|e| CliError {
        code: exit::USAGE,
        message: format!("cannot read the value from {}: {e}", from()),
    })?;
    let mut value = String::from_utf8(raw).map_err(|_| CliError {
        code: exit::USAGE,
        message: format!("the value from {} is not UTF-8 text", from()),
    })?;
    if value.ends_with('\n') && !value.trim_end().contains('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(CliError {
            code: exit::USAGE,
            message: format!(
                "the value from {} is empty; pipe it in, e.g. `printf %s \"$TOKEN\" | slipway secrets set SERVICE NAME`",
                from()
            ),
        });
    }
    if value.len() > MAX_VALUE {
        return Err(CliError {
            code: exit::USAGE,
            message: format!("the value is larger than {MAX_VALUE} bytes"),
        });
    }
    Ok(value)
}

pub async fn set(
    client: &Client,
    format: Format,
    service: &str,
    environment: &str,
    name: &str,
    value: String,
) -> Result<(), CliError> {
    secret_name(name)?;
    let base = path(service, environment)?;
    let info: Value = client
        .put(&format!("{base}/{}", enc(name)), &json!({ "value": value }))
        .await?;
    if format == Format::Json {
        outln!("{info}");
    } else {
        outln!(
            "{name} version {} set for {service} in {environment}; it takes effect on the next deployment",
            info["version"]
        );
    }
    Ok(())
}

pub async fn list(
    client: &Client,
    format: Format,
    service: &str,
    environment: &str,
) -> Result<(), CliError> {
    let list: Value = client.get(&path(service, environment)?).await?;
    if format == Format::Json {
        outln!("{list}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|s| {
                    let name = s["name"].as_str().unwrap_or_default();
                    let used_for = if slipway_core::validate::is_git_credential(name) {
                        "repository fetch"
                    } else {
                        "app environment"
                    };
                    vec![
                        name.to_string(),
                        s["version"].to_string(),
                        s["value"].as_str().unwrap_or_default().to_string(),
                        used_for.to_string(),
                        s["updated_at"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["NAME", "VERSION", "VALUE", "USED FOR", "UPDATED"], &rows);
    Ok(())
}

pub async fn unset(
    client: &Client,
    service: &str,
    environment: &str,
    name: &str,
) -> Result<(), CliError> {
    secret_name(name)?;
    let base = path(service, environment)?;
    client.delete(&format!("{base}/{}", enc(name))).await?;
    eprintln!("{name} removed from {service} in {environment}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(content: &[u8]) -> Result<String, CliError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v");
        std::fs::write(&f, content).unwrap();
        read_value(Some(&f))
    }

    #[test]
    fn values_lose_one_trailing_newline_only_when_single_line() {
        assert_eq!(value_of(b"t0ken\n").unwrap(), "t0ken");
        assert_eq!(value_of(b"t0ken\r\n").unwrap(), "t0ken");
        assert_eq!(value_of(b"t0ken").unwrap(), "t0ken");
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(value_of(key.as_bytes()).unwrap(), key);
        assert_eq!(value_of(b"\n").unwrap_err().code, exit::USAGE);
        assert_eq!(value_of(&[0xff, 0xfe]).unwrap_err().code, exit::USAGE);
        assert_eq!(
            value_of(&vec![b'a'; MAX_VALUE + 1]).unwrap_err().code,
            exit::USAGE
        );
    }

    #[test]
    fn names_are_checked_before_anything_is_sent() {
        assert!(secret_name("DB_PASSWORD").is_ok());
        assert!(secret_name("SLIPWAY_GIT_TOKEN").is_ok());
        let e = secret_name("SLIPWAY_OTHER").unwrap_err();
        assert!(e.message.contains("SLIPWAY_GIT_TOKEN"), "{}", e.message);
        assert!(secret_name("../x").is_err());
    }
}
