//! Responder push over MQTT: each claimed push notification is published to the responder's task
//! topic `<prefix>/responder/<id>/tasks` (QoS 1, not retained; the app's persistent session keeps
//! it while the phone is offline) and counts as sent when the broker's PUBACK arrives. Apps
//! confirm what they received on `<prefix>/responder/<id>/receipt` (`{"ids": [91, 92]}`), which
//! marks those notifications delivered.
//!
//! One connection (client id `<id>-push`, persistent session so receipts published while OneKey is
//! down are kept for it; a shared subscription on an external broker so instances split them). A
//! fresh rumqttc event loop is made for every connection: rumqttc would otherwise resend its own
//! unacknowledged publishes after a reconnect, and the outbox already does that, from the store.
//! Publishes are matched to PUBACKs by packet id: rumqttc reports each publish's packet id
//! (`Outgoing::Publish`) in the order the requests were handed to it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, Publish, QoS};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::mqtt::{Backoff, BrokerUrls, MqttSettings, Topics, valid_id};
use crate::notify::{Attempt, ConsoleHub, Transport, app_message};
use crate::store::{Channel, Notification, Store};

/// How long one publish may wait for the broker before the row is tried again later.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Publishes awaiting their PUBACK at once.
const WINDOW: usize = 64;

struct Request {
    topic: String,
    payload: Bytes,
    done: oneshot::Sender<Result<(), String>>,
}

/// The push transport.
pub struct MqttPush {
    requests: mpsc::Sender<Request>,
    topics: Topics,
}

impl Transport for MqttPush {
    fn channel(&self) -> Channel {
        Channel::Push
    }

    fn window(&self) -> usize {
        WINDOW
    }

    async fn deliver(&self, n: &Notification) -> Attempt {
        if !valid_id(&n.recipient) {
            return Attempt::Failed(format!(
                "responder id {:?} is not a topic level",
                n.recipient
            ));
        }
        let (done, result) = oneshot::channel();
        let request = Request {
            topic: self.topics.responder(&n.recipient),
            payload: Bytes::from(app_message(n).to_string()),
            done,
        };
        if self.requests.send(request).await.is_err() {
            return Attempt::Retry("MQTT push is shutting down".into());
        }
        match tokio::time::timeout(PUBLISH_TIMEOUT, result).await {
            Ok(Ok(Ok(()))) => Attempt::Sent(None),
            Ok(Ok(Err(e))) => Attempt::Retry(e),
            Ok(Err(_)) => Attempt::Retry("MQTT connection lost before the PUBACK".into()),
            Err(_) => Attempt::Retry("no PUBACK from the broker in time".into()),
        }
    }
}

/// A receipt: which pushed messages the app has.
#[derive(Debug, Deserialize)]
struct Receipt {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    ids: Vec<i64>,
}

/// Starts the push connection; returns the transport for the relay and the connection's task.
pub fn start(
    url: &str,
    prefix: &str,
    settings: &MqttSettings,
    share: bool,
    store: Store,
    console: ConsoleHub,
    shutdown: CancellationToken,
) -> anyhow::Result<(Arc<MqttPush>, JoinHandle<()>)> {
    let url = BrokerUrls::parse(url)?;
    let topics = Topics::new(prefix);
    let client_id = format!("{}-push", crate::mqtt::default_client_id(settings, &topics));
    let share_group =
        (share && !settings.share_group.is_empty()).then(|| settings.share_group.clone());
    let filter = topics.receipt_filter(share_group.as_deref());
    let (requests, rx) = mpsc::channel(WINDOW * 4);
    let (receipts, receipts_rx) = mpsc::channel::<(AsyncClient, Publish)>(1024);
    tokio::spawn(confirm_receipts(
        receipts_rx,
        topics.clone(),
        store,
        console,
    ));
    let driver = Driver {
        url,
        client_id,
        settings: settings.clone(),
        filter,
        receipts,
        shutdown,
    };
    let task = tokio::spawn(driver.run(rx));
    Ok((Arc::new(MqttPush { requests, topics }), task))
}

