//! Dispatch persistence: the engine's state per incident (optimistic versioning), offers with
//! exactly-once seats, durable timers claimed under a lease across instances, and the per-elder
//! welfare timers.

use sqlx::Row;

use super::{Backend, Store, StoreResult};
use crate::domain::{IncidentStatus, Millis};

/// What an accept achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// This responder holds seat `seat` of slot `slot`.
    Won {
        /// Team slot.
        slot: i64,
        /// Seat within the slot (0-based).
        seat: i64,
    },
    /// Every seat of the slot is taken, or the offer is no longer open.
    Taken,
    /// This responder has no offer for this incident.
    NotOffered,
}

/// A timer this instance claimed and must now act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    /// Unique key (`incident:12/sla:ack`).
    pub key: String,
    /// The incident, for incident timers.
    pub incident_id: Option<i64>,
    /// The timer's name within its owner (`sla:ack`, `round:2`, `welfare`).
    pub name: String,
    /// When it was due.
    pub due_at: Millis,
}

/// One offer row, as the responder API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct OfferRow {
    /// Incident.
    pub incident_id: i64,
    /// Responder.
    pub responder_id: i64,
    /// Team slot.
    pub slot: i64,
    /// Role in the team.
    pub role: String,
    /// `pending`, `accepted`, `declined`, `expired`, `withdrawn`, `arrived`, `completed`.
    pub status: String,
    /// Seat held, once accepted.
    pub seat: Option<i64>,
    /// When it was sent.
    pub sent_at: Millis,
    /// When the round ends.
    pub expires_at: Millis,
}

/// The key of an incident's timer.
pub fn timer_key(incident_id: i64, name: &str) -> String {
    format!("incident:{incident_id}/{name}")
}

/// The name of an elder's welfare timer.
pub const WELFARE_TIMER: &str = "welfare";

/// The key of an elder's welfare timer.
pub fn welfare_key(elder_id: i64) -> String {
    format!("elder:{elder_id}/{WELFARE_TIMER}")
}

/// The elder a welfare timer key belongs to.
pub fn welfare_elder(key: &str) -> Option<i64> {
    key.strip_prefix("elder:")?
        .strip_suffix(&format!("/{WELFARE_TIMER}"))?
        .parse()
        .ok()
}

