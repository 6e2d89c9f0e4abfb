//! The dispatch state machine: `(state, input, now) → (state, effects)`. Pure: no I/O, no clock
//! reads; candidates come from a [`CandidateSource`] handed in, the time from the caller.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::matcher::CandidateSource;
use super::policy::{
    CategoryPolicy, DispatchPolicy, SlaClock, SlotSource, TeamTemplate, secs_to_ms,
};
use crate::domain::{Category, GeoPoint, Millis, Outcome};

/// What the engine needs to know about an incident, loaded once when it opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    /// Incident id.
    pub incident_id: i64,
    /// Policy category.
    pub category: Category,
    /// What raised it (`sos`, `housekeeping`, `low_battery`…).
    pub kind: String,
    /// Where the elder is (device fix or home), when known.
    pub location: Option<GeoPoint>,
    /// The elder.
    pub elder_id: Option<i64>,
    /// The responder responsible for the elder's grid.
    pub grid_worker: Option<i64>,
    /// Responder ids of the elder's key holders.
    pub key_holders: Vec<i64>,
    /// Emergency contacts to notify.
    pub contacts: u32,
    /// When the alarm was received: every SLA clock starts here.
    pub opened_at: Millis,
}

/// Where one responder stands with this incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    /// Sent, no answer yet.
    Pending,
    /// Declined.
    Declined,
    /// Not answered within the round.
    Expired,
    /// Withdrawn: someone else took the seat, the device cancelled, or the incident closed.
    Withdrawn,
    /// Accepted: this responder has the task.
    Accepted,
    /// With the elder.
    Arrived,
    /// Done.
    Completed,
}

impl OfferStatus {
    /// True for a responder who holds the task (accepted, arrived or completed).
    pub fn holds_task(self) -> bool {
        matches!(
            self,
            OfferStatus::Accepted | OfferStatus::Arrived | OfferStatus::Completed
        )
    }
}

/// An offer made to one responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Responder.
    pub responder_id: i64,
    /// The team slot it is for.
    pub slot: usize,
    /// The offer round it was sent in.
    pub round: u32,
    /// When it was sent.
    pub sent_at: Millis,
    /// Where it stands.
    pub status: OfferStatus,
}

/// An SLA clock's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// Deadline.
    pub due: Millis,
    /// When it was met.
    pub met_at: Option<Millis>,
    /// When it ran out.
    pub breached_at: Option<Millis>,
}

impl ClockState {
    fn running(&self) -> bool {
        self.met_at.is_none() && self.breached_at.is_none()
    }
}

/// A durable deadline owned by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Timer {
    /// The end of offer round `round`: unanswered offers expire and the search widens.
    OfferRound {
        /// Round number.
        round: u32,
    },
    /// An SLA deadline.
    Sla {
        /// Which clock.
        clock: SlaClock,
    },
}

impl Timer {
    /// Stable name, unique within an incident (`round:3`, `sla:ack`).
    pub fn name(&self) -> String {
        match self {
            Timer::OfferRound { round } => format!("round:{round}"),
            Timer::Sla { clock } => format!("sla:{}", clock.as_str()),
        }
    }

    /// Parses [`Timer::name`].
    pub fn parse(s: &str) -> Option<Timer> {
        let (kind, arg) = s.split_once(':')?;
        match kind {
            "round" => arg.parse().ok().map(|round| Timer::OfferRound { round }),
            "sla" => SlaClock::parse(arg).map(|clock| Timer::Sla { clock }),
            _ => None,
        }
    }
}

/// What happens to an incident's dispatch.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The incident was opened: start dispatching.
    Opened,
    /// Another alarm joined the incident.
    AlarmJoined,
    /// An operator acknowledged it.
    OperatorAck,
    /// A responder accepted their offer.
    Accepted(i64),
    /// A responder declined their offer.
    Declined(i64),
    /// A durable timer came due.
    TimerFired(Timer),
    /// A responder is with the elder.
    Arrived(i64),
    /// A responder finished, with a note.
    Completed(i64, String),
    /// The device sent "I'm OK".
    DeviceCancel,
    /// An operator restarts dispatch (e.g. after a cancel turned out real).
    Redispatch,
    /// An operator closed the incident.
    Closed(Outcome),
    /// An operator offers the task to a responder of their choice now; whoever holds the primary
    /// seat is stood down.
    OperatorOffer {
        /// The responder chosen.
        responder_id: i64,
        /// The operator's name.
        by: String,
    },
    /// An operator moves the incident up the escalation ladder at once: to the grid worker if
    /// not yet asked, otherwise to an operator decision.
    OperatorEscalate {
        /// Why, in the operator's words.
        note: String,
        /// The operator's name.
        by: String,
    },
}

/// Why a responder is told to stand down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandDownReason {
    /// Someone else accepted first.
    Taken,
    /// The offer was not answered in time.
    Expired,
    /// The device cancelled ("I'm OK").
    Cancelled,
    /// The incident was closed.
    Closed,
    /// The accept came when the offer was no longer open.
    NotOpen,
    /// An operator gave the task to someone else.
    Reassigned,
}

