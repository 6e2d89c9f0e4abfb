//! What the load benches share: a fresh PostgreSQL database, and the server started in-process on a
//! freshly imported dataset, built in-process from a typed `Config` (`Application::build`).

use std::collections::HashMap;
use std::time::Instant;

use onekey::config::Config;
use onekey_sim::dataset::Dataset;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// A `u64` from the environment, or `default`.
pub fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A database of its own on the PostgreSQL of `ONEKEY_TEST_PG` (default 127.0.0.1:5432/test).
pub struct TempPostgres {
    /// Its URL.
    pub url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl TempPostgres {
    /// Creates it; `None` (with a line on stderr) when PostgreSQL is not reachable.
    pub async fn create() -> anyhow::Result<Option<TempPostgres>> {
        let admin_url = std::env::var("ONEKEY_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("PostgreSQL at {admin_url} not reachable ({e}); skipping it");
                return Ok(None);
            }
        };
        let name = format!("onekey_bench_{:08x}", rand::random::<u32>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Ok(Some(TempPostgres {
            url: format!("{base}/{name}"),
            name,
            admin,
        }))
    }

    /// Drops the database.
    pub async fn drop(mut self) {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut self.admin)
        .await;
    }
}

/// The server running in this process, built from a typed `Config` (`Application::build`).
pub struct InProcessServer {
    /// Listener addresses (`device_tcp`, `gt06`, …).
    pub addrs: HashMap<String, String>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessServer {
    /// Imports `dataset` into `config`'s database, then starts the server and waits until it is
    /// ready. `label` names the run in messages.
    pub async fn start(
        label: &str,
        config: Config,
        dataset: &Dataset,
    ) -> anyhow::Result<InProcessServer> {
        let store = onekey::app::open_store(&config).await?;
        let started = Instant::now();
        let report = onekey::import::import_dataset(&store, dataset).await?;
        anyhow::ensure!(report.errors.is_empty(), "import: {:?}", report.errors);
        store.close().await;
        eprintln!(
            "{label}: imported the dataset in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let shutdown = CancellationToken::new();
        let app = onekey::app::Application::build(config, shutdown.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{label}: {e:#}"))?;
        let addrs = app
            .addrs()
            .iter()
            .map(|(name, addr)| (name.to_string(), addr.to_string()))
            .collect();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(InProcessServer {
            addrs,
            shutdown,
            task,
        })
    }

    /// Shuts it down and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}
