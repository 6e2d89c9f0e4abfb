//! The incident event log: append-only (triggers refuse UPDATE and DELETE), ordered by id.
//!
//! Appending an event that the dispatch engine must act on (an incident opened, an alarm joined, a
//! device cancel, an operator's acknowledgement or close) also queues it in the dispatch inbox, in
//! the same transaction: a `dispatch_timers` row `incident:<id>/event:<event id>`. The instance
//! that committed it steps the engine at once and consumes the row in that step's transaction; if
//! it dies first, any instance's timer loop finds the row after [`INBOX_GRACE_MS`] and steps it.
//! So no input is lost between a commit and its dispatch step, and none is applied twice.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::json_rows::{self, Col};
use super::{Backend, StoreResult};
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
    tx: &mut AnyConnection,
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
    .fetch_one(&mut *tx)
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
        .execute(&mut *tx)
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

/// One entry for [`append_events`].
pub(crate) struct NewEntry {
    /// The incident whose log it joins.
    pub incident_id: i64,
    /// Its kind (`opened`, `device_cancelled`…).
    pub kind: &'static str,
    /// Who wrote it.
    pub actor: String,
    /// What it says.
    pub detail: serde_json::Value,
}

/// Appends many entries at `at` in a constant number of statements (two or three per group of
/// distinct incidents: the entries, and their dispatch inbox rows), returning them in the order
/// given, and adds the statements sent to `statements`. Entries of the same incident are appended
/// in their order, in separate groups.
pub(crate) async fn append_events(
    tx: &mut AnyConnection,
    backend: Backend,
    at: Millis,
    entries: Vec<NewEntry>,
    statements: &mut u32,
) -> StoreResult<Vec<IncidentEvent>> {
    let mut out: Vec<Option<IncidentEvent>> = (0..entries.len()).map(|_| None).collect();
    let mut pending: Vec<(usize, NewEntry)> = entries.into_iter().enumerate().collect();
    let insert = format!(
        "INSERT INTO incident_events (incident_id, at, kind, actor, detail) \
         SELECT t.inc, $2, t.kd, t.ac, t.dt FROM {} ORDER BY t.i RETURNING id, incident_id",
        json_rows::table(
            backend,
            1,
            &[
                ("i", Col::Int),
                ("inc", Col::Int),
                ("kd", Col::Text),
                ("ac", Col::Text),
                ("dt", Col::Text),
            ],
        )
    );
    let inbox = format!(
        "INSERT INTO dispatch_timers (key, incident_id, name, due_at) \
         SELECT t.k, t.inc, t.nm, t.due FROM {} WHERE true ON CONFLICT (key) DO NOTHING",
        json_rows::table(
            backend,
            1,
            &[
                ("k", Col::Text),
                ("inc", Col::Int),
                ("nm", Col::Text),
                ("due", Col::Int),
            ],
        )
    );
    while !pending.is_empty() {
        // A group holds each incident once, so a returned row names its entry.
        let mut seen = HashSet::with_capacity(pending.len());
        let (group, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, e)| seen.insert(e.incident_id));
        pending = rest;
        let details: Vec<String> = group.iter().map(|(_, e)| e.detail.to_string()).collect();
        let rows: Vec<(usize, i64, &str, &str, &str)> = group
            .iter()
            .zip(&details)
            .map(|((i, e), d)| (*i, e.incident_id, e.kind, e.actor.as_str(), d.as_str()))
            .collect();
        *statements += 1;
        let returned = sqlx::query(&insert)
            .bind(json_rows::encode(&rows))
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = HashMap::with_capacity(returned.len());
        for row in returned {
            ids.insert(row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(0)?);
        }
        let due = at.saturating_add(crate::domain::wall_span(INBOX_GRACE_MS));
        let mut inbox_rows = Vec::new();
        for (i, e) in group {
            let id = *ids.get(&e.incident_id).ok_or_else(|| {
                super::StoreError::Invalid(format!(
                    "no log entry returned for incident {}",
                    e.incident_id
                ))
            })?;
            if DISPATCH_INPUTS.contains(&e.kind) {
                let name = inbox_name(id);
                inbox_rows.push((
                    super::timer_key(e.incident_id, &name),
                    e.incident_id,
                    name,
                    due,
                ));
            }
            out[i] = Some(IncidentEvent {
                id,
                incident_id: e.incident_id,
                at,
                kind: e.kind.to_string(),
                actor: e.actor,
                detail: e.detail,
            });
        }
        if !inbox_rows.is_empty() {
            *statements += 1;
            sqlx::query(&inbox)
                .bind(json_rows::encode(&inbox_rows))
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(out.into_iter().flatten().collect())
}
