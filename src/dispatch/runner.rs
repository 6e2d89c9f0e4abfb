//! The code around the engine: follows committed incident events, loads an incident's dispatch
//! state, steps the [`Engine`] and carries out its effects (offers and pushes, durable timers,
//! incident events); a timer loop claims due timers from the store and feeds them back in.
//!
//! State is saved with a version check, so two instances stepping the same incident never both
//! win: the loser reloads and steps again.
//!
//! Timers are claimed under a lease and marked fired after their step: an instance that dies
//! mid-fire leaves the timer to be claimed again when the lease runs out. A re-fired timer whose
//! step was already saved changes nothing (the engine ignores a stale round or a clock that already
//! breached), so each timer takes effect once.
//!
//! The welfare clock: every elder with a device has a durable timer (`elder:<id>/welfare`), armed
//! by a sweep and re-armed by every sign of life in the intake's transaction. When it fires, the
//! pure [`welfare`](super::welfare) rule decides; a visit opens a welfare incident, which is
//! dispatched like any other (the grid worker, with the welfare SLA).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::engine::{DispatchState, Effect, Engine, IncidentFacts, Input, Push, Timer};
use super::matcher::{Available, Matcher, available_at};
use super::policy::DispatchPolicy;
use super::welfare;
use crate::domain::{IncidentEvent, IncidentStatus, Millis, Outcome, now_millis};
use crate::notify::{ConsoleHub, ResponderHub, ResponderPush};
use crate::store::{
    AcceptOutcome, DueTimer, Store, StoreError, StoreResult, WELFARE_TIMER, timer_key,
    welfare_elder, welfare_key,
};

/// Timing the runner needs besides the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerTiming {
    /// How long a claimed timer is reserved for its claimer before another instance may fire it.
    pub timer_lease_ms: Millis,
    /// Length of one hour of an elder's check-in period (an hour, shorter in drills and tests).
    pub checkin_hour_ms: Millis,
    /// Local time's offset from UTC in minutes; shifts are in local time.
    pub utc_offset_min: i64,
}

impl Default for RunnerTiming {
    fn default() -> Self {
        RunnerTiming {
            timer_lease_ms: 30_000,
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

/// Runs dispatch for one server instance.
pub struct Runner {
    store: Store,
    engine: Engine,
    matcher: Mutex<Matcher>,
    reference_lat: f64,
    console: ConsoleHub,
    responders: ResponderHub,
    instance: String,
    timing: RunnerTiming,
}

impl Runner {
    /// A runner with an empty index; call [`Runner::refresh_responders`] before use.
    pub fn new(
        store: Store,
        policy: DispatchPolicy,
        reference_lat: f64,
        timing: RunnerTiming,
        console: ConsoleHub,
        responders: ResponderHub,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            engine: Engine::new(policy),
            matcher: Mutex::new(Matcher::new(reference_lat, [])),
            reference_lat,
            console,
            responders,
            instance: format!("{:016x}", rand::random::<u64>()),
            timing,
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
            contacts: elder.map(|e| e.contacts.len() as u32).unwrap_or(0),
            opened_at: incident.received_at,
        }))
    }

