//! The command line: `onekey serve | migrate | import <file> | demo`.

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
    }
}
