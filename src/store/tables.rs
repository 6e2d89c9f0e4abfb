//! Paged, searchable lists of the directory for the console's tables, with the names an operator
//! reads (grid, elder) instead of ids. `q` matches names, addresses, phones and identities,
//! case-insensitively; disabled records are included and flagged.

use sqlx::Row;

use super::rows::{self, DEVICE_COLUMNS, ELDER_COLUMNS, RESPONDER_COLUMNS};
use super::{Store, StoreResult};
use crate::domain::{Device, Elder, Responder};

/// One page of a list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Rows matching the search, over all pages.
    pub total: i64,
    /// Index of the first row of this page.
    pub offset: i64,
    /// This page's rows.
    pub items: Vec<T>,
}

/// An elder with the names the table shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ElderEntry {
    /// The record.
    pub elder: Elder,
    /// Grid name.
    pub grid_name: Option<String>,
    /// Devices registered for the elder.
    pub devices: i64,
}

/// A device with its elder and grid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeviceEntry {
    /// The record.
    pub device: Device,
    /// The elder's name.
    pub elder_name: Option<String>,
    /// The elder's grid.
    pub grid_name: Option<String>,
}

/// A responder with their grid and tasks in hand.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ResponderEntry {
    /// The record.
    pub responder: Responder,
    /// Grid name.
    pub grid_name: Option<String>,
    /// Tasks accepted and not yet completed.
    pub load: i64,
}

/// Paging and search.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct TableQuery {
    /// Search text.
    pub q: Option<String>,
    /// First row (default 0).
    pub offset: Option<i64>,
    /// Rows per page (default 50, at most 500).
    pub limit: Option<i64>,
    /// Only this grid.
    pub grid_id: Option<i64>,
}

