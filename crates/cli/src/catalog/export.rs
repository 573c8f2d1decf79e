//! `slipway catalog export`: the Backstage entities (and Score files) of every service.

use super::entity::{entity_ref, parse_documents};
use crate::client::{exit, CliError, Client};
use crate::output;
use crate::Format;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the export goes.
pub enum Target {
    /// `DIR/<svc>/catalog-info.yaml`, `DIR/<svc>/score.yaml`, and a `DIR/catalog-info.yaml` Location.
    Directory(PathBuf),
    /// One multi-document YAML file of every entity.
    File(PathBuf),
    Stdout,
}

/// One service's stored catalog files.
pub struct ServiceFiles {
    pub name: String,
    pub catalog_info: String,
    pub score: Option<String>,
}

/// The export, assembled: each entity once.
#[derive(Debug, PartialEq, Eq)]
pub struct Assembled {
    /// `(service, catalog-info.yaml)`: the stored file, or, when an entity of it was already written
    /// with an earlier service (the team's System), the rest of its documents.
    pub per_service: Vec<(String, String)>,
    /// Every entity of every service, each once, as one multi-document YAML text.
    pub all: String,
}

pub async fn export(client: &Client, format: Format, target: Target) -> Result<(), CliError> {
    let services = service_files(client).await?;
    let assembled = assemble(&services)?;
    match target {
        Target::Stdout => output::text(&assembled.all),
        Target::File(path) => {
            write(&path, &assembled.all)?;
            output::message(
                format,
                &json!({ "file": path, "services": services.len() }),
                &format!(
                    "wrote the catalog entities of {} services to {}",
                    services.len(),
                    path.display()
                ),
            );
        }
        Target::Directory(dir) => {
            let mut files = Vec::new();
            for ((name, catalog_info), s) in assembled.per_service.iter().zip(&services) {
                let path = dir.join(name).join("catalog-info.yaml");
                write(&path, catalog_info)?;
                files.push(format!("{name}/catalog-info.yaml"));
                if let Some(score) = &s.score {
                    write(&dir.join(name).join("score.yaml"), score)?;
                    files.push(format!("{name}/score.yaml"));
                }
            }
            let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            write(&dir.join("catalog-info.yaml"), &location(&names))?;
            files.push("catalog-info.yaml".into());
            output::message(
                format,
                &json!({ "directory": dir, "services": services.len(), "files": files }),
                &format!(
                    "wrote the catalog of {} services to {} (Backstage: register {}/catalog-info.yaml)",
                    services.len(),
                    dir.display(),
                    dir.display()
                ),
            );
        }
    }
    Ok(())
}

/// Every service's catalog files, paging through `GET /api/v1/catalog` (sorted by name there;
/// sorted and unique here, as a service registered between two pages shifts the offsets).
async fn service_files(client: &Client) -> Result<Vec<ServiceFiles>, CliError> {
    const PAGE: u64 = 1000;
    let mut by_name = BTreeMap::new();
    let mut offset = 0u64;
    loop {
        let page: Value = client
            .get(&format!("/api/v1/catalog?limit={PAGE}&offset={offset}"))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for s in &items {
            let name = s["service"].as_str().unwrap_or_default().to_string();
            // The name becomes a path in the output directory.
            crate::label("service", &name)?;
            let Some(catalog_info) = s["catalog_info"].as_str() else {
                eprintln!("note: service {name} has no catalog-info.yaml (its template makes none); not exported");
                continue;
            };
            by_name.insert(
                name.clone(),
                ServiceFiles {
                    name,
                    catalog_info: catalog_info.to_string(),
                    score: s["score"].as_str().map(str::to_string),
                },
            );
        }
        offset += items.len() as u64;
        let total = page["total"].as_u64().unwrap_or(0);
        if items.is_empty() || offset >= total {
            break;
        }
    }
    Ok(by_name.into_values().collect())
}

