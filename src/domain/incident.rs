use serde::{Deserialize, Serialize};

use super::{AlarmKind, GeoPoint, Millis};

/// What kind of help an incident needs; decides its policy and SLA clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A person may be in danger now (SOS, fall, smoke, gas…).
    Emergency,
    /// A non-emergency service order (daily care, housekeeping, emotional care, health advice).
    Service,
    /// The device needs attention (low battery, power loss, tamper, fault, silent).
    Technical,
    /// The elder has not been heard from (missed check-in, no activity).
    Welfare,
}

impl Category {
    /// The category an alarm kind belongs to.
    pub fn of_alarm(kind: AlarmKind) -> Category {
        if kind.is_emergency() {
            Category::Emergency
        } else {
            Category::Technical
        }
    }

    /// Queue priority: lower is more urgent.
    pub fn priority(self) -> i64 {
        match self {
            Category::Emergency => 1,
            Category::Welfare => 2,
            Category::Technical => 3,
            Category::Service => 4,
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Emergency => "emergency",
            Category::Service => "service",
            Category::Technical => "technical",
            Category::Welfare => "welfare",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Category> {
        [
            Category::Emergency,
            Category::Service,
            Category::Technical,
            Category::Welfare,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Stored, waiting for an operator.
    New,
    /// An operator has taken it.
    Acknowledged,
    /// Offers are out to responders.
    Dispatching,
    /// A responder accepted.
    Accepted,
    /// A responder is with the elder.
    OnScene,
    /// Done; `outcome` says how.
    Closed,
}

impl IncidentStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Dispatching => "dispatching",
            IncidentStatus::Accepted => "accepted",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<IncidentStatus> {
        use IncidentStatus::*;
        [New, Acknowledged, Dispatching, Accepted, OnScene, Closed]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// How an incident ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Help was given on scene.
    Resolved,
    /// Handed to emergency services (120 ambulance, 119 fire, 110 police).
    EmergencyServices,
    /// Nobody needed help; the device or the elder raised it by mistake.
    FalseAlarm,
    /// Handled by phone, no visit needed.
    ResolvedByPhone,
    /// A service order was completed.
    ServiceCompleted,
    /// Closed as a duplicate of another incident.
    Duplicate,
}

impl Outcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::EmergencyServices => "emergency_services",
            Outcome::FalseAlarm => "false_alarm",
            Outcome::ResolvedByPhone => "resolved_by_phone",
            Outcome::ServiceCompleted => "service_completed",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// An incident: one elder's need, from the first alarm until it is closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Row id.
    pub id: i64,
    /// The elder, when the device is assigned to one.
    pub elder_id: Option<i64>,
    /// The device that raised it, when a device did.
    pub device_id: Option<i64>,
    /// Policy category.
    pub category: Category,
    /// What raised it first (`sos`, `fall`, `daily_care`, `missed_check_in`…).
    pub kind: String,
    /// Queue priority, lower is more urgent.
    pub priority: i64,
    /// Lifecycle state.
    pub status: IncidentStatus,
    /// How it ended, once closed.
    pub outcome: Option<Outcome>,
    /// The device cancelled it ("I'm OK") or an operator marked it a probable false alarm.
    pub probable_false_alarm: bool,
    /// How many alarms joined it (repeated presses, other sensors).
    pub alarm_count: i64,
    /// Where, when known.
    pub location: Option<GeoPoint>,
    /// Lifecycle timestamps.
    pub received_at: Millis,
    /// Committed to the store.
    pub stored_at: Millis,
    /// First delivered to a console.
    pub shown_at: Option<Millis>,
    /// An operator acknowledged it.
    pub acked_at: Option<Millis>,
    /// Which operator.
    pub acked_by: Option<String>,
    /// First offer sent to a responder.
    pub dispatched_at: Option<Millis>,
    /// A responder accepted.
    pub accepted_at: Option<Millis>,
    /// A responder arrived.
    pub on_scene_at: Option<Millis>,
    /// Closed.
    pub closed_at: Option<Millis>,
    /// By whom.
    pub closed_by: Option<String>,
    /// Why an operator is needed now (`no_responder`, `accept_overdue`, `not_on_scene`,
    /// `overdue`, `alarm_after_cancel`, `delivery_failed`, `family_unreachable`); cleared when an
    /// operator acknowledges that step or closes the incident.
    pub attention: Option<String>,
    /// Since when.
    pub attention_at: Option<Millis>,
    /// The operator handling it now (took it, acknowledged it first, or had it handed over).
    #[serde(default)]
    pub taken_by: Option<String>,
    /// Since when.
    #[serde(default)]
    pub taken_at: Option<Millis>,
}

impl Incident {
    /// Where the incident stands, as the console's badge says it: `closed`, `done` (a responder
    /// completed the task, waiting for the operator to close), `on_scene`, `accepted`,
    /// `waiting_ack` (no operator has acknowledged it yet), `dispatching`, `acknowledged`, `new`.
    pub fn stage(&self, task_done: bool) -> &'static str {
        match self.status {
            IncidentStatus::Closed => "closed",
            _ if task_done => "done",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Accepted => "accepted",
            _ if self.acked_at.is_none() => "waiting_ack",
            IncidentStatus::Dispatching => "dispatching",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::New => "new",
        }
    }
}

/// One entry of an incident's append-only event log; `id` orders the console's live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentEvent {
    /// Global, monotonically increasing id (the live stream's event id).
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// When it happened.
    pub at: Millis,
    /// What happened (`opened`, `alarm_joined`, `acknowledged`, `note`, `closed`…).
    pub kind: String,
    /// Who did it (`device:42`, `operator:alice`, `responder:7`, `system`).
    pub actor: String,
    /// Details, as JSON.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