/// A message to one responder's app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Push {
    /// "Can you go?" — shows the elder's address; expires at `expires_at`.
    Offer {
        /// Team slot.
        slot: usize,
        /// Role in the team.
        role: String,
        /// When the round ends.
        expires_at: Millis,
    },
    /// The task is yours: key-safe code and health notes are now shown.
    Assigned {
        /// Team slot.
        slot: usize,
        /// Role in the team.
        role: String,
    },
    /// Stop: the offer or task is withdrawn.
    StandDown {
        /// Why.
        reason: StandDownReason,
    },
    /// A task you are responsible for (as grid worker) is overdue.
    Escalation {
        /// Why.
        reason: EscalationReason,
    },
}

/// Who an escalation goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationTarget {
    /// The operators' console: someone must decide (call 120/110, phone the elder…).
    Operator,
    /// The elder's grid worker.
    GridWorker(i64),
}

/// Why an escalation was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// Nobody accepted and nobody is left to ask.
    NoResponder,
    /// No operator acknowledged in time.
    AckOverdue,
    /// Nobody accepted within the SLA.
    AcceptOverdue,
    /// Nobody reached the elder within the SLA.
    NotOnScene,
    /// The task was not done within the SLA.
    Overdue,
    /// An operator escalated it.
    OperatorRequest,
}

/// What the code around the engine must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a message to a responder (and record the offer/assignment it stands for).
    Push {
        /// Responder.
        responder_id: i64,
        /// Message.
        push: Push,
    },
    /// Notify the elder's emergency contacts (phone/SMS).
    NotifyContacts {
        /// The elder.
        elder_id: i64,
    },
    /// Store a durable timer for this incident.
    StartTimer {
        /// Which.
        timer: Timer,
        /// When it fires.
        due: Millis,
    },
    /// Delete a pending timer.
    CancelTimer {
        /// Which.
        timer: Timer,
    },
    /// Raise an escalation.
    Escalate {
        /// To whom.
        to: EscalationTarget,
        /// Why.
        reason: EscalationReason,
    },
    /// Append an incident event (shown on the console): every offer, accept, decline, arrival…
    ConsoleEvent {
        /// Event kind (`offer_sent`, `offer_accepted`, `sla_breached`…).
        kind: &'static str,
        /// `responder:<id>` or `system`.
        actor: String,
        /// Details.
        detail: serde_json::Value,
    },
    /// An SLA clock was met (for metrics).
    SlaMet {
        /// Which.
        clock: SlaClock,
        /// Time from opening.
        elapsed_ms: Millis,
    },
    /// An SLA clock ran out.
    SlaBreached {
        /// Which.
        clock: SlaClock,
    },
}

/// The dispatch of one incident; persisted between steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchState {
    /// What the incident is.
    pub facts: IncidentFacts,
    /// The team being filled.
    pub team: TeamTemplate,
    /// Index into the category's rings; `rings.len()` is the fallback stage (grid worker).
    pub ring: usize,
    /// Current offer round; only its timer counts.
    pub round: u32,
    /// Every offer made, in order.
    pub offers: Vec<Offer>,
    /// SLA clocks by name.
    pub clocks: BTreeMap<SlaClock, ClockState>,
    /// Dispatch has started.
    pub started: bool,
    /// The grid worker was asked as a fallback.
    pub grid_worker_asked: bool,
    /// Handed to an operator to decide.
    pub escalated: bool,
    /// The device cancelled within the window: offers stopped, probable false alarm.
    pub cancelled: bool,
    /// Every task holder completed.
    pub done: bool,
    /// Closed by an operator.
    pub closed: bool,
}

/// A coarse view of where the dispatch is, derived from the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started.
    Idle,
    /// Offers out or about to be.
    Dispatching,
    /// Nobody took it; an operator must decide.
    Escalated,
    /// The device cancelled; waiting for an operator to confirm.
    Cancelled,
    /// Someone accepted.
    Assigned,
    /// Someone is with the elder.
    OnScene,
    /// Every task holder completed.
    Completed,
    /// Closed.
    Closed,
}

impl DispatchState {
    /// A dispatch not yet started; the team is chosen by `policy`.
    pub fn new(facts: IncidentFacts, policy: &DispatchPolicy) -> DispatchState {
        let team = policy.team(facts.category, &facts.kind);
        DispatchState {
            facts,
            team,
            ring: 0,
            round: 0,
            offers: Vec::new(),
            clocks: BTreeMap::new(),
            started: false,
            grid_worker_asked: false,
            escalated: false,
            cancelled: false,
            done: false,
            closed: false,
        }
    }

    /// Where the dispatch is.
    pub fn phase(&self) -> Phase {
        let has = |s: OfferStatus| self.offers.iter().any(|o| o.status == s);
        if self.closed {
            Phase::Closed
        } else if self.done {
            Phase::Completed
        } else if self.cancelled {
            Phase::Cancelled
        } else if has(OfferStatus::Arrived) {
            Phase::OnScene
        } else if self.offers.iter().any(|o| o.status.holds_task()) {
            Phase::Assigned
        } else if self.escalated {
            Phase::Escalated
        } else if self.started {
            Phase::Dispatching
        } else {
            Phase::Idle
        }
    }

