//! `onekey-sim`: command-line front end of the simulators.
//!
//! - `onekey-sim dataset --elders 300 --responders 200 --seed 42 -o jizhou.json`: a synthetic Jizhou
//!   district for `onekey import`.
//! - `onekey-sim fleet --addr 127.0.0.1:7700 --dataset jizhou.json --devices 100 --rate 60 --duration 60`:
//!   the dataset's native devices connect and raise about `rate` alarms per minute in all.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use onekey_sim::dataset;
use onekey_sim::fleet::{self, FleetConfig, FleetStats, Pace};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "onekey-sim",
    about = "Simulated datasets and device fleets for OneKey"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic Jizhou dataset (JSON, `onekey-dataset/1`).
    Dataset {
        /// Elders (one device each).
        #[arg(long, default_value_t = 300)]
        elders: usize,
        /// Responders besides one grid worker per grid.
        #[arg(long, default_value_t = 200)]
        responders: usize,
        /// Seed: the same seed gives the same dataset.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file (`-` for stdout).
        #[arg(short = 'o', long, default_value = "-")]
        output: String,
    },
    /// Run the dataset's native devices against a server.
    Fleet {
        /// The server's native listener.
        #[arg(long, default_value = "127.0.0.1:7700")]
        addr: String,
        /// Dataset the devices come from (imported into the server beforehand).
        #[arg(long)]
        dataset: PathBuf,
        /// How many of its native devices to run (default all).
        #[arg(long)]
        devices: Option<usize>,
        /// Alarms per minute, all devices together; 0 = back to back.
        #[arg(long, default_value_t = 60.0)]
        rate: f64,
        /// Seconds to run (default until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Heartbeat period, seconds.
        #[arg(long, default_value_t = 60)]
        heartbeat: u64,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onekey-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Dataset {
            elders,
            responders,
            seed,
            output,
        } => {
            let d = dataset::generate(elders, responders, seed);
            let text = serde_json::to_string_pretty(&d)?;
            if output == "-" {
                println!("{text}");
            } else {
                std::fs::write(&output, text).with_context(|| format!("cannot write {output}"))?;
                eprintln!(
                    "wrote {output}: {} areas, {} responders, {} elders, {} devices",
                    d.areas.len(),
                    d.responders.len(),
                    d.elders.len(),
                    d.devices.len()
                );
            }
            Ok(())
        }
        Cmd::Fleet {
            addr,
            dataset,
            devices,
            rate,
            duration,
            heartbeat,
        } => {
            let text = std::fs::read_to_string(&dataset)
                .with_context(|| format!("cannot read {}", dataset.display()))?;
            let d: dataset::Dataset = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a dataset", dataset.display()))?;
            let mut natives = d.native_devices();
            if let Some(n) = devices {
                natives.truncate(n);
            }
            anyhow::ensure!(!natives.is_empty(), "the dataset has no native devices");
            let n = natives.len();
            let mut config = FleetConfig::new(addr, natives);
            config.heartbeat = Duration::from_secs(heartbeat.max(1));
            config.pace = if rate <= 0.0 {
                Pace::BackToBack
            } else {
                Pace::Every {
                    period: Duration::from_secs_f64(60.0 * n as f64 / rate),
                    poisson: true,
                }
            };
            let stats = Arc::new(FleetStats::default());
            let stop = CancellationToken::new();
            {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    stop.cancel();
                });
            }
            if let Some(secs) = duration {
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    stop.cancel();
                });
            }
            let bar = match duration {
                Some(secs) => indicatif::ProgressBar::new(secs),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let runner = tokio::spawn(fleet::run(config, stats.clone(), stop.clone()));
            let started = std::time::Instant::now();
            while !runner.is_finished() {
                bar.set_position(started.elapsed().as_secs());
                bar.set_message(format!(
                    "{}/{n} connected · {} alarms · {} acked · {} retries",
                    stats.connected.load(Ordering::Relaxed).min(n as u64),
                    stats.alarms.load(Ordering::Relaxed),
                    stats.acked(),
                    stats.retries.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            bar.finish_and_clear();
            runner.await?;
            println!("{}", stats.summary());
            Ok(())
        }
    }
}
