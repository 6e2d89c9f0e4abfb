//! OneKey: the dispatch server between elders' one-key emergency call devices and the people who
//! answer them.
//!
//! An alarm's walk through the crate, top to bottom:
//! - [`ingress`]: a device's socket; one [`ingress::Adapter`] per protocol decodes frames into
//!   [`domain::DeviceEvent`]s;
//! - [`intake`]: the group-commit writer stores them durably in the [`store`]; only then does the
//!   connection send the device its ACK;
//! - the store opens or joins an incident in the same transaction;
//! - [`dispatch`]: matches responders, sends offers, escalates and keeps the SLA clocks;
//! - [`notify`]: committed incident events go to the operators' consoles;
//! - [`web`]: the JSON API, the live stream, health and metrics.
//!
//! [`app`] wires these together; [`tls`] puts the web port and device listeners under TLS; [`cli`] is the command line; [`config`] the settings.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod import;
pub mod ingress;
pub mod intake;
pub mod mqtt;
pub mod notify;
pub mod procedures;
pub mod store;
pub mod supervision;
pub mod telemetry;
pub mod tls;
pub mod web;
