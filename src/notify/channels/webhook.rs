//! Webhooks to other systems of the district (a 智慧养老 platform, a 120 dispatch bridge): each
//! queued event is POSTed as JSON to the subscription's URL, signed so the receiver can tell it
//! came from OneKey and was not replayed:
//!
//! - `X-OneKey-Event`: the incident event kind; `X-OneKey-Delivery`: the notification id (the same
//!   on every retry: the receiver drops repeats by it);
//! - `X-OneKey-Timestamp`: Unix seconds of this attempt;
//! - `X-OneKey-Signature`: `sha256=` + hex HMAC-SHA256 with the subscription's secret over
//!   `<timestamp>.<body>`.
//!
//! A 2xx is delivered; a timeout, 408, 429 or 5xx is retried with capped backoff; any other answer,
//! or the retries running out, puts the row on the dead-letter list (`GET /api/v1/webhooks/dead`),
//! from where an admin can replay it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::now_millis;
use crate::notify::{Attempt, ConsoleHub, Outbox, Transport};
use crate::store::{Channel, Notification, Store};

/// The signature header's value for `body` sent at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook transport.
pub struct Webhooks {
    store: Store,
    client: reqwest::Client,
}

impl Webhooks {
    /// A transport reading subscriptions from `store`.
    pub fn new(store: Store) -> anyhow::Result<Webhooks> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Webhooks { store, client })
    }
}

impl Transport for Webhooks {
    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    fn window(&self) -> usize {
        8
    }

    async fn deliver(&self, n: &Notification) -> Attempt {
        let Ok(id) = n.recipient.parse::<i64>() else {
            return Attempt::Failed("not a subscription id".into());
        };
        let (sub, secret) = match self.store.webhook(id).await {
            Ok(Some(s)) if s.0.enabled => s,
            Ok(_) => return Attempt::Failed("subscription removed".into()),
            Err(e) => return Attempt::Retry(format!("store: {e}")),
        };
        let body = n.payload.to_string();
        let ts = now_millis() / 1000;
        let kind = n
            .payload
            .pointer("/event/kind")
            .and_then(|k| k.as_str())
            .unwrap_or("event");
        let res = self
            .client
            .post(&sub.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-OneKey-Event", kind)
            .header("X-OneKey-Delivery", n.id.to_string())
            .header("X-OneKey-Timestamp", ts.to_string())
            .header("X-OneKey-Signature", signature(&secret, ts, &body))
            .body(body)
            .send()
            .await;
        match res {
            Err(e) => Attempt::Retry(format!("{}: {e}", sub.url)),
            Ok(r) if r.status().is_success() => Attempt::Sent(None),
            Ok(r) if r.status().is_server_error() || matches!(r.status().as_u16(), 408 | 429) => {
                Attempt::Retry(format!("{} answered {}", sub.url, r.status()))
            }
            Ok(r) => Attempt::Failed(format!("{} answered {}", sub.url, r.status())),
        }
    }
}

/// Fans committed incident events out to the subscriptions until `shutdown`: after console events
/// (all those queued at once in one pass) and every `poll`.
pub fn spawn_fan_out(
    store: Store,
    console: ConsoleHub,
    outbox: Outbox,
    poll: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut feed = console.committed_here();
        loop {
            loop {
                match store.fan_out_webhooks(500, now_millis()).await {
                    Ok(0) => break,
                    Ok(n) => {
                        metrics::counter!("onekey_webhooks_queued_total").increment(n as u64);
                        outbox.wake(Channel::Webhook);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook fan-out failed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = feed.recv() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            // One fan-out covers every event committed so far: the events that arrived while the
            // last one ran wake it once, not once each.
            while !matches!(
                feed.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature("s3cret-s3cret-s3cret", 1_764_331_200, "{\"a\":1}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(
            a,
            signature("s3cret-s3cret-s3cret", 1_764_331_201, "{\"a\":1}")
        );
        assert_ne!(
            a,
            signature("s3cret-s3cret-s3cret", 1_764_331_200, "{\"a\":2}")
        );
        assert_ne!(
            a,
            signature("other-secret-value", 1_764_331_200, "{\"a\":1}")
        );
    }
}
