//! Dispatch persistence: one engine step written in one transaction ([`Store::write_step`]:
//! state with a version check, offers with exactly-once seats, timers, incident events, outgoing
//! notifications, attention), durable timers claimed under a lease across instances, and the
//! per-elder welfare timers.

use sqlx::{AnyConnection, Row};

use super::notifications::{self, NewNotification, Notification};
use super::{Backend, Store, StoreError, StoreResult};
use crate::domain::{IncidentEvent, IncidentStatus, Millis};

/// What triggered a step, consumed in the step's own transaction so it takes effect once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consume {
    /// A dispatch inbox entry (its timer key): deleted.
    Inbox(String),
    /// A timer this instance claimed: marked fired, if still claimed by `me` at `due_at`.
    Timer {
        /// Timer key.
        key: String,
        /// The claiming instance.
        me: String,
        /// The due time it was claimed at.
        due_at: Millis,
    },
}

/// One offer row as the step leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferWrite {
    /// Responder.
    pub responder_id: i64,
    /// Team slot.
    pub slot: i64,
    /// Role in the team.
    pub role: String,
    /// `pending`, `accepted`, `arrived`, `completed`, `declined`, `expired`, `withdrawn`.
    pub status: &'static str,
    /// Seat within the slot while the responder holds the task.
    pub seat: Option<i64>,
    /// When it was sent.
    pub sent_at: Millis,
    /// When it lapses unless answered.
    pub expires_at: Millis,
}

/// A timer the step starts or cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerWrite {
    /// Start or move.
    Schedule {
        /// Name within the incident (`round:2`, `sla:ack`).
        name: String,
        /// Due time.
        due: Millis,
    },
    /// Delete if not fired.
    Cancel {
        /// Name within the incident.
        name: String,
    },
}

/// An incident event the step appends.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// Kind.
    pub kind: String,
    /// Actor.
    pub actor: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// Everything one dispatch step decided, for [`Store::write_step`].
#[derive(Debug, Clone, Default)]
pub struct StepWrite {
    /// The incident.
    pub incident_id: i64,
    /// The state to save: `(expected version or None for a new one, JSON, needs a timer)`.
    pub state: Option<(Option<i64>, String, bool)>,
    /// What triggered the step.
    pub consume: Option<Consume>,
    /// Offer rows that changed, releases before new holders.
    pub offers: Vec<OfferWrite>,
    /// Lifecycle steps reached (`dispatching`, `accepted`, `on_scene`).
    pub progress: Vec<IncidentStatus>,
    /// Timers.
    pub timers: Vec<TimerWrite>,
    /// Incident events.
    pub events: Vec<EventWrite>,
    /// Why an operator is needed now, if the step says so.
    pub attention: Vec<String>,
    /// Messages to send.
    pub notifications: Vec<NewNotification>,
    /// When.
    pub at: Millis,
}