    /// Steps one incident's dispatch with `input` at `now` and carries out the effects.
    pub async fn handle(&self, incident_id: i64, input: Input, now: Millis) -> StoreResult<()> {
        for _ in 0..8 {
            let (version, state, mut inputs) =
                match self.store.load_dispatch_state(incident_id).await? {
                    Some((v, json)) => {
                        let state: DispatchState = serde_json::from_str(&json)
                            .map_err(|e| StoreError::Invalid(format!("dispatch state: {e}")))?;
                        (Some(v), state, vec![])
                    }
                    // A closed incident or a stray timer never starts a dispatch.
                    None if matches!(input, Input::Closed(_) | Input::TimerFired(_)) => {
                        return Ok(());
                    }
                    None => {
                        let Some(facts) = self.facts(incident_id).await? else {
                            return Ok(());
                        };
                        (None, self.engine.init(facts), vec![Input::Opened])
                    }
                };
            if input != Input::Opened || inputs.is_empty() {
                inputs.push(input.clone());
            }
            let first_offer_pending = state.offers.is_empty();
            let (next, effects) = {
                let index = self.matcher.lock().unwrap_or_else(|e| e.into_inner());
                let mut st = state;
                let mut all = Vec::new();
                for i in &inputs {
                    let (s, fx) = self.engine.step(st, i, now, &*index);
                    st = s;
                    all.extend(fx);
                }
                (st, all)
            };
            let json = serde_json::to_string(&next)
                .map_err(|e| StoreError::Invalid(format!("dispatch state: {e}")))?;
            if !self
                .store
                .save_dispatch_state(incident_id, version, &json, now)
                .await?
            {
                metrics::counter!("onekey_dispatch_state_races_total").increment(1);
                continue;
            }
            if first_offer_pending
                && effects.iter().any(|e| {
                    matches!(
                        e,
                        Effect::Push {
                            push: Push::Offer { .. },
                            ..
                        }
                    )
                })
            {
                let secs = (now - next.facts.opened_at).max(0) as f64 / 1000.0;
                metrics::histogram!("onekey_dispatch_first_offer_seconds").record(secs);
            }
            for effect in effects {
                self.carry_out(incident_id, effect, now).await?;
            }
            return Ok(());
        }
        Err(StoreError::Invalid(format!(
            "incident {incident_id}: dispatch state kept changing under us"
        )))
    }

    async fn carry_out(&self, incident_id: i64, effect: Effect, now: Millis) -> StoreResult<()> {
        match effect {
            Effect::Push { responder_id, push } => {
                match &push {
                    Push::Offer {
                        slot,
                        role,
                        expires_at,
                    } => {
                        self.store
                            .mark_dispatch_progress(incident_id, IncidentStatus::Dispatching, now)
                            .await?;
                        self.store
                            .record_offer(
                                incident_id,
                                responder_id,
                                *slot as i64,
                                role,
                                now,
                                *expires_at,
                            )
                            .await?;
                    }
                    Push::StandDown { reason } => {
                        let to = if *reason == super::StandDownReason::Expired {
                            "expired"
                        } else {
                            "withdrawn"
                        };
                        self.store
                            .set_offer_status(
                                incident_id,
                                responder_id,
                                &["pending", "accepted", "arrived"],
                                to,
                                now,
                            )
                            .await?;
                    }
                    Push::Assigned { .. } => {
                        self.store
                            .mark_dispatch_progress(incident_id, IncidentStatus::Accepted, now)
                            .await?;
                    }
                    Push::Escalation { .. } => {}
                }
                self.responders.publish(ResponderPush {
                    responder_id,
                    incident_id,
                    at: now,
                    push,
                });
            }
            Effect::StartTimer { timer, due } => {
                let name = timer.name();
                self.store
                    .schedule_timer(
                        &timer_key(incident_id, &name),
                        Some(incident_id),
                        &name,
                        due,
                    )
                    .await?;
            }
            Effect::CancelTimer { timer } => {
                self.store
                    .cancel_timer(&timer_key(incident_id, &timer.name()))
                    .await?;
            }
            Effect::ConsoleEvent {
                kind,
                actor,
                detail,
            } => {
                if kind == "arrived" {
                    self.store
                        .mark_dispatch_progress(incident_id, IncidentStatus::OnScene, now)
                        .await?;
                }
                self.log(incident_id, kind, &actor, detail, now).await?;
            }
            Effect::NotifyContacts { elder_id } => {
                let detail = json!({ "elder_id": elder_id });
                self.log(incident_id, "contacts_notified", "system", detail, now)
                    .await?;
            }
            Effect::Escalate { reason, .. } => {
                metrics::counter!("onekey_dispatch_escalations_total", "reason" => format!("{reason:?}"))
                    .increment(1);
            }
            Effect::SlaMet { clock, elapsed_ms } => {
                metrics::histogram!("onekey_dispatch_sla_seconds", "clock" => clock.as_str())
                    .record(elapsed_ms as f64 / 1000.0);
            }
            Effect::SlaBreached { clock } => {
                metrics::counter!("onekey_dispatch_sla_breaches_total", "clock" => clock.as_str())
                    .increment(1);
            }
        }
        Ok(())
    }

