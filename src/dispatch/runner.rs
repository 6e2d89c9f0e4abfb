//! The code around the engine: loads an incident's dispatch state, steps the [`Engine`], and
//! applies the step the way raft-rs applies a `Ready`: everything the step decided (new state,
//! offers, timers, incident events, attention, outgoing notifications) is written in **one
//! transaction** ([`Store::write_step`]), together with the consumption of what triggered it (a
//! dispatch inbox entry or a claimed timer); only then are the volatile sends done (console and
//! app streams, relay wake-ups, metrics). A crash at any point loses nothing and repeats nothing:
//! before the commit nothing happened, after it the relays deliver from the committed rows.
//!
//! State is saved with a version check, so two instances stepping the same incident never both
//! win: the loser reloads and steps again. Acceptance is decided by the engine on that versioned
//! state, and the unique seat index in `dispatch_offers` is the store's last word.
//!
//! The loops that feed the runner (the console feed, due timers, the reconciler, welfare) are in
//! [`timers`](super::timers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::engine::{DispatchState, Effect, Engine, IncidentFacts, Input, OfferStatus};
use super::matcher::{Available, Matcher, available_at};
use super::policy::DispatchPolicy;
use super::ready::{self, DeliveryPolicy, Reach, ReadyInput};
use super::welfare;
use crate::domain::{Contact, IncidentEvent, IncidentStatus, Millis, Outcome, now_millis};
use crate::notify::{ConsoleHub, Outbox, ResponderHub};
use crate::store::{Consume, StepCommit, Store, StoreError, StoreResult};

/// Timing the runner needs besides the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerTiming {
    /// How long a claimed timer is reserved for its claimer before another instance may fire it.
    pub timer_lease_ms: Millis,
    /// Length of one hour of an elder's check-in period (an hour, shorter in drills and tests).
    pub checkin_hour_ms: Millis,
    /// Local time's offset from UTC in minutes; shifts are in local time.
    pub utc_offset_min: i64,
    /// How old an incident must be before the reconciler looks at it.
    pub reconcile_grace_ms: Millis,
}

impl Default for RunnerTiming {
    fn default() -> Self {
        RunnerTiming {
            timer_lease_ms: 30_000,
            reconcile_grace_ms: 10_000,
            checkin_hour_ms: welfare::HOUR_MS,
            utc_offset_min: 8 * 60,
        }
    }
}

/// Why an operator's dispatch action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such incident.
    UnknownIncident,
    /// The incident is closed, or its task already completed.
    Closed(String),
    /// No such responder, or not available (off duty and outside their shifts).
    Responder(String),
}

/// The state before and after a committed step.
#[derive(Debug, Clone)]
pub struct Stepped {
    /// Before (`None`: the step started the dispatch).
    pub before: Option<DispatchState>,
    /// After.
    pub after: DispatchState,
}

/// Where the runner's output goes besides the store.
#[derive(Clone)]
pub struct Outlets {
    /// The console's live feed.
    pub console: ConsoleHub,
    /// The responders' app streams.
    pub responders: ResponderHub,
    /// Wakes the relays.
    pub outbox: Outbox,
}

/// Runs dispatch for one server instance.
pub struct Runner {
    pub(super) store: Store,
    pub(super) engine: Engine,
    matcher: Mutex<Matcher>,
    reference_lat: f64,
    pub(super) out: Outlets,
    pub(super) instance: String,
    pub(super) timing: RunnerTiming,
    delivery: DeliveryPolicy,
    /// A periodic reload of the responders is running (they never overlap).
    pub(super) refreshing: std::sync::atomic::AtomicBool,
}

