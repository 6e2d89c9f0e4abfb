//! MQTT ingress: devices through a broker (`firmware-protocol/MQTT.md`).
//!
//! OneKey is a broker *client* (rumqttc, MQTT 3.1.1). MQTT is not a TCP listener, so it does not go
//! through [`Adapter`](super::Adapter)'s connection loop, but an uplink walks the same path as a
//! native frame: topic → [`DeviceRegistry`](super::DeviceRegistry) lookup → MAC → replay window →
//! [`DeviceEvent`](crate::domain::DeviceEvent) → [`Intake::submit`](crate::intake::Intake::submit)
//! → ACK on the device's downlink topic only after the commit. Binary uplinks are handled by the
//! [`Native`] adapter itself; JSON uplinks by [`json_uplink`].
//!
//! The device connection (client id `<id>`): persistent session (clean_session = false), subscribes
//! with QoS 1
//!   to the uplink topics, optionally as an MQTT shared subscription (`$share/<group>/…`: Mosquitto
//!   and EMQX support them for 3.1.1 clients too) so several instances split the devices. PUBACKs to
//!   the broker are manual and sent after the uplink is handled, so an uplink that was received but
//!   not committed when the process died is redelivered. Device ACKs go out with `try_publish`:
//!   never blocking the alarm path; when rumqttc's request queue is full the ACK is dropped and
//!   counted (`onekey_mqtt_outbox_dropped_total{kind="ack"}`): the alarm is committed and the device's
//!   retry gets a `duplicate` ACK. Responder pushes have their own connection
//!   (`notify::channels::mqtt`).
//!
//! rumqttc's sharp edges and what we do: it reconnects at once in a tight loop (we sleep a capped
//! exponential backoff with jitter after every error); it does not resubscribe (we subscribe after
//! every CONNACK); `publish` waits when its request channel is full (we use `try_publish`); it drops
//! unacknowledged publishes when the broker starts a new session (ACKs are covered by the device's
//! retry); it knows one address (with several nodes in `mqtt_url` we hand it the next after every
//! error).

pub mod json_uplink;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeReasonCode};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use onekey_protocol::SeqClass;

use super::native::Native;
use super::{Adapter, DeviceAuth, GatewayContext, Reason, Reject, commit};
use crate::domain::{DeviceEvent, now_millis};
use crate::mqtt::topics::{self, Topics};
use crate::mqtt::{Backoff, BrokerHealth, BrokerState, BrokerUrls, MqttSettings};
use crate::store::StoreOutcome;
use json_uplink::{JsonAck, JsonUplink};

/// The running device connection, to await at shutdown.
pub struct Mqtt {
    tasks: Vec<JoinHandle<()>>,
}

impl Mqtt {
    /// Waits for the connection to finish (after `shutdown`), at most `within`.
    pub async fn join(self, within: Duration) {
        for task in self.tasks {
            if tokio::time::timeout(within, task).await.is_err() {
                tracing::warn!("MQTT task did not stop in time");
            }
        }
    }
}

/// Connects to the broker at `url` (one URL, or the nodes of a cluster: [`BrokerUrls`]) and starts
/// the device connection.
pub fn start(
    url: &str,
    prefix: &str,
    settings: &MqttSettings,
    share: bool,
    gateway: Arc<GatewayContext>,
    health: BrokerHealth,
    shutdown: CancellationToken,
) -> anyhow::Result<Mqtt> {
    let brokers = BrokerUrls::parse(url)?;
    let topics = Topics::new(prefix);
    let client_id = crate::mqtt::default_client_id(settings, &topics);
    let backoff = Backoff::new(
        Duration::from_millis(settings.backoff_min_ms),
        Duration::from_millis(settings.backoff_max_ms),
    );
    health.set(BrokerState::Down);

    let (client, mut eventloop) = AsyncClient::new(
        crate::mqtt::options(brokers.current(), &client_id, settings, false)?,
        settings.request_queue.max(16),
    );
    eventloop.set_network_options(crate::mqtt::network_options());
    let share_group =
        (share && !settings.share_group.is_empty()).then(|| settings.share_group.clone());
    let ingress = Ingress {
        ctx: Arc::new(Ctx {
            gateway,
            topics: topics.clone(),
            client,
            reachable: Default::default(),
        }),
        filters: topics.uplink_filters(share_group.as_deref()).to_vec(),
        brokers,
        client_id: client_id.clone(),
        settings: settings.clone(),
        health,
        backoff,
        limit: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        shutdown,
    };
    let span = tracing::info_span!("mqtt", client_id = %client_id);
    let ingress_task = tokio::spawn(ingress.run(eventloop).instrument(span));
    Ok(Mqtt {
        tasks: vec![ingress_task],
    })
}