    async fn log(
        &self,
        incident_id: i64,
        kind: &str,
        actor: &str,
        detail: serde_json::Value,
        at: Millis,
    ) -> StoreResult<()> {
        if let Some(event) = self
            .store
            .log_incident_event(incident_id, kind, actor, detail, at)
            .await?
        {
            self.console.publish([event]);
        }
        Ok(())
    }

    /// A responder accepts: the store decides who wins the seat (exactly once, across instances),
    /// then the engine records it. Returns whether this responder got the task.
    pub async fn accept(
        &self,
        incident_id: i64,
        responder_id: i64,
        now: Millis,
    ) -> StoreResult<bool> {
        let seats = match self.store.load_dispatch_state(incident_id).await? {
            Some((_, json)) => serde_json::from_str::<DispatchState>(&json)
                .ok()
                .and_then(|st| {
                    let slot = st.offer(responder_id)?.slot;
                    st.team.slots.get(slot).map(|s| i64::from(s.count))
                })
                .unwrap_or(1),
            None => 1,
        };
        let outcome = self
            .store
            .accept_offer(incident_id, responder_id, seats, now)
            .await?;
        if let AcceptOutcome::Won { .. } = outcome {
            self.handle(incident_id, Input::Accepted(responder_id), now)
                .await?;
            let held = self
                .store
                .responder_offers(responder_id)
                .await?
                .iter()
                .any(|o| o.incident_id == incident_id && o.status == "accepted");
            return Ok(held);
        }
        let push = Push::StandDown {
            reason: super::StandDownReason::NotOpen,
        };
        self.responders.publish(ResponderPush {
            responder_id,
            incident_id,
            at: now,
            push,
        });
        Ok(false)
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
        let (from, to): (&[&str], &str) = match &input {
            Input::Declined(_) => (&["pending", "expired"], "declined"),
            Input::Arrived(_) => (&["accepted"], "arrived"),
            Input::Completed(..) => (&["accepted", "arrived"], "completed"),
            _ => return Ok(false),
        };
        if !self
            .store
            .set_offer_status(incident_id, responder_id, from, to, now)
            .await?
        {
            return Ok(false);
        }
        self.handle(incident_id, input, now).await?;
        Ok(true)
    }

