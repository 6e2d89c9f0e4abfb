//! Effects that leave the house after a commit: the console's live feed, commands to devices, and
//! the outbox through which every message to a person or another system goes (responder pushes
//! over MQTT and the app's stream, SMS, webhooks), with its relays and fallbacks.

pub mod channels;
pub mod console;
pub mod devices;
pub mod follow;
pub mod inbound;
pub mod log_tail;
pub mod mailbox;
pub mod outbox;
pub mod receipts;
pub mod remote_commands;
pub mod responders;

pub use console::ConsoleHub;
pub use devices::{CommandError, ConnectedDevices, DeviceCommand};
pub use outbox::{Attempt, DeliveryPolicy, Outbox, RelayContext, RelaySettings, Transport};
pub use responders::{ResponderHub, app_message};
