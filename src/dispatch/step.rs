//! The dispatch transitions: how one [`Input`] moves a [`DispatchState`] and which [`Effect`]s it
//! causes. Pure, like the vocabulary in [`engine`](super::engine): the time is an argument and
//! candidates come from a [`CandidateSource`].

use std::collections::BTreeSet;

use serde_json::json;

use super::engine::{
    ClockState, DispatchState, Effect, EscalationReason, EscalationTarget, Input, Offer,
    OfferStatus, Push, StandDownReason, Timer,
};
use super::matcher::CandidateSource;
use super::policy::{CategoryPolicy, DispatchPolicy, SlaClock, SlotSource, secs_to_ms};
use crate::domain::{Millis, Outcome};

/// Applies `input` to `state` at `now` under `policy`.
pub(super) fn apply(
    policy: &DispatchPolicy,
    state: DispatchState,
    input: &Input,
    now: Millis,
    cands: &dyn CandidateSource,
) -> (DispatchState, Vec<Effect>) {
    let mut s = Step {
        p: policy.category(state.facts.category),
        cancel_window: secs_to_ms(policy.cancel_window_s),
        manual_timeout: secs_to_ms(policy.manual_offer_timeout_s),
        cands,
        st: state,
        now,
        fx: Vec::new(),
    };
    if !s.st.closed {
        s.apply(input);
    }
    (s.st, s.fx)
}

struct Step<'a> {
    p: &'a CategoryPolicy,
    cancel_window: Millis,
    manual_timeout: Millis,
    cands: &'a dyn CandidateSource,
    st: DispatchState,
    now: Millis,
    fx: Vec<Effect>,
}

