//! `slipway catalog export|import`: the services as Backstage catalog entities, out and in.

mod entity;
mod export;
mod import;

use crate::client::{CliError, Client};
use crate::Format;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum CatalogCmd {
    /// Write the Backstage entities of every service: one multi-document YAML (standard output or
    /// --output-file), or a directory Backstage imports with one URL (--output-dir)
    Export {
        /// Write DIR/<service>/catalog-info.yaml and score.yaml, and DIR/catalog-info.yaml, a
        /// Backstage Location listing them (existing files are overwritten)
        #[arg(long, value_name = "DIR", conflicts_with = "output_file")]
        output_dir: Option<PathBuf>,
        /// Write every entity to FILE as one multi-document YAML
        #[arg(long, value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
    /// Register the services of a Backstage entity file (its Components; Locations' relative files too)
    Import {
        /// A YAML file of Backstage entities (several documents allowed)
        file: PathBuf,
        /// Check every entity and show what would happen; register nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(client: &Client, format: Format, cmd: CatalogCmd) -> Result<(), CliError> {
    // One request per service (or two): wait out the rate limit rather than stop halfway.
    let client = &client.patient();
    match cmd {
        CatalogCmd::Export {
            output_dir,
            output_file,
        } => {
            let target = match (output_dir, output_file) {
                (Some(dir), _) => export::Target::Directory(dir),
                (None, Some(file)) => export::Target::File(file),
                (None, None) => export::Target::Stdout,
            };
            export::export(client, format, target).await
        }
        CatalogCmd::Import { file, dry_run } => {
            import::import(client, format, &file, dry_run).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_catalog_commands_parse() {
        let ok = |args: &[&str]| crate::Cli::try_parse_from(args).is_ok();
        assert!(ok(&["slipway", "catalog", "export"]));
        assert!(ok(&["slipway", "catalog", "export", "--output-dir", "out"]));
        assert!(ok(&[
            "slipway",
            "-o",
            "json",
            "catalog",
            "export",
            "--output-file",
            "all.yaml"
        ]));
        assert!(!ok(&[
            "slipway",
            "catalog",
            "export",
            "--output-dir",
            "a",
            "--output-file",
            "b"
        ]));
        assert!(ok(&[
            "slipway",
            "catalog",
            "import",
            "catalog-info.yaml",
            "--dry-run"
        ]));
        assert!(!ok(&["slipway", "catalog", "import"]));
    }
}
