//! The console's live feed: every committed incident event, in log order, to every open stream.
//!
//! The feed is the store's incident log followed by one tail task (`log_tail.rs`): a commit on
//! this instance wakes it at once, one on another instance through PostgreSQL `NOTIFY`
//! (`follow.rs`). Its broadcast is bounded: a console that falls behind reads the store from where
//! it stands, so a slow browser can neither grow memory nor miss events.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::log_tail::{Follower, LogTail, Reader};
use crate::domain::IncidentEvent;
use crate::store::{LogPosition, Store, StoreResult};

/// Fan-out of committed incident events.
#[derive(Clone)]
pub struct ConsoleHub {
    tail: LogTail<IncidentEvent>,
    store: Store,
    here: broadcast::Sender<Arc<IncidentEvent>>,
}

impl ConsoleHub {
    /// Starts following `store`'s incident log from its end, buffering up to `capacity` events
    /// per stream, until `shutdown`.
    pub async fn start(
        store: Store,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> StoreResult<ConsoleHub> {
        let end = store.incident_log_end().await?;
        let tail = LogTail::start(
            "incident_events",
            reader(&store),
            end,
            capacity,
            |_| metrics::counter!("onekey_console_events_total").increment(1),
            shutdown,
        );
        let (here, _) = broadcast::channel(capacity);
        Ok(ConsoleHub { tail, store, here })
    }

    /// Says that `events` were committed: the feed reads them (and anything committed before
    /// them) from the store and passes them on in log order.
    pub fn publish(&self, events: impl IntoIterator<Item = IncidentEvent>) {
        let mut any = false;
        for event in events {
            any = true;
            // No subscriber is fine: dispatch's inbox holds what it must act on.
            let _ = self.here.send(Arc::new(event));
        }
        if any {
            self.tail.wake();
        }
    }

    /// The events this instance commits, as it commits them (unordered across tasks): what
    /// dispatch acts on at once. Other instances' events reach it through its inbox.
    pub fn committed_here(&self) -> broadcast::Receiver<Arc<IncidentEvent>> {
        self.here.subscribe()
    }

    /// Says that another instance committed something: the feed reads on.
    pub fn wake(&self) {
        self.tail.wake();
    }

    /// Follows the feed after incident event `after` (`None`: from now on).
    pub async fn follow(&self, after: Option<i64>) -> StoreResult<Follower<IncidentEvent>> {
        let from = match after {
            Some(id) => Some(self.store.incident_event_position(id).await?),
            None => None,
        };
        Ok(self.tail.follow(from, reader(&self.store), |_| true))
    }

    /// Open streams.
    pub fn subscribers(&self) -> usize {
        self.tail.followers()
    }
}

fn reader(store: &Store) -> Reader<IncidentEvent> {
    let store = store.clone();
    Arc::new(move |after: LogPosition, limit| {
        let store = store.clone();
        Box::pin(async move { store.incident_events_after(after, limit).await })
    })
}
