//! The log of what devices sent, page by page in storage order: the proof that every alarm a
//! device had ACKed is stored exactly once (a simulated day's check, an auditor's export).

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::Millis;

/// One stored device event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeviceLogRow {
    /// Row id (pages are ordered by it).
    pub id: i64,
    /// The device's row id.
    pub device_id: i64,
    /// Its identity on the wire.
    pub ident: String,
    /// Its protocol.
    pub protocol: String,
    /// The event (`sos`, `fall`, `cancel`, `check_in`, `daily_care`…).
    pub kind: String,
    /// The code as the protocol sent it.
    pub raw_code: String,
    /// The device's own timestamp, when it sent one.
    pub device_time: Option<Millis>,
    /// When the frame arrived.
    pub received_at: Millis,
    /// When it was committed (before the ACK).
    pub stored_at: Millis,
    /// The incident it opened or joined, if any.
    pub incident_id: Option<i64>,
}

impl Store {
    /// Up to `limit` device events stored after row `after`, oldest first.
    pub async fn device_log_after(&self, after: i64, limit: i64) -> StoreResult<Vec<DeviceLogRow>> {
        let rows = sqlx::query(
            "SELECT e.id, e.device_id, d.ident, d.protocol, e.kind, e.raw_code, e.device_time, \
             e.received_at, e.stored_at, e.incident_id \
             FROM device_events e JOIN devices d ON d.id = e.device_id \
             WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceLogRow {
                    id: r.try_get(0)?,
                    device_id: r.try_get(1)?,
                    ident: r.try_get(2)?,
                    protocol: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    raw_code: r.try_get(5)?,
                    device_time: r.try_get(6)?,
                    received_at: r.try_get(7)?,
                    stored_at: r.try_get(8)?,
                    incident_id: r.try_get(9)?,
                })
            })
            .collect()
    }
}
