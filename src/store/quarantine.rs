//! Events the store keeps refusing. An alarm the database will never take (it breaks a constraint,
//! say) must neither be lost nor leave its device retrying for ever: it is kept whole with the
//! refusal, and its elder's incident is opened (or joined) with an operator called to it, in one
//! transaction. Only then is the device ACKed.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::{Category, DeviceEvent, EventBody, IncidentEvent, Millis};

/// The attention reason an operator sees on a quarantined event's incident.
pub const UNSTORABLE: &str = "unstorable_event";

/// Everything the event said, as kept with the refusal.
fn event_json(e: &DeviceEvent) -> serde_json::Value {
    serde_json::json!({
        "device_id": e.device_id,
        "elder_id": e.elder_id,
        "dedup_key": e.dedup_key,
        "seq": e.seq,
        "device_time": e.device_time,
        "received_at": e.received_at,
        "raw_code": e.raw_code,
        "raw_frame": e.raw.as_ref().map(hex::encode),
        "body": format!("{:?}", e.body),
    })
}

/// The incident category and kind an event would open.
fn category_and_kind(body: &EventBody) -> (Category, &'static str) {
    match body {
        EventBody::Alarm { kind, .. } => (Category::of_alarm(*kind), kind.as_str()),
        _ => (Category::Technical, UNSTORABLE),
    }
}

impl Store {
    /// True when `device_id`'s event `dedup_key` was quarantined already (a retry of it).
    pub async fn is_quarantined(&self, device_id: i64, dedup_key: &str) -> StoreResult<bool> {
        let row =
            sqlx::query("SELECT 1 FROM quarantined_events WHERE device_id = $1 AND dedup_key = $2")
                .bind(device_id)
                .bind(dedup_key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Keeps `event`, refused `attempts` times with `error`, and calls an operator to its elder's
    /// incident of the event's category (opened now unless one is open), all in one transaction.
    /// Returns the incident events to publish (none when the event was kept already, or its device
    /// has no elder), and whether it was kept by this call.
    pub async fn quarantine_event(
        &self,
        event: &DeviceEvent,
        error: &str,
        attempts: u32,
        at: Millis,
    ) -> StoreResult<(bool, Vec<IncidentEvent>)> {
        let owner = [event.owner_key()];
        let mut tx = super::begin_ordered(self, super::Order::Owners(&owner)).await?;
        let kept = sqlx::query(
            "INSERT INTO quarantined_events (device_id, elder_id, dedup_key, raw_code, event, \
             error, attempts, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (device_id, dedup_key) DO NOTHING RETURNING id",
        )
        .bind(event.device_id)
        .bind(event.elder_id)
        .bind(&event.dedup_key)
        .bind(&event.raw_code)
        .bind(event_json(event).to_string())
        .bind(error)
        .bind(i64::from(attempts))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(kept) = kept else {
            return Ok((false, Vec::new()));
        };
        let kept_id: i64 = kept.try_get(0)?;
        let Some(elder_id) = event.elder_id else {
            tx.commit().await?;
            return Ok((true, Vec::new()));
        };
        let (category, kind) = category_and_kind(&event.body);
        let mut published = Vec::new();
        let opened = super::dispatch::open_incident(
            &mut tx,
            elder_id,
            Some(event.device_id),
            category,
            kind,
            event.received_at,
            at,
        )
        .await?;
        let detail = serde_json::json!({
            "quarantined_event_id": kept_id,
            "device_id": event.device_id,
            "kind": kind,
            "raw_code": event.raw_code,
            "raw_frame": event.raw.as_ref().map(hex::encode),
            "error": error,
            "attempts": attempts,
        });
        let incident_id: i64 = match opened {
            Some(id) => {
                published.push(
                    super::events::append_event(
                        &mut tx,
                        id,
                        at,
                        "opened",
                        &format!("device:{}", event.device_id),
                        detail.clone(),
                    )
                    .await?,
                );
                id
            }
            None => {
                let row = sqlx::query("SELECT id FROM incidents WHERE open_key = $1")
                    .bind(super::dispatch::open_key(elder_id, category))
                    .fetch_one(&mut *tx)
                    .await?;
                row.try_get(0)?
            }
        };
        published.extend(
            super::notifications::raise_attention(&mut tx, incident_id, UNSTORABLE, detail, at)
                .await?,
        );
        sqlx::query("UPDATE quarantined_events SET incident_id = $2 WHERE id = $1")
            .bind(kept_id)
            .bind(incident_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((true, published))
    }
}
