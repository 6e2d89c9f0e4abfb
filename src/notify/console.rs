//! The console's live feed: every incident event, published after it is committed.
//!
//! A broadcast channel fans events out to every open stream. It is bounded: a console that falls
//! behind is told it lagged and catches up from the store by event id, so a slow browser can neither
//! grow memory nor miss events.
//!
//! Events committed by *another* instance on the same database are not published here; instead
//! [`ConsoleHub::committed`] says how far the log has grown (woken by PostgreSQL `NOTIFY`, see
//! `notify/follow.rs`), and a stream behind it catches up from the store.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::domain::IncidentEvent;

/// Fan-out of committed incident events.
#[derive(Clone)]
pub struct ConsoleHub {
    tx: broadcast::Sender<Arc<IncidentEvent>>,
    committed: Arc<watch::Sender<i64>>,
}

impl ConsoleHub {
    /// A hub that buffers up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> ConsoleHub {
        let (tx, _) = broadcast::channel(capacity);
        ConsoleHub {
            tx,
            committed: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Records that the log holds events up to `id`, committed by any instance.
    pub fn log_grew_to(&self, id: i64) {
        self.committed.send_if_modified(|known| {
            let grew = id > *known;
            if grew {
                *known = id;
            }
            grew
        });
    }

    /// The newest event id known to be committed, by this instance or another.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
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
