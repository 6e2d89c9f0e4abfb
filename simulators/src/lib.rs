//! Simulators for OneKey: devices of every protocol, responders, and demo datasets.
//!
//! The device clients here speak the real protocols over real TCP sockets; the tests, the load
//! harness in `benches/` and `onekey demo` all drive the server through them.
#![forbid(unsafe_code)]

pub mod dataset;
pub mod deployed;
pub mod fleet;
pub mod native;
