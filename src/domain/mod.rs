//! Plain domain types: no I/O, no async, nothing from the rest of the crate.
//!
//! Everything that crosses a module boundary on the alarm path is defined here: the [`DeviceEvent`]
//! every protocol adapter produces, the [`Incident`] lifecycle the store keeps, and the directory of
//! elders, devices, responders and areas that the console administers.

mod directory;
mod event;
mod incident;
mod time;

pub use directory::{
    Area, AreaLevel, Contact, Device, DeviceState, Elder, LivingSituation, Responder,
    ResponderKind, Shift,
};
pub use event::{DeviceEvent, DeviceStatus, EventBody, GeoPoint};
pub use incident::{Category, Incident, IncidentEvent, IncidentStatus, Outcome};
pub use onekey_protocol::{AlarmKind, CommandKind, ServiceKind};
pub use time::{Millis, now_millis};
