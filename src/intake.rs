//! Intake: the one door into the durable store for everything devices say.
//!
//! Connections call [`Intake::submit`] and wait; a single writer task drains the queue into batches
//! and commits each batch in one transaction (group commit), then answers every waiter. So an alarm is
//! answered only after its batch is on disk, one fsync serves many alarms, and a slow disk slows the
//! answers down without losing any. The writer drains until the queue is empty, never one batch per
//! tick. When a batch fails it retries its events one by one, so one bad event cannot keep the
//! others from being stored.
//!
//! Heartbeat state takes the other door, [`Intake::report_status`]: it is kept in memory and written
//! every `status_flush` by a task of its own, [`STATUS_CHUNK`] devices per statement, without an
//! fsync per heartbeat and without ever holding up the writer of the alarms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::power::{PowerWatch, power_event};
use crate::domain::{DeviceEvent, DeviceStatus, IncidentEvent, Millis, now_millis};
use crate::store::{StatusUpdate, Store, StoreError, Stored};

/// Tuning for the writer.
#[derive(Debug, Clone, Copy)]
pub struct IntakeConfig {
    /// Most events in one transaction.
    pub batch_max: usize,
    /// How long the writer waits for more events after the first one of a batch (0 = none: batches
    /// form naturally while the previous commit runs).
    pub linger: Duration,
    /// Queue length; submitters wait when it is full (back-pressure to the sockets).
    pub queue: usize,
    /// How often heartbeat state is written.
    pub status_flush: Duration,
    /// Refusals of the same event (a constraint it breaks, not an outage) after which it is
    /// quarantined: kept with the refusal, put before an operator, and ACKed (0 = never).
    pub quarantine_after: u32,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            batch_max: 512,
            linger: Duration::ZERO,
            queue: 16_384,
            status_flush: Duration::from_secs(2),
            quarantine_after: 3,
        }
    }
}

/// Why an event was not stored. The device gets no ACK and will retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    /// The store failed; the message is logged, not sent to devices.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The server is shutting down and no longer takes events.
    #[error("shutting down")]
    Closed,
}

/// What the writer publishes after each commit, for the console and dispatch.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Incident log entries appended by the batch, in id order.
    pub incident_events: Vec<IncidentEvent>,
}

struct Job {
    event: DeviceEvent,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Stored, IntakeError>>,
}

/// A cheap-to-clone handle for submitting events.
#[derive(Clone)]
pub struct Intake {
    jobs: mpsc::Sender<Job>,
    statuses: Arc<Mutex<HashMap<i64, StatusUpdate>>>,
    power: Arc<Mutex<PowerWatch>>,
}

impl Intake {
    /// Starts the writer. It stops after every `Intake` handle is dropped and the queue is drained,
    /// then writes the last heartbeat state.
    pub fn start(
        store: Store,
        config: IntakeConfig,
        on_commit: impl Fn(Committed) + Send + 'static,
    ) -> (Intake, JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(config.queue);
        let statuses = Arc::new(Mutex::new(HashMap::new()));
        let writer = Writer {
            store,
            config,
            rx,
            statuses: statuses.clone(),
            on_commit: Box::new(on_commit),
            refusals: HashMap::new(),
        };
        let handle = tokio::spawn(writer.run());
        (
            Intake {
                jobs,
                statuses,
                power: Arc::default(),
            },
            handle,
        )
    }

    /// Submits an event and waits until it is committed (or failed).
    pub async fn submit(&self, event: DeviceEvent) -> Result<Stored, IntakeError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            event,
            enqueued: Instant::now(),
            reply,
        };
        self.jobs.send(job).await.map_err(|_| IntakeError::Closed)?;
        metrics::gauge!("onekey_intake_queue_depth")
            .set((self.jobs.max_capacity() - self.jobs.capacity()) as f64);
        answer.await.unwrap_or(Err(IntakeError::Closed))
    }

    /// Records a device's latest heartbeat state; written with the next status flush. A battery
    /// that ran low or mains that went off raise their technical alarm ([`PowerWatch`]), submitted
    /// beside the frame: the frame's own ACK does not wait for it. `mains_powered`: the device's
    /// mains flag means mains power (not a wearable's charging bit).
    pub fn report_status(
        &self,
        device_id: i64,
        elder_id: Option<i64>,
        mains_powered: bool,
        status: DeviceStatus,
        seen: Millis,
        seq: Option<i64>,
    ) {
        {
            let mut map = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
            let entry = map.entry(device_id).or_insert(StatusUpdate {
                device_id,
                status,
                last_seen: seen,
                last_seq: seq,
            });
            merge_status(&mut entry.status, status);
            entry.last_seen = entry.last_seen.max(seen);
            entry.last_seq = entry.last_seq.max(seq);
        }
        let raised = self
            .power
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(device_id, &status, mains_powered);
        for kind in raised {
            let event = power_event(device_id, elder_id, kind, &status, seen);
            let intake = self.clone();
            tokio::spawn(async move {
                let stored = intake.submit(event).await.is_ok();
                tracing::info!(
                    device_id,
                    kind = kind.as_str(),
                    stored,
                    "power alarm from heartbeat state"
                );
                intake
                    .power
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .settle(device_id, kind, stored);
            });
        }
    }
}