    /// Responders holding the task.
    pub fn assignees(&self) -> Vec<i64> {
        self.offers
            .iter()
            .filter(|o| o.status.holds_task())
            .map(|o| o.responder_id)
            .collect()
    }

    /// The offer made to `responder`, if any.
    pub fn offer(&self, responder: i64) -> Option<&Offer> {
        self.offers.iter().find(|o| o.responder_id == responder)
    }

    fn filled(&self, slot: usize) -> u32 {
        self.offers
            .iter()
            .filter(|o| o.slot == slot && o.status.holds_task())
            .count() as u32
    }

    fn pending(&self, slot: Option<usize>) -> u32 {
        self.offers
            .iter()
            .filter(|o| o.status == OfferStatus::Pending && slot.is_none_or(|s| o.slot == s))
            .count() as u32
    }

    fn open_seats(&self, slot: usize) -> u32 {
        self.team.slots[slot]
            .count
            .saturating_sub(self.filled(slot))
    }
}

/// The dispatch engine: the policy plus the transition function.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The policy in force.
    pub policy: DispatchPolicy,
}

struct Step<'a> {
    p: &'a CategoryPolicy,
    cancel_window: Millis,
    cands: &'a dyn CandidateSource,
    st: DispatchState,
    now: Millis,
    fx: Vec<Effect>,
}

impl Engine {
    /// An engine with `policy`.
    pub fn new(policy: DispatchPolicy) -> Engine {
        Engine { policy }
    }

    /// A fresh state for an incident.
    pub fn init(&self, facts: IncidentFacts) -> DispatchState {
        DispatchState::new(facts, &self.policy)
    }

    /// Applies `input` at time `now`; returns the new state and what must be done.
    pub fn step(
        &self,
        state: DispatchState,
        input: &Input,
        now: Millis,
        cands: &dyn CandidateSource,
    ) -> (DispatchState, Vec<Effect>) {
        let mut s = Step {
            p: self.policy.category(state.facts.category),
            cancel_window: secs_to_ms(self.policy.cancel_window_s),
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
            if let Some(target) = self.p.sla.target_ms(clock) {
                let due = opened.saturating_add(target);
                self.st.clocks.insert(
                    clock,
                    ClockState {
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
                    self.restart_round();
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

    fn restart_round(&mut self) {
        if self.st.round > 0 {
            let timer = Timer::OfferRound {
                round: self.st.round,
            };
            self.fx.push(Effect::CancelTimer { timer });
        }
        self.st.round += 1;
        let due = self.now + secs_to_ms(self.p.offer_timeout_s);
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
            let asked: BTreeSet<i64> = self.st.offers.iter().map(|o| o.responder_id).collect();
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
            for id in candidates {
                self.offer(id, slot);
                sent += 1;
            }
        }
        sent
    }

    /// Offers `slot` to a responder; one asked before (declined, expired, withdrawn) is asked anew.
    fn offer(&mut self, responder_id: i64, slot: usize) {
        let round = self.st.round + 1;
        let fresh = Offer {
            responder_id,
            slot,
            round,
            sent_at: self.now,
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
        let expires_at = self.now + secs_to_ms(self.p.offer_timeout_s);
        let detail = json!({ "responder_id": responder_id, "slot": slot, "role": role, "ring": self.st.ring, "round": round });
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

    fn decline(&mut self, r: i64) {
        let Some(o) = self
            .st
            .offers
            .iter_mut()
            .find(|o| o.responder_id == r && o.status == OfferStatus::Pending)
        else {
            return;
        };
        o.status = OfferStatus::Declined;
        self.log(
            "offer_declined",
            format!("responder:{r}"),
            json!({ "responder_id": r }),
        );
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
            self.fx.push(Effect::CancelTimer {
                timer: Timer::Sla { clock },
            });
            self.fx.push(Effect::SlaMet {
                clock,
                elapsed_ms: self.now - opened,
            });
        }
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
        self.withdraw(|_| true, StandDownReason::Cancelled, true);
        self.cancel_round();
        for clock in [SlaClock::Accept, SlaClock::OnScene, SlaClock::Done] {
            self.stop_clock(clock);
        }
        self.log(
            "probable_false_alarm",
            "system".into(),
            json!({ "after_ms": after }),
        );
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

    fn redispatch(&mut self, by: &str) {
        if !self.st.cancelled && !self.st.escalated {
            return;
        }
        self.st.cancelled = false;
        self.st.escalated = false;
        self.st.ring = 0;
        self.st.grid_worker_asked = false;
        self.log("redispatch", "system".into(), json!({ "by": by }));
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
        self.offer(r, 0);
        self.restart_round();
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
            self.offer(gw, 0);
            self.restart_round();
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
