//! The durable store: sqlx over SQLite (default, a file) or PostgreSQL (production), chosen by URL.
//!
//! One set of queries serves both backends through sqlx's `Any` driver: timestamps are Unix
//! milliseconds (`BIGINT`), booleans 0/1, JSON as text, placeholders `$n` (both backends accept them).
//! The few places where the dialects differ ask [`Backend`].
//!
//! Durability settings: SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk when
//! it returns; PostgreSQL's default `synchronous_commit=on` gives the same. A SQLite URL may ask for
//! less (`?synchronous=off`, for the power-loss test's counter-proof); the start refuses it unless
//! `allow_unsafe_durability` is set.

mod accounts;
mod audit;
mod backup;
mod device_log;
mod directory;
mod dispatch;
mod durability;
mod events;
mod handling;
mod incidents;
mod intake_batch;
mod json_rows;
mod log_order;
mod migrations;
mod notifications;
mod quarantine;
mod queue;
mod replay;
mod reports;
mod rows;
mod sealing;
mod tables;
mod webhooks;
mod write_turn;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use accounts::{
    AuthSettings, LoginOutcome, OPERATOR_ROLES, Principal, SubjectKind, configure_hashing,
    dummy_hash, hash_password_async, operator_role, session_digest,
};
pub use audit::AuditEntry;
pub use device_log::DeviceLogRow;
pub use directory::{
    AreaInput, DeviceCredentials, DeviceInput, ElderInput, PROTOCOLS, ResponderInput, check_device,
    check_elder, check_responder,
};
pub use dispatch::{
    Consume, DueTimer, EventWrite, OfferRow, OfferWrite, StepCommit, StepWrite, TimerWrite,
    WELFARE_TIMER, timer_key, welfare_elder, welfare_key,
};
pub use durability::Durability;
pub use events::{DISPATCH_INPUTS, INBOX_GRACE_MS, inbox_event, inbox_name};
pub use handling::HandlerChange;
pub use incidents::IncidentFilter;
pub use intake_batch::{StatusUpdate, StoreOutcome, Stored};
pub use log_order::{COMMITS_CHANNEL, LogPage, LogPosition};
pub(crate) use log_order::{Order, begin_ordered, begin_ordered_intake};
pub use notifications::{Channel, DeliveryStatus, Fallback, NewNotification, Notification};
pub use queue::{MapPoint, QueueRow};
pub use reports::{IncidentOffer, IncidentTimes, OperatorRow};
pub use sealing::{BadKey, Sealer};
pub use tables::{ActiveTable, DeviceEntry, ElderEntry, Page, ResponderEntry, TableQuery};
pub use webhooks::{WebhookInput, WebhookSubscription};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Errors from the store. Callers log them in full and show users a generic message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row referenced something that does not exist, or broke a rule.
    #[error("{0}")]
    Invalid(String),
    /// The database URL is not one OneKey can use.
    #[error("unsupported database URL: {0}")]
    Url(String),
    /// The configured secrets key is not the one the database's secrets were sealed with.
    #[error(
        "the secrets key is not the one this database's secrets were sealed with (secrets_key, secrets_key_file)"
    )]
    WrongSecretsKey,
    /// A sealed secret that cannot be opened with the store's key (or the store has none).
    #[error("a sealed value in {0} cannot be opened with this server's secrets key")]
    Unsealable(&'static str),
}

impl StoreError {
    /// True when the error is a unique-constraint violation (a duplicate name or code).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the error is a foreign-key violation (a reference to a row that does not exist).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }

    /// True when the database refused the data itself (a constraint or trigger it breaks, or on
    /// SQLite a value it cannot hold), so the same write will be refused again however often it is retried; false
    /// for an outage, a lock, a full disk or an I/O error, which a retry can get past.
    pub fn is_refusal(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return matches!(self, StoreError::Invalid(_));
        };
        if e.is_unique_violation() || e.is_foreign_key_violation() || e.is_check_violation() {
            return true;
        }
        let Some(code) = e.code() else {
            return false;
        };
        match code.parse::<i64>() {
            // SQLite: the SQLITE_CONSTRAINT family (19 and its extended codes: check, not null,
            // trigger, …) and SQLITE_MISMATCH (20), SQLITE_TOOBIG (18).
            Ok(n) => matches!(n & 0xff, 18..=20),
            // PostgreSQL: SQLSTATE class 23 (integrity constraint) only. Class 22 is not a
            // refusal: right after an outage a reconnected pool can answer 22P03 (incorrect
            // binary data format) for a write that succeeds when retried.
            Err(_) => code.starts_with("23"),
        }
    }
}