impl Step<'_> {
    fn apply(&mut self, input: &Input) {
        match input {
            Input::Opened => self.open(),
            Input::AlarmJoined if self.st.cancelled => self.redispatch("alarm_after_cancel"),
            Input::AlarmJoined => {}
            Input::OperatorAck => self.meet(SlaClock::Ack),
            Input::Accepted(r) => self.accept(*r),
            Input::Declined(r) => self.decline(*r),
            Input::TimerFired(t) => self.timer(*t),
            Input::Arrived(r) => self.arrive(*r),
            Input::Completed(r, note) => self.complete(*r, note),
            Input::DeviceCancel => self.device_cancel(),
            Input::ConfirmFalseAlarm { by } => self.confirm_false_alarm(by),
            Input::Reconcile => self.reconcile(),
            Input::Redispatch => self.redispatch("operator"),
            Input::Closed(outcome) => self.close(*outcome),
            Input::OperatorOffer { responder_id, by } => self.operator_offer(*responder_id, by),
            Input::OperatorEscalate { note, by } => self.operator_escalate(note, by),
        }
    }

    fn log(&mut self, kind: &'static str, actor: String, detail: serde_json::Value) {
        self.fx.push(Effect::ConsoleEvent {
            kind,
            actor,
            detail,
        });
    }

    fn push(&mut self, responder_id: i64, push: Push) {
        self.fx.push(Effect::Push { responder_id, push });
    }

    fn open(&mut self) {
        if self.st.started {
            return;
        }
        self.st.started = true;
        let opened = self.st.facts.opened_at;
        for clock in SlaClock::ALL {
            self.start_clock(clock, opened);
        }
        let roles: Vec<&str> = self.st.team.slots.iter().map(|s| s.role.as_str()).collect();
        let detail = json!({ "category": self.st.facts.category, "team": roles });
        self.log("dispatch_started", "system".into(), detail);
        if let (true, Some(elder_id)) = (self.p.notify_contacts, self.st.facts.elder_id)
            && self.st.facts.contacts > 0
        {
            self.fx.push(Effect::NotifyContacts { elder_id });
        }
        self.dispatch();
    }

    /// Fills open seats from the current ring; widens while nothing is pending; gives up when
    /// nobody is left to ask.
    fn dispatch(&mut self) {
        if self.st.cancelled || self.st.done {
            return;
        }
        loop {
            let sent = self.fill();
            if self.st.pending(None) > 0 {
                if sent > 0 {
                    self.restart_round(secs_to_ms(self.p.offer_timeout_s));
                }
                return;
            }
            let open: Vec<usize> = (0..self.st.team.slots.len())
                .filter(|&s| self.st.open_seats(s) > 0)
                .collect();
            if open.is_empty() {
                return;
            }
            let nearby_open = open
                .iter()
                .any(|&s| self.st.team.slots[s].source == SlotSource::Nearby);
            if nearby_open && self.st.ring < self.p.rings_m.len() {
                self.st.ring += 1;
                let radius = self.p.rings_m.get(self.st.ring).copied();
                self.log(
                    "ring_widened",
                    "system".into(),
                    json!({ "radius_m": radius }),
                );
                continue;
            }
            self.give_up(&open);
            return;
        }
    }

    fn restart_round(&mut self, timeout: Millis) {
        if self.st.round > 0 {
            let timer = Timer::OfferRound {
                round: self.st.round,
            };
            self.fx.push(Effect::CancelTimer { timer });
        }
        self.st.round += 1;
        let due = self.now + timeout;
        self.fx.push(Effect::StartTimer {
            timer: Timer::OfferRound {
                round: self.st.round,
            },
            due,
        });
    }

    /// Sends offers for every open seat; returns how many.
    fn fill(&mut self) -> usize {
        let mut sent = 0;
        let per_seat = self.p.offers_per_seat.max(1);
        for slot in 0..self.st.team.slots.len() {
            let open = self.st.open_seats(slot);
            let want = (open * per_seat).saturating_sub(self.st.pending(Some(slot)));
            if want == 0 {
                continue;
            }
            // Everyone asked in this dispatch, except those whose offer was withdrawn (by a cancel
            // or a seat taken): when the alarm comes back or the seat opens again, they are the
            // nearest and are asked anew.
            let asked: BTreeSet<i64> = self
                .st
                .offers
                .iter()
                .filter(|o| o.status != OfferStatus::Withdrawn)
                .map(|o| o.responder_id)
                .collect();
            let spec = &self.st.team.slots[slot];
            let facts = &self.st.facts;
            let fresh = |id: &i64| !asked.contains(id);
            let fallback = slot == 0 && self.p.grid_worker_fallback && !self.st.grid_worker_asked;
            let mut asked_grid_worker = false;
            let candidates: Vec<i64> = match spec.source {
                SlotSource::KeyHolders => facts
                    .key_holders
                    .iter()
                    .copied()
                    .filter(fresh)
                    .take(want as usize)
                    .collect(),
                SlotSource::GridWorker => facts.grid_worker.into_iter().filter(fresh).collect(),
                SlotSource::Nearby => match (self.p.rings_m.get(self.st.ring), facts.location) {
                    (Some(&radius), Some(at)) => {
                        self.cands.nearby(at, radius, spec, &asked, want as usize)
                    }
                    _ if fallback => {
                        asked_grid_worker = true;
                        facts.grid_worker.into_iter().filter(fresh).collect()
                    }
                    _ => Vec::new(),
                },
            };
            self.st.grid_worker_asked |= asked_grid_worker;
            let timeout = secs_to_ms(self.p.offer_timeout_s);
            for id in candidates {
                self.offer(id, slot, timeout);
                sent += 1;
            }
        }
        sent
    }

    /// Offers `slot` to a responder for `timeout`; one asked before (declined, expired, withdrawn)
    /// is asked anew.
    fn offer(&mut self, responder_id: i64, slot: usize, timeout: Millis) {
        let round = self.st.round + 1;
        let expires_at = self.now + timeout;
        let fresh = Offer {
            responder_id,
            slot,
            round,
            sent_at: self.now,
            expires_at,
            status: OfferStatus::Pending,
        };
        match self
            .st
            .offers
            .iter_mut()
            .find(|o| o.responder_id == responder_id)
        {
            Some(o) => *o = fresh,
            None => self.st.offers.push(fresh),
        }
        let role = self.st.team.slots[slot].role.clone();
        let detail = json!({ "responder_id": responder_id, "slot": slot, "role": role, "ring": self.st.ring, "round": round, "expires_at": expires_at });
        self.log("offer_sent", "system".into(), detail);
        self.push(
            responder_id,
            Push::Offer {
                slot,
                role,
                expires_at,
            },
        );
    }

    fn give_up(&mut self, open: &[usize]) {
        if open.contains(&0) && !self.st.escalated && self.st.assignees().is_empty() {
            self.escalate_operator(EscalationReason::NoResponder);
        }
        for &slot in open.iter().filter(|&&s| s != 0) {
            let role = self.st.team.slots[slot].role.clone();
            self.log("slot_unfilled", "system".into(), json!({ "role": role }));
        }
    }

    fn escalate_operator(&mut self, reason: EscalationReason) {
        self.st.escalated = true;
        self.fx.push(Effect::Escalate {
            to: EscalationTarget::Operator,
            reason,
        });
        self.log(
            "escalated",
            "system".into(),
            json!({ "to": "operator", "reason": reason }),
        );
    }

    fn accept(&mut self, r: i64) {
        let Some(i) = self.st.offers.iter().position(|o| o.responder_id == r) else {
            return self.refuse(r);
        };
        let offer = self.st.offers[i].clone();
        if offer.status.holds_task() {
            return; // a retry of an accept that already counted
        }
        let open = matches!(offer.status, OfferStatus::Pending | OfferStatus::Expired);
        if !open || self.st.cancelled || self.st.done || self.st.open_seats(offer.slot) == 0 {
            return self.refuse(r);
        }
        self.st.offers[i].status = OfferStatus::Accepted;
        let role = self.st.team.slots[offer.slot].role.clone();
        let detail = json!({ "responder_id": r, "slot": offer.slot, "role": role, "after_ms": self.now - offer.sent_at });
        self.log("offer_accepted", format!("responder:{r}"), detail);
        self.push(
            r,
            Push::Assigned {
                slot: offer.slot,
                role,
            },
        );
        self.meet(SlaClock::Accept);
        if self.st.open_seats(offer.slot) == 0 {
            self.withdraw(|o| o.slot == offer.slot, StandDownReason::Taken, false);
        }
        if self.st.pending(None) == 0 {
            self.cancel_round();
        }
    }

    fn refuse(&mut self, r: i64) {
        self.log("accept_refused", format!("responder:{r}"), json!({}));
        self.push(
            r,
            Push::StandDown {
                reason: StandDownReason::NotOpen,
            },
        );
    }

    /// Stands down pending offers matching `which` (and task holders too when `holders`).
    fn withdraw(&mut self, which: impl Fn(&Offer) -> bool, reason: StandDownReason, holders: bool) {
        let mut told = Vec::new();
        for o in self.st.offers.iter_mut().filter(|o| which(o)) {
            let take = o.status == OfferStatus::Pending
                || (holders && matches!(o.status, OfferStatus::Accepted | OfferStatus::Arrived));
            if take {
                o.status = if reason == StandDownReason::Expired {
                    OfferStatus::Expired
                } else {
                    OfferStatus::Withdrawn
                };
                told.push(o.responder_id);
            }
        }
        for r in told {
            let kind = if reason == StandDownReason::Expired {
                "offer_expired"
            } else {
                "stood_down"
            };
            self.log(
                kind,
                "system".into(),
                json!({ "responder_id": r, "reason": reason }),
            );
            self.push(r, Push::StandDown { reason });
        }
    }

    fn cancel_round(&mut self) {
        if self.st.round > 0 {
            let timer = Timer::OfferRound {
                round: self.st.round,
            };
            self.fx.push(Effect::CancelTimer { timer });
        }
    }

    /// A decline; one that comes after the offer lapsed is recorded too (the answer counts in
    /// the reports), without moving the dispatch.
    fn decline(&mut self, r: i64) {
        let Some(o) = self.st.offers.iter_mut().find(|o| {
            o.responder_id == r && matches!(o.status, OfferStatus::Pending | OfferStatus::Expired)
        }) else {
            return;
        };
        let was_pending = o.status == OfferStatus::Pending;
        o.status = OfferStatus::Declined;
        self.log(
            "offer_declined",
            format!("responder:{r}"),
            json!({ "responder_id": r }),
        );
        if !was_pending {
            return;
        }
        let before = self.st.round;
        self.dispatch();
        if self.st.round == before && self.st.pending(None) == 0 {
            self.cancel_round();
        }
    }

    fn timer(&mut self, t: Timer) {
        match t {
            Timer::OfferRound { round } if round == self.st.round => {
                if self.st.pending(None) == 0 {
                    return;
                }
                self.withdraw(|_| true, StandDownReason::Expired, false);
                let nearby_open = (0..self.st.team.slots.len()).any(|s| {
                    self.st.open_seats(s) > 0 && self.st.team.slots[s].source == SlotSource::Nearby
                });
                if nearby_open && self.st.ring < self.p.rings_m.len() {
                    self.st.ring += 1;
                    let radius = self.p.rings_m.get(self.st.ring).copied();
                    self.log(
                        "ring_widened",
                        "system".into(),
                        json!({ "radius_m": radius }),
                    );
                }
                self.dispatch();
            }
            Timer::OfferRound { .. } => {}
            Timer::Sla { clock } => self.sla_due(clock),
        }
    }

    fn sla_due(&mut self, clock: SlaClock) {
        let Some(c) = self.st.clocks.get_mut(&clock) else {
            return;
        };
        if !c.running() {
            return;
        }
        c.breached_at = Some(self.now);
        let due = c.due;
        self.fx.push(Effect::SlaBreached { clock });
        let detail = json!({ "clock": clock, "due": due, "late_ms": self.now - due });
        self.log("sla_breached", "system".into(), detail);
        match clock {
            SlaClock::Ack => self.fx.push(Effect::Escalate {
                to: EscalationTarget::Operator,
                reason: EscalationReason::AckOverdue,
            }),
            SlaClock::Accept if !self.st.escalated => {
                self.escalate_operator(EscalationReason::AcceptOverdue)
            }
            SlaClock::Accept => {}
            SlaClock::OnScene => self.escalate_operator(EscalationReason::NotOnScene),
            SlaClock::Done => {
                self.escalate_operator(EscalationReason::Overdue);
                if let Some(gw) = self.st.facts.grid_worker {
                    self.fx.push(Effect::Escalate {
                        to: EscalationTarget::GridWorker(gw),
                        reason: EscalationReason::Overdue,
                    });
                    self.push(
                        gw,
                        Push::Escalation {
                            reason: EscalationReason::Overdue,
                        },
                    );
                }
            }
        }
    }

    /// Marks `clock` met now, if it is running.
    fn meet(&mut self, clock: SlaClock) {
        let opened = self.st.facts.opened_at;
        if let Some(c) = self.st.clocks.get_mut(&clock)
            && c.running()
        {
            c.met_at = Some(self.now);
            let started = if c.started_at > 0 {
                c.started_at
            } else {
                opened
            };
            self.fx.push(Effect::CancelTimer {
                timer: Timer::Sla { clock },
            });
            self.fx.push(Effect::SlaMet {
                clock,
                elapsed_ms: self.now - started,
            });
        }
    }

    /// Starts `clock` at `from` when the category runs it (a clock already running is left alone).
    fn start_clock(&mut self, clock: SlaClock, from: Millis) {
        let Some(target) = self.p.sla.target_ms(clock) else {
            return;
        };
        if self.st.clocks.get(&clock).is_some_and(|c| c.running()) {
            return;
        }
        let due = from.saturating_add(target);
        self.st.clocks.insert(
            clock,
            ClockState {
                started_at: from,
                due,
                met_at: None,
                breached_at: None,
            },
        );
        self.fx.push(Effect::StartTimer {
            timer: Timer::Sla { clock },
            due,
        });
    }

    fn holder(&mut self, r: i64) -> Option<&mut Offer> {
        self.st
            .offers
            .iter_mut()
            .find(|o| o.responder_id == r && o.status.holds_task())
    }

    fn arrive(&mut self, r: i64) {
        let Some(o) = self.holder(r) else { return };
        if o.status != OfferStatus::Accepted {
            return;
        }
        o.status = OfferStatus::Arrived;
        self.log(
            "arrived",
            format!("responder:{r}"),
            json!({ "responder_id": r }),
        );
        self.meet(SlaClock::OnScene);
        self.meet(SlaClock::Accept);
    }

    fn complete(&mut self, r: i64, note: &str) {
        let Some(o) = self.holder(r) else { return };
        if o.status == OfferStatus::Completed {
            return;
        }
        o.status = OfferStatus::Completed;
        let detail = json!({ "responder_id": r, "note": note });
        self.log("completed", format!("responder:{r}"), detail);
        self.meet(SlaClock::Accept);
        self.meet(SlaClock::OnScene);
        let all_done = self
            .st
            .offers
            .iter()
            .filter(|o| o.status.holds_task())
            .all(|o| o.status == OfferStatus::Completed);
        if all_done && self.st.open_seats(0) == 0 {
            self.st.done = true;
            self.meet(SlaClock::Done);
            self.withdraw(|_| true, StandDownReason::Taken, false);
            self.cancel_round();
            self.log("task_completed", "system".into(), json!({}));
        }
    }

    /// "I'm OK" within the cancel window: nobody new is asked and pending offers are withdrawn;
    /// whoever already accepted keeps the task and is told, and their clocks keep running, until
    /// an operator confirms the false alarm or they reach the elder.
    fn device_cancel(&mut self) {
        let after = self.now - self.st.facts.opened_at;
        if after > self.cancel_window {
            let detail = json!({ "after_ms": after });
            return self.log("cancel_after_window", "system".into(), detail);
        }
        if self.st.cancelled {
            return;
        }
        self.st.cancelled = true;
        self.withdraw(|_| true, StandDownReason::Cancelled, false);
        self.cancel_round();
        let holders: Vec<i64> = self
            .st
            .offers
            .iter()
            .filter(|o| matches!(o.status, OfferStatus::Accepted | OfferStatus::Arrived))
            .map(|o| o.responder_id)
            .collect();
        for &r in &holders {
            self.log(
                "cancel_notice",
                "system".into(),
                json!({ "responder_id": r }),
            );
            self.push(r, Push::CancelNotice);
        }
        if holders.is_empty() {
            for clock in [SlaClock::Accept, SlaClock::OnScene, SlaClock::Done] {
                self.stop_clock(clock);
            }
        }
        self.log(
            "probable_false_alarm",
            "system".into(),
            json!({ "after_ms": after, "responders_on_the_way": holders }),
        );
    }

    /// An operator confirms the false alarm: everyone still on it stands down, the clocks stop.
    fn confirm_false_alarm(&mut self, by: &str) {
        if self.st.done {
            return;
        }
        self.st.cancelled = true;
        self.withdraw(|_| true, StandDownReason::Cancelled, true);
        self.cancel_round();
        for clock in [SlaClock::Accept, SlaClock::OnScene, SlaClock::Done] {
            self.stop_clock(clock);
        }
        self.log("false_alarm_confirmed", format!("operator:{by}"), json!({}));
    }

    /// Re-emits every durable timer the state implies: each running clock, and the current round
    /// while offers are pending. Starts a dispatch that never started; asks again when nothing
    /// is pending and seats are open. Idempotent: timers are upserted by key.
    fn reconcile(&mut self) {
        if !self.st.started {
            return self.open();
        }
        let running: Vec<(SlaClock, Millis)> = self
            .st
            .clocks
            .iter()
            .filter(|(_, c)| c.running())
            .map(|(k, c)| (*k, c.due))
            .collect();
        for (clock, due) in running {
            self.fx.push(Effect::StartTimer {
                timer: Timer::Sla { clock },
                due,
            });
        }
        let round_end = self
            .st
            .offers
            .iter()
            .filter(|o| o.status == OfferStatus::Pending && o.round == self.st.round)
            .map(|o| o.expires_at)
            .max();
        match round_end {
            Some(due) => self.fx.push(Effect::StartTimer {
                timer: Timer::OfferRound {
                    round: self.st.round,
                },
                due: due.max(self.now),
            }),
            None if !self.st.escalated => self.dispatch(),
            None => {}
        }
    }

    fn stop_clock(&mut self, clock: SlaClock) {
        if let Some(c) = self.st.clocks.get(&clock)
            && c.running()
        {
            self.st.clocks.remove(&clock);
            self.fx.push(Effect::CancelTimer {
                timer: Timer::Sla { clock },
            });
        }
    }

    /// Dispatch starts over from the first ring. After a cancel, the alarm came back: every clock
    /// that stopped or ran out starts again from now, and an operator is called back.
    fn redispatch(&mut self, by: &str) {
        if !self.st.cancelled && !self.st.escalated {
            return;
        }
        let after_cancel = self.st.cancelled;
        self.st.cancelled = false;
        self.st.escalated = false;
        self.st.ring = 0;
        self.st.grid_worker_asked = false;
        self.log("redispatch", "system".into(), json!({ "by": by }));
        if after_cancel {
            for clock in SlaClock::ALL {
                if self
                    .st
                    .clocks
                    .get(&clock)
                    .is_none_or(|c| c.breached_at.is_some())
                {
                    self.start_clock(clock, self.now);
                }
            }
            self.fx.push(Effect::Escalate {
                to: EscalationTarget::Operator,
                reason: EscalationReason::AlarmAfterCancel,
            });
        }
        self.dispatch();
    }

    /// The operator's choice: `r` is offered the primary seat now. If the seat is held, its most
    /// recent holder is stood down (reassigned). Automatic dispatch resumes if the offer expires.
    fn operator_offer(&mut self, r: i64, by: &str) {
        let actor = format!("operator:{by}");
        if self.st.done || self.st.offer(r).is_some_and(|o| o.status.holds_task()) {
            let detail = json!({ "responder_id": r, "already_holds": !self.st.done });
            return self.log("operator_offer", actor, detail);
        }
        let replaced = if self.st.open_seats(0) == 0 {
            self.st
                .offers
                .iter()
                .filter(|o| {
                    o.slot == 0 && matches!(o.status, OfferStatus::Accepted | OfferStatus::Arrived)
                })
                .max_by_key(|o| o.sent_at)
                .map(|o| o.responder_id)
        } else {
            None
        };
        self.log(
            "operator_offer",
            actor,
            json!({ "responder_id": r, "slot": 0, "replaced": replaced }),
        );
        if let Some(old) = replaced {
            self.withdraw(|o| o.responder_id == old, StandDownReason::Reassigned, true);
        }
        self.st.cancelled = false;
        self.st.escalated = false;
        self.offer(r, 0, self.manual_timeout);
        self.restart_round(self.manual_timeout);
    }

    /// One step up the ladder: the grid worker (offered the primary seat if it is open, told of
    /// the escalation otherwise), then an operator decision.
    fn operator_escalate(&mut self, note: &str, by: &str) {
        let actor = format!("operator:{by}");
        let gw = self.st.facts.grid_worker.filter(|&g| {
            !self.st.grid_worker_asked
                && !self
                    .st
                    .offer(g)
                    .is_some_and(|o| o.status.holds_task() || o.status == OfferStatus::Pending)
        });
        let reason = EscalationReason::OperatorRequest;
        let Some(gw) = gw else {
            self.st.escalated = true;
            self.fx.push(Effect::Escalate {
                to: EscalationTarget::Operator,
                reason,
            });
            let detail = json!({ "to": "operator", "reason": reason, "note": note });
            return self.log("escalated", actor, detail);
        };
        self.st.grid_worker_asked = true;
        let detail =
            json!({ "to": "grid_worker", "responder_id": gw, "reason": reason, "note": note });
        self.log("escalated", actor, detail);
        self.fx.push(Effect::Escalate {
            to: EscalationTarget::GridWorker(gw),
            reason,
        });
        if self.st.open_seats(0) > 0 && !self.st.done {
            self.st.cancelled = false;
            self.st.escalated = false;
            self.offer(gw, 0, self.manual_timeout);
            self.restart_round(self.manual_timeout);
        } else {
            self.push(gw, Push::Escalation { reason });
        }
    }

    fn close(&mut self, outcome: Outcome) {
        self.withdraw(|_| true, StandDownReason::Closed, true);
        self.cancel_round();
        let running: Vec<SlaClock> = self
            .st
            .clocks
            .iter()
            .filter(|(_, c)| c.running())
            .map(|(k, _)| *k)
            .collect();
        for clock in running {
            self.fx.push(Effect::CancelTimer {
                timer: Timer::Sla { clock },
            });
        }
        self.st.closed = true;
        self.log(
            "dispatch_closed",
            "system".into(),
            json!({ "outcome": outcome }),
        );
    }
}