impl Store {
    /// The engine state of an incident as `(version, json)`, if dispatch started.
    pub async fn load_dispatch_state(
        &self,
        incident_id: i64,
    ) -> StoreResult<Option<(i64, String)>> {
        let row = sqlx::query("SELECT version, state FROM dispatch_states WHERE incident_id = $1")
            .bind(incident_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// Saves engine state if nobody else wrote since `expected` (`None`: must not exist yet).
    /// Returns false on a lost race: reload and step again.
    pub async fn save_dispatch_state(
        &self,
        incident_id: i64,
        expected: Option<i64>,
        state: &str,
        at: Millis,
    ) -> StoreResult<bool> {
        let done =
            match expected {
                None => {
                    sqlx::query(
                        "INSERT INTO dispatch_states (incident_id, version, state, updated_at) \
                 VALUES ($1, 1, $2, $3) ON CONFLICT (incident_id) DO NOTHING",
                    )
                    .bind(incident_id)
                    .bind(state)
                    .bind(at)
                    .execute(&self.pool)
                    .await?
                }
                Some(v) => sqlx::query(
                    "UPDATE dispatch_states SET version = version + 1, state = $2, updated_at = $3 \
                 WHERE incident_id = $1 AND version = $4",
                )
                .bind(incident_id)
                .bind(state)
                .bind(at)
                .bind(v)
                .execute(&self.pool)
                .await?,
            };
        Ok(done.rows_affected() == 1)
    }

    /// Records an offer (idempotent per incident and responder). An offer made again to a
    /// responder who declined, let it expire or was withdrawn (an operator's choice) opens it anew;
    /// a responder holding the task keeps their row.
    pub async fn record_offer(
        &self,
        incident_id: i64,
        responder_id: i64,
        slot: i64,
        role: &str,
        sent_at: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dispatch_offers \
             (incident_id, responder_id, slot, role, status, sent_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6) \
             ON CONFLICT (incident_id, responder_id) DO UPDATE SET slot = excluded.slot, \
             role = excluded.role, status = 'pending', seat = NULL, sent_at = excluded.sent_at, \
             expires_at = excluded.expires_at, answered_at = NULL \
             WHERE dispatch_offers.status NOT IN ('accepted', 'arrived', 'completed')",
        )
        .bind(incident_id)
        .bind(responder_id)
        .bind(slot)
        .bind(role)
        .bind(sent_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Accepts an offer: the responder takes the lowest free seat of the offer's slot, of which
    /// there are `seats`. Exactly one accept wins each seat, across instances: the conditional
    /// UPDATE only touches an open offer, and the unique index on (incident, slot, seat) refuses
    /// a second holder of the same seat.
    pub async fn accept_offer(
        &self,
        incident_id: i64,
        responder_id: i64,
        seats: i64,
        at: Millis,
    ) -> StoreResult<AcceptOutcome> {
        let row = sqlx::query(
            "SELECT slot, status, seat FROM dispatch_offers \
             WHERE incident_id = $1 AND responder_id = $2",
        )
        .bind(incident_id)
        .bind(responder_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(AcceptOutcome::NotOffered);
        };
        let slot: i64 = row.try_get(0)?;
        if let Some(seat) = row.try_get::<Option<i64>, _>(2)? {
            return Ok(AcceptOutcome::Won { slot, seat }); // a retried accept
        }
        for seat in 0..seats.max(1) {
            let result = sqlx::query(
                "UPDATE dispatch_offers SET status = 'accepted', seat = $3, answered_at = $4 \
                 WHERE incident_id = $1 AND responder_id = $2 \
                 AND status IN ('pending', 'expired') AND seat IS NULL",
            )
            .bind(incident_id)
            .bind(responder_id)
            .bind(seat)
            .bind(at)
            .execute(&self.pool)
            .await;
            match result {
                Ok(r) if r.rows_affected() == 1 => return Ok(AcceptOutcome::Won { slot, seat }),
                Ok(_) => return Ok(AcceptOutcome::Taken),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(AcceptOutcome::Taken)
    }

    /// Moves an offer from one of `from` to `to` (decline, expire, withdraw, arrive, complete);
    /// false when it was in none of them. Leaving the task (withdrawn, expired, declined) frees
    /// the seat for the next accept.
    pub async fn set_offer_status(
        &self,
        incident_id: i64,
        responder_id: i64,
        from: &[&str],
        to: &str,
        at: Millis,
    ) -> StoreResult<bool> {
        let list = from
            .iter()
            .filter(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if list.is_empty() {
            return Ok(false);
        }
        let r = sqlx::query(&format!(
            "UPDATE dispatch_offers SET status = $3, answered_at = COALESCE(answered_at, $4), \
             seat = CASE WHEN $3 IN ('withdrawn', 'expired', 'declined') THEN NULL ELSE seat END \
             WHERE incident_id = $1 AND responder_id = $2 AND status IN ({list})"
        ))
        .bind(incident_id)
        .bind(responder_id)
        .bind(to)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A responder's offers and tasks that are still live, newest first.
    pub async fn responder_offers(&self, responder_id: i64) -> StoreResult<Vec<OfferRow>> {
        let rows = sqlx::query(
            "SELECT incident_id, responder_id, slot, role, status, seat, sent_at, expires_at \
             FROM dispatch_offers WHERE responder_id = $1 \
             AND status IN ('pending', 'accepted', 'arrived') ORDER BY sent_at DESC",
        )
        .bind(responder_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OfferRow {
                    incident_id: r.try_get(0)?,
                    responder_id: r.try_get(1)?,
                    slot: r.try_get(2)?,
                    role: r.try_get(3)?,
                    status: r.try_get(4)?,
                    seat: r.try_get(5)?,
                    sent_at: r.try_get(6)?,
                    expires_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Puts a responder on or off duty, with their live position when known.
    pub async fn set_duty(
        &self,
        responder_id: i64,
        on_duty: bool,
        position: Option<(f64, f64)>,
        at: Millis,
    ) -> StoreResult<bool> {
        let (lat, lon) = position.unzip();
        let r = sqlx::query(
            "UPDATE responders SET on_duty = $2, lat = COALESCE($3, lat), \
             lon = COALESCE($4, lon), updated_at = $5 WHERE id = $1",
        )
        .bind(responder_id)
        .bind(i64::from(on_duty))
        .bind(lat)
        .bind(lon)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves an open incident's lifecycle forward as dispatch progresses: `dispatching` at the
    /// first offer, `accepted` at the first acceptance, `on_scene` at the first arrival. Sets
    /// each timestamp once and never moves the status backwards.
    pub async fn mark_dispatch_progress(
        &self,
        incident_id: i64,
        step: IncidentStatus,
        at: Millis,
    ) -> StoreResult<()> {
        let (column, earlier) = match step {
            IncidentStatus::Dispatching => ("dispatched_at", "'new', 'acknowledged'"),
            IncidentStatus::Accepted => ("accepted_at", "'new', 'acknowledged', 'dispatching'"),
            IncidentStatus::OnScene => (
                "on_scene_at",
                "'new', 'acknowledged', 'dispatching', 'accepted'",
            ),
            _ => return Ok(()),
        };
        sqlx::query(&format!(
            "UPDATE incidents SET {column} = COALESCE({column}, $2), \
             status = CASE WHEN status IN ({earlier}) THEN $3 ELSE status END \
             WHERE id = $1 AND status <> 'closed'"
        ))
        .bind(incident_id)
        .bind(at)
        .bind(step.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The responder registered with `phone` (how an elder's key-holding contact is found).
    pub async fn responder_id_by_phone(&self, phone: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT id FROM responders WHERE phone = $1 ORDER BY id LIMIT 1")
            .bind(phone)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Tasks in hand (accepted or arrived) per responder.
    pub async fn responder_loads(&self) -> StoreResult<std::collections::HashMap<i64, u32>> {
        let rows = sqlx::query(
            "SELECT responder_id, COUNT(*) FROM dispatch_offers \
             WHERE status IN ('accepted', 'arrived') GROUP BY responder_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get(1)?;
                Ok((r.try_get(0)?, u32::try_from(n).unwrap_or(u32::MAX)))
            })
            .collect()
    }

    /// Starts (or moves) a durable timer; a fired or claimed timer of the same key is re-armed.
    pub async fn schedule_timer(
        &self,
        key: &str,
        incident_id: Option<i64>,
        name: &str,
        due_at: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dispatch_timers (key, incident_id, name, due_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, fired_at = NULL, \
             fired_by = NULL, claimed_by = NULL, claimed_until = NULL",
        )
        .bind(key)
        .bind(incident_id)
        .bind(name)
        .bind(due_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cancels a timer that has not fired; false when there was none.
    pub async fn cancel_timer(&self, key: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM dispatch_timers WHERE key = $1 AND fired_at IS NULL")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claims up to `limit` timers due at `now` for instance `me`, each under a lease of
    /// `lease_ms`: nobody else claims it until the lease runs out. The caller fires each and then
    /// calls [`Store::complete_timer`]; a timer whose claimer died mid-fire is claimed again after
    /// its lease, and a completed one never again. The claim UPDATE only succeeds on an unfired
    /// timer with no live lease, so one caller wins each claim; on PostgreSQL the candidates are
    /// locked with `FOR UPDATE SKIP LOCKED` so instances do not queue on each other.
    pub async fn claim_due_timers(
        &self,
        now: Millis,
        me: &str,
        limit: i64,
        lease_ms: Millis,
    ) -> StoreResult<Vec<DueTimer>> {
        let select = "SELECT key, incident_id, name, due_at FROM dispatch_timers \
                      WHERE fired_at IS NULL AND due_at <= $1 \
                      AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at LIMIT $2";
        let claim = "UPDATE dispatch_timers SET claimed_by = $3, claimed_until = $4 \
                     WHERE key = $1 AND due_at = $5 AND fired_at IS NULL \
                     AND (claimed_until IS NULL OR claimed_until <= $2)";
        let until = now.saturating_add(lease_ms.max(1));
        // PostgreSQL locks the candidates and skips those another instance holds; SQLite takes its
        // single writer lock before the read, so the claims cannot interleave.
        let (mut tx, select) = match self.backend {
            Backend::Postgres => (
                self.pool.begin().await?,
                format!("{select} FOR UPDATE SKIP LOCKED"),
            ),
            Backend::Sqlite => (
                super::begin_ordered(&self.pool, self.backend).await?,
                select.to_string(),
            ),
        };
        let rows = sqlx::query(&select)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let t = due_timer(r)?;
            let won = sqlx::query(claim)
                .bind(&t.key)
                .bind(now)
                .bind(me)
                .bind(until)
                .bind(t.due_at)
                .execute(&mut *tx)
                .await?;
            if won.rows_affected() == 1 {
                claimed.push(t);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Marks a claimed timer fired. False when `me` no longer holds its claim (the lease ran out
    /// and another instance claimed it) or it was re-armed or cancelled meanwhile; a re-armed
    /// timer stays pending at its new due time.
    pub async fn complete_timer(
        &self,
        timer: &DueTimer,
        me: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE dispatch_timers SET fired_at = $4, fired_by = $2, claimed_until = NULL \
             WHERE key = $1 AND claimed_by = $2 AND due_at = $3 AND fired_at IS NULL",
        )
        .bind(&timer.key)
        .bind(me)
        .bind(timer.due_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Arms the welfare timer of every elder with an enabled device that has none, due one check-in
    /// period from `now` (`hour_ms` milliseconds per check-in hour). Returns how many were armed.
    pub async fn arm_welfare_timers(&self, now: Millis, hour_ms: Millis) -> StoreResult<u64> {
        let r = sqlx::query(
            "INSERT INTO dispatch_timers (key, incident_id, name, due_at) \
             SELECT 'elder:' || e.id || '/welfare', NULL, 'welfare', \
             $1 + (CASE WHEN e.checkin_hours < 1 THEN 1 ELSE e.checkin_hours END) * $2 \
             FROM elders e WHERE EXISTS \
             (SELECT 1 FROM devices d WHERE d.elder_id = e.id AND d.enabled = 1) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(now)
        .bind(hour_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// The last sign of life of an elder: the newest alarm, cancel, check-in or service request
    /// from any of their devices.
    pub async fn last_sign_of_life(&self, elder_id: i64) -> StoreResult<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MAX(ev.received_at) FROM device_events ev \
             JOIN devices d ON d.id = ev.device_id WHERE d.elder_id = $1 \
             AND ev.kind IN ('alarm', 'cancel', 'check_in', 'service_request')",
        )
        .bind(elder_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// Opens a welfare incident (`kind`, e.g. `missed_check_in`) for an elder, unless one is
    /// already open. Returns its `opened` event when it was opened now.
    pub async fn open_welfare_incident(
        &self,
        elder_id: i64,
        kind: &str,
        detail: serde_json::Value,
        at: Millis,
    ) -> StoreResult<Option<crate::domain::IncidentEvent>> {
        let category = crate::domain::Category::Welfare;
        let mut tx = super::begin_ordered(&self.pool, self.backend).await?;
        let created = sqlx::query(
            "INSERT INTO incidents (elder_id, device_id, category, kind, priority, status, \
             open_key, received_at, stored_at) VALUES ($1, NULL, $2, $3, $4, 'new', $5, $6, $6) \
             ON CONFLICT (open_key) DO NOTHING RETURNING id",
        )
        .bind(elder_id)
        .bind(category.as_str())
        .bind(kind)
        .bind(category.priority())
        .bind(format!("elder:{elder_id}:{}", category.as_str()))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = created else {
            return Ok(None);
        };
        let id: i64 = row.try_get(0)?;
        let event =
            super::intake_batch::append_event(&mut tx, id, at, "opened", "system", detail).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    /// Timers not yet fired, soonest first (for the console and tests).
    pub async fn pending_timers(&self) -> StoreResult<Vec<DueTimer>> {
        let rows = sqlx::query(
            "SELECT key, incident_id, name, due_at FROM dispatch_timers \
             WHERE fired_at IS NULL ORDER BY due_at, key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(due_timer).collect()
    }
}

fn due_timer(r: &sqlx::any::AnyRow) -> StoreResult<DueTimer> {
    Ok(DueTimer {
        key: r.try_get(0)?,
        incident_id: r.try_get(1)?,
        name: r.try_get(2)?,
        due_at: r.try_get(3)?,
    })
}
