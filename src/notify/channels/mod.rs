//! The ways out of the server, one [`Transport`](super::Transport) each: the responder push over
//! MQTT, SMS (SMPP 3.4 or an HTTP provider), webhooks to other systems.

pub mod mqtt;
pub mod sms;
pub mod webhook;
