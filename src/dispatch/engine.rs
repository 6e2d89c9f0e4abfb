//! The dispatch vocabulary: what the engine knows of an incident, its inputs, its effects and its
//! persisted state. The transitions themselves are in [`step`](super::step).
//!
//! The engine is `(state, input, now) → (state, effects)`. Pure: no I/O, no clock reads; candidates
//! come from a [`CandidateSource`] handed in, the time from the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::matcher::CandidateSource;
use super::policy::{DispatchPolicy, SlaClock, TeamTemplate};
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
    /// The elder's registered address (shown with an offer).
    #[serde(default)]
    pub address: Option<String>,
    /// The elder's name (on the volunteer's card and in the family's SMS).
    #[serde(default)]
    pub elder_name: Option<String>,
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
    /// When it lapses unless answered (the end of its round).
    #[serde(default)]
    pub expires_at: Millis,
    /// Where it stands.
    pub status: OfferStatus,
}

/// An SLA clock's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// When it started: the incident's opening, or the alarm that came back after a cancel.
    #[serde(default)]
    pub started_at: Millis,
    /// Deadline.
    pub due: Millis,
    /// When it was met.
    pub met_at: Option<Millis>,
    /// When it ran out.
    pub breached_at: Option<Millis>,
}

impl ClockState {
    /// Neither met nor breached yet.
    pub fn running(&self) -> bool {
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
    /// The device sent "I'm OK": offers nobody accepted yet stop; whoever already accepted keeps
    /// the task and is told, until an operator confirms the false alarm or they arrive.
    DeviceCancel,
    /// An operator confirms a false alarm: task holders are stood down and the clocks stop.
    ConfirmFalseAlarm {
        /// The operator's name.
        by: String,
    },
    /// Re-emit the durable timers the state implies (a repair after a lost step; idempotent).
    Reconcile,
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
    /// The elder pressed cancel ("I'm OK") after you accepted: go on until the centre confirms
    /// the false alarm or you are with the elder.
    CancelNotice,
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
    /// The elder's device raised the alarm again after a cancel.
    AlarmAfterCancel,
}

impl EscalationReason {
    /// Every reason.
    pub const ALL: [EscalationReason; 7] = [
        EscalationReason::NoResponder,
        EscalationReason::AckOverdue,
        EscalationReason::AcceptOverdue,
        EscalationReason::NotOnScene,
        EscalationReason::Overdue,
        EscalationReason::OperatorRequest,
        EscalationReason::AlarmAfterCancel,
    ];

    /// Stable name (the incident's `attention` when an operator is needed).
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::NoResponder => "no_responder",
            EscalationReason::AckOverdue => "ack_overdue",
            EscalationReason::AcceptOverdue => "accept_overdue",
            EscalationReason::NotOnScene => "not_on_scene",
            EscalationReason::Overdue => "overdue",
            EscalationReason::OperatorRequest => "operator_request",
            EscalationReason::AlarmAfterCancel => "alarm_after_cancel",
        }
    }

    /// Whether an operator must come back to the incident for it (the console's alarm sounds
    /// until they acknowledge). An operator's own request and a missing acknowledgement (already
    /// sounding) do not add one.
    pub fn needs_operator(self) -> bool {
        !matches!(
            self,
            EscalationReason::OperatorRequest | EscalationReason::AckOverdue
        )
    }
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
    /// The device cancelled within the window: no new offers, probable false alarm; task holders
    /// go on until an operator confirms the false alarm.
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
    /// The device cancelled and nobody is on the way; waiting for an operator to confirm.
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
        } else if has(OfferStatus::Arrived) {
            Phase::OnScene
        } else if self.offers.iter().any(|o| o.status.holds_task()) {
            Phase::Assigned
        } else if self.cancelled {
            Phase::Cancelled
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

    pub(super) fn filled(&self, slot: usize) -> u32 {
        self.offers
            .iter()
            .filter(|o| o.slot == slot && o.status.holds_task())
            .count() as u32
    }

    pub(super) fn pending(&self, slot: Option<usize>) -> u32 {
        self.offers
            .iter()
            .filter(|o| o.status == OfferStatus::Pending && slot.is_none_or(|s| o.slot == s))
            .count() as u32
    }

    pub(super) fn open_seats(&self, slot: usize) -> u32 {
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
        super::step::apply(&self.policy, state, input, now, cands)
    }
}
