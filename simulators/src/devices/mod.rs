//! The simulated devices of a day: every [`DevicePlan`] runs as one tokio task that connects over
//! its link, says hello as its protocol requires, heartbeats on the clock with a slowly draining
//! battery, and sends each planned action when it is due, the way the firmware does: one message
//! in flight, the same sequence number / serial resent until the server's ACK arrives (the ACK
//! timeout is 5 s of the clock, at least 1 s of wall time), reconnecting with capped exponential
//! backoff and jitter when the connection drops, and the message resent after the reconnect.
//!
//! Which actions each protocol can express, and how alarm kinds map, is documented in
//! [`native`], [`json`], [`deployed`] and [`sia`]; what a protocol cannot express is counted in
//! [`DeviceReport::unsupported`] and not sent. `GoSilent` closes the connection for the rest of
//! the run.
//!
//! Device clocks: frames carry the simulation clock's time plus an offset learned from the
//! server's replies (native and JSON ACKs, H02 `V4` and DC-09 `NAK` carry the server's time), so
//! DC-09's ±40 s timestamp window holds even when the server's compressed clock started a little
//! earlier or later than [`SimClock`].
//!
//! Determinism: every choice (heartbeat phase, backoff jitter, DC-09 pad letters) comes from a
//! generator seeded with the device's ident. Native and JSON sequence numbers start from the wall
//! clock ([`crate::fleet::clock_seq_base`]) so that a second run against the same server is not
//! refused as a replay.
//!
//! Scale: a device is one task and one socket (MQTT devices each have their own broker
//! connection, see [`conn`]); idle devices wait on a timer and a socket read, and connection
//! attempts are ramped through a semaphore so that 10 000 devices do not flood the listeners.

pub mod conn;
pub mod deployed;
pub mod json;
pub mod native;
pub mod sia;
pub mod wire;

mod report;
mod run;

pub use report::{DeviceReport, LinkRow};
pub use run::run;

/// Where the server listens.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Native protocol listener, `host:port`.
    pub native: String,
    /// GT06 listener.
    pub gt06: String,
    /// 3G watch listener.
    pub watch: String,
    /// H02 listener.
    pub h02: String,
    /// SIA DC-09 listener.
    pub sia: String,
    /// `host:port` of the MQTT broker, its account, and the topic prefix (e.g. "onekey").
    pub mqtt: String,
    /// The broker account (user, password).
    pub mqtt_user: Option<(String, String)>,
    /// The topic prefix.
    pub mqtt_prefix: String,
}