impl Runner {
    /// A runner with an empty index; call [`Runner::refresh_responders`] before use.
    pub fn new(
        store: Store,
        policy: DispatchPolicy,
        reference_lat: f64,
        timing: RunnerTiming,
        delivery: DeliveryPolicy,
        out: Outlets,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            engine: Engine::new(policy),
            matcher: Mutex::new(Matcher::new(reference_lat, [])),
            reference_lat,
            out,
            instance: format!("{:016x}", rand::random::<u64>()),
            timing,
            delivery,
            refreshing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Rebuilds the spatial index from the responders available now (on duty or inside a shift)
    /// and their tasks in hand.
    pub async fn refresh_responders(&self) -> StoreResult<usize> {
        let people = self.store.list_responders(1_000_000).await?;
        let loads = self.store.responder_loads().await?;
        let local = now_millis().saturating_add(self.timing.utc_offset_min.saturating_mul(60_000));
        let available: Vec<Available> = people
            .into_iter()
            .filter(|r| available_at(r.on_duty, &r.shifts, local))
            .map(|r| Available {
                id: r.id,
                kind: r.kind,
                skills: r.skills,
                lat: r.lat.unwrap_or(r.home_lat),
                lon: r.lon.unwrap_or(r.home_lon),
                load: loads.get(&r.id).copied().unwrap_or(0),
                max_tasks: u32::try_from(r.max_tasks).unwrap_or(1),
            })
            .collect();
        let n = available.len();
        let index = Matcher::new(self.reference_lat, available);
        *self.matcher.lock().unwrap_or_else(|e| e.into_inner()) = index;
        Ok(n)
    }

    /// The engine input an incident event stands for, if any.
    pub fn input_for(event: &IncidentEvent) -> Option<Input> {
        match event.kind.as_str() {
            "opened" => Some(Input::Opened),
            "alarm_joined" => Some(Input::AlarmJoined),
            "device_cancelled" => Some(Input::DeviceCancel),
            "acknowledged" => Some(Input::OperatorAck),
            "closed" => {
                let outcome = event
                    .detail
                    .get("outcome")
                    .and_then(|o| serde_json::from_value::<Outcome>(o.clone()).ok())
                    .unwrap_or(Outcome::Resolved);
                Some(Input::Closed(outcome))
            }
            _ => None,
        }
    }

    async fn facts(&self, incident_id: i64) -> StoreResult<Option<IncidentFacts>> {
        let Some(incident) = self.store.get_incident(incident_id).await? else {
            return Ok(None);
        };
        let elder = match incident.elder_id {
            Some(id) => self.store.get_elder(id).await?,
            None => None,
        };
        let grid_worker = match elder.as_ref().and_then(|e| e.grid_id) {
            Some(grid) => self.store.get_area(grid).await?.and_then(|a| a.worker_id),
            None => None,
        };
        let mut key_holders = Vec::new();
        for c in elder
            .iter()
            .flat_map(|e| &e.contacts)
            .filter(|c| c.key_holder)
        {
            if let Some(id) = self.store.responder_id_by_phone(&c.phone).await? {
                key_holders.push(id);
            }
        }
        let location = incident.location.or_else(|| {
            elder.as_ref().map(|e| crate::domain::GeoPoint {
                lat: e.lat,
                lon: e.lon,
                accuracy_m: None,
            })
        });
        Ok(Some(IncidentFacts {
            incident_id,
            category: incident.category,
            kind: incident.kind,
            location,
            elder_id: incident.elder_id,
            grid_worker,
            key_holders,
            contacts: elder.as_ref().map(|e| e.contacts.len() as u32).unwrap_or(0),
            opened_at: incident.received_at,
            address: elder.as_ref().map(|e| e.address.clone()),
            elder_name: elder.map(|e| e.name),
        }))
    }

    /// Steps one incident's dispatch with `input` at `now` and commits the step. `None` when
    /// nothing was stepped (no such incident, or nothing to dispatch).
    pub async fn handle(
        &self,
        incident_id: i64,
        input: Input,
        now: Millis,
    ) -> StoreResult<Option<Stepped>> {
        self.step(incident_id, input, now, None).await
    }

    /// Steps and commits, consuming `consume` (an inbox entry, a claimed timer) in the same
    /// transaction; `None` when it was already consumed or there was nothing to step.
    pub(super) async fn step(
        &self,
        incident_id: i64,
        input: Input,
        now: Millis,
        consume: Option<Consume>,
    ) -> StoreResult<Option<Stepped>> {
        for _ in 0..8 {
            let (version, before, inputs) =
                match self.store.load_dispatch_state(incident_id).await? {
                    Some((v, json)) => {
                        let state: DispatchState = serde_json::from_str(&json)
                            .map_err(|e| StoreError::Invalid(format!("dispatch state: {e}")))?;
                        (Some(v), Some(state), vec![input.clone()])
                    }
                    // A closed incident or a stray timer never starts a dispatch.
                    None if matches!(input, Input::Closed(_) | Input::TimerFired(_)) => {
                        self.consume_only(incident_id, consume, now).await?;
                        return Ok(None);
                    }
                    None => {
                        let mut inputs = vec![Input::Opened];
                        if !matches!(input, Input::Opened | Input::Reconcile) {
                            inputs.push(input.clone());
                        }
                        (None, None, inputs)
                    }
                };
            let start = match &before {
                Some(st) => st.clone(),
                None => match self.facts(incident_id).await? {
                    Some(facts) => self.engine.init(facts),
                    None => {
                        self.consume_only(incident_id, consume, now).await?;
                        return Ok(None);
                    }
                },
            };
            let (after, effects) = {
                let index = self.matcher.lock().unwrap_or_else(|e| e.into_inner());
                let mut st = start;
                let mut all = Vec::new();
                for i in &inputs {
                    let (s, fx) = self.engine.step(st, i, now, &*index);
                    st = s;
                    all.extend(fx);
                }
                (st, all)
            };
            let reach = self.reach(&effects).await?;
            let contacts = self.contacts(&effects).await?;
            let first_offer =
                before.as_ref().is_none_or(|b| b.offers.is_empty()) && !after.offers.is_empty();
            let ready = ready::ready(ReadyInput {
                incident_id,
                version,
                before: before.as_ref(),
                after: &after,
                effects,
                reach: &reach,
                elder: contacts
                    .as_ref()
                    .map(|(name, list)| (name.as_str(), list.as_slice())),
                delivery: self.delivery,
                now,
            });
            let json = serde_json::to_string(&after)
                .map_err(|e| StoreError::Invalid(format!("dispatch state: {e}")))?;
            let mut write = ready.write;
            write.state = Some((version, json, ready::needs_timer(&after)));
            write.consume = consume.clone();
            match self.store.write_step(&write).await? {
                StepCommit::Raced => {
                    metrics::counter!("onekey_dispatch_state_races_total").increment(1);
                    continue;
                }
                StepCommit::AlreadyConsumed => return Ok(None),
                StepCommit::Committed {
                    events,
                    notifications,
                } => {
                    self.out.console.publish(events);
                    self.out.responders.publish(&notifications);
                    self.out.outbox.wake_for(&notifications);
                    if first_offer {
                        let secs = (now - after.facts.opened_at).max(0) as f64 / 1000.0;
                        metrics::histogram!("onekey_dispatch_first_offer_seconds").record(secs);
                    }
                    record_metrics(&ready.after_commit);
                    return Ok(Some(Stepped { before, after }));
                }
            }
        }
        Err(StoreError::Invalid(format!(
            "incident {incident_id}: dispatch state kept changing under us"
        )))
    }

    async fn consume_only(
        &self,
        incident_id: i64,
        consume: Option<Consume>,
        now: Millis,
    ) -> StoreResult<()> {
        if consume.is_some() {
            let write = crate::store::StepWrite {
                incident_id,
                consume,
                at: now,
                ..Default::default()
            };
            self.store.write_step(&write).await?;
        }
        Ok(())
    }

    /// How each responder the step pushes to is reached (phone, app or SMS only).
    async fn reach(&self, effects: &[Effect]) -> StoreResult<HashMap<i64, Reach>> {
        let mut reach = HashMap::new();
        for e in effects {
            if let Effect::Push { responder_id, .. } = e
                && !reach.contains_key(responder_id)
                && let Some((phone, sms_only)) = self.store.responder_reach(*responder_id).await?
            {
                reach.insert(
                    *responder_id,
                    Reach {
                        phone: Some(phone).filter(|p| !p.trim().is_empty()),
                        sms_only,
                    },
                );
            }
        }
        Ok(reach)
    }

    /// The elder's name and contacts, when the step notifies them.
    async fn contacts(&self, effects: &[Effect]) -> StoreResult<Option<(String, Vec<Contact>)>> {
        let Some(elder_id) = effects.iter().find_map(|e| match e {
            Effect::NotifyContacts { elder_id } => Some(*elder_id),
            _ => None,
        }) else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_elder(elder_id)
            .await?
            .map(|e| (e.name, e.contacts)))
    }