/// Puts the services' entities together, each entity (kind, namespace, name) once: a team's System
/// is declared by each of its services' files and is kept with the first service by name, so
/// Backstage sees no two locations claiming one entity. Documents keep their bytes (comments too).
pub fn assemble(services: &[ServiceFiles]) -> Result<Assembled, CliError> {
    let mut seen = BTreeSet::new();
    let mut per_service = Vec::new();
    let mut all: Vec<String> = Vec::new();
    for s in services {
        let docs = parse_documents(&s.catalog_info).map_err(|e| CliError {
            code: exit::ERROR,
            message: format!(
                "the catalog-info.yaml of service {} does not parse: {e}",
                s.name
            ),
        })?;
        let mut kept = Vec::new();
        let mut dropped = false;
        for d in &docs {
            let Some(key) = entity_ref(&d.value) else {
                dropped |= !d.value.is_null();
                continue;
            };
            if !seen.insert(key) {
                dropped = true;
                continue;
            }
            let mut text = match &d.text {
                Some(t) => t.clone(),
                None => serde_norway::to_string(&d.value).map_err(|e| CliError {
                    code: exit::ERROR,
                    message: format!("cannot write an entity of service {}: {e}", s.name),
                })?,
            };
            if !text.ends_with('\n') {
                text.push('\n');
            }
            kept.push(text);
        }
        let file = if dropped {
            kept.join("---\n")
        } else {
            s.catalog_info.clone()
        };
        per_service.push((s.name.clone(), file));
        all.extend(kept);
    }
    Ok(Assembled {
        per_service,
        all: all.join("---\n"),
    })
}

/// The Location entity that lets Backstage read the whole export from one URL. Targets are relative,
/// so it works wherever the directory is published (a repository, a file server).
pub fn location(services: &[&str]) -> String {
    let mut out = String::from(
        "# Generated by slipway catalog export: the catalog entities of every Slipway service.\n\
         apiVersion: backstage.io/v1alpha1\n\
         kind: Location\n\
         metadata:\n  name: slipway-services\n  description: Services registered in Slipway\n\
         spec:\n",
    );
    if services.is_empty() {
        out.push_str("  targets: []\n");
    } else {
        out.push_str("  targets:\n");
        for s in services {
            // Names are DNS labels (checked before use), so they need no quoting.
            out.push_str(&format!("    - ./{s}/catalog-info.yaml\n"));
        }
    }
    out
}

fn write(dest: &Path, content: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError {
        code: exit::ERROR,
        message: format!("cannot write {}: {e}", dest.display()),
    };
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(dest, content).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(service: &str, team: &str) -> String {
        format!(
            "# Generated by Slipway. Backstage catalog entities of {service}.\n\
             apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: \"{service}\"\n\
             spec:\n  owner: \"group:{team}\"\n  system: \"{team}\"\n\
             ---\n\
             apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: \"{team}\"\n\
             spec:\n  owner: \"group:{team}\"\n"
        )
    }

    fn files(list: &[(&str, &str)]) -> Vec<ServiceFiles> {
        list.iter()
            .map(|(s, t)| ServiceFiles {
                name: s.to_string(),
                catalog_info: catalog(s, t),
                score: None,
            })
            .collect()
    }

    #[test]
    fn each_entity_once_and_stored_bytes_kept() {
        let services = files(&[("api", "core"), ("billing", "finance"), ("web", "core")]);
        let a = assemble(&services).unwrap();
        // Files with nothing shared are written as stored.
        assert_eq!(a.per_service[0].1, services[0].catalog_info);
        assert_eq!(a.per_service[1].1, services[1].catalog_info);
        // The second service of team core leaves the System to the first.
        assert!(a.per_service[2].1.contains("kind: Component"));
        assert!(!a.per_service[2].1.contains("kind: System"));
        assert!(a.per_service[2].1.starts_with("# Generated by Slipway"));
        let docs = parse_documents(&a.all).unwrap();
        let refs: Vec<_> = docs.iter().filter_map(|d| entity_ref(&d.value)).collect();
        let names: Vec<String> = refs.iter().map(|(k, _, n)| format!("{k}:{n}")).collect();
        assert_eq!(
            names,
            [
                "component:api",
                "system:core",
                "component:billing",
                "system:finance",
                "component:web"
            ]
        );
        // The same input gives the same bytes.
        assert_eq!(assemble(&services).unwrap(), a);
    }

    #[test]
    fn the_location_lists_every_service() {
        let l = location(&["api", "web"]);
        let docs = parse_documents(&l).unwrap();
        assert_eq!(
            super::super::entity::entry(&docs[0].value),
            super::super::entity::Entry::Location(vec![
                "./api/catalog-info.yaml".into(),
                "./web/catalog-info.yaml".into()
            ])
        );
        assert!(parse_documents(&location(&[])).is_ok());
    }
}