/// Splits the `synchronous=` parameter off a SQLite URL (sqlx does not know it): `full` unless the
/// URL says `off`, `normal` or `extra`. Anything below `full` can lose a committed alarm on power
/// loss and is refused at start unless `allow_unsafe_durability` is set (see `durability`).
fn sqlite_synchronous(url: &str) -> StoreResult<(String, &'static str)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), "FULL"));
    };
    let mut level = "FULL";
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", v)) => {
                level = match v.to_ascii_lowercase().as_str() {
                    "off" | "0" => "OFF",
                    "normal" | "1" => "NORMAL",
                    "full" | "2" => "FULL",
                    "extra" | "3" => "EXTRA",
                    _ => return Err(StoreError::Url(url.to_string())),
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, level))
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    checkin_hour_ms: crate::domain::Millis,
    /// Seals secrets at rest; `None` keeps them in clear (in-process tests and tools only: the
    /// server always opens its store with a key).
    sealer: Option<std::sync::Arc<Sealer>>,
    /// Statements the intake has sent, all batches together ([`Store::intake_statements`]).
    intake_statements: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// SQLite's writers take turns in the process (`write_turn.rs`).
    turns: write_turn::WriteTurns,
}

impl Store {
    /// Opens the database named by `url`, creating a SQLite file if it does not exist. Does not migrate.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let (url, synchronous) = match backend {
            Backend::Sqlite => sqlite_synchronous(url)?,
            Backend::Postgres => (url.to_string(), ""),
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url,
        };
        let pragmas = format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; \
             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
        );
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(pragmas.as_str()).await?;
                    }
                    Ok(())
                })
            })
            // A SQLite COMMIT that fails (a full disk) can leave the transaction open on the
            // connection, and its write lock with it: every later writer then waits out its busy
            // timeout. End any such transaction before the connection serves anyone else, and
            // only then: a ROLLBACK on every release was 66 of the 173 statements of an opening
            // alarm (`benches/census.rs`).
            .after_release(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite
                        && sqlx::Connection::is_in_transaction(&*conn)
                        && conn.execute("ROLLBACK").await.is_ok()
                    {
                        tracing::warn!(
                            "rolled back a transaction left open on a released connection"
                        );
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            backend,
            checkin_hour_ms: 3_600_000,
            sealer: None,
            intake_statements: Default::default(),
            turns: Default::default(),
        })
    }

    /// The same store with check-in hours of `ms` milliseconds (default one hour): the length
    /// of one hour of an elder's check-in period when a sign of life re-arms their welfare timer.
    /// Drills and tests shorten it.
    pub fn with_checkin_hour_ms(mut self, ms: crate::domain::Millis) -> Store {
        self.checkin_hour_ms = ms.max(1);
        self
    }

    /// Applies every pending migration for this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::run(&self.pool, self.backend).await
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for queries that live next to their callers' tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A cheap round trip, for `/healthz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_synchronous;

    #[test]
    fn a_sqlite_url_may_name_its_synchronous_level_and_sqlx_never_sees_it() {
        assert_eq!(
            sqlite_synchronous("sqlite://a.db").ok(),
            Some(("sqlite://a.db".into(), "FULL"))
        );
        assert_eq!(
            sqlite_synchronous("sqlite://a.db?synchronous=off&mode=rwc").ok(),
            Some(("sqlite://a.db?mode=rwc".into(), "OFF"))
        );
        assert_eq!(
            sqlite_synchronous("sqlite://a.db?synchronous=Normal").ok(),
            Some(("sqlite://a.db".into(), "NORMAL"))
        );
        assert!(sqlite_synchronous("sqlite://a.db?synchronous=sometimes").is_err());
    }
}
