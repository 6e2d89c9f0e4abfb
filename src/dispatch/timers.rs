//! What feeds the runner: the committed console feed (the fast path for dispatch inputs), durable
//! timers claimed under a lease (offer rounds, SLA clocks, the dispatch inbox, welfare checks), the
//! reconciler, and the periodic refresh of available responders.
//!
//! Timers are claimed under a lease and consumed in the transaction of the step they cause: an
//! instance that dies mid-fire leaves the timer to be claimed again when the lease runs out, and a
//! timer whose step committed never fires again.
//!
//! The welfare clock: every elder with a device has a durable timer (`elder:<id>/welfare`), armed
//! by a sweep and re-armed by every sign of life in the intake's transaction. When it fires, the
//! pure [`welfare`](super::welfare) rule decides; a visit opens a welfare incident, which is
//! dispatched like any other (the grid worker, with the welfare SLA).
//!
//! The reconciler: every `reconcile_every`, open incidents that have no dispatch state, or a state
//! that implies a timer but none pending, are stepped with [`Input::Reconcile`]. With every step
//! written in one transaction and every input in the inbox, the count it repairs
//! (`onekey_dispatch_repairs_total`) should stay 0; it is the net under the net.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::engine::{Input, Timer};
use super::runner::Runner;
use super::welfare;
use crate::domain::{IncidentEvent, Millis, now_millis};
use crate::store::{
    Consume, DueTimer, INBOX_GRACE_MS, StoreResult, WELFARE_TIMER, inbox_event, inbox_name,
    timer_key, welfare_elder, welfare_key,
};

/// How often the runner's loops run.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// Poll for due timers.
    pub poll: Duration,
    /// Reload available responders and arm welfare timers for new elders.
    pub refresh: Duration,
    /// Look for incidents dispatch lost track of.
    pub reconcile: Duration,
    /// Look for devices that went silent.
    pub silence: Duration,
    /// A device silent for this many of its heartbeat periods gets a technical incident.
    pub silence_heartbeats: i64,
}

impl Runner {
    /// Claims the timers due at `now` (under a lease) and fires each; a timer is consumed in its
    /// step's transaction, so one whose instance dies mid-fire is fired again after the lease.
    pub async fn fire_due(&self, now: Millis) -> StoreResult<usize> {
        let due = self
            .store
            .claim_due_timers(
                now,
                &self.instance,
                256,
                crate::domain::wall_span(self.timing.timer_lease_ms),
            )
            .await?;
        let n = due.len();
        for t in due {
            let kind = if t.name == WELFARE_TIMER {
                "welfare"
            } else if inbox_event(&t.name).is_some() {
                "inbox"
            } else {
                "incident"
            };
            metrics::counter!("onekey_dispatch_timer_fires_total", "kind" => kind).increment(1);
            let fired = self.fire(&t, now).await;
            if let Err(e) = fired {
                tracing::error!(error = %e, timer = %t.key, "timer not completed; fired again after its lease");
            }
        }
        Ok(n)
    }

    async fn fire(&self, t: &DueTimer, now: Millis) -> StoreResult<()> {
        let consume = Consume::Timer {
            key: t.key.clone(),
            me: self.instance.clone(),
            due_at: t.due_at,
        };
        match (t.incident_id, Timer::parse(&t.name), inbox_event(&t.name)) {
            (Some(incident_id), Some(timer), _) => {
                self.step(incident_id, Input::TimerFired(timer), now, Some(consume))
                    .await?;
            }
            (Some(incident_id), None, Some(event_id)) => {
                let input = self
                    .store
                    .get_incident_event(event_id)
                    .await?
                    .as_ref()
                    .and_then(Runner::input_for);
                match input {
                    Some(input) => {
                        metrics::counter!("onekey_dispatch_inbox_late_total").increment(1);
                        self.step(incident_id, input, now, Some(consume)).await?;
                    }
                    None => {
                        self.store.complete_timer(t, &self.instance, now).await?;
                    }
                }
            }
            (None, None, None) if welfare_elder(&t.key).is_some() => {
                if let Some(elder_id) = welfare_elder(&t.key) {
                    self.welfare_due(t, elder_id, now).await?;
                }
                self.store.complete_timer(t, &self.instance, now).await?;
            }
            // Not ours to interpret: completed so it does not come back.
            _ => {
                self.store.complete_timer(t, &self.instance, now).await?;
            }
        }
        Ok(())
    }

    /// An elder's welfare timer fired: opens a welfare visit when no sign of life came within the
    /// elder's check-in period, and re-arms the timer for the next period. The visit's `opened`
    /// event enters the dispatch inbox in the same transaction.
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
            tracing::info!(
                elder_id,
                incident_id = event.incident_id,
                "welfare visit opened: no sign of life"
            );
            self.out.console.publish([event]);
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

    /// Steps every open incident dispatch lost track of; returns how many were repaired.
    pub async fn reconcile(&self, now: Millis) -> StoreResult<usize> {
        let grace = crate::domain::wall_span(self.timing.reconcile_grace_ms.max(INBOX_GRACE_MS));
        let lost = self
            .store
            .incidents_needing_repair(now - grace, 256)
            .await?;
        for &incident_id in &lost {
            tracing::warn!(incident_id, "dispatch had lost this incident; repairing");
            self.handle(incident_id, Input::Reconcile, now).await?;
            metrics::counter!("onekey_dispatch_repairs_total").increment(1);
        }
        Ok(lost.len())
    }

