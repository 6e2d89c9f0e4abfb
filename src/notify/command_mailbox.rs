//! A connection's mailbox for device commands: a few commands waiting, in order, with back-pressure.
//!
//! Every connected device has one, and most never receive a command. A tokio `mpsc` channel costs
//! about 600 bytes per connection before its first message (a cache-padded channel and a first
//! block of 32 slots); this one is a mutex-guarded queue that allocates only while commands wait,
//! and two `Notify`s, about 140 bytes in all. Like `mpsc`: `send` waits while
//! [`MAILBOX_DEPTH`] commands wait and fails once the connection has gone, `recv` is cancel-safe
//! and returns `None` once every sender has gone and the queue is empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::devices::Outgoing;

/// Commands that may wait for one connection before a sender waits too.
pub const MAILBOX_DEPTH: usize = 8;

struct Mailbox {
    state: Mutex<State>,
    /// To the connection: a command was queued, or the last sender went.
    queued: Notify,
    /// To senders: a place came free, or the connection went.
    freed: Notify,
}

struct State {
    queue: VecDeque<Box<Outgoing>>,
    senders: usize,
    open: bool,
}

impl Mailbox {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new mailbox: its sending side (for the registry of connected devices) and its receiving side
/// (for the connection).
pub fn mailbox() -> (CommandSender, CommandInbox) {
    let mailbox = Arc::new(Mailbox {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            open: true,
        }),
        queued: Notify::new(),
        freed: Notify::new(),
    });
    (CommandSender(mailbox.clone()), CommandInbox(mailbox))
}

/// Puts commands into a connection's mailbox.
pub struct CommandSender(Arc<Mailbox>);

impl CommandSender {
    /// Queues `out`, waiting while the mailbox is full; gives it back if the connection has gone.
    pub async fn send(&self, out: Box<Outgoing>) -> Result<(), Box<Outgoing>> {
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

impl Clone for CommandSender {
    fn clone(&self) -> CommandSender {
        self.0.state().senders += 1;
        CommandSender(self.0.clone())
    }
}

impl Drop for CommandSender {
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

/// Takes commands out of a connection's mailbox.
pub struct CommandInbox(Arc<Mailbox>);

impl CommandInbox {
    /// The next command; `None` once every sender has gone and none is waiting. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Box<Outgoing>> {
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
            // A command queued since the check left a permit: this returns at once.
            self.0.queued.notified().await;
        }
    }
}

impl Drop for CommandInbox {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.state();
            state.open = false;
            std::mem::take(&mut state.queue)
        };
        // Their `done` senders drop with them: each waiting caller learns it was not written.
        drop(waiting);
        self.0.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::notify::DeviceCommand;

    fn command(
        id: u32,
    ) -> (
        Box<Outgoing>,
        oneshot::Receiver<Result<(), super::super::CommandError>>,
    ) {
        let (done, written) = oneshot::channel();
        let out = Box::new(Outgoing {
            command: DeviceCommand::Locate,
            id,
            done,
        });
        (out, written)
    }

    #[tokio::test]
    async fn commands_arrive_in_order_and_a_full_mailbox_makes_the_sender_wait() {
        let (tx, mut rx) = mailbox();
        for id in 0..MAILBOX_DEPTH as u32 {
            tx.send(command(id).0).await.ok().expect("room");
        }
        let late = tx.clone();
        let ninth = tokio::spawn(async move { late.send(command(99).0).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ninth.is_finished(), "a ninth command waits while eight do");
        assert_eq!(rx.recv().await.map(|o| o.id), Some(0));
        assert!(
            ninth.await.expect("sender task"),
            "a freed place takes the ninth"
        );
        let mut ids = Vec::new();
        for _ in 0..MAILBOX_DEPTH {
            ids.push(rx.recv().await.map(|o| o.id).expect("queued"));
        }
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7, 99]);
    }

    #[tokio::test]
    async fn recv_ends_when_every_sender_has_gone() {
        let (tx, mut rx) = mailbox();
        let other = tx.clone();
        tx.send(command(1).0).await.ok().expect("room");
        drop(tx);
        assert_eq!(rx.recv().await.map(|o| o.id), Some(1));
        let waiting = tokio::spawn(async move { rx.recv().await.is_none() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one sender is left");
        drop(other);
        assert!(waiting.await.expect("receiver task"));
    }

    #[tokio::test]
    async fn a_gone_connection_refuses_new_commands_and_drops_waiting_ones() {
        let (tx, rx) = mailbox();
        let (out, written) = command(1);
        tx.send(out).await.ok().expect("room");
        for id in 2..=MAILBOX_DEPTH as u32 {
            tx.send(command(id).0).await.ok().expect("room");
        }
        let blocked = tx.clone();
        let ninth = tokio::spawn(async move { blocked.send(command(9).0).await.is_err() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(rx);
        assert!(
            ninth.await.expect("sender task"),
            "a sender waiting for room is refused"
        );
        assert!(
            written.await.is_err(),
            "a queued command's caller hears it was not written"
        );
        assert!(tx.send(command(10).0).await.is_err());
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (tx, mut rx) = mailbox();
        let timed_out = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await;
        assert!(timed_out.is_err());
        tx.send(command(7).0).await.ok().expect("room");
        assert_eq!(rx.recv().await.map(|o| o.id), Some(7));
    }
}
