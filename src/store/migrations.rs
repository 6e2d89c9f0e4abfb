//! Schema migrations, embedded in the binary and applied with sqlx's migrator (checksums, locking,
//! the `_sqlx_migrations` table). Each backend has its own directory of SQL files under
//! `migrations/`; add a file to both when the schema changes.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Backend, StoreResult};

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "dispatch",
        include_str!("../../migrations/sqlite/0002_dispatch.sql"),
    ),
    (
        3,
        "dispatch_ops",
        include_str!("../../migrations/sqlite/0003_dispatch_ops.sql"),
    ),
    (
        4,
        "outbox",
        include_str!("../../migrations/sqlite/0004_outbox.sql"),
    ),
    (
        5,
        "console",
        include_str!("../../migrations/sqlite/0005_console.sql"),
    ),
    (
        6,
        "security",
        include_str!("../../migrations/sqlite/0006_security.sql"),
    ),
    (
        7,
        "quarantine",
        include_str!("../../migrations/sqlite/0007_quarantine.sql"),
    ),
    (
        8,
        "sealed_secrets",
        include_str!("../../migrations/sqlite/0008_sealed_secrets.sql"),
    ),
    (
        9,
        "log_order",
        include_str!("../../migrations/sqlite/0009_log_order.sql"),
    ),
];

const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "dispatch",
        include_str!("../../migrations/postgres/0002_dispatch.sql"),
    ),
    (
        3,
        "dispatch_ops",
        include_str!("../../migrations/postgres/0003_dispatch_ops.sql"),
    ),
    (
        4,
        "outbox",
        include_str!("../../migrations/postgres/0004_outbox.sql"),
    ),
    (
        5,
        "console",
        include_str!("../../migrations/postgres/0005_console.sql"),
    ),
    (
        6,
        "security",
        include_str!("../../migrations/postgres/0006_security.sql"),
    ),
    (
        7,
        "quarantine",
        include_str!("../../migrations/postgres/0007_quarantine.sql"),
    ),
    (
        8,
        "sealed_secrets",
        include_str!("../../migrations/postgres/0008_sealed_secrets.sql"),
    ),
    (
        9,
        "log_order",
        include_str!("../../migrations/postgres/0009_log_order.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*name),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Applies every pending migration of `backend`.
pub async fn run(pool: &AnyPool, backend: Backend) -> StoreResult<()> {
    let source = match backend {
        Backend::Sqlite => Embedded(SQLITE),
        Backend::Postgres => Embedded(POSTGRES),
    };
    let migrator = Migrator::new(source).await?;
    migrator.run(pool).await?;
    Ok(())
}