    /// A responder accepts their offer. Returns whether they hold the task now (the engine
    /// decides on the versioned state; a late or second accept is refused and told so).
    pub async fn accept(
        &self,
        incident_id: i64,
        responder_id: i64,
        now: Millis,
    ) -> StoreResult<bool> {
        let stepped = self
            .handle(incident_id, Input::Accepted(responder_id), now)
            .await?;
        Ok(stepped.is_some_and(|s| {
            s.after
                .offer(responder_id)
                .is_some_and(|o| o.status.holds_task())
        }))
    }

    /// A responder answers or reports progress on a task: `declined`, `arrived` or `completed`.
    /// Returns false when the offer or task was not in a state that allows it.
    pub async fn report(
        &self,
        incident_id: i64,
        responder_id: i64,
        input: Input,
        now: Millis,
    ) -> StoreResult<bool> {
        let (from, to): (&[OfferStatus], OfferStatus) = match &input {
            Input::Declined(_) => (
                &[OfferStatus::Pending, OfferStatus::Expired],
                OfferStatus::Declined,
            ),
            Input::Arrived(_) => (&[OfferStatus::Accepted], OfferStatus::Arrived),
            Input::Completed(..) => (
                &[OfferStatus::Accepted, OfferStatus::Arrived],
                OfferStatus::Completed,
            ),
            _ => return Ok(false),
        };
        let allowed = match self.store.load_dispatch_state(incident_id).await? {
            Some((_, json)) => serde_json::from_str::<DispatchState>(&json)
                .ok()
                .and_then(|st| st.offer(responder_id).map(|o| o.status))
                .is_some_and(|s| from.contains(&s)),
            None => false,
        };
        if !allowed {
            return Ok(false);
        }
        let stepped = self.handle(incident_id, input, now).await?;
        Ok(stepped.is_some_and(|s| s.after.offer(responder_id).map(|o| o.status) == Some(to)))
    }

