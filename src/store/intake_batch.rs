//! The intake's one write: a batch of device events committed in one transaction, in a constant
//! number of statements whatever its size.
//!
//! For each event: claim its sequence number in the device's replay window; insert it unless
//! `(device_id, dedup_key)` is already stored (a retry: answered `Duplicate`, nothing new is
//! created); then open an incident, or join the open one of the same elder and category (the
//! `open_key` unique column makes "one open incident per elder and category" a database rule, so it
//! holds across server instances too), or note the event on the open incident it concerns. The
//! incident events appended are returned for the console's live stream, which is fed only after the
//! commit.
//!
//! An event from an elder (alarm, cancel, check-in, service request) is a sign of life: in the same
//! transaction it re-arms the elder's welfare timer one check-in period later.
//!
//! The batch is cut into *rounds* in which no elder (or, for a device without one, no device)
//! appears twice; events of the same owner keep their order across rounds. Within a round every
//! step is one set-based statement over all its events ([`super::json_rows`]): about eight per
//! round, where the event-by-event form took eight per event (each a round trip to PostgreSQL, and
//! on SQLite a hop to sqlx's worker thread and back). A storm of alarms from many homes is one round.

use std::collections::{HashMap, HashSet};

use onekey_protocol::{ReplayWindow, SeqClass};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::events::{NewEntry, append_events};
use super::json_rows::{self, Col};
use super::{Backend, Order, Store, StoreError, StoreResult, begin_ordered_intake};
use crate::domain::{
    Category, DeviceEvent, DeviceStatus, EventBody, GeoPoint, IncidentEvent, Millis,
};

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
        let mut tx = begin_ordered_intake(self, Order::Owners(&owners)).await?;
        let mut batch = Batch {
            backend: self.backend,
            events,
            now,
            checkin_hour_ms: self.checkin_hour_ms,
            results: vec![None; events.len()],
            appended: Vec::new(),
            statements: 0,
        };
        for round in rounds(events) {
            batch.commit_round(&mut tx, &round).await?;
        }
        // Every event has its answer before anything is committed.
        let results = batch
            .results
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Invalid("an event of the batch was not handled".into()))?;
        tx.commit().await?;
        // The ordering statement and the commit, with the batch's own.
        let statements = batch.statements + 2;
        metrics::histogram!("onekey_intake_statements_per_batch").record(f64::from(statements));
        self.intake_statements
            .fetch_add(u64::from(statements), std::sync::atomic::Ordering::Relaxed);
        Ok((results, batch.appended))
    }

    /// How many statements the intake has sent to the database since this store was opened,
    /// ordering and commit included: a census of round trips for tests and benches (also
    /// `onekey_intake_statements_per_batch`).
    pub fn intake_statements(&self) -> u64 {
        self.intake_statements
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes the latest heartbeat state of many devices in one statement.
    pub async fn write_statuses(&self, updates: &[StatusUpdate]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let rows: Vec<_> = updates
            .iter()
            .map(|u| {
                let loc = u.status.location;
                (
                    u.device_id,
                    u.status.battery_pct.map(i64::from),
                    u.status.mains.map(i64::from),
                    u.status.signal_pct.map(i64::from),
                    loc.map(|l| l.lat),
                    loc.map(|l| l.lon),
                    u.last_seen,
                    u.last_seq.unwrap_or(0),
                )
            })
            .collect();
        let sql = format!(
            "UPDATE devices SET \
             battery_pct = COALESCE(t.bat, battery_pct), mains = COALESCE(t.mn, mains), \
             signal_pct = COALESCE(t.sig, signal_pct), lat = COALESCE(t.la, lat), \
             lon = COALESCE(t.lo, lon), last_seen = t.seen, \
             last_seq = CASE WHEN last_seq < t.sq THEN t.sq ELSE last_seq END \
             FROM {} WHERE devices.id = t.dev",
            json_rows::table(
                self.backend,
                1,
                &[
                    ("dev", Col::Int),
                    ("bat", Col::Int),
                    ("mn", Col::Int),
                    ("sig", Col::Int),
                    ("la", Col::Real),
                    ("lo", Col::Real),
                    ("seen", Col::Int),
                    ("sq", Col::Int),
                ],
            )
        );
        sqlx::query(&sql)
            .bind(json_rows::encode(&rows))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Cuts `events` into rounds (indices, in order) in which no owner and no device appears twice;
/// an event goes to the round after the last one that holds its owner or its device.
fn rounds(events: &[DeviceEvent]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut owner_round: HashMap<i64, usize> = HashMap::with_capacity(events.len());
    let mut device_round: HashMap<i64, usize> = HashMap::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let after = |m: &HashMap<i64, usize>, k: i64| m.get(&k).map_or(0, |r| r + 1);
        let r = after(&owner_round, event.owner_key()).max(after(&device_round, event.device_id));
        owner_round.insert(event.owner_key(), r);
        device_round.insert(event.device_id, r);
        if rounds.len() <= r {
            rounds.resize_with(r + 1, Vec::new);
        }
        rounds[r].push(i);
    }
    rounds
}

/// A batch being committed: its events and what has been decided for each.
struct Batch<'a> {
    backend: Backend,
    events: &'a [DeviceEvent],
    now: Millis,
    checkin_hour_ms: Millis,
    results: Vec<Option<Stored>>,
    appended: Vec<IncidentEvent>,
    /// Statements sent so far.
    statements: u32,
}

