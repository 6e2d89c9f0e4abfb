//! Who handles an incident: an operator takes it, hands it over to a colleague or releases it.
//! Each change is checked against the current holder and logged (`taken`, `handed_over`,
//! `released`) in the same transaction, so two operators never both believe they have it.

use serde_json::json;

use super::rows::{self, INCIDENT_COLUMNS};
use super::{Order, Store, StoreError, StoreResult, begin_ordered, events::append_event};
use crate::domain::{Incident, IncidentEvent, IncidentStatus, Millis};

/// A change of the operator handling an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerChange<'a> {
    /// `operator` takes it; from someone else only with `force` (a supervisor's take-over).
    Take {
        /// Take it even when a colleague has it.
        force: bool,
    },
    /// The holder (or, when nobody holds it, anyone) gives it to operator `to`.
    HandOver {
        /// The colleague's name.
        to: &'a str,
        /// What the colleague needs to know.
        note: Option<&'a str>,
    },
    /// The holder lets it go back to the queue.
    Release,
}

impl Store {
    /// Applies `change` by `operator`. Returns the incident and the logged event, or `None` when
    /// nothing changed (the operator already holds it) or the incident does not exist (check with
    /// `get_incident`). Refusals (closed, held by someone else, unknown colleague) are
    /// `StoreError::Invalid` with the reason.
    pub async fn change_handler(
        &self,
        id: i64,
        operator: &str,
        change: HandlerChange<'_>,
        at: Millis,
    ) -> StoreResult<Option<(Incident, IncidentEvent)>> {
        let mut tx = begin_ordered(self, Order::Incident(id)).await?;
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let incident = rows::incident(&row)?;
        if incident.status == IncidentStatus::Closed {
            return Err(StoreError::Invalid("the incident is closed".into()));
        }
        let holder = incident.taken_by.as_deref();
        let held_by_other = holder.is_some_and(|h| h != operator);
        let (kind, next, detail) = match change {
            HandlerChange::Take { force } => {
                if holder == Some(operator) {
                    return Ok(None);
                }
                if held_by_other && !force {
                    return Err(StoreError::Invalid(format!(
                        "taken by {}",
                        holder.unwrap_or_default()
                    )));
                }
                (
                    "taken",
                    Some(operator.to_string()),
                    json!({ "operator": operator, "from": holder }),
                )
            }
            HandlerChange::HandOver { to, note } => {
                if held_by_other {
                    return Err(StoreError::Invalid(format!(
                        "taken by {}; only they can hand it over",
                        holder.unwrap_or_default()
                    )));
                }
                if to == operator {
                    return Err(StoreError::Invalid("hand it over to someone else".into()));
                }
                let colleague =
                    sqlx::query("SELECT id FROM operators WHERE name = $1 AND disabled = 0")
                        .bind(to)
                        .fetch_optional(&mut *tx)
                        .await?;
                if colleague.is_none() {
                    return Err(StoreError::Invalid(format!("no active operator {to:?}")));
                }
                (
                    "handed_over",
                    Some(to.to_string()),
                    json!({ "from": operator, "to": to, "note": note }),
                )
            }
            HandlerChange::Release => {
                if held_by_other {
                    return Err(StoreError::Invalid(format!(
                        "taken by {}",
                        holder.unwrap_or_default()
                    )));
                }
                if holder.is_none() {
                    return Ok(None);
                }
                ("released", None, json!({ "operator": operator }))
            }
        };
        sqlx::query("UPDATE incidents SET taken_by = $2, taken_at = $3 WHERE id = $1")
            .bind(id)
            .bind(next.clone())
            .bind(next.as_ref().map(|_| at))
            .execute(&mut *tx)
            .await?;
        let event = append_event(
            &mut tx,
            id,
            at,
            kind,
            &format!("operator:{operator}"),
            detail,
        )
        .await?;
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