struct Ctx {
    gateway: Arc<GatewayContext>,
    topics: Topics,
    client: AsyncClient,
    /// Devices registered in [`ConnectedDevices`](crate::notify::ConnectedDevices) for commands.
    reachable: std::sync::Mutex<std::collections::HashSet<i64>>,
}

struct Ingress {
    ctx: Arc<Ctx>,
    filters: Vec<String>,
    /// The broker's nodes; the next one is tried after every connection error.
    brokers: BrokerUrls,
    client_id: String,
    settings: MqttSettings,
    health: BrokerHealth,
    backoff: Backoff,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Ingress {
    async fn run(mut self, mut eventloop: rumqttc::EventLoop) {
        let uplinks = TaskTracker::new();
        // PUBACKs go out in the order the uplinks arrived (MQTT 3.1.1 §4.6; rumqttd disconnects a
        // client that acknowledges out of order), each once its uplink is handled.
        let (ack_tx, mut ack_rx) =
            tokio::sync::mpsc::unbounded_channel::<(Publish, tokio::sync::oneshot::Receiver<()>)>();
        let acker_client = self.ctx.client.clone();
        let acker = tokio::spawn(async move {
            while let Some((publish, handled)) = ack_rx.recv().await {
                let _ = handled.await;
                if let Err(e) = acker_client.ack(&publish).await {
                    tracing::debug!(error = %e, "PUBACK not queued");
                }
            }
        });
        loop {
            let event = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    self.backoff.reset();
                    tracing::info!(
                        session_present = ack.session_present,
                        broker = %self.brokers,
                        "MQTT connected; subscribing"
                    );
                    metrics::gauge!("onekey_mqtt_connected").set(1.0);
                    // Resubscribe after every connect: the broker may have lost our session. From a
                    // task, because the request queue may be full and `poll` must keep running.
                    let client = self.ctx.client.clone();
                    let filters: Vec<_> = self
                        .filters
                        .iter()
                        .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce))
                        .collect();
                    tokio::spawn(async move {
                        if let Err(e) = client.subscribe_many(filters).await {
                            tracing::warn!(error = %e, "MQTT subscribe request failed");
                        }
                    });
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        tracing::error!(filters = ?self.filters, "the broker refused our subscriptions");
                        self.health.set(BrokerState::Down);
                    } else {
                        tracing::info!(filters = ?self.filters, "MQTT subscribed");
                        self.health.set(BrokerState::Up);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let Ok(permit) = self.limit.clone().acquire_owned().await else {
                        break;
                    };
                    let ctx = self.ctx.clone();
                    let span = tracing::info_span!("mqtt_uplink", topic = %publish.topic, device = tracing::field::Empty);
                    let (handled, handled_rx) = tokio::sync::oneshot::channel();
                    let _ = ack_tx.send((publish.clone(), handled_rx));
                    uplinks.spawn(
                        async move {
                            ctx.handle(&publish).await;
                            // Our PUBACK to the broker comes after the uplink is handled.
                            let _ = handled.send(());
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    self.health.set(BrokerState::Down);
                    metrics::gauge!("onekey_mqtt_connected").set(0.0);
                    metrics::counter!("onekey_mqtt_connection_errors_total").increment(1);
                    let delay = self.backoff.next_delay();
                    tracing::warn!(error = %e, broker = %self.brokers, retry_in = ?delay, "MQTT connection error");
                    if self.brokers.len() > 1 {
                        // The next node of the cluster; the session (and what rumqttc has not had
                        // acknowledged) goes with the client id.
                        let next = self.brokers.advance().clone();
                        match crate::mqtt::options(&next, &self.client_id, &self.settings, false) {
                            Ok(o) => eventloop.mqtt_options = o,
                            Err(e) => {
                                tracing::error!(error = %e, "MQTT options for the next broker node")
                            }
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.shutdown.cancelled() => break,
                    }
                }
            }
        }
        // Shutdown: take no new uplinks (their PUBACK is not sent, so the broker redelivers them),
        // finish the ones being handled, send their ACKs, then disconnect.
        uplinks.close();
        drop(ack_tx);
        let finish = async {
            let drained = async {
                uplinks.wait().await;
                let _ = acker.await;
            };
            tokio::pin!(drained);
            loop {
                tokio::select! {
                    _ = &mut drained => break,
                    event = eventloop.poll() => if event.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    },
                }
            }
            let _ = self.ctx.client.try_disconnect();
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), finish)
            .await
            .is_err()
        {
            tracing::warn!("MQTT uplinks still in flight after 10 s");
        }
        metrics::gauge!("onekey_mqtt_connected").set(0.0);
        tracing::info!("MQTT ingress stopped");
    }
}

fn reject_metric(reason: Reason) {
    metrics::counter!("onekey_mqtt_rejected_total", "reason" => reason.as_str()).increment(1);
}

