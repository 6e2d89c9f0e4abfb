//! The incident event log: append-only (triggers refuse UPDATE and DELETE), ordered by id.
//!
//! Appending an event that the dispatch engine must act on (an incident opened, an alarm joined, a
//! device cancel, an operator's acknowledgement or close) also queues it in the dispatch inbox, in
//! the same transaction: a `dispatch_timers` row `incident:<id>/event:<event id>`. The instance
//! that committed it steps the engine at once and consumes the row in that step's transaction; if
//! it dies first, any instance's timer loop finds the row after [`INBOX_GRACE_MS`] and steps it.
//! So no input is lost between a commit and its dispatch step, and none is applied twice.

use sqlx::{Any, Row, Transaction};

use super::StoreResult;
use crate::domain::{IncidentEvent, Millis};

/// Event kinds that are inputs of the dispatch engine.
pub const DISPATCH_INPUTS: [&str; 5] = [
    "opened",
    "alarm_joined",
    "device_cancelled",
    "acknowledged",
    "closed",
];

/// How long (wall clock) an inbox entry waits for the committing instance before any instance
/// takes it.
pub const INBOX_GRACE_MS: Millis = 2_000;

/// The inbox timer's name for incident event `event_id`.
pub fn inbox_name(event_id: i64) -> String {
    format!("event:{event_id}")
}

/// The incident event an inbox timer name stands for.
pub fn inbox_event(name: &str) -> Option<i64> {
    name.strip_prefix("event:")?.parse().ok()
}

/// Appends one entry to an incident's log (and to the dispatch inbox when it is an input).
pub(crate) async fn append_event(
    tx: &mut Transaction<'static, Any>,
    incident_id: i64,
    at: Millis,
    kind: &str,
    actor: &str,
    detail: serde_json::Value,
) -> StoreResult<IncidentEvent> {
    let row = sqlx::query(
        "INSERT INTO incident_events (incident_id, at, kind, actor, detail) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(incident_id)
    .bind(at)
    .bind(kind)
    .bind(actor)
    .bind(detail.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get(0)?;
    if DISPATCH_INPUTS.contains(&kind) {
        let name = inbox_name(id);
        sqlx::query(
            "INSERT INTO dispatch_timers (key, incident_id, name, due_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(super::timer_key(incident_id, &name))
        .bind(incident_id)
        .bind(&name)
        .bind(at.saturating_add(crate::domain::wall_span(INBOX_GRACE_MS)))
        .execute(&mut **tx)
        .await?;
    }
    Ok(IncidentEvent {
        id,
        incident_id,
        at,
        kind: kind.to_string(),
        actor: actor.to_string(),
        detail,
    })
}
