//! Receipts from responders' apps: a pushed message was received (over MQTT on
//! `<prefix>/responder/<id>/receipt`, or by the browser app through the API). A received offer is
//! logged on its incident (`offer_received`), so the console shows it live; every receipt marks
//! its notification delivered, which stops its fallback (the SMS that would follow).

use crate::domain::Millis;
use crate::notify::ConsoleHub;
use crate::store::{Store, StoreResult};

/// Confirms `ids` for `responder_id` (only their own, only once); returns how many were new.
pub async fn confirm(
    store: &Store,
    console: &ConsoleHub,
    responder_id: i64,
    ids: &[i64],
    now: Millis,
) -> StoreResult<usize> {
    let confirmed = store.push_receipts(responder_id, ids, now).await?;
    for n in &confirmed {
        metrics::counter!("onekey_push_receipts_total", "purpose" => n.purpose.clone())
            .increment(1);
        metrics::histogram!("onekey_push_receipt_seconds")
            .record((now - n.created_at).max(0) as f64 / 1000.0);
        if n.purpose != "offer" {
            continue;
        }
        if let Some(incident) = n.incident_id {
            let detail = serde_json::json!({ "responder_id": responder_id, "notification_id": n.id,
                "after_ms": now - n.created_at });
            if let Some(e) = store
                .log_incident_event(
                    incident,
                    "offer_received",
                    &format!("responder:{responder_id}"),
                    detail,
                    now,
                )
                .await?
            {
                console.publish([e]);
            }
        }
    }
    Ok(confirmed.len())
}
