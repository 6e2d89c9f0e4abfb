//! Which devices are connected right now, and the way to send one a command.
//!
//! Each connection registers its device once identified. A device that reconnects replaces its older
//! connection: the old one is cancelled, so a half-open socket cannot keep receiving commands meant
//! for the new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use onekey_protocol::CommandKind;

use super::mailbox::Sender;

/// A command for one device, as the API asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCommand {
    /// One of the native protocol's commands, with its argument.
    Native {
        /// What to do.
        kind: CommandKind,
        /// Argument (heartbeat seconds for `set_heartbeat`).
        arg: u32,
    },
    /// Ask for a position now (every protocol that can).
    Locate,
    /// Set SOS call numbers (watch).
    SetSosNumbers(Vec<String>),
    /// Restart the device.
    Reset,
    /// A free-form protocol text command (GT06, H02).
    Text(String),
}

/// Why a command was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The device has no open connection.
    #[error("device is not connected")]
    NotConnected,
    /// The device's protocol has no such command.
    #[error("the device's protocol has no such command")]
    Unsupported,
    /// The connection closed before the command was written.
    #[error("connection closed before the command was sent")]
    Closed,
}

/// A command handed to a connection, with a way to say whether it was written. Boxed on its way,
/// so a connection's mailbox holds a pointer per waiting command.
pub struct Outgoing {
    /// The command.
    pub command: DeviceCommand,
    /// Command id, echoed by protocols that number commands.
    pub id: u32,
    /// Written to the socket, or why not.
    pub done: oneshot::Sender<Result<(), CommandError>>,
}

struct Entry {
    connection: u64,
    commands: Sender<Box<Outgoing>>,
    cancel: CancellationToken,
}

/// The registry of connected devices.
#[derive(Clone, Default)]
pub struct ConnectedDevices {
    inner: Arc<Mutex<HashMap<i64, Entry>>>,
    next_command: Arc<std::sync::atomic::AtomicU32>,
    /// Other instances on the same database, for devices connected to them.
    remote: Arc<std::sync::OnceLock<Arc<super::remote_commands::CommandRelay>>>,
}

impl ConnectedDevices {
    /// Registers `connection` as the device's current one, cancelling any older connection.
    pub fn register(
        &self,
        device_id: i64,
        connection: u64,
        commands: Sender<Box<Outgoing>>,
        cancel: CancellationToken,
    ) {
        let old = {
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(
                device_id,
                Entry {
                    connection,
                    commands,
                    cancel,
                },
            )
        };
        if let Some(old) = old.filter(|o| o.connection != connection) {
            tracing::info!(
                device_id,
                old = old.connection,
                new = connection,
                "device reconnected; closing its older connection"
            );
            metrics::counter!("onekey_connections_replaced_total").increment(1);
            old.cancel.cancel();
        }
    }

    /// Removes the device's entry if it still belongs to `connection`.
    pub fn unregister(&self, device_id: i64, connection: u64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&device_id)
            .is_some_and(|e| e.connection == connection)
        {
            map.remove(&device_id);
        }
    }

    /// Whether the device is connected.
    pub fn is_connected(&self, device_id: i64) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&device_id)
    }

    /// Number of connected devices.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no device is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reaches devices connected to other instances through `relay` from now on.
    pub fn relay_through(&self, relay: Arc<super::remote_commands::CommandRelay>) {
        let _ = self.remote.set(relay);
    }

    /// Sends a command to a connected device, here or (through the relay) on another instance,
    /// and waits until it is written. Returns its id.
    pub async fn send(&self, device_id: i64, command: DeviceCommand) -> Result<u32, CommandError> {
        match (self.is_connected(device_id), self.remote.get()) {
            (false, Some(relay)) => relay.send(device_id, &command).await,
            _ => self.send_local(device_id, command).await,
        }
    }

    /// Sends a command to a device connected to this instance and waits until it is written.
    pub async fn send_local(
        &self,
        device_id: i64,
        command: DeviceCommand,
    ) -> Result<u32, CommandError> {
        let sender = {
            let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&device_id)
                .map(|e| e.commands.clone())
                .ok_or(CommandError::NotConnected)?
        };
        let id = self
            .next_command
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1);
        let (done, written) = oneshot::channel();
        sender
            .send(Box::new(Outgoing { command, id, done }))
            .await
            .map_err(|_| CommandError::Closed)?;
        written.await.map_err(|_| CommandError::Closed)??;
        Ok(id)
    }
}
