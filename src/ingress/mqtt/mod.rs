//! MQTT ingress: devices and the volunteers' app through a broker (`firmware-protocol/MQTT.md`).
//!
//! OneKey is a broker *client* (rumqttc, MQTT 3.1.1). MQTT is not a TCP listener, so it does not go
//! through [`Adapter`](super::Adapter)'s connection loop, but an uplink walks the same path as a
//! native frame: topic → [`DeviceRegistry`](super::DeviceRegistry) lookup → MAC → replay window →
//! [`DeviceEvent`](crate::domain::DeviceEvent) → [`Intake::submit`](crate::intake::Intake::submit)
//! → ACK on the device's downlink topic only after the commit. Binary uplinks are handled by the
//! [`Native`] adapter itself; JSON uplinks by [`json_uplink`].
//!
//! Two connections:
//! - *ingress* (client id `<id>`): persistent session (clean_session = false), subscribes with QoS 1
//!   to the uplink topics, optionally as an MQTT shared subscription (`$share/<group>/…`: Mosquitto
//!   and EMQX support them for 3.1.1 clients too) so several instances split the devices. PUBACKs to
//!   the broker are manual and sent after the uplink is handled, so an uplink that was received but
//!   not committed when the process died is redelivered. Device ACKs go out with `try_publish`:
//!   never blocking the alarm path; when rumqttc's request queue is full the ACK is dropped and
//!   counted (`onekey_mqtt_outbox_dropped_total{kind="ack"}`): the alarm is committed and the device's
//!   retry gets a `duplicate` ACK.
//! - *push* (client id `<id>-push`): responder pushes from the [`Outbox`], see [`outbox`].
//!
//! rumqttc's sharp edges and what we do: it reconnects at once in a tight loop (we sleep a capped
//! exponential backoff with jitter after every error); it does not resubscribe (we subscribe after
//! every CONNACK); `publish` waits when its request channel is full (we use `try_publish` and our own
//! bounded outbox); it drops unacknowledged publishes when the broker starts a new session (pushes
//! are delivered stop-and-wait by us, ACKs are covered by the device's retry).

pub mod json_uplink;
pub mod outbox;
pub mod topics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use onekey_protocol::SeqClass;

pub use outbox::{Backoff, Outbox, PushError};
pub use topics::Topics;

use super::broker::BrokerSettings;
use super::native::Native;
use super::{Adapter, DeviceAuth, GatewayContext, Reject};
use crate::domain::{DeviceEvent, now_millis};
use crate::store::{StoreOutcome, Stored};
use crate::web::{BrokerHealth, BrokerState};
use json_uplink::{JsonAck, JsonUplink};

/// `[mqtt]` settings (the broker URL and topic prefix are the top-level `mqtt_url`, `mqtt_prefix`;
/// the embedded broker's address is `mqtt_listen`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttSettings {
    /// Client id of this instance; default `onekey-<hostname>-<prefix>`. Keep it stable: the broker
    /// keeps the persistent session under it.
    pub client_id: Option<String>,
    /// Shared-subscription group for uplinks on an external broker (empty = plain subscriptions).
    pub share_group: String,
    /// Keep-alive in seconds.
    pub keep_alive_secs: u64,
    /// First reconnect delay, milliseconds.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, milliseconds.
    pub backoff_max_ms: u64,
    /// rumqttc's request queue (ACKs beyond it are dropped, never waited for).
    pub request_queue: usize,
    /// Responder pushes queued while the broker is unreachable.
    pub outbox: usize,
    /// Uplinks handled at once.
    pub max_in_flight: usize,
    /// Largest packet the client accepts, bytes. A bigger one makes rumqttc drop the connection,
    /// and a persistent session would redeliver it after every reconnect, so keep this at or above
    /// the broker's own limit (Mosquitto `message_size_limit`, 16 KiB on the embedded broker).
    /// Uplinks are refused far below it (JSON over 1 KiB, frames over 128 bytes).
    pub max_packet_bytes: usize,
    /// The embedded broker.
    pub broker: BrokerSettings,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            client_id: None,
            share_group: "onekey".into(),
            keep_alive_secs: 30,
            backoff_min_ms: 200,
            backoff_max_ms: 30_000,
            request_queue: 1024,
            outbox: 10_000,
            max_in_flight: 1024,
            max_packet_bytes: 1024 * 1024,
            broker: BrokerSettings::default(),
        }
    }
}

