//! Reads for the console's reports and fleet pages: plain rows, aggregated by `web::reports` and
//! `web::fleet` in Rust so that the same queries run on SQLite and PostgreSQL.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::Millis;

/// The clocks of one incident, and what raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentTimes {
    /// `emergency`, `service`, `technical`, `welfare`.
    pub category: String,
    /// When the alarm reached the server.
    pub received_at: Millis,
    /// Operator acknowledgement.
    pub acked_at: Option<Millis>,
    /// First responder accepted.
    pub accepted_at: Option<Millis>,
    /// Someone with the elder.
    pub on_scene_at: Option<Millis>,
    /// Closed.
    pub closed_at: Option<Millis>,
    /// Closing outcome.
    pub outcome: Option<String>,
    /// The device cancelled within the cancel window.
    pub probable_false_alarm: bool,
    /// Model of the device that raised it.
    pub model: Option<String>,
}

/// An operator account, without its password.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OperatorRow {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// `admin` or `operator`.
    pub role: String,
    /// Created.
    pub created_at: Millis,
}

/// A responder an incident was offered to, with their live position, for the incident page's map.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IncidentOffer {
    /// The responder.
    pub responder_id: i64,
    /// Their name.
    pub name: String,
    /// `volunteer`, `grid_worker`…
    pub kind: String,
    /// The role they were asked to fill.
    pub role: String,
    /// `pending`, `accepted`, `arrived`, `completed`, `declined`, `expired`, `withdrawn`.
    pub status: String,
    /// When offered.
    pub sent_at: Millis,
    /// Live latitude (home when unknown).
    pub lat: Option<f64>,
    /// Live longitude (home when unknown).
    pub lon: Option<f64>,
}

impl Store {
    /// Everyone an incident was offered to, in offer order.
    pub async fn incident_offers(&self, incident_id: i64) -> StoreResult<Vec<IncidentOffer>> {
        let rows = sqlx::query(
            "SELECT o.responder_id, r.name, r.kind, o.role, o.status, o.sent_at, \
             COALESCE(r.lat, r.home_lat), COALESCE(r.lon, r.home_lon) \
             FROM dispatch_offers o JOIN responders r ON r.id = o.responder_id \
             WHERE o.incident_id = $1 ORDER BY o.sent_at, o.id",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentOffer {
                    responder_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    role: r.try_get(3)?,
                    status: r.try_get(4)?,
                    sent_at: r.try_get(5)?,
                    lat: r.try_get(6)?,
                    lon: r.try_get(7)?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// The clocks of every incident received in `[since, until)`.
    pub async fn incident_times(
        &self,
        since: Millis,
        until: Millis,
    ) -> StoreResult<Vec<IncidentTimes>> {
        let rows = sqlx::query(
            "SELECT i.category, i.received_at, i.acked_at, i.accepted_at, i.on_scene_at, \
             i.closed_at, i.outcome, i.probable_false_alarm, d.model \
             FROM incidents i LEFT JOIN devices d ON d.id = i.device_id \
             WHERE i.received_at >= $1 AND i.received_at < $2 ORDER BY i.id",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentTimes {
                    category: r.try_get(0)?,
                    received_at: r.try_get(1)?,
                    acked_at: r.try_get(2)?,
                    accepted_at: r.try_get(3)?,
                    on_scene_at: r.try_get(4)?,
                    closed_at: r.try_get(5)?,
                    outcome: r.try_get(6)?,
                    probable_false_alarm: r.try_get::<i64, _>(7)? != 0,
                    model: r.try_get(8)?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Devices with an open tamper or removal incident.
    pub async fn tampered_devices(&self) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT device_id FROM incidents \
             WHERE status <> 'closed' AND kind IN ('tamper', 'removal') AND device_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Operator accounts, by name.
    pub async fn list_operators(&self) -> StoreResult<Vec<OperatorRow>> {
        let rows = sqlx::query("SELECT id, name, role, created_at FROM operators ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OperatorRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
