//! Dispatch: from a stored incident to a person with the elder.
//!
//! A tour, inside out:
//! - [`policy`]: per [`Category`](crate::domain::Category) — which team template is sent, the
//!   search rings (500 m → 1.5 km → 3 km), how many are asked per seat, how long they have to answer,
//!   the grid-worker fallback and the SLA targets (operator ack, first accept, on scene, done).
//!   Serde/TOML-configurable with documented defaults.
//! - [`matcher`]: an R-tree over the responders available now; nearest first, filtered by role,
//!   skill and load, within a ring radius; fills team templates ("1+2+5") with distinct people.
//!   Family key holders and the grid worker come from the incident's facts, not from geometry.
//! - [`engine`] (the vocabulary) and `step` (the transitions): the pure state machine
//!   `(state, input, now) → (state, effects)`. Inputs are
//!   incident events (opened, alarm joined, operator ack, accept, decline, arrived, completed,
//!   device cancel, redispatch, closed) and fired timers; effects are pushes to responders
//!   (offer, assigned, stand down, escalation), contact notifications, durable timers to start or
//!   cancel, escalations, console events and SLA met/breached. It reads no clock and does no I/O,
//!   so every transition is table-tested and a whole simulated day runs on a virtual clock.
//! - [`welfare`]: the per-elder check-in clock that opens welfare visits (one durable timer per
//!   elder, re-armed by every sign of life).
//!
//! The shell around the core:
//! - [`ready`]: one step's output made ready for the store (raft-rs's `Ready`): state, offers,
//!   timers, incident events, attention and outgoing notifications, written in one transaction.
//! - [`runner`]: loads state, steps the engine, commits the [`ready::Ready`], then does only the
//!   volatile sends; operator and responder actions enter here.
//! - [`timers`]: the loops that feed it (console feed, due timers and the dispatch inbox,
//!   reconciler, welfare, responder refresh).

pub mod engine;
pub mod matcher;
pub mod policy;
pub mod ready;
pub mod runner;
mod step;
pub mod timers;
pub mod welfare;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod sim;

pub use engine::{
    DispatchState, Effect, Engine, EscalationReason, EscalationTarget, IncidentFacts, Input, Offer,
    OfferStatus, Phase, Push, StandDownReason, Timer,
};
pub use matcher::{Available, Candidate, CandidateSource, Matcher, Shift, available_at};
pub use policy::{
    CategoryPolicy, DispatchPolicy, SlaClock, SlaTargets, SlotSource, SlotSpec, TeamTemplate,
};
pub use ready::DeliveryPolicy;
pub use runner::{Outlets, Refusal, Runner, RunnerTiming, Stepped};
pub use timers::Cadence;
