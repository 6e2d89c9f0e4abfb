//! A connection's mailbox for device commands: a few messages waiting, in order, with back-pressure.
//!
//! Every connected device has one, and most never receive a command. A tokio `mpsc` channel costs
//! about 600 bytes per connection before its first message (a cache-padded channel and a first
//! block of 32 slots); this one is a mutex-guarded queue that allocates only while messages wait,
//! and two `Notify`s, about 140 bytes in all. Like `mpsc`: `send` waits while
//! [`MAILBOX_DEPTH`] messages wait and fails once the receiver has gone, `recv` is cancel-safe
//! and returns `None` once every sender has gone and the queue is empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Messages that may wait in one mailbox before a sender waits too.
pub const MAILBOX_DEPTH: usize = 8;

struct Shared<T> {
    state: Mutex<State<T>>,
    /// To the receiver: a message was queued, or the last sender went.
    queued: Notify,
    /// To senders: a place came free, or the receiver went.
    freed: Notify,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    open: bool,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new mailbox: its sending side (for the registry of connected devices) and its receiving side
/// (for the connection).
pub fn mailbox<T>() -> (Sender<T>, Inbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            open: true,
        }),
        queued: Notify::new(),
        freed: Notify::new(),
    });
    (Sender(shared.clone()), Inbox(shared))
}

/// Puts messages into a mailbox.
pub struct Sender<T>(Arc<Shared<T>>);

impl<T> Sender<T> {
    /// Queues `out`, waiting while the mailbox is full; gives it back if the receiver has gone.
    pub async fn send(&self, out: T) -> Result<(), T> {
        loop {
            let freed = self.0.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a place freed in between is not missed.
            freed.as_mut().enable();
            {
                let mut state = self.0.state();
                if !state.open {
                    return Err(out);
                }
                if state.queue.len() < MAILBOX_DEPTH {
                    state.queue.push_back(out);
                    drop(state);
                    self.0.queued.notify_one();
                    return Ok(());
                }
            }
            freed.await;
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.0.state().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.0.state();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.0.queued.notify_one();
        }
    }
}

/// Takes messages out of a mailbox.
pub struct Inbox<T>(Arc<Shared<T>>);

impl<T> Inbox<T> {
    /// The next message; `None` once every sender has gone and none is waiting. Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.0.state();
                if let Some(out) = state.queue.pop_front() {
                    drop(state);
                    self.0.freed.notify_one();
                    return Some(out);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            // A message queued since the check left a permit: this returns at once.
            self.0.queued.notified().await;
        }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.state();
            state.open = false;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a command's `done` sender tells its caller it was not written.
        drop(waiting);
        self.0.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_and_a_full_mailbox_makes_the_sender_wait() {
        let (tx, mut rx) = mailbox::<u32>();
        for id in 0..MAILBOX_DEPTH as u32 {
            tx.send(id).await.expect("room");
        }
        let late = tx.clone();
        let ninth = tokio::spawn(async move { late.send(99).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ninth.is_finished(), "a ninth message waits while eight do");
        assert_eq!(rx.recv().await, Some(0));
        assert!(
            ninth.await.expect("sender task"),
            "a freed place takes the ninth"
        );
        let mut ids = Vec::new();
        for _ in 0..MAILBOX_DEPTH {
            ids.push(rx.recv().await.expect("queued"));
        }
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7, 99]);
    }

    #[tokio::test]
    async fn recv_ends_when_every_sender_has_gone() {
        let (tx, mut rx) = mailbox::<u32>();
        let other = tx.clone();
        tx.send(1).await.expect("room");
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        let waiting = tokio::spawn(async move { rx.recv().await.is_none() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one sender is left");
        drop(other);
        assert!(waiting.await.expect("receiver task"));
    }

    #[tokio::test]
    async fn a_gone_receiver_refuses_new_messages_and_drops_waiting_ones() {
        let (tx, rx) = mailbox::<Option<oneshot::Sender<()>>>();
        let (done, written) = oneshot::channel();
        tx.send(Some(done)).await.expect("room");
        for _ in 1..MAILBOX_DEPTH {
            tx.send(None).await.expect("room");
        }
        let blocked = tx.clone();
        let ninth = tokio::spawn(async move { blocked.send(None).await.is_err() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(rx);
        assert!(
            ninth.await.expect("sender task"),
            "a sender waiting for room is refused"
        );
        assert!(
            written.await.is_err(),
            "a queued message is dropped, and its caller hears so"
        );
        assert!(tx.send(None).await.is_err());
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (tx, mut rx) = mailbox::<u32>();
        let timed_out = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await;
        assert!(timed_out.is_err());
        tx.send(7).await.expect("room");
        assert_eq!(rx.recv().await, Some(7));
    }
}