impl TableQuery {
    fn pattern(&self) -> String {
        let q = self.q.as_deref().unwrap_or("").trim().to_lowercase();
        let escaped: String = q
            .chars()
            .filter(|c| !matches!(c, '%' | '_' | '\\'))
            .collect();
        format!("%{escaped}%")
    }
    fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    async fn count(&self, sql: &str, q: &TableQuery) -> StoreResult<i64> {
        let row = sqlx::query(sql)
            .bind(q.pattern())
            .bind(q.grid_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Elders by name.
    pub async fn elder_table(&self, q: &TableQuery) -> StoreResult<Page<ElderEntry>> {
        let filter = "FROM elders e LEFT JOIN areas a ON a.id = e.grid_id \
             WHERE (LOWER(e.name) LIKE $1 OR LOWER(e.address) LIKE $1 OR LOWER(COALESCE(e.phone, '')) LIKE $1 \
             OR LOWER(COALESCE(a.name, '')) LIKE $1) AND ($2 IS NULL OR e.grid_id = $2)";
        let total = self.count(&format!("SELECT COUNT(*) {filter}"), q).await?;
        let sql = format!(
            "SELECT {}, a.name AS grid_name, (SELECT COUNT(*) FROM devices d WHERE d.elder_id = e.id) AS n_devices \
             {filter} ORDER BY e.name, e.id LIMIT $3 OFFSET $4",
            prefixed(ELDER_COLUMNS, "e")
        );
        let rows = sqlx::query(&sql)
            .bind(q.pattern())
            .bind(q.grid_id)
            .bind(q.limit())
            .bind(q.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(ElderEntry {
                    elder: self.elder(r)?,
                    grid_name: r.try_get("grid_name")?,
                    devices: r.try_get("n_devices")?,
                })
            })
            .collect::<super::StoreResult<_>>()?;
        Ok(Page {
            total,
            offset: q.offset(),
            items,
        })
    }

    /// Devices by identity.
    pub async fn device_table(&self, q: &TableQuery) -> StoreResult<Page<DeviceEntry>> {
        let filter = "FROM devices d LEFT JOIN elders e ON e.id = d.elder_id LEFT JOIN areas a ON a.id = e.grid_id \
             WHERE (LOWER(d.ident) LIKE $1 OR LOWER(d.model) LIKE $1 OR LOWER(d.protocol) LIKE $1 \
             OR LOWER(COALESCE(e.name, '')) LIKE $1 OR LOWER(COALESCE(a.name, '')) LIKE $1) \
             AND ($2 IS NULL OR e.grid_id = $2)";
        let total = self.count(&format!("SELECT COUNT(*) {filter}"), q).await?;
        let sql = format!(
            "SELECT {}, e.name AS elder_name, a.name AS grid_name {filter} \
             ORDER BY d.id LIMIT $3 OFFSET $4",
            prefixed(DEVICE_COLUMNS, "d")
        );
        let rows = sqlx::query(&sql)
            .bind(q.pattern())
            .bind(q.grid_id)
            .bind(q.limit())
            .bind(q.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(DeviceEntry {
                    device: rows::device(r)?,
                    elder_name: r.try_get("elder_name")?,
                    grid_name: r.try_get("grid_name")?,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        Ok(Page {
            total,
            offset: q.offset(),
            items,
        })
    }

    /// Responders by name.
    pub async fn responder_table(&self, q: &TableQuery) -> StoreResult<Page<ResponderEntry>> {
        let filter = "FROM responders r LEFT JOIN areas a ON a.id = r.grid_id \
             WHERE (LOWER(r.name) LIKE $1 OR LOWER(r.phone) LIKE $1 OR LOWER(COALESCE(r.team, '')) LIKE $1 \
             OR LOWER(r.kind) LIKE $1 OR LOWER(COALESCE(a.name, '')) LIKE $1) AND ($2 IS NULL OR r.grid_id = $2)";
        let total = self.count(&format!("SELECT COUNT(*) {filter}"), q).await?;
        let sql = format!(
            "SELECT {}, a.name AS grid_name, (SELECT COUNT(*) FROM dispatch_offers o WHERE o.responder_id = r.id \
             AND o.status IN ('accepted', 'arrived')) AS n_load {filter} ORDER BY r.name, r.id LIMIT $3 OFFSET $4",
            prefixed(RESPONDER_COLUMNS, "r")
        );
        let rows = sqlx::query(&sql)
            .bind(q.pattern())
            .bind(q.grid_id)
            .bind(q.limit())
            .bind(q.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(ResponderEntry {
                    responder: rows::responder(r)?,
                    grid_name: r.try_get("grid_name")?,
                    load: r.try_get("n_load")?,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        Ok(Page {
            total,
            offset: q.offset(),
            items,
        })
    }

    /// Enables or disables an elder (a disabled elder's welfare timer is cancelled in the same
    /// transaction), a responder (their sessions end and dispatch stops offering to them) or an
    /// operator (their sessions end). Returns whether the record exists.
    pub async fn set_active(&self, table: ActiveTable, id: i64, active: bool) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let name = match table {
            ActiveTable::Elders => "elders",
            ActiveTable::Responders => "responders",
            ActiveTable::Operators => "operators",
        };
        // Operators are disabled through their `disabled` flag (one flag, also used by the
        // security line's account updates).
        let sql = if table == ActiveTable::Operators {
            "UPDATE operators SET disabled = 1 - $2 WHERE id = $1".to_string()
        } else {
            format!("UPDATE {name} SET active = $2 WHERE id = $1")
        };
        let r = sqlx::query(&sql)
            .bind(id)
            .bind(i64::from(active))
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        if !active {
            match table {
                ActiveTable::Elders => {
                    sqlx::query("DELETE FROM dispatch_timers WHERE key = $1 AND fired_at IS NULL")
                        .bind(super::welfare_key(id))
                        .execute(&mut *tx)
                        .await?;
                }
                ActiveTable::Responders | ActiveTable::Operators => {
                    let kind = if table == ActiveTable::Responders {
                        "responder"
                    } else {
                        "operator"
                    };
                    sqlx::query("DELETE FROM sessions WHERE subject_kind = $1 AND subject_id = $2")
                        .bind(kind)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if table == ActiveTable::Responders {
                        sqlx::query("UPDATE responders SET on_duty = 0 WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The records that can be disabled without deleting them (devices have their own `enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveTable {
    /// `elders`.
    Elders,
    /// `responders`.
    Responders,
    /// `operators`.
    Operators,
}
