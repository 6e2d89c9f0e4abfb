//! Effects that leave the house after a commit: the console's live feed and commands to devices.

pub mod console;
pub mod devices;

pub use console::ConsoleHub;
pub use devices::{CommandError, ConnectedDevices, DeviceCommand};
