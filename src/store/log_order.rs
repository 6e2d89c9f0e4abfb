//! The order in which followers read the incident log and the push notifications, on every
//! instance alike, without one lock that all writers queue on.
//!
//! Each row records the PostgreSQL transaction that wrote it (`tx_id`, from
//! `pg_current_xact_id()`). Followers read in `(tx_id, id)` order and only below the *horizon*:
//! the oldest transaction of this database still running when the read's snapshot was taken.
//! Every transaction below the horizon has ended, so the rows below it are final — no row can
//! later appear before a position a follower has passed — and a catch-up after a reconnect, on
//! any instance, reads the same sequence. Transactions of other databases on the same server do
//! not hold the horizon back.
//!
//! Within one elder's incidents the order is also the order of the writes: every transaction that
//! appends incident events first takes a transaction lock per elder ([`Order`]; a device without
//! an elder stands for itself), before it writes anything (PostgreSQL assigns a transaction id at
//! its first write), so of two transactions on the same elder the later one gets the higher id.
//!
//! SQLite has one writer at a time: row ids follow commit order, `tx_id` is 0 and nothing is held
//! back.

use sqlx::{AnyPool, Row};

use super::write_turn::WriteTx;
use super::{Backend, Store, StoreResult};

/// A row's place in a followed log: its writing transaction, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition {
    /// The writing transaction (PostgreSQL `xid8`; 0 on SQLite).
    pub tx: i64,
    /// The row id.
    pub id: i64,
}

impl LogPosition {
    /// Before every row.
    pub const START: LogPosition = LogPosition { tx: 0, id: 0 };
}

/// A page of a followed log: rows in order, and whether rows already committed after them are
/// held back by a transaction still running (read again shortly).
#[derive(Debug)]
pub struct LogPage<T> {
    /// Final rows after the position asked for, in log order.
    pub rows: Vec<(LogPosition, T)>,
    /// Committed rows exist beyond the horizon.
    pub held_back: bool,
}

/// The horizon of this database's running transactions, as a scalar SQL expression: the oldest
/// transaction in the statement's snapshot that is not known to belong to another database, or
/// the snapshot's upper bound when there is none. A running transaction whose database cannot be
/// seen (another role's session) counts as this database's: the horizon only waits longer.
const PG_HORIZON: &str = "(SELECT LEAST(pg_snapshot_xmax(q.s)::text::bigint, \
     (SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(q.s) AS x \
      WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
       WHERE a.backend_xid IS NOT NULL AND a.datname IS DISTINCT FROM current_database() \
       AND a.backend_xid::text::bigint = x::text::bigint % 4294967296))) \
     FROM (SELECT pg_current_snapshot() AS s) q)";

/// `SELECT <columns>, tx_id, horizon FROM <from> WHERE (tx_id, id) > ($1, $2) [AND <filter>]`,
/// in log order, `$3` rows at most, plus on PostgreSQL the first row held back.
pub(crate) fn page_sql(
    backend: Backend,
    columns: &str,
    table: &str,
    filter: &str,
    id_column: &str,
    tx_column: &str,
) -> String {
    let and = if filter.is_empty() {
        String::new()
    } else {
        format!(" AND {filter}")
    };
    let after = format!("({tx_column}, {id_column}) > ($1, $2){and}");
    let order = format!("ORDER BY {tx_column}, {id_column}");
    match backend {
        Backend::Sqlite => format!(
            "SELECT {columns}, {tx_column}, 9223372036854775807 FROM {table} WHERE {after} \
             {order} LIMIT $3"
        ),
        Backend::Postgres => format!(
            "WITH h AS MATERIALIZED (SELECT {PG_HORIZON} AS horizon) \
             (SELECT {columns}, {tx_column}, h.horizon FROM {table}, h \
              WHERE {after} AND {tx_column} < h.horizon {order} LIMIT $3) \
             UNION ALL \
             (SELECT {columns}, {tx_column}, h.horizon FROM {table}, h \
              WHERE {after} AND {tx_column} >= h.horizon {order} LIMIT 1)"
        ),
    }
}

/// Splits rows read with [`page_sql`] (whose last two columns are the transaction and the
/// horizon) into a page, parsing each final row with `parse`.
pub(crate) fn page<T>(
    rows: &[sqlx::any::AnyRow],
    id_index: usize,
    parse: impl Fn(&sqlx::any::AnyRow) -> StoreResult<T>,
) -> StoreResult<LogPage<T>> {
    let mut page = LogPage {
        rows: Vec::with_capacity(rows.len()),
        held_back: false,
    };
    for row in rows {
        let n = row.len();
        let tx: i64 = row.try_get(n - 2)?;
        let horizon: i64 = row.try_get(n - 1)?;
        if tx >= horizon {
            page.held_back = true;
            continue;
        }
        let id: i64 = row.try_get(id_index)?;
        page.rows.push((LogPosition { tx, id }, parse(row)?));
    }
    page.rows.sort_by_key(|(p, _)| *p);
    Ok(page)
}

/// The position of the newest row of `table` with an id at or below `id` (what a client that
/// saw row `id` has seen), or [`LogPosition::START`].
pub(crate) async fn position_of(
    pool: &AnyPool,
    table: &str,
    filter: &str,
    id: i64,
) -> StoreResult<LogPosition> {
    if id <= 0 {
        return Ok(LogPosition::START);
    }
    let and = if filter.is_empty() {
        String::new()
    } else {
        format!(" AND {filter}")
    };
    let row = sqlx::query(&format!(
        "SELECT tx_id, id FROM {table} WHERE id <= $1{and} ORDER BY id DESC LIMIT 1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => LogPosition {
            tx: r.try_get(0)?,
            id: r.try_get(1)?,
        },
        None => LogPosition::START,
    })
}

