//! The console's live feed: every incident event, published after it is committed.
//!
//! A broadcast channel fans events out to every open stream. It is bounded: a console that falls
//! behind is told it lagged and catches up from the store by event id, so a slow browser can neither
//! grow memory nor miss events.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::IncidentEvent;

/// Fan-out of committed incident events.
#[derive(Clone)]
pub struct ConsoleHub {
    tx: broadcast::Sender<Arc<IncidentEvent>>,
}

impl ConsoleHub {
    /// A hub that buffers up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> ConsoleHub {
        let (tx, _) = broadcast::channel(capacity);
        ConsoleHub { tx }
    }

    /// Publishes committed events, in id order.
    pub fn publish(&self, events: impl IntoIterator<Item = IncidentEvent>) {
        for event in events {
            metrics::counter!("onekey_console_events_total").increment(1);
            // No subscriber is fine: consoles catch up from the store when they connect.
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// A new subscription; take it *before* reading the catch-up from the store.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<IncidentEvent>> {
        self.tx.subscribe()
    }

    /// Open subscriptions.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}
