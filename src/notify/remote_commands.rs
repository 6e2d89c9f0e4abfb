//! Device commands across instances (PostgreSQL): a command for a device whose connection another
//! instance holds is asked for with `NOTIFY onekey_device_commands`; the instance holding it
//! writes it to the connection and answers with `NOTIFY onekey_device_command_results`. The
//! asking instance waits for that answer (at most [`ANSWER_WAIT`]). Like a command on one
//! instance, it is written at most once: only an instance with the device's connection writes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::devices::{CommandError, ConnectedDevices, DeviceCommand};
use crate::store::Store;

/// Channel of requests.
pub const REQUESTS: &str = "onekey_device_commands";
/// Channel of answers.
pub const ANSWERS: &str = "onekey_device_command_results";
/// How long an instance waits for the one holding the connection.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// A command on the wire between instances.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Native { kind: String, arg: u32 },
    Locate,
    SetSosNumbers { numbers: Vec<String> },
    Reset,
    Text { text: String },
}

impl Wire {
    fn of(c: &DeviceCommand) -> Wire {
        match c {
            DeviceCommand::Native { kind, arg } => Wire::Native {
                kind: kind.as_str().to_string(),
                arg: *arg,
            },
            DeviceCommand::Locate => Wire::Locate,
            DeviceCommand::SetSosNumbers(n) => Wire::SetSosNumbers { numbers: n.clone() },
            DeviceCommand::Reset => Wire::Reset,
            DeviceCommand::Text(t) => Wire::Text { text: t.clone() },
        }
    }

    fn command(self) -> Option<DeviceCommand> {
        Some(match self {
            Wire::Native { kind, arg } => DeviceCommand::Native {
                kind: onekey_protocol::CommandKind::from_name(&kind)?,
                arg,
            },
            Wire::Locate => DeviceCommand::Locate,
            Wire::SetSosNumbers { numbers } => DeviceCommand::SetSosNumbers(numbers),
            Wire::Reset => DeviceCommand::Reset,
            Wire::Text { text } => DeviceCommand::Text(text),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    request: u64,
    device: i64,
    command: Wire,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    request: u64,
    /// The command id, or why it was not written.
    command_id: Option<u32>,
    error: Option<String>,
}

/// This instance's end of the relay.
pub struct CommandRelay {
    store: Store,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<u32, CommandError>>>>,
}

impl CommandRelay {
    /// A relay that notifies through `store`.
    pub fn new(store: Store) -> Arc<CommandRelay> {
        Arc::new(CommandRelay {
            store,
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// Asks the other instances to write `command` to the device; `NotConnected` when none
    /// answers in time.
    pub async fn send(&self, device_id: i64, command: &DeviceCommand) -> Result<u32, CommandError> {
        let request = rand::random::<u64>();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(request, tx);
        let payload = serde_json::to_string(&Request {
            request,
            device: device_id,
            command: Wire::of(command),
        })
        .unwrap_or_default();
        if let Err(e) = self.store.notify(REQUESTS, &payload).await {
            tracing::warn!(device_id, error = %e, "cannot ask the other instances for a device");
            self.lock().remove(&request);
            return Err(CommandError::NotConnected);
        }
        let answer = tokio::time::timeout(ANSWER_WAIT, rx).await;
        self.lock().remove(&request);
        match answer {
            Ok(Ok(result)) => result,
            _ => Err(CommandError::NotConnected),
        }
    }

    /// Handles a notification on [`REQUESTS`] or [`ANSWERS`].
    pub async fn handle(&self, channel: &str, payload: &str, devices: &ConnectedDevices) {
        match channel {
            REQUESTS => {
                let Ok(req) = serde_json::from_str::<Request>(payload) else {
                    tracing::warn!(payload, "a device command request that does not parse");
                    return;
                };
                if !devices.is_connected(req.device) {
                    return;
                }
                let Some(command) = req.command.command() else {
                    return;
                };
                let result = devices.send_local(req.device, command).await;
                tracing::info!(
                    device_id = req.device,
                    ok = result.is_ok(),
                    "command from another instance"
                );
                let answer = Answer {
                    request: req.request,
                    command_id: result.as_ref().ok().copied(),
                    error: result.err().map(|e| match e {
                        CommandError::Unsupported => "unsupported".to_string(),
                        other => other.to_string(),
                    }),
                };
                let payload = serde_json::to_string(&answer).unwrap_or_default();
                if let Err(e) = self.store.notify(ANSWERS, &payload).await {
                    tracing::warn!(error = %e, "cannot answer a device command request");
                }
            }
            ANSWERS => {
                let Ok(answer) = serde_json::from_str::<Answer>(payload) else {
                    return;
                };
                let Some(tx) = self.lock().remove(&answer.request) else {
                    return; // another instance's request
                };
                let result = match (answer.command_id, answer.error.as_deref()) {
                    (Some(id), _) => Ok(id),
                    (None, Some("unsupported")) => Err(CommandError::Unsupported),
                    (None, _) => Err(CommandError::Closed),
                };
                let _ = tx.send(result);
            }
            _ => {}
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<u32, CommandError>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
