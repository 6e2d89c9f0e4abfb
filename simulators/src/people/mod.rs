//! The simulated people who answer OneKey: volunteers' and grid workers' apps over MQTT and the
//! API ([`apps`]), operators at the console's API ([`operators`]), and the handsets behind the
//! phone numbers the SMS centre serves ([`families`]). Each decides from its own seed, on the
//! compressed clock the server runs on.

pub mod apps;
pub mod crowd;
pub mod families;
pub mod operators;

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter the report reads.
#[derive(Debug, Default)]
pub struct Count(AtomicU64);

impl Count {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
