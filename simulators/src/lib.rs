//! Simulators for OneKey: devices of every protocol, the people who answer (volunteers' apps,
//! operators, families' handsets), datasets, and whole simulated days on the real server.
//!
//! The clients here speak the real protocols over real sockets; the tests, the load harness in
//! `benches/`, `onekey-sim day` and `onekey-sim demo` all drive the server through them. The
//! server itself depends on none of it.
#![forbid(unsafe_code)]

pub mod api;
pub mod clock;
pub mod dataset;
pub mod day;
pub mod deployed;
pub mod devices;
pub mod fleet;
pub mod native;
pub mod people;
pub mod plan;
pub mod smsc;
pub mod world;
