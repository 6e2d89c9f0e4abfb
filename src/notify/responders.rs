//! Pushes to responders' apps: offers, assignments, stand-downs, escalations. A broadcast like
//! [`ConsoleHub`](super::ConsoleHub); the SSE endpoint and the MQTT push subscribe and filter by
//! responder.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::dispatch::Push;
use crate::domain::Millis;

/// One message for one responder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponderPush {
    /// Recipient.
    pub responder_id: i64,
    /// The incident it is about.
    pub incident_id: i64,
    /// When it was sent.
    pub at: Millis,
    /// What it says.
    pub push: Push,
}

/// Fan-out of responder pushes.
#[derive(Clone)]
pub struct ResponderHub {
    tx: broadcast::Sender<Arc<ResponderPush>>,
}

impl ResponderHub {
    /// A hub buffering up to `capacity` pushes per subscriber.
    pub fn new(capacity: usize) -> ResponderHub {
        let (tx, _) = broadcast::channel(capacity);
        ResponderHub { tx }
    }

    /// Publishes one push; no subscriber is fine (the app lists its tasks when it reconnects).
    pub fn publish(&self, push: ResponderPush) {
        metrics::counter!("onekey_responder_pushes_total").increment(1);
        let _ = self.tx.send(Arc::new(push));
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ResponderPush>> {
        self.tx.subscribe()
    }
}