fn merge_status(into: &mut DeviceStatus, new: DeviceStatus) {
    into.battery_pct = new.battery_pct.or(into.battery_pct);
    into.mains = new.mains.or(into.mains);
    into.signal_pct = new.signal_pct.or(into.signal_pct);
    into.location = new.location.or(into.location);
}

struct Writer {
    store: Store,
    config: IntakeConfig,
    rx: mpsc::Receiver<Job>,
    statuses: Arc<Mutex<HashMap<i64, StatusUpdate>>>,
    on_commit: Box<dyn Fn(Committed) + Send>,
    /// How often each event (device, dedup key) was refused by the store, until quarantined.
    refusals: HashMap<(i64, String), u32>,
}

/// Most events whose refusals are remembered at once (a retrying device comes back within
/// seconds; past this the count starts again, which only delays a quarantine).
const REFUSALS_KEPT: usize = 10_000;

impl Writer {
    async fn run(mut self) {
        let (stop, stopped) = oneshot::channel();
        let flusher = tokio::spawn(write_statuses_every(
            self.store.clone(),
            self.statuses.clone(),
            self.config.status_flush,
            stopped,
        ));
        let mut batch = Vec::with_capacity(self.config.batch_max);
        while let Some(job) = self.rx.recv().await {
            batch.push(job);
            self.fill(&mut batch).await;
            self.commit(&mut batch).await;
        }
        // The last heartbeat state is written once no alarm is left to commit.
        let _ = stop.send(());
        let _ = flusher.await;
        tracing::info!("intake writer stopped");
    }

    /// Takes what is already queued, waiting up to `linger` for more.
    async fn fill(&mut self, batch: &mut Vec<Job>) {
        let deadline = tokio::time::Instant::now() + self.config.linger;
        while batch.len() < self.config.batch_max {
            match self.rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) if self.config.linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                },
            }
        }
    }

    async fn commit(&mut self, batch: &mut Vec<Job>) {
        let started = Instant::now();
        let size = batch.len();
        // Move the events out of the jobs: the batch is committed without copying them.
        let (events, waiters): (Vec<DeviceEvent>, Vec<Waiter>) = batch
            .drain(..)
            .map(|j| {
                (
                    j.event,
                    Waiter {
                        enqueued: j.enqueued,
                        reply: j.reply,
                    },
                )
            })
            .unzip();
        let result = self.store.commit_events(&events, now_millis()).await;
        metrics::histogram!("onekey_intake_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("onekey_intake_batch_size").record(size as f64);
        match result {
            Ok((stored, incident_events)) => {
                for (waiter, stored) in waiters.into_iter().zip(stored) {
                    waiter.answer(Ok(stored));
                }
                self.publish(incident_events);
            }
            Err(e) if size > 1 => {
                tracing::warn!(error = %e, size, "batch commit failed; retrying its events one by one");
                metrics::counter!("onekey_store_errors_total", "op" => "batch_commit").increment(1);
                for (event, waiter) in events.into_iter().zip(waiters) {
                    match self
                        .store
                        .commit_events(std::slice::from_ref(&event), now_millis())
                        .await
                    {
                        Ok((mut stored, incident_events)) => {
                            waiter.answer(
                                stored
                                    .pop()
                                    .ok_or_else(|| IntakeError::Store("empty result".into())),
                            );
                            self.publish(incident_events);
                        }
                        Err(e) => self.refused(event, waiter, e).await,
                    }
                }
            }
            Err(e) => {
                // A batch of one (a larger one was retried event by event above).
                let one = events.into_iter().zip(waiters).next();
                if let Some((event, waiter)) = one {
                    self.refused(event, waiter, e).await;
                }
            }
        }
    }

    /// An event the store did not take. A refusal of the data itself (not an outage), met
    /// `quarantine_after` times for the same event, is quarantined: kept with the refusal and
    /// put before an operator, and only then answered as stored. Anything else fails, unanswered,
    /// and the device retries.
    async fn refused(&mut self, event: DeviceEvent, waiter: Waiter, error: StoreError) {
        if self.config.quarantine_after == 0 || !error.is_refusal() {
            return waiter.fail(&event, &error);
        }
        // A retry of an event kept aside already: answered as the duplicate it is.
        if let Ok(true) = self
            .store
            .is_quarantined(event.device_id, &event.dedup_key)
            .await
        {
            return waiter.answer_as(Ok(quarantined(false)), "quarantined");
        }
        if self.refusals.len() >= REFUSALS_KEPT {
            self.refusals.clear();
        }
        let key = (event.device_id, event.dedup_key.clone());
        let attempts = {
            let n = self.refusals.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if attempts < self.config.quarantine_after {
            return waiter.fail(&event, &error);
        }
        let reason = error.to_string();
        match self
            .store
            .quarantine_event(&event, &reason, attempts, now_millis())
            .await
        {
            Ok((kept, incident_events)) => {
                self.refusals.remove(&key);
                tracing::error!(
                    device_id = event.device_id,
                    dedup_key = %event.dedup_key,
                    raw_code = %event.raw_code,
                    error = %reason,
                    attempts,
                    "the store refuses this event every time; quarantined, put before an operator, ACKed"
                );
                metrics::counter!("onekey_events_quarantined_total").increment(u64::from(kept));
                self.publish(incident_events);
                waiter.answer_as(Ok(quarantined(kept)), "quarantined");
            }
            Err(e) => waiter.fail(&event, &e),
        }
    }

    fn publish(&self, incident_events: Vec<IncidentEvent>) {
        if !incident_events.is_empty() {
            (self.on_commit)(Committed { incident_events });
        }
    }
}

/// Most devices whose heartbeat state one statement writes: a short hold of the database's write
/// lock (SQLite) and of the devices' rows (PostgreSQL), so an alarm's commit waits little for it.
pub const STATUS_CHUNK: usize = 1_000;

/// Writes the heartbeat state gathered in `statuses` every `every`, and once more when `stop`
/// fires (or its sender is dropped).
async fn write_statuses_every(
    store: Store,
    statuses: Arc<Mutex<HashMap<i64, StatusUpdate>>>,
    every: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        write_statuses(&store, &statuses).await;
        if last {
            return;
        }
    }
}