impl Ctx {
    async fn handle(self: &Arc<Self>, publish: &Publish) {
        let received = Instant::now();
        let result = match self.ctx_topics().parse_uplink(&publish.topic) {
            None => Err(Reject::new(
                Reason::BadTopic,
                "not an uplink topic of this deployment",
            )),
            Some((device, topics::Uplink::Binary)) => {
                metrics::counter!("onekey_mqtt_messages_total", "uplink" => "binary").increment(1);
                self.binary(device, publish.payload.clone(), received).await
            }
            Some((device, topics::Uplink::Json)) => {
                metrics::counter!("onekey_mqtt_messages_total", "uplink" => "json").increment(1);
                self.json(device, &publish.payload, received).await
            }
        };
        if let Err(reject) = result {
            let reason = reject.reason.as_str();
            if reject.reason.is_server_side() {
                tracing::error!(reason, detail = %reject.detail, "MQTT uplink not handled");
            } else {
                tracing::warn!(reason, detail = %reject.detail, "MQTT uplink rejected");
            }
            reject_metric(reject.reason);
        }
    }

    fn ctx_topics(&self) -> &Topics {
        &self.topics
    }

    async fn device(&self, protocol: &'static str, ident: &str) -> Result<Arc<DeviceAuth>, Reject> {
        let device = self.gateway.registry.authorize(protocol, ident).await?;
        tracing::Span::current().record("device", device.device_id);
        Ok(device)
    }

    /// Makes an authenticated device reachable for API commands through its downlink topic. A TCP
    /// connection of the same device takes over (and cancels this route) when it identifies.
    fn make_reachable(self: &Arc<Self>, device: &Arc<DeviceAuth>) {
        {
            let mut reachable = self.reachable.lock().unwrap_or_else(|e| e.into_inner());
            if !reachable.insert(device.device_id) {
                return;
            }
        }
        let (tx, mut rx) = crate::notify::mailbox::mailbox();
        let cancel = self.gateway.shutdown.child_token();
        let route = MQTT_ROUTE | u64::try_from(device.device_id).unwrap_or(0);
        self.gateway
            .devices
            .register(device.device_id, route, tx, cancel.clone());
        let ctx = self.clone();
        let mut device = device.clone();
        tokio::spawn(async move {
            loop {
                let out = tokio::select! {
                    _ = cancel.cancelled() => break,
                    // The directory changed the device: go on with its new entry, or stop routing
                    // commands to a device that was disabled, re-keyed or removed.
                    _ = device.changed.clone().cancelled_owned() => {
                        match ctx.gateway.registry.revalidate(&device).await {
                            Ok(newer) => { device = newer; continue; }
                            Err(reject) => {
                                tracing::info!(device = device.device_id, detail = %reject.detail, "MQTT route closed");
                                break;
                            }
                        }
                    }
                    out = rx.recv() => match out { Some(out) => out, None => break },
                };
                let result = encode_command(&device, &out.command, out.id).and_then(|bytes| {
                    if send_down(&ctx.client, &ctx.topics, &device.ident, bytes) {
                        Ok(())
                    } else {
                        Err(crate::notify::CommandError::Closed)
                    }
                });
                tracing::info!(device = device.device_id, command = ?out.command, id = out.id, ok = result.is_ok(), "command to MQTT device");
                let _ = out.done.send(result);
            }
            ctx.reachable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&device.device_id);
            ctx.gateway.devices.unregister(device.device_id, route);
        });
    }

    /// Publishes to a device's downlink without ever waiting.
    fn send_down(&self, device: &str, payload: Bytes, received: Option<Instant>) {
        send_down(&self.client, &self.topics, device, payload);
        if let Some(received) = received {
            metrics::histogram!("onekey_device_ack_seconds", "protocol" => "mqtt")
                .record(received.elapsed().as_secs_f64());
        }
    }

    async fn binary(
        self: &Arc<Self>,
        topic_device: &str,
        frame: Bytes,
        received: Instant,
    ) -> Result<(), Reject> {
        let claimed = Native.identity(&frame, &mut ())?.unwrap_or_default();
        if claimed != topic_device {
            return Err(Reject::new(
                Reason::TopicMismatch,
                format!("frame of device {claimed} on the topic of {topic_device}"),
            ));
        }
        let device = self.device(Native::PROTOCOL, topic_device).await?;
        let answered = commit::answer_frame(
            &Native,
            "mqtt",
            &self.gateway,
            frame,
            &device,
            &mut (),
            now_millis(),
        )
        .await;
        match answered {
            Ok(Some(reply)) => self.send_down(topic_device, reply, Some(received)),
            Ok(None) => return Ok(()),
            Err(reject) => {
                if let Some(reply) = &reject.reply {
                    self.send_down(topic_device, reply.clone(), None);
                }
                return Err(reject);
            }
        }
        // Authenticated and answered: commands may now take this route.
        self.make_reachable(&device);
        Ok(())
    }

    async fn json(
        self: &Arc<Self>,
        topic_device: &str,
        payload: &[u8],
        received: Instant,
    ) -> Result<(), Reject> {
        let up = JsonUplink::parse(payload)?;
        if up.device_id != topic_device {
            return Err(Reject::new(
                Reason::TopicMismatch,
                format!("uplink of {} on the topic of {topic_device}", up.device_id),
            ));
        }
        let device = self.device("mqtt", topic_device).await?;
        up.verify(&device.secret)?;
        self.gateway.traffic.frame("mqtt", device.grid_id);
        let ack = |status: &str, reason: &str| {
            Bytes::from(
                serde_json::to_vec(&JsonAck::new(
                    topic_device,
                    &device.secret,
                    up.seq,
                    status,
                    reason,
                ))
                .unwrap_or_default(),
            )
        };
        let replayed = || {
            self.send_down(topic_device, ack("rejected", "replay"), None);
            Reject::new(
                Reason::Replay,
                format!("sequence {} is older than the replay window", up.seq),
            )
        };
        let now = now_millis();
        let events: Vec<DeviceEvent> = up
            .event(&device, now)
            .map(|mut e| {
                e.raw = Some(Bytes::copy_from_slice(payload));
                e
            })
            .into_iter()
            .collect();
        // A heartbeat claims its number here; an event claims it in its own transaction.
        let class = if events.is_empty() {
            let class = self.gateway.registry.claim(&device, up.seq).await?;
            if class == SeqClass::TooOld {
                return Err(replayed());
            }
            Some(class)
        } else {
            None
        };
        if class != Some(SeqClass::Repeat) {
            self.gateway.intake.report_status(
                device.device_id,
                device.elder_id,
                false,
                up.status(),
                now,
                Some(i64::from(up.seq)),
            );
        }
        let Some(stored) = commit::commit_events(&self.gateway, "mqtt", events).await else {
            return Ok(());
        };
        if commit::replayed(&stored) {
            return Err(replayed());
        }
        let duplicate = match class {
            Some(class) => class == SeqClass::Repeat,
            None => stored.iter().all(|s| s.outcome == StoreOutcome::Duplicate),
        };
        let status = if duplicate { "duplicate" } else { "stored" };
        self.send_down(topic_device, ack(status, ""), Some(received));
        self.make_reachable(&device);
        Ok(())
    }
}