    /// Dispatches open incidents that have no dispatch state yet (opened while no runner ran).
    pub async fn resume(&self) -> StoreResult<usize> {
        let filter = crate::store::IncidentFilter {
            status: Some("open".into()),
            limit: Some(1000),
            ..Default::default()
        };
        let mut n = 0;
        for incident in self.store.list_incidents(&filter).await? {
            if self.store.load_dispatch_state(incident.id).await?.is_none() {
                self.handle(incident.id, Input::Opened, now_millis())
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Claims the timers due at `now` (under a lease) and fires each; a timer is marked fired once
    /// its step is done, so one whose instance dies mid-fire is fired again after the lease.
    pub async fn fire_due(&self, now: Millis) -> StoreResult<usize> {
        let due = self
            .store
            .claim_due_timers(now, &self.instance, 256, self.timing.timer_lease_ms)
            .await?;
        let n = due.len();
        for t in due {
            let kind = if t.name == WELFARE_TIMER {
                "welfare"
            } else {
                "incident"
            };
            metrics::counter!("onekey_dispatch_timer_fires_total", "kind" => kind).increment(1);
            let fired = match (t.incident_id, Timer::parse(&t.name), welfare_elder(&t.key)) {
                (Some(incident_id), Some(timer), _) => {
                    self.handle(incident_id, Input::TimerFired(timer), now)
                        .await
                }
                (None, None, Some(elder_id)) => self.welfare_due(&t, elder_id, now).await,
                _ => Ok(()), // not ours to interpret: completed so it does not come back
            };
            let completed = match fired {
                Ok(()) => self.store.complete_timer(&t, &self.instance, now).await,
                Err(e) => Err(e),
            };
            if let Err(e) = completed {
                tracing::error!(error = %e, timer = %t.key, "timer not completed; fired again after its lease");
            }
        }
        Ok(n)
    }

    /// An elder's welfare timer fired: opens a welfare visit when no sign of life came within the
    /// elder's check-in period, and re-arms the timer for the next period.
    async fn welfare_due(&self, t: &DueTimer, elder_id: i64, now: Millis) -> StoreResult<()> {
        let Some(elder) = self.store.get_elder(elder_id).await? else {
            return Ok(());
        };
        let period = welfare::period_ms(elder.checkin_hours, self.timing.checkin_hour_ms);
        let armed_at = t.due_at.saturating_sub(period);
        let last = self
            .store
            .last_sign_of_life(elder_id)
            .await?
            .map_or(armed_at, |l| l.max(armed_at));
        let key = welfare_key(elder_id);
        if !welfare::visit_needed(last, period, now) {
            let due = welfare::due_at(last, period);
            return self
                .store
                .schedule_timer(&key, None, WELFARE_TIMER, due)
                .await;
        }
        let detail = json!({
            "kind": "missed_check_in",
            "elder_id": elder_id,
            "last_sign_of_life": last,
            "checkin_hours": elder.checkin_hours,
        });
        if let Some(event) = self
            .store
            .open_welfare_incident(elder_id, "missed_check_in", detail, now)
            .await?
        {
            let incident_id = event.incident_id;
            tracing::info!(
                elder_id,
                incident_id,
                "welfare visit opened: no sign of life"
            );
            self.console.publish([event]);
            self.handle(incident_id, Input::Opened, now).await?;
        }
        self.store
            .schedule_timer(&key, None, WELFARE_TIMER, now.saturating_add(period))
            .await
    }

    /// Arms a welfare timer for every elder with a device that has none yet.
    pub async fn arm_welfare(&self, now: Millis) -> StoreResult<u64> {
        self.store
            .arm_welfare_timers(now, self.timing.checkin_hour_ms)
            .await
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

    /// Runs until `shutdown`: dispatches open incidents not yet dispatched, then follows the console
    /// feed, polls due timers every `poll`, and every `refresh_every` reloads the available
    /// responders (duty and shifts) and arms welfare timers for elders new since.
    pub fn spawn(
        self: Arc<Self>,
        poll: Duration,
        refresh_every: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut feed = self.console.subscribe();
            if let Err(e) = self.arm_welfare(now_millis()).await {
                tracing::warn!(error = %e, "arming welfare timers failed");
            }
            match self.resume().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(incidents = n, "dispatch resumed open incidents"),
                Err(e) => tracing::warn!(error = %e, "resuming open incidents failed"),
            }
            let mut tick = tokio::time::interval(poll);
            let mut refresh = tokio::time::interval(refresh_every);
            let mut last_id = 0;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = feed.recv() => match msg {
                        Ok(event) => {
                            last_id = last_id.max(event.id);
                            self.follow(&event).await;
                        }
                        Err(RecvError::Lagged(_)) => last_id = self.catch_up(last_id).await,
                        Err(RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {
                        if let Err(e) = self.fire_due(now_millis()).await {
                            tracing::warn!(error = %e, "claiming due timers failed");
                        }
                    }
                    _ = refresh.tick() => {
                        if let Err(e) = self.refresh_responders().await {
                            tracing::warn!(error = %e, "refreshing responders failed");
                        }
                        if let Err(e) = self.arm_welfare(now_millis()).await {
                            tracing::warn!(error = %e, "arming welfare timers failed");
                        }
                    }
                }
            }
            tracing::info!("dispatch runner stopped");
        })
    }

    async fn follow(&self, event: &IncidentEvent) {
        if let Some(input) = Self::input_for(event)
            && let Err(e) = self.handle(event.incident_id, input, now_millis()).await
        {
            tracing::error!(error = %e, incident_id = event.incident_id, "dispatch step failed");
        }
    }

    async fn catch_up(&self, after: i64) -> i64 {
        let mut last = after;
        while let Ok(events) = self.store.incident_events_after(last, 500).await {
            let Some(end) = events.last().map(|e| e.id) else {
                break;
            };
            for e in &events {
                self.follow(e).await;
            }
            last = end;
        }
        last
    }
}