struct Driver {
    /// The broker's nodes; the next one is tried after every lost connection.
    url: BrokerUrls,
    client_id: String,
    settings: MqttSettings,
    filter: String,
    receipts: mpsc::Sender<(AsyncClient, Publish)>,
    shutdown: CancellationToken,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.settings.backoff_min_ms),
            Duration::from_millis(self.settings.backoff_max_ms),
        );
        loop {
            let options = match crate::mqtt::options(
                self.url.current(),
                &self.client_id,
                &self.settings,
                false,
            ) {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "MQTT push options invalid; push disabled");
                    return;
                }
            };
            let (client, mut eventloop) = AsyncClient::new(options, WINDOW * 2);
            eventloop.set_network_options(crate::mqtt::network_options());
            let error = self
                .connection(&client, &mut eventloop, &mut rx, &mut backoff)
                .await;
            let Some(error) = error else {
                return; // shut down
            };
            metrics::gauge!("onekey_mqtt_push_connected").set(0.0);
            let delay = backoff.next_delay();
            tracing::warn!(error = %error, broker = %self.url, retry_in = ?delay, "MQTT push connection lost");
            self.url.advance();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Drives one connection until it fails (`Some(error)`) or the server shuts down (`None`).
    async fn connection(
        &self,
        client: &AsyncClient,
        eventloop: &mut rumqttc::EventLoop,
        rx: &mut mpsc::Receiver<Request>,
        backoff: &mut Backoff,
    ) -> Option<String> {
        let mut connected = false;
        let mut awaiting_pkid: VecDeque<oneshot::Sender<Result<(), String>>> = VecDeque::new();
        let mut in_flight: HashMap<u16, oneshot::Sender<Result<(), String>>> = HashMap::new();
        let fail_all = |awaiting: &mut VecDeque<_>, flying: &mut HashMap<u16, _>, why: &str| {
            for done in awaiting.drain(..).chain(flying.drain().map(|(_, d)| d)) {
                let done: oneshot::Sender<Result<(), String>> = done;
                let _ = done.send(Err(why.to_string()));
            }
        };
        loop {
            let room = awaiting_pkid.len() + in_flight.len() < WINDOW;
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
                    fail_all(&mut awaiting_pkid, &mut in_flight, "shutting down");
                    return None;
                }
                request = rx.recv(), if connected && room => {
                    let r = request?;
                    match client.try_publish(r.topic, QoS::AtLeastOnce, false, r.payload) {
                        Ok(()) => awaiting_pkid.push_back(r.done),
                        Err(e) => { let _ = r.done.send(Err(e.to_string())); }
                    }
                }
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        backoff.reset();
                        metrics::gauge!("onekey_mqtt_push_connected").set(1.0);
                        tracing::info!(client_id = %self.client_id, "MQTT push connection up; subscribing to receipts");
                        if let Err(e) = client.try_subscribe(self.filter.clone(), QoS::AtLeastOnce) {
                            tracing::warn!(error = %e, "receipt subscription not queued");
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(done) = awaiting_pkid.pop_front() {
                            in_flight.insert(pkid, done);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(done) = in_flight.remove(&ack.pkid) {
                            let _ = done.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if self.receipts.try_send((client.clone(), p)).is_err() {
                            metrics::counter!("onekey_push_receipts_dropped_total").increment(1);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        fail_all(&mut awaiting_pkid, &mut in_flight, "MQTT connection lost");
                        metrics::counter!("onekey_mqtt_connection_errors_total").increment(1);
                        return Some(e.to_string());
                    }
                },
            }
        }
    }
}

/// Records receipts one at a time, then acknowledges each to the broker in arrival order (a
/// receipt not recorded is redelivered by the broker).
async fn confirm_receipts(
    mut rx: mpsc::Receiver<(AsyncClient, Publish)>,
    topics: Topics,
    store: Store,
    console: ConsoleHub,
) {
    while let Some((client, publish)) = rx.recv().await {
        let recorded = match topics.parse_receipt(&publish.topic) {
            None => {
                metrics::counter!("onekey_mqtt_rejected_total", "reason" => "bad_topic")
                    .increment(1);
                true
            }
            Some(responder) => record_receipt(&store, &console, responder, &publish.payload).await,
        };
        if recorded && let Err(e) = client.ack(&publish).await {
            tracing::debug!(error = %e, "receipt PUBACK not queued");
        }
    }
}

/// True when the receipt is handled for good (recorded, or malformed and dropped).
async fn record_receipt(
    store: &Store,
    console: &ConsoleHub,
    responder: &str,
    payload: &[u8],
) -> bool {
    let Ok(responder_id) = responder.parse::<i64>() else {
        metrics::counter!("onekey_mqtt_rejected_total", "reason" => "bad_topic").increment(1);
        return true;
    };
    let receipt: Receipt = match serde_json::from_slice(payload) {
        Ok(r) if payload.len() <= 4096 => r,
        _ => {
            tracing::warn!(responder_id, "malformed push receipt dropped");
            metrics::counter!("onekey_mqtt_rejected_total", "reason" => "malformed").increment(1);
            return true;
        }
    };
    let ids: Vec<i64> = receipt
        .id
        .into_iter()
        .chain(receipt.ids)
        .take(256)
        .collect();
    match crate::notify::receipts::confirm(
        store,
        console,
        responder_id,
        &ids,
        crate::domain::now_millis(),
    )
    .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(responder_id, error = %e, "push receipt not recorded; the broker redelivers it");
            false
        }
    }
}
