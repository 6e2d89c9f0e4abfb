//! The responders' live app stream: committed push notifications, in log order, to every open
//! app stream. The same rows go to the MQTT task topic through the push relay, so the app's page
//! and its push can never disagree.
//!
//! Like the console's feed (`console.rs`), this is the store's push log followed by one tail task
//! (`log_tail.rs`), woken by this instance's commits and other instances' `NOTIFY`; an app stream
//! that lags or reconnects reads its own pushes from the store from where it stands.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::log_tail::{Follower, LogTail, Reader};
use crate::store::{Channel, LogPosition, Notification, Store, StoreResult};

/// Fan-out of committed push notifications.
#[derive(Clone)]
pub struct ResponderHub {
    tail: LogTail<Notification>,
    store: Store,
}

impl ResponderHub {
    /// Starts following `store`'s push notifications from their end, buffering up to `capacity`
    /// per app stream, until `shutdown`.
    pub async fn start(
        store: Store,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> StoreResult<ResponderHub> {
        let end = store.push_log_end().await?;
        let tail = LogTail::start(
            "push_notifications",
            reader(&store, None),
            end,
            capacity,
            |_| {},
            shutdown,
        );
        Ok(ResponderHub { tail, store })
    }

    /// Says that `notifications` were committed; the pushes among them are counted and passed
    /// on (read from the store, in log order).
    pub fn publish<'a>(&self, notifications: impl IntoIterator<Item = &'a Notification>) {
        let pushes = notifications
            .into_iter()
            .filter(|n| n.channel == Channel::Push)
            .count();
        if pushes > 0 {
            metrics::counter!("onekey_responder_pushes_total").increment(pushes as u64);
            self.tail.wake();
        }
    }

    /// Says that another instance committed something: the feed reads on.
    pub fn wake(&self) {
        self.tail.wake();
    }

    /// Follows `responder`'s pushes after push `after` (`None`: from now on).
    pub async fn follow(
        &self,
        responder: i64,
        after: Option<i64>,
    ) -> StoreResult<Follower<Notification>> {
        let from = match after {
            Some(id) => Some(self.store.push_position(id).await?),
            None => None,
        };
        Ok(self.tail.follow(
            from,
            reader(&self.store, Some(responder)),
            move |n: &Notification| n.responder_id == Some(responder),
        ))
    }
}

fn reader(store: &Store, responder: Option<i64>) -> Reader<Notification> {
    let store = store.clone();
    Arc::new(move |after: LogPosition, limit| {
        let store = store.clone();
        Box::pin(async move { store.pushes_after(responder, after, limit).await })
    })
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