/// What [`Store::write_step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepCommit {
    /// Committed: the events appended and the notifications queued, in order.
    Committed {
        /// Appended incident events.
        events: Vec<IncidentEvent>,
        /// Queued notifications.
        notifications: Vec<Notification>,
    },
    /// Someone saved the state first: reload and step again.
    Raced,
    /// The trigger was already consumed (by another instance, or a stale timer): nothing to do.
    AlreadyConsumed,
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
    /// Writes one dispatch step in one transaction: consumes its trigger, saves the state with a
    /// version check, and writes offers, lifecycle progress, timers, events, attention and
    /// notifications. Nothing of it is visible unless all of it is.
    pub async fn write_step(&self, w: &StepWrite) -> StoreResult<StepCommit> {
        let mut tx = super::begin_ordered(self, super::Order::Incident(w.incident_id)).await?;
        if let Some(consume) = &w.consume
            && !consume_trigger(&mut tx, consume, w.at).await?
        {
            return Ok(StepCommit::AlreadyConsumed);
        }
        if let Some((expected, state, needs_timer)) = &w.state
            && !save_state(&mut tx, w.incident_id, *expected, state, *needs_timer, w.at).await?
        {
            return Ok(StepCommit::Raced);
        }
        for offer in &w.offers {
            write_offer(&mut tx, w.incident_id, offer, w.at).await?;
        }
        for step in &w.progress {
            mark_progress(&mut tx, w.incident_id, *step, w.at).await?;
        }
        for timer in &w.timers {
            match timer {
                TimerWrite::Schedule { name, due } => {
                    let key = timer_key(w.incident_id, name);
                    schedule(&mut tx, &key, Some(w.incident_id), name, *due).await?
                }
                TimerWrite::Cancel { name } => {
                    sqlx::query("DELETE FROM dispatch_timers WHERE key = $1 AND fired_at IS NULL")
                        .bind(timer_key(w.incident_id, name))
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let mut events = Vec::with_capacity(w.events.len());
        for e in &w.events {
            events.push(
                super::events::append_event(
                    &mut tx,
                    w.incident_id,
                    w.at,
                    &e.kind,
                    &e.actor,
                    e.detail.clone(),
                )
                .await?,
            );
        }
        for reason in &w.attention {
            if let Some(e) = notifications::raise_attention(
                &mut tx,
                w.incident_id,
                reason,
                serde_json::json!({}),
                w.at,
            )
            .await?
            {
                events.push(e);
            }
        }
        let mut queued = Vec::with_capacity(w.notifications.len());
        for n in &w.notifications {
            if let Some(q) = notifications::insert(&mut tx, n, w.at).await? {
                queued.push(q);
            }
        }
        tx.commit().await?;
        Ok(StepCommit::Committed {
            events,
            notifications: queued,
        })
    }

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

    /// Whether `responder_id`'s offer for `incident_id` is still waiting for an answer.
    pub async fn offer_pending(&self, incident_id: i64, responder_id: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM dispatch_offers WHERE incident_id = $1 AND responder_id = $2 \
             AND status = 'pending'",
        )
        .bind(incident_id)
        .bind(responder_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
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

    /// How a responder is reached: their phone, and whether they have no app (`notify_by = sms`).
    pub async fn responder_reach(&self, responder_id: i64) -> StoreResult<Option<(String, bool)>> {
        let row = sqlx::query("SELECT phone, notify_by FROM responders WHERE id = $1")
            .bind(responder_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                let by: String = r.try_get(1)?;
                Some((r.try_get(0)?, by == "sms"))
            }
            None => None,
        })
    }

    /// The responder registered with `phone` (how an elder's key-holding contact is found).
    pub async fn responder_id_by_phone(&self, phone: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM responders WHERE phone = $1 AND active = 1 ORDER BY id LIMIT 1",
        )
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
        let mut tx = self.begin_write().await?;
        schedule(&mut tx, key, incident_id, name, due_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Cancels a timer that has not fired; false when there was none.
    pub async fn cancel_timer(&self, key: &str) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
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
                self.begin_write().await?,
                format!("{select} FOR UPDATE SKIP LOCKED"),
            ),
            Backend::Sqlite => (
                super::begin_ordered(self, super::Order::Unlocked).await?,
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
        let _turn = self.write_turn().await;
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
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "INSERT INTO dispatch_timers (key, incident_id, name, due_at) \
             SELECT 'elder:' || e.id || '/welfare', NULL, 'welfare', \
             $1 + (CASE WHEN e.checkin_hours < 1 THEN 1 ELSE e.checkin_hours END) * $2 \
             FROM elders e WHERE e.active = 1 AND EXISTS \
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
        self.open_system_incident(
            elder_id,
            None,
            crate::domain::Category::Welfare,
            kind,
            detail,
            at,
        )
        .await
    }

    /// Opens an incident the server itself raises (a welfare visit, a silent device) for an elder,
    /// unless one of that category is already open. Returns its `opened` event when opened now
    /// (which also enters the dispatch inbox).
    pub async fn open_system_incident(
        &self,
        elder_id: i64,
        device_id: Option<i64>,
        category: crate::domain::Category,
        kind: &str,
        detail: serde_json::Value,
        at: Millis,
    ) -> StoreResult<Option<crate::domain::IncidentEvent>> {
        let mut tx = super::begin_ordered(self, super::Order::Owners(&[elder_id])).await?;
        let opened = open_incident(&mut tx, elder_id, device_id, category, kind, at, at).await?;
        let Some(id) = opened else {
            return Ok(None);
        };
        let event =
            super::events::append_event(&mut tx, id, at, "opened", "system", detail).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    /// Enabled devices of elders that have said nothing for longer than `heartbeats` of their
    /// heartbeat periods (plus `margin_ms`) — a device never heard from counts from its
    /// registration or last change — whose elder has no open technical incident, and that
    /// were not flagged already for this silence (one incident per silence: closing it after a
    /// visit does not raise the same silence again; a device heard from again can be flagged
    /// anew): `(device id, elder id, last seen)`.
    pub async fn silent_devices(
        &self,
        now: Millis,
        heartbeats: i64,
        margin_ms: Millis,
        limit: i64,
    ) -> StoreResult<Vec<(i64, i64, Millis)>> {
        let rows = sqlx::query(
            "SELECT d.id, d.elder_id, COALESCE(d.last_seen, d.updated_at) AS seen FROM devices d \
             WHERE d.enabled = 1 AND d.elder_id IS NOT NULL \
             AND COALESCE(d.last_seen, d.updated_at) + d.heartbeat_s * 1000 * $2 + $3 < $1 \
             AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.open_key = \
                 'elder:' || d.elder_id || ':technical') \
             AND NOT EXISTS (SELECT 1 FROM incidents s WHERE s.device_id = d.id \
                 AND s.kind = 'silent_device' \
                 AND s.received_at >= COALESCE(d.last_seen, d.updated_at)) \
             ORDER BY seen LIMIT $4",
        )
        .bind(now)
        .bind(heartbeats)
        .bind(margin_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Devices whose `silent_device` incident has been open longer than `fix_ms` while the device
    /// stayed silent, and whose elder got no out-of-service visit for this silence yet:
    /// `(incident id, device id, elder id, opened at)`. The elder has no working alarm, so a person
    /// must go and look until the device is fixed or replaced.
    pub async fn devices_out_of_service(
        &self,
        now: Millis,
        fix_ms: Millis,
        limit: i64,
    ) -> StoreResult<Vec<(i64, i64, i64, Millis)>> {
        let rows = sqlx::query(
            "SELECT s.id, s.device_id, s.elder_id, s.received_at FROM incidents s \
             JOIN devices d ON d.id = s.device_id \
             WHERE s.kind = 'silent_device' AND s.status <> 'closed' \
             AND s.received_at + $2 < $1 \
             AND (d.last_seen IS NULL OR d.last_seen <= s.received_at) \
             AND NOT EXISTS (SELECT 1 FROM incidents w WHERE w.elder_id = s.elder_id \
                 AND w.kind = 'device_out_of_service' AND w.received_at >= s.received_at) \
             ORDER BY s.received_at LIMIT $3",
        )
        .bind(now)
        .bind(fix_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// Open incidents that dispatch lost track of: no dispatch state, or a state that implies a
    /// timer, and no pending timer (nor inbox entry) at all, stored before `before`. The
    /// reconciler steps each again; the figure should stay 0.
    pub async fn incidents_needing_repair(
        &self,
        before: Millis,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        let found = sqlx::query(
            "SELECT i.id FROM incidents i LEFT JOIN dispatch_states s ON s.incident_id = i.id \
             WHERE i.status <> 'closed' AND i.stored_at <= $1 \
             AND (s.incident_id IS NULL OR s.needs_timer = 1) \
             AND NOT EXISTS (SELECT 1 FROM dispatch_timers t \
                             WHERE t.incident_id = i.id AND t.fired_at IS NULL) \
             ORDER BY i.id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(|r| Ok(r.try_get(0)?)).collect()
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

async fn schedule(
    tx: &mut AnyConnection,
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
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Consumes a step's trigger; false when it was already consumed (or the timer moved on).
async fn consume_trigger(
    tx: &mut AnyConnection,
    consume: &Consume,
    now: Millis,
) -> StoreResult<bool> {
    let r = match consume {
        Consume::Inbox(key) => {
            sqlx::query("DELETE FROM dispatch_timers WHERE key = $1 AND fired_at IS NULL")
                .bind(key)
                .execute(&mut *tx)
                .await?
        }
        Consume::Timer { key, me, due_at } => {
            sqlx::query(
                "UPDATE dispatch_timers SET fired_at = $4, fired_by = $2, claimed_until = NULL \
                 WHERE key = $1 AND claimed_by = $2 AND due_at = $3 AND fired_at IS NULL",
            )
            .bind(key)
            .bind(me)
            .bind(*due_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
        }
    };
    Ok(r.rows_affected() == 1)
}

/// Saves engine state if nobody else wrote since `expected` (`None`: must not exist yet).
async fn save_state(
    tx: &mut AnyConnection,
    incident_id: i64,
    expected: Option<i64>,
    state: &str,
    needs_timer: bool,
    at: Millis,
) -> StoreResult<bool> {
    let done = match expected {
        None => sqlx::query(
            "INSERT INTO dispatch_states (incident_id, version, state, updated_at, needs_timer) \
                 VALUES ($1, 1, $2, $3, $4) ON CONFLICT (incident_id) DO NOTHING",
        )
        .bind(incident_id)
        .bind(state)
        .bind(at)
        .bind(i64::from(needs_timer))
        .execute(&mut *tx)
        .await?,
        Some(v) => {
            sqlx::query(
                "UPDATE dispatch_states SET version = version + 1, state = $2, updated_at = $3, \
                 needs_timer = $5 WHERE incident_id = $1 AND version = $4",
            )
            .bind(incident_id)
            .bind(state)
            .bind(at)
            .bind(v)
            .bind(i64::from(needs_timer))
            .execute(&mut *tx)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Writes one offer row as the engine left it. The unique index on (incident, slot, seat) is the
/// last word on seats: two holders of one seat fail the whole step, which is then stepped again.
async fn write_offer(
    tx: &mut AnyConnection,
    incident_id: i64,
    o: &OfferWrite,
    at: Millis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO dispatch_offers \
         (incident_id, responder_id, slot, role, status, seat, sent_at, expires_at, answered_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $5 = 'pending' THEN NULL ELSE $9 END) \
         ON CONFLICT (incident_id, responder_id) DO UPDATE SET slot = excluded.slot, \
         role = excluded.role, status = excluded.status, seat = excluded.seat, \
         sent_at = excluded.sent_at, expires_at = excluded.expires_at, \
         answered_at = CASE WHEN excluded.status = 'pending' THEN NULL \
         ELSE COALESCE(dispatch_offers.answered_at, excluded.answered_at) END",
    )
    .bind(incident_id)
    .bind(o.responder_id)
    .bind(o.slot)
    .bind(&o.role)
    .bind(o.status)
    .bind(o.seat)
    .bind(o.sent_at)
    .bind(o.expires_at)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Invalid(format!("incident {incident_id}: seat already held"))
        }
        e => e.into(),
    })?;
    Ok(())
}

/// Moves an open incident's lifecycle forward as dispatch progresses: `dispatching` at the first
/// offer, `accepted` at the first acceptance, `on_scene` at the first arrival. Sets each
/// timestamp once and never moves the status backwards.
async fn mark_progress(
    tx: &mut AnyConnection,
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
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Opens the elder's incident of `category` inside `tx`, unless one is open (its open key is
/// taken): the new incident's id, or `None`.
pub(crate) async fn open_incident(
    tx: &mut sqlx::AnyConnection,
    elder_id: i64,
    device_id: Option<i64>,
    category: crate::domain::Category,
    kind: &str,
    received_at: Millis,
    at: Millis,
) -> StoreResult<Option<i64>> {
    let created = sqlx::query(
        "INSERT INTO incidents (elder_id, device_id, category, kind, priority, status, \
         open_key, received_at, stored_at) VALUES ($1, $2, $3, $4, $5, 'new', $6, $7, $8) \
         ON CONFLICT (open_key) DO NOTHING RETURNING id",
    )
    .bind(elder_id)
    .bind(device_id)
    .bind(category.as_str())
    .bind(kind)
    .bind(category.priority())
    .bind(open_key(elder_id, category))
    .bind(received_at)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    created
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(Into::into)
}

/// The key that makes an elder's open incident of a category unique.
pub(crate) fn open_key(elder_id: i64, category: crate::domain::Category) -> String {
    format!("elder:{elder_id}:{}", category.as_str())
}
