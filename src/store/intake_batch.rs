//! The intake's one write: a batch of device events committed in one transaction.
//!
//! For each event: insert it unless `(device_id, dedup_key)` is already stored (a retry: answered
//! `Duplicate`, nothing new is created); then open an incident, or join the open one of the same elder
//! and category (the `open_key` unique column makes "one open incident per elder and category" a
//! database rule, so it holds across server instances too). The incident events appended are returned
//! for the console's live stream, which is fed only after the commit.
//!
//! An event from an elder (alarm, cancel, check-in, service request) is a sign of life: in the same
//! transaction it re-arms the elder's welfare timer one check-in period later.

use serde_json::json;
use sqlx::{Any, Row, Transaction};

use super::events::append_event;
use super::{Order, Store, StoreResult, begin_ordered};
use crate::domain::{Category, DeviceEvent, DeviceStatus, EventBody, IncidentEvent, Millis};

/// Whether an event is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Committed now.
    Stored,
    /// Committed earlier; this was a retry.
    Duplicate,
    /// Not stored: its native sequence number is older than the device's replay window.
    Replayed,
}

/// What committing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// New or retry.
    pub outcome: StoreOutcome,
    /// The `device_events` row.
    pub event_id: i64,
    /// The incident it opened or joined, if any.
    pub incident_id: Option<i64>,
    /// True when this event opened the incident.
    pub opened: bool,
}

/// A heartbeat's worth of device state, written in batches without an fsync each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusUpdate {
    /// The device.
    pub device_id: i64,
    /// Its latest state.
    pub status: DeviceStatus,
    /// When it was last heard.
    pub last_seen: Millis,
    /// Highest native sequence number seen.
    pub last_seq: Option<i64>,
}

impl Store {
    /// Commits `events` in one transaction and returns one [`Stored`] per event, in order, plus the
    /// incident events appended. Nothing is committed if any statement fails.
    pub async fn commit_events(
        &self,
        events: &[DeviceEvent],
        now: Millis,
    ) -> StoreResult<(Vec<Stored>, Vec<IncidentEvent>)> {
        let owners: Vec<i64> = events.iter().map(DeviceEvent::owner_key).collect();
        let mut tx = begin_ordered(&self.pool, self.backend, Order::Owners(&owners)).await?;
        let mut results = Vec::with_capacity(events.len());
        let mut appended = Vec::new();
        for event in events {
            let stored = store_one(&mut tx, event, now, &mut appended).await?;
            if stored.outcome == StoreOutcome::Stored {
                rearm_welfare(&mut tx, event, self.checkin_hour_ms).await?;
            }
            results.push(stored);
        }
        tx.commit().await?;
        Ok((results, appended))
    }

