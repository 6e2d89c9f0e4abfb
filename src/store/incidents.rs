//! Incident queries and the operator actions on them. Every action appends to the event log in the
//! same transaction as the state change it records.

use serde_json::json;

use super::log_order::{self, LogPage, LogPosition};
use super::rows::{self, INCIDENT_COLUMNS};
use super::{Order, Store, StoreError, StoreResult, begin_ordered, events::append_event};
use crate::domain::{Category, Incident, IncidentEvent, IncidentStatus, Millis, Outcome};

/// Filters for listing incidents; all optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct IncidentFilter {
    /// Only this status; `open` means any but closed.
    #[param(value_type = Option<String>, pattern = "^(open|new|acknowledged|dispatching|accepted|on_scene|closed)$")]
    pub status: Option<String>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only this elder's incidents.
    pub elder_id: Option<i64>,
    /// Only incidents received at or after this time (ms).
    pub since: Option<Millis>,
    /// Page through every incident in id order: only those with an id above this, oldest first
    /// (then the urgency order above does not apply).
    pub after: Option<i64>,
    /// At most this many (default 100; smaller values count as 1, larger as 1000).
    pub limit: Option<i64>,
}

impl Store {
    /// Lists incidents, most urgent and oldest first for open ones, newest first otherwise.
    pub async fn list_incidents(&self, f: &IncidentFilter) -> StoreResult<Vec<Incident>> {
        let mut sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let status = f.status.as_deref();
        match status {
            Some("open") => sql.push_str(" AND status <> 'closed'"),
            Some(s) => {
                IncidentStatus::parse(s)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown status {s:?}")))?;
                sql.push_str(&format!(" AND status = ${}", next()));
            }
            None => {}
        }
        if f.category.is_some() {
            sql.push_str(&format!(" AND category = ${}", next()));
        }
        if f.elder_id.is_some() {
            sql.push_str(&format!(" AND elder_id = ${}", next()));
        }
        if f.since.is_some() {
            sql.push_str(&format!(" AND received_at >= ${}", next()));
        }
        if f.after.is_some() {
            sql.push_str(&format!(" AND id > ${} ORDER BY id", next()));
        } else {
            sql.push_str(" ORDER BY (CASE WHEN status = 'closed' THEN 1 ELSE 0 END), ");
            sql.push_str(
                "(CASE WHEN status = 'closed' THEN -received_at ELSE priority END), received_at",
            );
        }
        sql.push_str(&format!(" LIMIT ${}", next()));
        let mut q = sqlx::query(&sql);
        if let Some(s) = status.filter(|s| *s != "open") {
            q = q.bind(s);
        }
        if let Some(c) = f.category {
            q = q.bind(c.as_str());
        }
        if let Some(e) = f.elder_id {
            q = q.bind(e);
        }
        if let Some(t) = f.since {
            q = q.bind(t);
        }
        if let Some(a) = f.after {
            q = q.bind(a);
        }
        q = q.bind(f.limit.unwrap_or(100).clamp(1, 1000));
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(rows::incident).collect::<Result<_, _>>()?)
    }

    /// One incident, or `None`.
    pub async fn get_incident(&self, id: i64) -> StoreResult<Option<Incident>> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::incident).transpose()?)
    }

    /// An incident's event log, oldest first.
    pub async fn incident_events(&self, incident_id: i64) -> StoreResult<Vec<IncidentEvent>> {
        let rows = sqlx::query(
            "SELECT id, incident_id, at, kind, actor, detail FROM incident_events \
             WHERE incident_id = $1 ORDER BY id",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(rows::incident_event)
            .collect::<Result<_, _>>()?)
    }

    /// One incident event.
    pub async fn get_incident_event(&self, id: i64) -> StoreResult<Option<IncidentEvent>> {
        let row = sqlx::query(
            "SELECT id, incident_id, at, kind, actor, detail FROM incident_events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::incident_event).transpose()?)
    }

    /// Up to `limit` incident events after `after`, in log order (`store/log_order.rs`): what the
    /// live streams follow, on every instance alike.
    pub async fn incident_events_after(
        &self,
        after: LogPosition,
        limit: i64,
    ) -> StoreResult<LogPage<IncidentEvent>> {
        let sql = log_order::page_sql(
            self.backend,
            "id, incident_id, at, kind, actor, detail",
            "incident_events",
            "",
            "id",
            "tx_id",
        );
        let rows = sqlx::query(&sql)
            .bind(after.tx)
            .bind(after.id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        log_order::page(&rows, 0, |r| Ok(rows::incident_event(r)?))
    }

    /// Where a client that saw incident event `id` stands in the log (`Last-Event-ID`).
    pub async fn incident_event_position(&self, id: i64) -> StoreResult<LogPosition> {
        log_order::position_of(&self.pool, "incident_events", "", id).await
    }

    /// The position of the last final incident event: where a follower starting now begins.
    pub async fn incident_log_end(&self) -> StoreResult<LogPosition> {
        log_order::end_of(&self.pool, self.backend, "incident_events", "").await
    }

    /// Records the first time an incident reached a console. Returns the event when this call set it.
    pub async fn mark_shown(&self, id: i64, at: Millis) -> StoreResult<Option<IncidentEvent>> {
        self.transition(
            id,
            at,
            "system",
            "shown",
            json!({}),
            |_| Ok(()),
            "shown_at = $2",
            "shown_at IS NULL",
        )
        .await
        .map(|r| r.map(|(_, e)| e))
    }

    /// An operator takes the incident. Idempotent: a second acknowledgement changes nothing.
    pub async fn acknowledge(
        &self,
        id: i64,
        operator: &str,
        at: Millis,
    ) -> StoreResult<Option<(Incident, IncidentEvent)>> {
        let actor = format!("operator:{operator}");
        self.transition(
            id,
            at,
            &actor,
            "acknowledged",
            json!({ "operator": operator }),
            |i| match i.status {
                IncidentStatus::Closed => Err(StoreError::Invalid("incident is closed".into())),
                _ => Ok(()),
            },
            "acked_at = $2, acked_by = $3, status = CASE WHEN status = 'new' THEN 'acknowledged' ELSE status END, \
             taken_at = CASE WHEN taken_by IS NULL THEN $2 ELSE taken_at END, taken_by = COALESCE(taken_by, $3)",
            "acked_at IS NULL",
        )
        .await
    }

    /// Closes an incident with an outcome.
    pub async fn close_incident(
        &self,
        id: i64,
        operator: &str,
        outcome: Outcome,
        note: Option<&str>,
        at: Millis,
    ) -> StoreResult<Option<(Incident, IncidentEvent)>> {
        let actor = format!("operator:{operator}");
        let false_alarm = i64::from(outcome == Outcome::FalseAlarm);
        let set = format!(
            "closed_at = $2, closed_by = $3, status = 'closed', open_key = NULL, outcome = '{}', \
             attention = NULL, attention_at = NULL, \
             probable_false_alarm = CASE WHEN {false_alarm} = 1 THEN 1 ELSE probable_false_alarm END",
            outcome.as_str()
        );
        self.transition(
            id,
            at,
            &actor,
            "closed",
            json!({ "outcome": outcome, "note": note }),
            |i| match i.status {
                IncidentStatus::Closed => {
                    Err(StoreError::Invalid("incident is already closed".into()))
                }
                _ => Ok(()),
            },
            &set,
            "status <> 'closed'",
        )
        .await
    }

    /// Appends a free-text note.
    pub async fn add_note(
        &self,
        id: i64,
        actor: &str,
        text: &str,
        at: Millis,
    ) -> StoreResult<Option<IncidentEvent>> {
        self.log_incident_event(id, "note", actor, json!({ "text": text }), at)
            .await
    }

    /// Appends one event to an existing incident's log; `None` when there is no such incident.
    pub async fn log_incident_event(
        &self,
        id: i64,
        kind: &str,
        actor: &str,
        detail: serde_json::Value,
        at: Millis,
    ) -> StoreResult<Option<IncidentEvent>> {
        let mut tx = begin_ordered(self, Order::Incident(id)).await?;
        let exists = sqlx::query("SELECT id FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let event = append_event(&mut tx, id, at, kind, actor, detail).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    /// Applies `set` to the incident when `guard` holds, appending one event, all in one
    /// transaction. Returns `None` when the incident does not exist or the guard did not hold
    /// (already done), after `check` has vetted the current state.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn transition(
        &self,
        id: i64,
        at: Millis,
        actor: &str,
        kind: &str,
        detail: serde_json::Value,
        check: impl FnOnce(&Incident) -> StoreResult<()>,
        set: &str,
        guard: &str,
    ) -> StoreResult<Option<(Incident, IncidentEvent)>> {
        let mut tx = begin_ordered(self, Order::Incident(id)).await?;
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        check(&rows::incident(&row)?)?;
        let actor_name = actor.split_once(':').map(|(_, n)| n).unwrap_or(actor);
        let sql = format!("UPDATE incidents SET {set} WHERE id = $1 AND {guard}");
        let mut update = sqlx::query(&sql).bind(id).bind(at);
        if sql.contains("$3") {
            update = update.bind(actor_name);
        }
        let updated = update.execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let event = append_event(&mut tx, id, at, kind, actor, detail).await?;
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let incident = rows::incident(&row)?;
        tx.commit().await?;
        Ok(Some((incident, event)))
    }
}