    /// Opens a technical incident (`silent_device`, for the grid worker) for every device silent
    /// for longer than `heartbeats` of its heartbeat periods; returns how many were opened.
    pub async fn supervise_silence(&self, now: Millis, heartbeats: i64) -> StoreResult<usize> {
        let silent = self
            .store
            .silent_devices(now, heartbeats.max(1), 30_000, 256)
            .await?;
        let mut opened = 0;
        for (device_id, elder_id, last_seen) in silent {
            let detail = json!({ "kind": "silent_device", "device_id": device_id,
                                 "last_seen": last_seen, "silent_ms": now - last_seen });
            if let Some(event) = self
                .store
                .open_system_incident(
                    elder_id,
                    Some(device_id),
                    crate::domain::Category::Technical,
                    "silent_device",
                    detail,
                    now,
                )
                .await?
            {
                tracing::warn!(
                    device_id,
                    elder_id,
                    last_seen,
                    "device silent: technical incident opened"
                );
                metrics::counter!("onekey_silent_devices_total").increment(1);
                self.out.console.publish([event]);
                opened += 1;
            }
        }
        self.visit_devices_out_of_service(now).await?;
        Ok(opened)
    }

    /// A silent device not fixed within the technical category's time to done (2 h): its elder
    /// has no working alarm, so a welfare visit (`device_out_of_service`) sends a person to them;
    /// the elder's welfare clock keeps asking for visits while the device stays dead.
    async fn visit_devices_out_of_service(&self, now: Millis) -> StoreResult<usize> {
        let Some(fix_s) = self.engine.policy.technical.sla.done_s else {
            return Ok(0);
        };
        let fix_ms = Millis::try_from(fix_s.saturating_mul(1000)).unwrap_or(Millis::MAX);
        let due = self.store.devices_out_of_service(now, fix_ms, 256).await?;
        let mut opened = 0;
        for (incident_id, device_id, elder_id, since) in due {
            let detail = json!({ "kind": "device_out_of_service", "device_id": device_id,
                                 "technical_incident_id": incident_id, "silent_since": since });
            if let Some(event) = self
                .store
                .open_welfare_incident(elder_id, "device_out_of_service", detail, now)
                .await?
            {
                tracing::warn!(
                    device_id,
                    elder_id,
                    incident_id,
                    "device not fixed in time: a visit to the elder opened"
                );
                metrics::counter!("onekey_out_of_service_visits_total").increment(1);
                self.out.console.publish([event]);
                opened += 1;
            }
        }
        Ok(opened)
    }

    /// The fast path: an input committed by this instance is stepped at once and its inbox entry
    /// consumed in the step's transaction.
    async fn follow(&self, event: &IncidentEvent) {
        let Some(input) = Runner::input_for(event) else {
            return;
        };
        let consume = Consume::Inbox(timer_key(event.incident_id, &inbox_name(event.id)));
        if let Err(e) = self
            .step(event.incident_id, input, now_millis(), Some(consume))
            .await
        {
            tracing::error!(error = %e, incident_id = event.incident_id, "dispatch step failed; the inbox retries it");
        }
    }

    /// Runs until `shutdown`: follows the console feed, polls due timers, reconciles, and
    /// reloads the available responders (duty and shifts) and arms welfare timers for elders
    /// new since.
    pub fn spawn(self: Arc<Self>, cadence: Cadence, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut feed = self.out.console.committed_here();
            if let Err(e) = self.arm_welfare(now_millis()).await {
                tracing::warn!(error = %e, "arming welfare timers failed");
            }
            let mut tick = tokio::time::interval(cadence.poll);
            let mut refresh = tokio::time::interval(cadence.refresh);
            let mut reconcile = tokio::time::interval(cadence.reconcile);
            let mut silence = tokio::time::interval(cadence.silence);
            for t in [&mut tick, &mut refresh, &mut reconcile, &mut silence] {
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = feed.recv() => match msg {
                        Ok(event) => self.follow(&event).await,
                        // What was missed is in the inbox; the timer loop steps it.
                        Err(RecvError::Lagged(n)) => {
                            metrics::counter!("onekey_dispatch_feed_lagged_total").increment(n);
                        }
                        Err(RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {
                        if let Err(e) = self.fire_due(now_millis()).await {
                            tracing::warn!(error = %e, "claiming due timers failed");
                        }
                    }
                    _ = reconcile.tick() => {
                        if let Err(e) = self.reconcile(now_millis()).await {
                            tracing::warn!(error = %e, "reconciling dispatch failed");
                        }
                    }
                    _ = silence.tick() => {
                        if let Err(e) = self.supervise_silence(now_millis(), cadence.silence_heartbeats).await {
                            tracing::warn!(error = %e, "looking for silent devices failed");
                        }
                    }
                    // Reloading every responder takes a while in a big district: it runs beside
                    // the loop, so that a new alarm is never stepped behind it.
                    _ = refresh.tick() => {
                        if !self.refreshing.swap(true, Ordering::AcqRel) {
                            let me = self.clone();
                            tokio::spawn(async move {
                                if let Err(e) = me.refresh_responders().await {
                                    tracing::warn!(error = %e, "refreshing responders failed");
                                }
                                if let Err(e) = me.arm_welfare(now_millis()).await {
                                    tracing::warn!(error = %e, "arming welfare timers failed");
                                }
                                me.refreshing.store(false, Ordering::Release);
                            });
                        }
                    }
                }
            }
            tracing::info!("dispatch runner stopped");
        })
    }
}