async fn write_statuses(store: &Store, statuses: &Mutex<HashMap<i64, StatusUpdate>>) {
    let updates: Vec<StatusUpdate> = {
        let mut map = statuses.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().map(|(_, u)| u).collect()
    };
    for chunk in updates.chunks(STATUS_CHUNK) {
        if let Err(e) = store.write_statuses(chunk).await {
            tracing::warn!(error = %e, devices = chunk.len(), "writing device state failed; will retry");
            metrics::counter!("onekey_store_errors_total", "op" => "status_flush").increment(1);
            let mut map = statuses.lock().unwrap_or_else(|e| e.into_inner());
            for u in chunk {
                map.entry(u.device_id).or_insert(*u);
            }
        }
    }
}

/// The answer for a quarantined event: stored when kept now, a duplicate when kept before.
fn quarantined(now: bool) -> Stored {
    Stored {
        outcome: if now {
            crate::store::StoreOutcome::Stored
        } else {
            crate::store::StoreOutcome::Duplicate
        },
        event_id: 0,
        incident_id: None,
        opened: false,
    }
}

/// Someone waiting for an event's commit.
struct Waiter {
    enqueued: Instant,
    reply: oneshot::Sender<Result<Stored, IntakeError>>,
}

impl Waiter {
    fn answer(self, result: Result<Stored, IntakeError>) {
        let outcome = match &result {
            Ok(s) => match s.outcome {
                crate::store::StoreOutcome::Stored => "stored",
                crate::store::StoreOutcome::Duplicate => "duplicate",
                crate::store::StoreOutcome::Replayed => "replayed",
            },
            Err(_) => "failed",
        };
        self.answer_as(result, outcome);
    }

    /// Answers, counted under `outcome`.
    fn answer_as(self, result: Result<Stored, IntakeError>, outcome: &'static str) {
        metrics::counter!("onekey_intake_events_total", "outcome" => outcome).increment(1);
        metrics::histogram!("onekey_intake_wait_seconds")
            .record(self.enqueued.elapsed().as_secs_f64());
        // The submitter may have gone (connection closed); the event is stored all the same.
        let _ = self.reply.send(result);
    }

    fn fail(self, event: &DeviceEvent, error: &StoreError) {
        tracing::error!(
            error = %error,
            device_id = event.device_id,
            dedup_key = %event.dedup_key,
            "event not stored; the device gets no ACK and will retry"
        );
        metrics::counter!("onekey_store_errors_total", "op" => "commit").increment(1);
        self.answer(Err(IntakeError::Store(error.to_string())));
    }
}