    async fn check_operator_action(&self, incident_id: i64) -> StoreResult<Result<(), Refusal>> {
        let Some(incident) = self.store.get_incident(incident_id).await? else {
            return Ok(Err(Refusal::UnknownIncident));
        };
        if incident.status == IncidentStatus::Closed {
            return Ok(Err(Refusal::Closed("the incident is closed".into())));
        }
        if let Some((_, json)) = self.store.load_dispatch_state(incident_id).await?
            && let Ok(state) = serde_json::from_str::<DispatchState>(&json)
        {
            if state.closed {
                return Ok(Err(Refusal::Closed("the incident is closed".into())));
            }
            if state.done {
                return Ok(Err(Refusal::Closed("the task is already completed".into())));
            }
        }
        Ok(Ok(()))
    }

    /// An operator offers the incident's task to `responder_id` now (standing down whoever holds
    /// the primary seat). The responder must exist and be available (on duty or on shift).
    pub async fn operator_offer(
        &self,
        incident_id: i64,
        responder_id: i64,
        by: &str,
        now: Millis,
    ) -> StoreResult<Result<(), Refusal>> {
        if let Err(r) = self.check_operator_action(incident_id).await? {
            return Ok(Err(r));
        }
        if self.store.get_responder(responder_id).await?.is_none() {
            return Ok(Err(Refusal::Responder(format!(
                "no responder {responder_id}"
            ))));
        }
        let available = self
            .matcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(responder_id)
            .is_some();
        if !available {
            return Ok(Err(Refusal::Responder(format!(
                "responder {responder_id} is off duty and outside their shifts"
            ))));
        }
        let input = Input::OperatorOffer {
            responder_id,
            by: by.to_string(),
        };
        self.handle(incident_id, input, now).await?;
        Ok(Ok(()))
    }

    /// An operator moves the incident to the next escalation step now (grid worker, then an
    /// operator decision), with a note.
    pub async fn operator_escalate(
        &self,
        incident_id: i64,
        note: &str,
        by: &str,
        now: Millis,
    ) -> StoreResult<Result<(), Refusal>> {
        if let Err(r) = self.check_operator_action(incident_id).await? {
            return Ok(Err(r));
        }
        let input = Input::OperatorEscalate {
            note: note.to_string(),
            by: by.to_string(),
        };
        self.handle(incident_id, input, now).await?;
        Ok(Ok(()))
    }

    /// An operator confirms a false alarm: responders still on it stand down.
    pub async fn confirm_false_alarm(
        &self,
        incident_id: i64,
        by: &str,
        now: Millis,
    ) -> StoreResult<Result<(), Refusal>> {
        if let Err(r) = self.check_operator_action(incident_id).await? {
            return Ok(Err(r));
        }
        let input = Input::ConfirmFalseAlarm { by: by.to_string() };
        self.handle(incident_id, input, now).await?;
        Ok(Ok(()))
    }

    /// The index of available responders (for tests of availability).
    pub fn is_available(&self, responder_id: i64) -> bool {
        self.matcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(responder_id)
            .is_some()
    }
}

fn record_metrics(effects: &[Effect]) {
    for effect in effects {
        match effect {
            Effect::Escalate { reason, .. } => {
                metrics::counter!("onekey_dispatch_escalations_total", "reason" => reason.as_str())
                    .increment(1);
            }
            Effect::SlaMet { clock, elapsed_ms } => {
                metrics::histogram!("onekey_dispatch_sla_seconds", "clock" => clock.as_str())
                    .record(*elapsed_ms as f64 / 1000.0);
            }
            Effect::SlaBreached { clock } => {
                metrics::counter!("onekey_dispatch_sla_breaches_total", "clock" => clock.as_str())
                    .increment(1);
            }
            _ => {}
        }
    }
}

impl crate::notify::inbound::ReplySink for Runner {
    fn answer(
        &self,
        incident_id: i64,
        responder_id: i64,
        accept: bool,
    ) -> crate::notify::inbound::BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let now = now_millis();
            if accept {
                self.accept(incident_id, responder_id, now).await
            } else {
                self.report(
                    incident_id,
                    responder_id,
                    Input::Declined(responder_id),
                    now,
                )
                .await
            }
        })
    }
}