/// A broker URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// mqtts / ssl.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (1883, 8883 for TLS, when absent).
    pub port: u16,
    /// Username and password from the URL's user info.
    pub credentials: Option<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl BrokerUrl {
    /// Parses `mqtt://[user[:password]@]host[:port]` (`mqtts://` for TLS; `tcp://`, `ssl://` too).
    pub fn parse(url: &str) -> anyhow::Result<BrokerUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow::anyhow!("MQTT URL needs a scheme (mqtt:// or mqtts://)"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => anyhow::bail!("unsupported MQTT URL scheme {other}"),
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (percent_decode(user), percent_decode(pass)),
            None => (percent_decode(u), String::new()),
        });
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| anyhow::anyhow!("bad IPv6 host in MQTT URL"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        anyhow::ensure!(!host.is_empty(), "MQTT URL has no host");
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| anyhow::anyhow!("bad port {p:?} in MQTT URL"))?,
            None => default_port,
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
            credentials,
        })
    }
}

fn tls_config() -> anyhow::Result<rumqttc::TlsConfiguration> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "loading a system CA certificate failed");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system CA certificates for MQTT TLS");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::from(config))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
}

/// Client options for one connection.
fn options(
    url: &BrokerUrl,
    client_id: &str,
    settings: &MqttSettings,
    clean: bool,
) -> anyhow::Result<MqttOptions> {
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(settings.keep_alive_secs.max(5)))
        .set_clean_session(clean)
        .set_manual_acks(!clean)
        .set_request_channel_capacity(settings.request_queue.max(16))
        .set_max_packet_size(settings.max_packet_bytes.max(1024), 64 * 1024)
        .set_inflight(100);
    if let Some((user, pass)) = &url.credentials {
        o.set_credentials(user.clone(), pass.clone());
    }
    if url.tls {
        o.set_transport(rumqttc::Transport::Tls(tls_config()?));
    }
    Ok(o)
}

/// rumqttc leaves Nagle's algorithm on: a small ACK written while an earlier one is unacknowledged
/// then waits for the peer's delayed ACK (~40 ms on Linux). Off, like on the device sockets.
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n.set_connection_timeout(10);
    n
}

/// The running MQTT client: the push outbox for the rest of the server, and the tasks to await at
/// shutdown.
pub struct Mqtt {
    /// Responder pushes.
    pub outbox: Outbox,
    tasks: Vec<JoinHandle<()>>,
}

impl Mqtt {
    /// Waits for both connections to finish (after `shutdown`), at most `within`.
    pub async fn join(self, within: Duration) {
        for task in self.tasks {
            if tokio::time::timeout(within, task).await.is_err() {
                tracing::warn!("MQTT task did not stop in time");
            }
        }
    }
}