/// The position of the last final row of `table` (where a follower that starts now begins).
pub(crate) async fn end_of(
    pool: &AnyPool,
    backend: Backend,
    table: &str,
    filter: &str,
) -> StoreResult<LogPosition> {
    let and = if filter.is_empty() {
        String::new()
    } else {
        format!(" AND {filter}")
    };
    let sql = match backend {
        Backend::Sqlite => format!(
            "SELECT tx_id, id FROM {table} WHERE 1 = 1{and} ORDER BY tx_id DESC, id DESC LIMIT 1"
        ),
        Backend::Postgres => format!(
            "SELECT tx_id, id FROM {table} WHERE tx_id < {PG_HORIZON}{and} \
             ORDER BY tx_id DESC, id DESC LIMIT 1"
        ),
    };
    let row = sqlx::query(&sql).fetch_optional(pool).await?;
    Ok(match row {
        Some(r) => LogPosition {
            tx: r.try_get(0)?,
            id: r.try_get(1)?,
        },
        None => LogPosition::START,
    })
}

/// What a transaction that appends incident events or push notifications orders itself by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order<'a> {
    /// The incidents of these owners ([`DeviceEvent::owner_key`]: an elder, or a device that
    /// has none); each is locked once, in ascending order.
    ///
    /// [`DeviceEvent::owner_key`]: crate::domain::DeviceEvent::owner_key
    Owners(&'a [i64]),
    /// This incident's owner.
    Incident(i64),
    /// Nothing of an incident (pushes only, or a claim that only needs SQLite's write lock).
    Unlocked,
}

/// The PostgreSQL channel every transaction that appends incident events or push notifications
/// notifies on commit; each instance listens and its followers read on (`notify/follow.rs`).
pub const COMMITS_CHANNEL: &str = "onekey_commits";

/// Begins a transaction that will append incident events or push notifications.
///
/// On PostgreSQL, in one round trip before anything is written: the transaction locks of
/// `order`'s owners (so that of two transactions on one elder the later gets the higher
/// transaction id), and a `NOTIFY` on [`COMMITS_CHANNEL`], which PostgreSQL delivers to every
/// listening instance when (and only if) the transaction commits. On SQLite it takes the write
/// lock before the first read.
pub(crate) async fn begin_ordered(store: &Store, order: Order<'_>) -> StoreResult<WriteTx> {
    in_order(store.begin_write().await?, store.backend(), order).await
}

/// [`begin_ordered`] for the intake, whose turn on SQLite comes before every other writer's.
pub(crate) async fn begin_ordered_intake(store: &Store, order: Order<'_>) -> StoreResult<WriteTx> {
    in_order(store.begin_intake_write().await?, store.backend(), order).await
}

async fn in_order(mut tx: WriteTx, backend: Backend, order: Order<'_>) -> StoreResult<WriteTx> {
    match backend {
        Backend::Postgres => {
            let notify = format!("pg_notify('{COMMITS_CHANNEL}', '')");
            match order {
                Order::Owners(owners) => {
                    let mut keys = owners.to_vec();
                    keys.sort_unstable();
                    keys.dedup();
                    let list = keys
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                    sqlx::query(&format!(
                        "SELECT count(pg_advisory_xact_lock({ELDER_LOCKS}, (k % 2147483647)::int)), \
                         {notify} FROM unnest(string_to_array($1, ',')::bigint[]) AS k"
                    ))
                    .bind(list)
                    .execute(&mut *tx)
                    .await?;
                }
                Order::Incident(id) => {
                    sqlx::query(&format!(
                        "SELECT count(pg_advisory_xact_lock({ELDER_LOCKS}, \
                         (COALESCE(elder_id, -device_id, -id) % 2147483647)::int)), {notify} \
                         FROM incidents WHERE id = $1"
                    ))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                Order::Unlocked => {
                    sqlx::query(&format!("SELECT {notify}"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        // Take SQLite's write lock before the first read (like BEGIN IMMEDIATE): a deferred
        // transaction that reads and then writes cannot wait for a concurrent writer and fails
        // with "database is locked"; waiting here honours busy_timeout instead.
        Backend::Sqlite => {
            sqlx::query("UPDATE incidents SET id = id WHERE 0 = 1")
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(tx)
}

/// The first key of the owners' transaction locks (`pg_advisory_xact_lock(int, int)`).
const ELDER_LOCKS: i32 = 1249;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_transaction_then_id() {
        let a = LogPosition { tx: 7, id: 90 };
        let b = LogPosition { tx: 8, id: 10 };
        let c = LogPosition { tx: 8, id: 11 };
        assert!(LogPosition::START < a && a < b && b < c);
    }

    #[test]
    fn the_postgres_page_reads_final_rows_and_the_first_held_back_one() {
        let sql = page_sql(Backend::Postgres, "id, kind", "t", "", "id", "tx_id");
        assert!(sql.contains("tx_id < h.horizon ORDER BY tx_id, id LIMIT $3"));
        assert!(sql.contains("tx_id >= h.horizon ORDER BY tx_id, id LIMIT 1"));
        let sql = page_sql(
            Backend::Sqlite,
            "id",
            "t",
            "channel = 'push'",
            "id",
            "tx_id",
        );
        assert!(sql.contains("(tx_id, id) > ($1, $2) AND channel = 'push'"));
        assert!(!sql.contains("UNION"));
    }
}
