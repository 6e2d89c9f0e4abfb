//! Following the commits of every instance on one PostgreSQL database. Each transaction that
//! appends incident events or push notifications queues a `NOTIFY onekey_commits`
//! (`store::begin_ordered`), delivered by PostgreSQL on commit to every listening connection. This
//! instance's follower wakes the console's and the apps' feeds on it, and they read on from the
//! store in log order (`log_tail.rs`; they also read once a second regardless, for a notification
//! lost while this connection was down).
//!
//! The same connection carries device commands between instances (`remote_commands.rs`).
//!
//! PostgreSQL rather than the broker: the notification is part of the commit (never sent for a
//! transaction that rolls back, never before its rows are visible), needs nothing besides the
//! database every instance already has, and carries no data (the store stays the one truth).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::remote_commands::{self, CommandRelay};
use super::{ConnectedDevices, ConsoleHub, ResponderHub};
use crate::store::COMMITS_CHANNEL;

const RECONNECT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts following `url`'s commits; returns the task (it ends at `shutdown`).
pub fn spawn(
    url: String,
    console: ConsoleHub,
    responders: ResponderHub,
    commands: (Arc<CommandRelay>, ConnectedDevices),
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!("following other instances' commits");
        let mut listener = None;
        loop {
            if listener.is_none() {
                listener = listen(&url).await;
            }
            let woken = match listener.as_mut() {
                Some(l) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    n = l.recv() => match n {
                        Ok(n) if n.channel() == COMMITS_CHANNEL => true,
                        Ok(n) => {
                            relay_command(&commands, n);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "commit listener failed; reconnecting");
                            listener = None;
                            false
                        }
                    },
                },
                None => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RECONNECT) => false,
                },
            };
            if woken {
                metrics::counter!("onekey_commit_notifications_total").increment(1);
                // A burst of commits is read once: take what else is already queued.
                if let Some(l) = listener.as_mut() {
                    while let Some(n) = l.next_buffered() {
                        if n.channel() != COMMITS_CHANNEL {
                            relay_command(&commands, n);
                        }
                    }
                }
                console.wake();
                responders.wake();
            }
        }
    })
}

async fn listen(url: &str) -> Option<PgListener> {
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut listener = PgListener::connect(url).await?;
        listener
            .listen_all([
                COMMITS_CHANNEL,
                remote_commands::REQUESTS,
                remote_commands::ANSWERS,
            ])
            .await?;
        Ok::<_, sqlx::Error>(listener)
    })
    .await;
    match opened {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot LISTEN for commits; the feeds poll once a second");
            None
        }
        Err(_) => {
            tracing::warn!(
                "the commit listener did not connect in time; the feeds poll once a second"
            );
            None
        }
    }
}

/// A device command request or answer, handled in its own task (writing to a device's
/// connection may take a moment; the follower goes on).
fn relay_command(
    (relay, devices): &(Arc<CommandRelay>, ConnectedDevices),
    n: sqlx::postgres::PgNotification,
) {
    let (relay, devices) = (relay.clone(), devices.clone());
    tokio::spawn(async move { relay.handle(n.channel(), n.payload(), &devices).await });
}