/// Connects to the broker at `url` and starts the ingress and push connections.
pub fn start(
    url: &str,
    prefix: &str,
    settings: &MqttSettings,
    share: bool,
    gateway: Arc<GatewayContext>,
    health: BrokerHealth,
    shutdown: CancellationToken,
) -> anyhow::Result<Mqtt> {
    let url = BrokerUrl::parse(url)?;
    let topics = Topics::new(prefix);
    let client_id = settings.client_id.clone().unwrap_or_else(|| {
        let p: String = topics
            .prefix()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("onekey-{}-{p}", hostname())
    });
    let backoff = Backoff::new(
        Duration::from_millis(settings.backoff_min_ms),
        Duration::from_millis(settings.backoff_max_ms),
    );
    health.set(BrokerState::Down);

    let (client, mut eventloop) = AsyncClient::new(
        options(&url, &client_id, settings, false)?,
        settings.request_queue.max(16),
    );
    eventloop.set_network_options(network_options());
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
        health,
        backoff: backoff.clone(),
        limit: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        shutdown: shutdown.clone(),
    };
    let span = tracing::info_span!("mqtt", client_id = %client_id, broker = %format!("{}:{}", url.host, url.port));
    let ingress_task = tokio::spawn(ingress.run(eventloop).instrument(span.clone()));

    let (push_client, mut push_loop) = AsyncClient::new(
        options(&url, &format!("{client_id}-push"), settings, true)?,
        16,
    );
    push_loop.set_network_options(network_options());
    let (outbox, rx) = Outbox::new(topics, settings.outbox);
    let push_task = tokio::spawn(
        outbox::run_pusher(
            push_client,
            push_loop,
            rx,
            backoff,
            shutdown,
            Duration::from_secs(5),
        )
        .instrument(span),
    );
    Ok(Mqtt {
        outbox,
        tasks: vec![ingress_task, push_task],
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
                    tracing::warn!(error = %e, retry_in = ?delay, "MQTT connection error");
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

fn reject_metric(reason: &'static str) {
    metrics::counter!("onekey_mqtt_rejected_total", "reason" => reason).increment(1);
}

impl Ctx {
    async fn handle(self: &Arc<Self>, publish: &Publish) {
        let received = Instant::now();
        let result = match self.ctx_topics().parse_uplink(&publish.topic) {
            None => Err(Reject::new(
                "bad_topic",
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
            match reject.reason {
                "store_unavailable" => {
                    tracing::error!(reason = reject.reason, detail = %reject.detail, "MQTT uplink not handled")
                }
                _ => {
                    tracing::warn!(reason = reject.reason, detail = %reject.detail, "MQTT uplink rejected")
                }
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
        let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::notify::devices::Outgoing>(8);
        let cancel = self.gateway.shutdown.child_token();
        let route = MQTT_ROUTE | u64::try_from(device.device_id).unwrap_or(0);
        self.gateway
            .devices
            .register(device.device_id, route, tx, cancel.clone());
        let ctx = self.clone();
        let device = device.clone();
        tokio::spawn(async move {
            loop {
                let out = tokio::select! {
                    _ = cancel.cancelled() => break,
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

    /// Commits the events; `None` when they were not committed (no ACK then).
    async fn commit(&self, events: Vec<DeviceEvent>) -> Option<Vec<Stored>> {
        if events.is_empty() {
            return Some(Vec::new());
        }
        let submits = events
            .into_iter()
            .map(|event| self.gateway.intake.submit(event));
        match futures_util::future::join_all(submits)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::error!(error = %e, "events not committed; withholding the ACK");
                metrics::counter!("onekey_acks_withheld_total", "protocol" => "mqtt").increment(1);
                None
            }
        }
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
                "topic_mismatch",
                format!("frame of device {claimed} on the topic of {topic_device}"),
            ));
        }
        let device = self.device(Native::PROTOCOL, topic_device).await?;
        let now = now_millis();
        let handled = match Native.handle(frame, &device, &mut (), now) {
            Ok(h) => {
                self.make_reachable(&device);
                h
            }
            Err(mut reject) => {
                if let Some(reply) = reject.reply.take() {
                    self.send_down(topic_device, reply, None);
                }
                return Err(reject);
            }
        };
        self.gateway.intake.report_status(
            device.device_id,
            handled.status.unwrap_or_default(),
            now,
            handled.seq,
        );
        let Some(stored) = self.commit(handled.events).await else {
            return Ok(());
        };
        if let Some(reply) = Native.reply(handled.pending, &stored, &device, &mut ()) {
            self.send_down(topic_device, reply, Some(received));
        }
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
                "topic_mismatch",
                format!("uplink of {} on the topic of {topic_device}", up.device_id),
            ));
        }
        let device = self.device("mqtt", topic_device).await?;
        up.verify(&device.secret)?;
        self.make_reachable(&device);
        let class = device
            .replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_and_mark(up.seq);
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
        if class == SeqClass::TooOld {
            self.send_down(topic_device, ack("rejected", "replay"), None);
            return Err(Reject::new(
                "replay",
                format!("sequence {} is older than the replay window", up.seq),
            ));
        }
        let now = now_millis();
        self.gateway.intake.report_status(
            device.device_id,
            up.status(),
            now,
            Some(i64::from(up.seq)),
        );
        let events: Vec<DeviceEvent> = up.event(&device, now).into_iter().collect();
        let Some(stored) = self.commit(events).await else {
            return Ok(());
        };
        let duplicate = if stored.is_empty() {
            class == SeqClass::Repeat
        } else {
            stored.iter().all(|s| s.outcome == StoreOutcome::Duplicate)
        };
        let status = if duplicate { "duplicate" } else { "stored" };
        self.send_down(topic_device, ack(status, ""), Some(received));
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

    #[test]
    fn broker_urls() {
        assert_eq!(
            BrokerUrl::parse("mqtt://127.0.0.1:1884").expect("url"),
            BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1884,
                credentials: None
            }
        );
        let u = BrokerUrl::parse("mqtts://onekey:p%40ss:w@broker.example.org/").expect("url");
        assert!(u.tls);
        assert_eq!(u.port, 8883);
        assert_eq!(u.host, "broker.example.org");
        assert_eq!(u.credentials, Some(("onekey".into(), "p@ss:w".into())));
        assert_eq!(BrokerUrl::parse("mqtt://[::1]:1").expect("v6").host, "::1");
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://:1883").is_err());
        assert!(BrokerUrl::parse("mqtt://h:99999").is_err());
    }

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
