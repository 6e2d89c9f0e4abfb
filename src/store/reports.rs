//! Reads for the console's reports and fleet pages: plain rows, aggregated by `web::reports` and
//! `web::fleet` in Rust so that the same queries run on SQLite and PostgreSQL.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::Millis;

/// The clocks of one incident, what raised it and who handled it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentTimes {
    /// Incident id.
    pub id: i64,
    /// What raised it (`sos`, `fall`…).
    pub kind: String,
    /// The elder's name.
    pub elder_name: Option<String>,
    /// The elder's grid.
    pub grid_name: Option<String>,
    /// Its id (what an operator's scope is checked against).
    pub grid_id: Option<i64>,
    /// The operator who acknowledged it.
    pub acked_by: Option<String>,
    /// The operator who closed it.
    pub closed_by: Option<String>,
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
    /// `admin`, `dispatcher` or `viewer`.
    pub role: String,
    /// Created.
    pub created_at: Millis,
    /// Disabled accounts cannot log in and have no sessions.
    pub disabled: bool,
    /// The area the operator is limited to, if any.
    pub scope_area_id: Option<i64>,
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
    /// When it was answered.
    pub answered_at: Option<Millis>,
    /// Live latitude (home when unknown).
    pub lat: Option<f64>,
    /// Live longitude (home when unknown).
    pub lon: Option<f64>,
    /// When the offer lapses unless answered (the console counts it down).
    pub expires_at: Millis,
    /// Their phone.
    pub phone: String,
    /// Where the offer's message stands: `pending` (queued), `sent` (the broker or SMS centre
    /// has it), `delivered` (the app or handset confirmed), `failed`.
    pub delivery: Option<super::DeliveryStatus>,
    /// How it went: `push` (the app) or `sms`.
    pub delivery_channel: Option<super::Channel>,
}

impl Store {
    /// Everyone an incident was offered to, in offer order.
    pub async fn incident_offers(&self, incident_id: i64) -> StoreResult<Vec<IncidentOffer>> {
        let rows = sqlx::query(
            "SELECT o.responder_id, r.name, r.kind, o.role, o.status, o.sent_at, \
             COALESCE(r.lat, r.home_lat), COALESCE(r.lon, r.home_lon), o.expires_at, o.answered_at, r.phone \
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
                    expires_at: r.try_get(8)?,
                    answered_at: r.try_get(9)?,
                    phone: r.try_get(10)?,
                    delivery: None,
                    delivery_channel: None,
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
             i.closed_at, i.outcome, i.probable_false_alarm, d.model, i.id, i.kind, e.name, a.name, \
             i.acked_by, i.closed_by, e.grid_id \
             FROM incidents i LEFT JOIN devices d ON d.id = i.device_id \
             LEFT JOIN elders e ON e.id = i.elder_id LEFT JOIN areas a ON a.id = e.grid_id \
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
                    id: r.try_get(9)?,
                    kind: r.try_get(10)?,
                    elder_name: r.try_get(11)?,
                    grid_name: r.try_get(12)?,
                    acked_by: r.try_get(13)?,
                    closed_by: r.try_get(14)?,
                    grid_id: r.try_get(15)?,
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
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, disabled, scope_area_id FROM operators ORDER BY name",
        )
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OperatorRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    disabled: r.try_get::<i64, _>(4)? != 0,
                    scope_area_id: r.try_get(5)?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
