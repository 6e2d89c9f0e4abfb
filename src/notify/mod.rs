//! Effects that leave the house after a commit: the console's live feed, commands to devices and
//! pushes to responders.

pub mod console;
pub mod devices;

pub use console::ConsoleHub;
pub use devices::{CommandError, ConnectedDevices, DeviceCommand};
pub mod responders;

pub use responders::{ResponderHub, ResponderPush};
