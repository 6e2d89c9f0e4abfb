//! Responder pushes: a bounded outbox and the task that delivers it, one message at a time, until the
//! broker has it.
//!
//! Policy: [`Outbox::publish_to_responder`] never waits. When the outbox is full (the broker has been
//! unreachable for a while) the push is refused with [`PushError::Full`] and counted in
//! `onekey_mqtt_outbox_dropped_total{kind="push"}`, so the caller (the dispatch engine, the API) knows
//! and can retry or escalate; a queued push is never dropped silently. The pusher publishes the next
//! message with QoS 1 and waits for the broker's PUBACK; after a reconnect it publishes the same
//! message again. rumqttc forgets unacknowledged messages when the broker answers with a new session,
//! so this stop-and-wait delivery is ours, not rumqttc's: a push is delivered at least once (the
//! payload's own ids let the app drop a repeat).

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::topics::{Topics, valid_id};

/// Capped exponential backoff with jitter: each delay is drawn from `[d/2, d]` where `d` doubles
/// from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Back to `min` (after a successful connection).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Why a push was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The responder id cannot be a topic level.
    #[error("invalid responder id")]
    InvalidId,
    /// The outbox is full: the broker has been unreachable for a while.
    #[error("push outbox full")]
    Full,
    /// MQTT is shutting down.
    #[error("MQTT is shutting down")]
    Closed,
}

/// One queued push.
#[derive(Debug, Clone)]
pub struct Push {
    /// Topic.
    pub topic: String,
    /// JSON bytes.
    pub payload: Bytes,
}

/// A cheap-to-clone handle for queueing responder pushes.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Push>,
    topics: Topics,
}

impl Outbox {
    /// A bounded outbox of `capacity` messages and its receiving end.
    pub fn new(topics: Topics, capacity: usize) -> (Outbox, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Outbox { tx, topics }, rx)
    }

    /// The topic a responder's app subscribes to.
    pub fn responder_topic(&self, responder_id: &str) -> String {
        self.topics.responder(responder_id)
    }

    /// Queues `message` for `<prefix>/responder/<responder_id>/tasks` (QoS 1, not retained).
    /// Never waits; see the module docs for the policy when the outbox is full.
    pub fn publish_to_responder(
        &self,
        responder_id: &str,
        message: &serde_json::Value,
    ) -> Result<(), PushError> {
        if !valid_id(responder_id) {
            return Err(PushError::InvalidId);
        }
        let push = Push {
            topic: self.topics.responder(responder_id),
            payload: Bytes::from(message.to_string()),
        };
        let result = self.tx.try_send(push).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        });
        let outcome = match result {
            Ok(()) => "queued",
            Err(PushError::Full) => {
                metrics::counter!("onekey_mqtt_outbox_dropped_total", "kind" => "push")
                    .increment(1);
                tracing::warn!(responder_id, "push outbox full; push refused");
                "full"
            }
            Err(_) => "closed",
        };
        metrics::counter!("onekey_mqtt_pushes_total", "outcome" => outcome).increment(1);
        metrics::gauge!("onekey_mqtt_outbox_depth")
            .set((self.tx.max_capacity() - self.tx.capacity()) as f64);
        result
    }
}

/// Delivers the outbox over its own connection (clean session; it subscribes to nothing) until
/// `shutdown`, then until the outbox is empty or `drain` has passed.
pub async fn run_pusher(
    client: AsyncClient,
    mut eventloop: EventLoop,
    mut rx: mpsc::Receiver<Push>,
    mut backoff: Backoff,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let mut current: Option<Push> = None;
    let mut connected = false;
    let mut in_flight = false;
    let mut closing = false;
    let mut drain_deadline = None;
    loop {
        if !closing && shutdown.is_cancelled() {
            closing = true;
            rx.close();
            drain_deadline = Some(tokio::time::Instant::now() + drain);
        }
        if closing && current.is_none() && rx.is_empty() {
            break;
        }
        if connected && !in_flight {
            if current.is_none() {
                current = rx.try_recv().ok();
            }
            if let Some(push) = &current {
                match client.try_publish(
                    push.topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    push.payload.clone(),
                ) {
                    Ok(()) => in_flight = true,
                    Err(e) => tracing::debug!(error = %e, "push not handed to the client yet"),
                }
            }
        }
        let deadline = async {
            match drain_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            push = rx.recv(), if current.is_none() && connected && !closing => {
                current = push;
            }
            _ = shutdown.cancelled(), if !closing => {}
            _ = deadline => {
                tracing::warn!(left = rx.len() + usize::from(current.is_some()), "pushes not delivered before shutdown");
                break;
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    in_flight = false;
                    backoff.reset();
                    tracing::info!("MQTT push connection up");
                }
                Ok(Event::Incoming(Packet::PubAck(_))) if in_flight => {
                    in_flight = false;
                    current = None;
                    metrics::counter!("onekey_mqtt_pushes_total", "outcome" => "delivered").increment(1);
                }
                Ok(Event::Outgoing(Outgoing::Publish(_))) | Ok(_) => {}
                Err(e) => {
                    connected = false;
                    in_flight = false;
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "MQTT push connection lost");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled(), if !closing => {}
                    }
                    if closing {
                        break;
                    }
                }
            },
        }
    }
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceiling = Duration::from_millis(100);
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(2));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_full_outbox_refuses_at_once() {
        let (outbox, _rx) = Outbox::new(Topics::new("t"), 2);
        let msg = serde_json::json!({"type": "offer"});
        assert_eq!(outbox.publish_to_responder("r1", &msg), Ok(()));
        assert_eq!(outbox.publish_to_responder("r1", &msg), Ok(()));
        assert_eq!(
            outbox.publish_to_responder("r1", &msg),
            Err(PushError::Full)
        );
        assert_eq!(
            outbox.publish_to_responder("r/1", &msg),
            Err(PushError::InvalidId)
        );
    }
}