/// Route ids of MQTT devices in `ConnectedDevices` (TCP connections count up from 1).
const MQTT_ROUTE: u64 = 1 << 62;

/// A command as the device's downlink payload: a native frame for binary devices, signed JSON
/// (`schemas/command.json`) for JSON devices.
fn encode_command(
    device: &DeviceAuth,
    command: &crate::notify::DeviceCommand,
    id: u32,
) -> Result<Bytes, crate::notify::CommandError> {
    use crate::notify::{CommandError, DeviceCommand};
    if device.protocol == Native::PROTOCOL {
        return Native.command(command, id, device, &mut ());
    }
    let (name, arg) = match command {
        DeviceCommand::Locate => ("locate", 0),
        DeviceCommand::Reset => ("reset", 0),
        DeviceCommand::Native { kind, arg } => (kind.as_str(), *arg),
        _ => return Err(CommandError::Unsupported),
    };
    let canonical = format!("v1|cmd|{}|{id}|{name}|{arg}", device.ident);
    let json = serde_json::json!({
        "type": "command", "id": id, "command": name, "arg": arg,
        "mac": json_uplink::mac_hex(&device.secret, &canonical),
    });
    Ok(Bytes::from(json.to_string()))
}

/// The ACK policy: `try_publish`, and when rumqttc's request queue is full, drop and count.
/// Returns whether the message was queued.
pub fn send_down(client: &AsyncClient, topics: &Topics, device: &str, payload: Bytes) -> bool {
    match client.try_publish(topics.downlink(device), QoS::AtLeastOnce, false, payload) {
        Ok(()) => true,
        Err(e) => {
            metrics::counter!("onekey_mqtt_outbox_dropped_total", "kind" => "ack").increment(1);
            tracing::warn!(device, error = %e, "MQTT request queue full; ACK dropped (the device will retry)");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::MqttOptions;

    /// rumqttc's `publish` waits when its request channel is full (nobody polls the event loop while
    /// the broker is down); ACKs must not.
    #[tokio::test]
    async fn a_full_request_queue_drops_acks_without_waiting() {
        let (client, _eventloop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 4);
        let topics = Topics::new("t");
        let started = Instant::now();
        let sent = (0..100)
            .filter(|_| send_down(&client, &topics, "d", Bytes::from_static(b"ack")))
            .count();
        assert_eq!(sent, 4);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
