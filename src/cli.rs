//! The command line: `onekey serve | migrate | import <file> | backup <file>` (the demo is
//! `onekey-sim demo`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// OneKey: dispatch server for elders' one-key emergency call devices.
#[derive(Debug, Parser)]
#[command(name = "onekey", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Default: `onekey.toml` when present.
    #[arg(long, global = true, env = "ONEKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Write the bound addresses as JSON to this file once every listener is up.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Import elders, devices, responders and grids from a dataset JSON or a CSV file.
    Import {
        /// `onekey-dataset/1` JSON (from `onekey-sim dataset`) or a CSV of one kind.
        file: PathBuf,
    },
    /// Copy a SQLite database, consistently, while the server runs (PostgreSQL: use its tools).
    Backup {
        /// The copy (must not exist). Restoring it needs the same secrets key.
        file: PathBuf,
    },
}

/// Runs the command line; returns the error to print on failure.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config =
        Config::load(cli.config.as_deref()).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    crate::telemetry::init_logging(&config.log, config.log_format == "json");
    match cli.command {
        Command::Serve { ready_file } => {
            let shutdown = CancellationToken::new();
            crate::app::cancel_on_signals(shutdown.clone());
            crate::app::serve(config, ready_file, shutdown).await
        }
        Command::Migrate => {
            let store = crate::app::open_store(&config).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { file } => {
            let store = crate::app::open_store(&config).await?;
            let copied = store.backup_to(&file).await;
            store.close().await;
            let bytes = copied?;
            println!(
                "backed up to {} ({bytes} bytes); keep the secrets key with your key backups, \
                 not beside this copy",
                file.display()
            );
            Ok(())
        }
        Command::Import { file } => {
            let store = crate::app::open_store(&config).await?;
            let report = crate::import::import_file(&store, &file).await;
            store.close().await;
            let report = report?;
            for e in &report.errors {
                eprintln!("{}: {e}", file.display());
            }
            println!("{}", report.summary());
            if report.errors.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{} row(s) of {} could not be imported",
                    report.errors.len(),
                    file.display()
                ))
            }
        }
    }
}
