//! Plain domain types: no I/O, no async, nothing from the rest of the crate.
//!
//! Everything that crosses a module boundary on the alarm path is defined here: the [`DeviceEvent`]
//! every protocol adapter produces, the [`Incident`] lifecycle the store keeps, and the directory of
//! elders, devices, responders and areas that the console administers.

mod directory;
mod event;
mod incident;
pub mod power;
mod time;

pub use directory::{
    Area, AreaLevel, Contact, Device, DeviceState, Elder, LivingSituation, NotifyBy, Responder,
    ResponderKind, Shift, normalize_phone,
};
pub use event::{DeviceEvent, DeviceStatus, EventBody, GeoPoint};
pub use incident::{Category, Incident, IncidentEvent, IncidentStatus, Outcome};
pub use onekey_protocol::{AlarmKind, CommandKind, ServiceKind};
pub use time::{Millis, clock_scale, now_millis, set_clock, wall_span};
