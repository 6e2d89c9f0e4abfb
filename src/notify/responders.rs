//! The responders' live app stream: committed push notifications, fanned out after their
//! transaction commits. The same rows go to the MQTT task topic through the push relay, so the
//! app's page and its push can never disagree; an app stream that lags or reconnects catches up
//! from the store by notification id.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::Notification;

/// Fan-out of committed push notifications.
#[derive(Clone)]
pub struct ResponderHub {
    tx: broadcast::Sender<Arc<Notification>>,
}

impl ResponderHub {
    /// A hub buffering up to `capacity` notifications per subscriber.
    pub fn new(capacity: usize) -> ResponderHub {
        let (tx, _) = broadcast::channel(capacity);
        ResponderHub { tx }
    }

    /// Publishes push notifications this instance committed; no subscriber is fine (the app
    /// catches up).
    pub fn publish<'a>(&self, notifications: impl IntoIterator<Item = &'a Notification>) {
        for n in notifications {
            if self.fan_out(n) {
                metrics::counter!("onekey_responder_pushes_total").increment(1);
            }
        }
    }

    /// Hands on push notifications another instance committed (`follow.rs`); not counted again.
    pub fn relay(&self, notifications: &[Notification]) {
        for n in notifications {
            self.fan_out(n);
        }
    }

    /// Sends a push notification to every app stream; false for other channels.
    fn fan_out(&self, n: &Notification) -> bool {
        let push = n.channel == crate::store::Channel::Push;
        if push {
            let _ = self.tx.send(Arc::new(n.clone()));
        }
        push
    }

    /// A new subscription; take it *before* reading the catch-up from the store.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.tx.subscribe()
    }
}

/// The message an app receives for a push notification, on MQTT and on its live stream alike:
/// the stored payload with the notification's `id` (to confirm receipt and drop repeats) and
/// `at` (when it was queued).
pub fn app_message(n: &Notification) -> serde_json::Value {
    let mut v = n.payload.clone();
    if let Some(map) = v.as_object_mut() {
        map.insert("id".into(), n.id.into());
        map.insert("at".into(), n.created_at.into());
        if let Some(incident) = n.incident_id {
            map.entry("incident_id").or_insert(incident.into());
        }
    }
    v
}