    /// Writes the latest heartbeat state of many devices in one transaction.
    pub async fn write_statuses(&self, updates: &[StatusUpdate]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for u in updates {
            let loc = u.status.location;
            sqlx::query(
                "UPDATE devices SET \
                 battery_pct = COALESCE($2, battery_pct), mains = COALESCE($3, mains), \
                 signal_pct = COALESCE($4, signal_pct), lat = COALESCE($5, lat), \
                 lon = COALESCE($6, lon), last_seen = $7, \
                 last_seq = CASE WHEN last_seq < $8 THEN $8 ELSE last_seq END \
                 WHERE id = $1",
            )
            .bind(u.device_id)
            .bind(u.status.battery_pct.map(i64::from))
            .bind(u.status.mains.map(i64::from))
            .bind(u.status.signal_pct.map(i64::from))
            .bind(loc.map(|l| l.lat))
            .bind(loc.map(|l| l.lon))
            .bind(u.last_seen)
            .bind(u.last_seq.unwrap_or(0))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn store_one(
    tx: &mut Transaction<'static, Any>,
    event: &DeviceEvent,
    now: Millis,
    appended: &mut Vec<IncidentEvent>,
) -> StoreResult<Stored> {
    // A sequenced event claims its number in the device's durable replay window, in this
    // transaction; a retry of a recent frame ("repeat") goes on to the dedup below.
    if let Some(seq) = event.seq.and_then(|s| u32::try_from(s).ok()) {
        let class = super::replay::claim_in(tx, event.device_id, seq).await?;
        if class == onekey_protocol::SeqClass::TooOld {
            return Ok(Stored {
                outcome: StoreOutcome::Replayed,
                event_id: 0,
                incident_id: None,
                opened: false,
            });
        }
    }
    let detail = event_detail(&event.body);
    let inserted = sqlx::query(
        "INSERT INTO device_events \
         (device_id, dedup_key, kind, raw_code, detail, device_time, received_at, stored_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (device_id, dedup_key) DO NOTHING RETURNING id",
    )
    .bind(event.device_id)
    .bind(event.dedup_key.as_str())
    .bind(event.body.kind_name())
    .bind(event.raw_code.as_str())
    .bind(detail.to_string())
    .bind(event.device_time)
    .bind(event.received_at)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;

    let Some(row) = inserted else {
        let row = sqlx::query(
            "SELECT id, incident_id FROM device_events WHERE device_id = $1 AND dedup_key = $2",
        )
        .bind(event.device_id)
        .bind(event.dedup_key.as_str())
        .fetch_one(&mut **tx)
        .await?;
        return Ok(Stored {
            outcome: StoreOutcome::Duplicate,
            event_id: row.try_get(0)?,
            incident_id: row.try_get(1)?,
            opened: false,
        });
    };
    let event_id: i64 = row.try_get(0)?;

    if let Some(seq) = event.seq {
        sqlx::query(
            "UPDATE devices SET last_seq = CASE WHEN last_seq < $2 THEN $2 ELSE last_seq END \
             WHERE id = $1",
        )
        .bind(event.device_id)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    }

    let ctx = EventCtx {
        event,
        event_id,
        now,
    };
    let (incident_id, opened) = match &event.body {
        EventBody::Alarm { kind, .. } => {
            let (id, opened) =
                open_or_join(tx, &ctx, Category::of_alarm(*kind), kind.as_str(), appended).await?;
            (Some(id), opened)
        }
        EventBody::ServiceRequest { kind } => {
            let (id, opened) =
                open_or_join(tx, &ctx, Category::Service, kind.as_str(), appended).await?;
            (Some(id), opened)
        }
        EventBody::Cancel => (
            note_on_open(tx, &ctx, Category::Emergency, "device_cancelled", appended).await?,
            false,
        ),
        EventBody::Restore => (
            note_on_open(tx, &ctx, Category::Technical, "device_restored", appended).await?,
            false,
        ),
        EventBody::CheckIn => (
            note_on_open(tx, &ctx, Category::Welfare, "checked_in", appended).await?,
            false,
        ),
        EventBody::CommandResult { .. } => (
            command_result_on_open(tx, &ctx, &detail, appended).await?,
            false,
        ),
    };
    if let Some(id) = incident_id {
        sqlx::query("UPDATE device_events SET incident_id = $2 WHERE id = $1")
            .bind(event_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Stored {
        outcome: StoreOutcome::Stored,
        event_id,
        incident_id,
        opened,
    })
}

/// Moves the elder's welfare timer to one check-in period after this sign of life.
async fn rearm_welfare(
    tx: &mut Transaction<'static, Any>,
    event: &DeviceEvent,
    hour_ms: Millis,
) -> StoreResult<()> {
    let sign_of_life = matches!(
        event.body,
        EventBody::Alarm { .. }
            | EventBody::Cancel
            | EventBody::CheckIn
            | EventBody::ServiceRequest { .. }
    );
    let Some(elder_id) = event.elder_id.filter(|_| sign_of_life) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO dispatch_timers (key, incident_id, name, due_at) \
         SELECT $1, NULL, 'welfare', \
         $2 + (CASE WHEN checkin_hours < 1 THEN 1 ELSE checkin_hours END) * $3 \
         FROM elders WHERE id = $4 \
         ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, fired_at = NULL, \
         fired_by = NULL, claimed_by = NULL, claimed_until = NULL",
    )
    .bind(super::dispatch::welfare_key(elder_id))
    .bind(event.received_at)
    .bind(hour_ms)
    .bind(elder_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

struct EventCtx<'a> {
    event: &'a DeviceEvent,
    event_id: i64,
    now: Millis,
}

impl EventCtx<'_> {
    fn open_key(&self, category: Category) -> String {
        match self.event.elder_id {
            Some(elder) => super::dispatch::open_key(elder, category),
            None => format!("device:{}:{}", self.event.device_id, category.as_str()),
        }
    }

    fn actor(&self) -> String {
        format!("device:{}", self.event.device_id)
    }
}

async fn open_or_join(
    tx: &mut Transaction<'static, Any>,
    ctx: &EventCtx<'_>,
    category: Category,
    kind: &str,
    appended: &mut Vec<IncidentEvent>,
) -> StoreResult<(i64, bool)> {
    let event = ctx.event;
    let location = match &event.body {
        EventBody::Alarm { location, .. } => *location,
        _ => None,
    };
    let open_key = ctx.open_key(category);
    // One statement opens the incident or joins the open one: `alarm_count` is 1 only on a row this
    // statement inserted (a join makes it at least 2). One round trip instead of three matters on
    // PostgreSQL, where each statement of the batch waits for the server.
    let row = sqlx::query(
        "INSERT INTO incidents (elder_id, device_id, category, kind, priority, status, lat, lon, \
         accuracy_m, open_key, received_at, stored_at) \
         VALUES ($1, $2, $3, $4, $5, 'new', $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (open_key) DO UPDATE SET alarm_count = incidents.alarm_count + 1, \
         lat = COALESCE(incidents.lat, excluded.lat), lon = COALESCE(incidents.lon, excluded.lon) \
         RETURNING id, alarm_count",
    )
    .bind(event.elder_id)
    .bind(event.device_id)
    .bind(category.as_str())
    .bind(kind)
    .bind(category.priority())
    .bind(location.map(|l| l.lat))
    .bind(location.map(|l| l.lon))
    .bind(location.and_then(|l| l.accuracy_m).map(f64::from))
    .bind(open_key.as_str())
    .bind(event.received_at)
    .bind(ctx.now)
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get(0)?;
    let opened = row.try_get::<i64, _>(1)? == 1;
    let detail = json!({
        "kind": kind,
        "raw_code": event.raw_code,
        "device_id": event.device_id,
        "device_event_id": ctx.event_id,
        "location": location,
    });
    let log_kind = if opened { "opened" } else { "alarm_joined" };
    appended.push(append_event(tx, id, ctx.now, log_kind, &ctx.actor(), detail).await?);
    Ok((id, opened))
}

/// Records a non-alarm event on the open incident of `category`, if there is one.
async fn note_on_open(
    tx: &mut Transaction<'static, Any>,
    ctx: &EventCtx<'_>,
    category: Category,
    kind: &str,
    appended: &mut Vec<IncidentEvent>,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query("SELECT id FROM incidents WHERE open_key = $1")
        .bind(ctx.open_key(category))
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get(0)?;
    if kind == "device_cancelled" {
        sqlx::query("UPDATE incidents SET probable_false_alarm = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let detail = json!({ "raw_code": ctx.event.raw_code, "device_event_id": ctx.event_id });
    appended.push(append_event(tx, id, ctx.now, kind, &ctx.actor(), detail).await?);
    Ok(Some(id))
}

/// Records a device's command result on its most recent open incident, if any.
async fn command_result_on_open(
    tx: &mut Transaction<'static, Any>,
    ctx: &EventCtx<'_>,
    detail: &serde_json::Value,
    appended: &mut Vec<IncidentEvent>,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query("SELECT id FROM incidents WHERE device_id = $1 AND status <> 'closed' ORDER BY id DESC LIMIT 1")
        .bind(ctx.event.device_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get(0)?;
    appended.push(
        append_event(
            tx,
            id,
            ctx.now,
            "command_result",
            &ctx.actor(),
            detail.clone(),
        )
        .await?,
    );
    Ok(Some(id))
}

fn event_detail(body: &EventBody) -> serde_json::Value {
    match body {
        EventBody::Alarm { kind, location } => {
            json!({ "alarm": kind.as_str(), "location": location })
        }
        EventBody::ServiceRequest { kind } => json!({ "service": kind.as_str() }),
        EventBody::CommandResult {
            command_id,
            ok,
            text,
        } => {
            json!({ "command_id": command_id, "ok": ok, "text": text })
        }
        EventBody::Cancel | EventBody::CheckIn | EventBody::Restore => json!({}),
    }
}