/// What an event that was stored does next.
enum Follow {
    /// Opens or joins the open incident of this category.
    Open(Category, &'static str, Option<GeoPoint>),
    /// Is noted (this log kind) on the open incident of this category, if there is one.
    Note(Category, &'static str),
    /// Is noted on the device's most recent open incident, if any.
    CommandResult,
}

fn follow(body: &EventBody) -> Follow {
    match body {
        EventBody::Alarm { kind, location } => {
            Follow::Open(Category::of_alarm(*kind), kind.as_str(), *location)
        }
        EventBody::ServiceRequest { kind } => Follow::Open(Category::Service, kind.as_str(), None),
        EventBody::Cancel => Follow::Note(Category::Emergency, "device_cancelled"),
        EventBody::Restore => Follow::Note(Category::Technical, "device_restored"),
        EventBody::CheckIn => Follow::Note(Category::Welfare, "checked_in"),
        EventBody::CommandResult { .. } => Follow::CommandResult,
    }
}

impl Batch<'_> {
    fn table(&self, cols: &[(&str, Col)]) -> String {
        json_rows::table(self.backend, 1, cols)
    }

    fn open_key(&self, i: usize, category: Category) -> String {
        let event = &self.events[i];
        match event.elder_id {
            Some(elder) => super::dispatch::open_key(elder, category),
            None => format!("device:{}:{}", event.device_id, category.as_str()),
        }
    }

    /// Commits one round: events of distinct owners and devices.
    async fn commit_round(&mut self, tx: &mut AnyConnection, round: &[usize]) -> StoreResult<()> {
        let live = self.claim_sequences(tx, round).await?;
        let stored = self.insert_events(tx, &live).await?;
        if stored.is_empty() {
            return Ok(());
        }
        self.raise_last_seq(tx, &stored).await?;
        let incidents = self.open_or_note(tx, &stored).await?;
        self.rearm_welfare(tx, &stored).await?;
        // Each stored event: its `device_events` id and the incident it opened, joined or noted.
        let mut links = Vec::with_capacity(stored.len());
        for (i, event_id) in stored {
            let (incident_id, opened) = incidents.get(&i).copied().unzip();
            self.results[i] = Some(Stored {
                outcome: StoreOutcome::Stored,
                event_id,
                incident_id,
                opened: opened.unwrap_or(false),
            });
            if let Some(incident) = incident_id {
                links.push((event_id, incident));
            }
        }
        if !links.is_empty() {
            let sql = format!(
                "UPDATE device_events SET incident_id = t.inc FROM {} WHERE device_events.id = t.ev",
                self.table(&[("ev", Col::Int), ("inc", Col::Int)])
            );
            self.statements += 1;
            sqlx::query(&sql)
                .bind(json_rows::encode(&links))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Claims the sequence numbers of the round's sequenced events in their devices' durable
    /// replay windows (a retry of a recent frame, "repeat", goes on to the dedup); returns the
    /// events that go on, answering the others `Replayed`.
    async fn claim_sequences(
        &mut self,
        tx: &mut AnyConnection,
        round: &[usize],
    ) -> StoreResult<Vec<usize>> {
        let sequenced: Vec<(usize, i64, u32)> = round
            .iter()
            .filter_map(|&i| {
                let e = &self.events[i];
                let seq = e.seq.and_then(|s| u32::try_from(s).ok())?;
                Some((i, e.device_id, seq))
            })
            .collect();
        if sequenced.is_empty() {
            return Ok(round.to_vec());
        }
        let devices: Vec<(i64,)> = sequenced.iter().map(|&(_, d, _)| (d,)).collect();
        let sql = format!(
            "SELECT id, replay_high, replay_seen FROM devices JOIN {} ON devices.id = t.dev",
            self.table(&[("dev", Col::Int)])
        );
        let mut windows = HashMap::with_capacity(devices.len());
        self.statements += 1;
        for row in sqlx::query(&sql)
            .bind(json_rows::encode(&devices))
            .fetch_all(&mut *tx)
            .await?
        {
            windows.insert(
                row.try_get::<i64, _>(0)?,
                (row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(2)?),
            );
        }
        let mut classes = HashMap::with_capacity(sequenced.len());
        let mut updates = Vec::new();
        for &(i, device, seq) in &sequenced {
            let &(high, seen) = windows
                .get(&device)
                .ok_or_else(|| StoreError::Invalid(format!("device {device} not found")))?;
            let mut window = ReplayWindow::from_parts(
                u32::try_from(high).unwrap_or(0),
                u64::from_ne_bytes(seen.to_ne_bytes()),
            );
            let class = window.classify(seq);
            if class.is_new() {
                window.mark_seen(seq);
                let (new_high, new_seen) = window.to_parts();
                let new_seen = i64::from_ne_bytes(new_seen.to_ne_bytes());
                updates.push((device, i64::from(new_high), new_seen, high, seen));
            }
            classes.insert(i, class);
        }
        if !updates.is_empty() {
            // A compare-and-set, as one statement: a device whose window another writer moved in
            // between is claimed again on its own.
            let sql = format!(
                "UPDATE devices SET replay_high = t.nh, replay_seen = t.ns FROM {} \
                 WHERE devices.id = t.dev AND devices.replay_high = t.oh \
                 AND devices.replay_seen = t.os RETURNING id",
                self.table(&[
                    ("dev", Col::Int),
                    ("nh", Col::Int),
                    ("ns", Col::Int),
                    ("oh", Col::Int),
                    ("os", Col::Int),
                ])
            );
            let mut claimed = HashSet::with_capacity(updates.len());
            self.statements += 1;
            for row in sqlx::query(&sql)
                .bind(json_rows::encode(&updates))
                .fetch_all(&mut *tx)
                .await?
            {
                claimed.insert(row.try_get::<i64, _>(0)?);
            }
            for &(i, device, seq) in &sequenced {
                let moved =
                    classes.get(&i).is_some_and(|c| c.is_new()) && !claimed.contains(&device);
                if moved {
                    self.statements += 2;
                    classes.insert(i, super::replay::claim_in(tx, device, seq).await?);
                }
            }
        }
        let mut live = Vec::with_capacity(round.len());
        for &i in round {
            if classes.get(&i) == Some(&SeqClass::TooOld) {
                self.results[i] = Some(Stored {
                    outcome: StoreOutcome::Replayed,
                    event_id: 0,
                    incident_id: None,
                    opened: false,
                });
            } else {
                live.push(i);
            }
        }
        Ok(live)
    }

    /// Inserts the events; a retry already stored is answered `Duplicate` with what it did then.
    /// Returns the new ones with their `device_events` ids.
    async fn insert_events(
        &mut self,
        tx: &mut AnyConnection,
        live: &[usize],
    ) -> StoreResult<Vec<(usize, i64)>> {
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let details: Vec<String> = live
            .iter()
            .map(|&i| event_detail(&self.events[i].body).to_string())
            .collect();
        let rows: Vec<_> = live
            .iter()
            .zip(&details)
            .map(|(&i, detail)| {
                let e = &self.events[i];
                (
                    i,
                    e.device_id,
                    e.dedup_key.as_str(),
                    e.body.kind_name(),
                    e.raw_code.as_str(),
                    detail.as_str(),
                    e.device_time,
                    e.received_at,
                )
            })
            .collect();
        let rows = json_rows::encode(&rows);
        let cols = [
            ("i", Col::Int),
            ("dev", Col::Int),
            ("dk", Col::Text),
            ("kd", Col::Text),
            ("rc", Col::Text),
            ("dt", Col::Text),
            ("tm", Col::Int),
            ("ra", Col::Int),
        ];
        let sql = format!(
            "INSERT INTO device_events \
             (device_id, dedup_key, kind, raw_code, detail, device_time, received_at, stored_at) \
             SELECT t.dev, t.dk, t.kd, t.rc, t.dt, t.tm, t.ra, $2 FROM {} WHERE true ORDER BY t.i \
             ON CONFLICT (device_id, dedup_key) DO NOTHING RETURNING id, device_id",
            self.table(&cols)
        );
        // Each device is in the round once, so the returned device names the event.
        let mut inserted = HashMap::with_capacity(live.len());
        self.statements += 1;
        for row in sqlx::query(&sql)
            .bind(rows.as_str())
            .bind(self.now)
            .fetch_all(&mut *tx)
            .await?
        {
            inserted.insert(row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(0)?);
        }
        if inserted.len() < live.len() {
            let sql = format!(
                "SELECT e.device_id, e.id, e.incident_id FROM device_events e JOIN {} \
                 ON e.device_id = t.dev AND e.dedup_key = t.dk",
                self.table(&cols)
            );
            let mut earlier = HashMap::new();
            self.statements += 1;
            for row in sqlx::query(&sql)
                .bind(rows.as_str())
                .fetch_all(&mut *tx)
                .await?
            {
                earlier.insert(
                    row.try_get::<i64, _>(0)?,
                    (row.try_get::<i64, _>(1)?, row.try_get::<Option<i64>, _>(2)?),
                );
            }
            for &i in live {
                let device = self.events[i].device_id;
                if inserted.contains_key(&device) {
                    continue;
                }
                let &(event_id, incident_id) = earlier.get(&device).ok_or_else(|| {
                    StoreError::Invalid(format!("event of device {device} neither new nor stored"))
                })?;
                self.results[i] = Some(Stored {
                    outcome: StoreOutcome::Duplicate,
                    event_id,
                    incident_id,
                    opened: false,
                });
            }
        }
        Ok(live
            .iter()
            .filter_map(|&i| Some((i, *inserted.get(&self.events[i].device_id)?)))
            .collect())
    }

    /// Raises each device's highest native sequence number seen.
    async fn raise_last_seq(
        &mut self,
        tx: &mut AnyConnection,
        stored: &[(usize, i64)],
    ) -> StoreResult<()> {
        let rows: Vec<(i64, i64)> = stored
            .iter()
            .filter_map(|&(i, _)| Some((self.events[i].device_id, self.events[i].seq?)))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE devices SET last_seq = CASE WHEN last_seq < t.sq THEN t.sq ELSE last_seq END \
             FROM {} WHERE devices.id = t.dev",
            self.table(&[("dev", Col::Int), ("sq", Col::Int)])
        );
        self.statements += 1;
        sqlx::query(&sql)
            .bind(json_rows::encode(&rows))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Opens or joins incidents for the alarms and service requests, finds the open incidents the
    /// other events concern, and appends one log entry per event that has an incident. Returns
    /// each such event's incident and whether the event opened it.
    async fn open_or_note(
        &mut self,
        tx: &mut AnyConnection,
        stored: &[(usize, i64)],
    ) -> StoreResult<HashMap<usize, (i64, bool)>> {
        let mut incidents = HashMap::with_capacity(stored.len());
        let mut entries = Vec::with_capacity(stored.len());
        let mut opens = Vec::new();
        let mut notes = Vec::new();
        for &(i, event_id) in stored {
            match follow(&self.events[i].body) {
                Follow::Open(category, kind, location) => {
                    opens.push((i, event_id, category, kind, location))
                }
                Follow::Note(category, kind) => {
                    notes.push((i, event_id, Some(self.open_key(i, category)), kind))
                }
                Follow::CommandResult => notes.push((i, event_id, None, "command_result")),
            }
        }
        if !opens.is_empty() {
            let rows: Vec<_> = opens
                .iter()
                .map(|&(i, _, category, kind, location)| {
                    let e = &self.events[i];
                    (
                        i,
                        e.elder_id,
                        e.device_id,
                        category.as_str(),
                        kind,
                        category.priority(),
                        location.map(|l| l.lat),
                        location.map(|l| l.lon),
                        location.and_then(|l| l.accuracy_m).map(f64::from),
                        self.open_key(i, category),
                        e.received_at,
                    )
                })
                .collect();
            // One statement opens each incident or joins the open one: `alarm_count` is 1 only on
            // a row this statement inserted (a join makes it at least 2).
            let sql = format!(
                "INSERT INTO incidents (elder_id, device_id, category, kind, priority, status, \
                 lat, lon, accuracy_m, open_key, received_at, stored_at) \
                 SELECT t.el, t.dev, t.cat, t.kd, t.pr, 'new', t.la, t.lo, t.acc, t.ok, t.ra, $2 \
                 FROM {} WHERE true ORDER BY t.i \
                 ON CONFLICT (open_key) DO UPDATE SET alarm_count = incidents.alarm_count + 1, \
                 lat = COALESCE(incidents.lat, excluded.lat), \
                 lon = COALESCE(incidents.lon, excluded.lon) \
                 RETURNING id, alarm_count, open_key",
                self.table(&[
                    ("i", Col::Int),
                    ("el", Col::Int),
                    ("dev", Col::Int),
                    ("cat", Col::Text),
                    ("kd", Col::Text),
                    ("pr", Col::Int),
                    ("la", Col::Real),
                    ("lo", Col::Real),
                    ("acc", Col::Real),
                    ("ok", Col::Text),
                    ("ra", Col::Int),
                ])
            );
            let mut by_key = HashMap::with_capacity(opens.len());
            self.statements += 1;
            for row in sqlx::query(&sql)
                .bind(json_rows::encode(&rows))
                .bind(self.now)
                .fetch_all(&mut *tx)
                .await?
            {
                let opened = row.try_get::<i64, _>(1)? == 1;
                by_key.insert(
                    row.try_get::<String, _>(2)?,
                    (row.try_get::<i64, _>(0)?, opened),
                );
            }
            for (row, &(i, event_id, _, kind, location)) in rows.iter().zip(&opens) {
                let &(id, opened) = by_key.get(&row.9).ok_or_else(|| {
                    StoreError::Invalid(format!("no incident returned for {}", row.9))
                })?;
                incidents.insert(i, (id, opened));
                let e = &self.events[i];
                entries.push(NewEntry {
                    incident_id: id,
                    kind: if opened { "opened" } else { "alarm_joined" },
                    actor: format!("device:{}", e.device_id),
                    detail: json!({
                        "kind": kind,
                        "raw_code": e.raw_code,
                        "device_id": e.device_id,
                        "device_event_id": event_id,
                        "location": location,
                    }),
                });
            }
        }
        if !notes.is_empty() {
            let rows: Vec<_> = notes
                .iter()
                .map(|(i, _, key, _)| (*i, key.as_deref(), self.events[*i].device_id))
                .collect();
            let sql = format!(
                "SELECT t.i, CASE WHEN t.ok IS NOT NULL \
                 THEN (SELECT id FROM incidents WHERE open_key = t.ok) \
                 ELSE (SELECT id FROM incidents WHERE device_id = t.dev AND status <> 'closed' \
                 ORDER BY id DESC LIMIT 1) END FROM {}",
                self.table(&[("i", Col::Int), ("ok", Col::Text), ("dev", Col::Int)])
            );
            let mut found = HashMap::with_capacity(notes.len());
            self.statements += 1;
            for row in sqlx::query(&sql)
                .bind(json_rows::encode(&rows))
                .fetch_all(&mut *tx)
                .await?
            {
                if let Some(id) = row.try_get::<Option<i64>, _>(1)? {
                    found.insert(
                        usize::try_from(row.try_get::<i64, _>(0)?).unwrap_or(usize::MAX),
                        id,
                    );
                }
            }
            let mut cancelled = Vec::new();
            for &(i, event_id, _, kind) in &notes {
                let Some(&id) = found.get(&i) else { continue };
                incidents.insert(i, (id, false));
                let e = &self.events[i];
                let detail = if kind == "command_result" {
                    event_detail(&e.body)
                } else {
                    json!({ "raw_code": e.raw_code, "device_event_id": event_id })
                };
                if kind == "device_cancelled" {
                    cancelled.push((id,));
                }
                entries.push(NewEntry {
                    incident_id: id,
                    kind,
                    actor: format!("device:{}", e.device_id),
                    detail,
                });
            }
            if !cancelled.is_empty() {
                let sql = format!(
                    "UPDATE incidents SET probable_false_alarm = 1 \
                     WHERE id IN (SELECT t.inc FROM {})",
                    self.table(&[("inc", Col::Int)])
                );
                self.statements += 1;
                sqlx::query(&sql)
                    .bind(json_rows::encode(&cancelled))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !entries.is_empty() {
            let appended =
                append_events(tx, self.backend, self.now, entries, &mut self.statements).await?;
            self.appended.extend(appended);
        }
        Ok(incidents)
    }

    /// Moves each elder's welfare timer to one check-in period after this sign of life.
    async fn rearm_welfare(
        &mut self,
        tx: &mut AnyConnection,
        stored: &[(usize, i64)],
    ) -> StoreResult<()> {
        let rows: Vec<(String, Millis, i64)> = stored
            .iter()
            .filter_map(|&(i, _)| {
                let e = &self.events[i];
                let sign_of_life = matches!(
                    e.body,
                    EventBody::Alarm { .. }
                        | EventBody::Cancel
                        | EventBody::CheckIn
                        | EventBody::ServiceRequest { .. }
                );
                let elder = e.elder_id.filter(|_| sign_of_life)?;
                Some((super::dispatch::welfare_key(elder), e.received_at, elder))
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO dispatch_timers (key, incident_id, name, due_at) \
             SELECT t.k, NULL, 'welfare', \
             t.at + (CASE WHEN elders.checkin_hours < 1 THEN 1 ELSE elders.checkin_hours END) * $2 \
             FROM {} JOIN elders ON elders.id = t.el WHERE true \
             ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, fired_at = NULL, \
             fired_by = NULL, claimed_by = NULL, claimed_until = NULL",
            self.table(&[("k", Col::Text), ("at", Col::Int), ("el", Col::Int)])
        );
        self.statements += 1;
        sqlx::query(&sql)
            .bind(json_rows::encode(&rows))
            .bind(self.checkin_hour_ms)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
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
