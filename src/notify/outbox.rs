//! The outbox's relays: for each channel, claim due notifications under a lease, hand them to the
//! channel's [`Transport`], record each outcome, retry with capped backoff; and the supervisor that
//! runs a notification's fallback when it is not delivered in time.
//!
//! Rows are written by whoever decided them (a dispatch step, an operator's message, the webhook
//! fan-out) in their own transaction; the relays only ever read committed rows, so a crash at
//! any point loses nothing: an unsent row is claimed again after its lease. A row the channel took
//! is marked `sent` once; the wire may carry a repeat after a crash between the two (every message
//! carries its id so the recipient drops it).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ConsoleHub;
use crate::domain::{Millis, now_millis};
use crate::store::{Channel, Fallback, NewNotification, Notification, Store};

/// `[notify]` relay tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelaySettings {
    /// Milliseconds between polls for due rows when nothing woke the relay (default 500).
    pub poll_ms: u64,
    /// Milliseconds a claimed row is reserved for its relay (default 30000).
    pub lease_ms: u64,
    /// Rows claimed at once (default 256).
    pub batch: i64,
    /// First retry delay, milliseconds (default 1000); doubles per attempt.
    pub retry_min_ms: u64,
    /// Longest retry delay, milliseconds (default 60000).
    pub retry_max_ms: u64,
    /// Attempts before a row is given up (default 10; a failed row's fallback then runs).
    pub max_attempts: i64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            poll_ms: 500,
            lease_ms: 30_000,
            batch: 256,
            retry_min_ms: 1000,
            retry_max_ms: 60_000,
            max_attempts: 10,
        }
    }
}

impl RelaySettings {
    /// The delay before attempt `attempts + 1`.
    pub fn retry_delay(&self, attempts: i64) -> Millis {
        let min = self.retry_min_ms.max(1);
        let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        let d = min
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_ms.max(min));
        i64::try_from(d).unwrap_or(i64::MAX)
    }
}

/// Wakes the relays when new rows are committed; cheap to clone.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<[Notify; 3]>,
}

impl Outbox {
    /// A handle with nothing waiting.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    fn slot(channel: Channel) -> usize {
        match channel {
            Channel::Push => 0,
            Channel::Sms => 1,
            Channel::Webhook => 2,
        }
    }

    /// Wakes the relay of `channel` (rows committed for it).
    pub fn wake(&self, channel: Channel) {
        self.wake[Self::slot(channel)].notify_one();
    }

    /// Wakes the relay of every channel among `notifications`.
    pub fn wake_for<'a>(&self, notifications: impl IntoIterator<Item = &'a Notification>) {
        let mut woken = [false; 3];
        for n in notifications {
            let i = Self::slot(n.channel);
            if !woken[i] {
                woken[i] = true;
                self.wake[i].notify_one();
            }
        }
    }

    async fn woken(&self, channel: Channel) {
        self.wake[Self::slot(channel)].notified().await
    }
}

/// What one delivery attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The channel took it, with the channel's own id when it has one.
    Sent(Option<String>),
    /// A passing failure: try again later.
    Retry(String),
    /// It can never be delivered this way.
    Failed(String),
}

/// One way out of the server.
pub trait Transport: Send + Sync + 'static {
    /// The channel it serves.
    fn channel(&self) -> Channel;
    /// Deliveries in flight at once.
    fn window(&self) -> usize;
    /// Hands one notification to the channel.
    fn deliver(&self, n: &Notification) -> impl Future<Output = Attempt> + Send;
}

/// What a relay does besides delivering: the store, the console, the wake-ups.
#[derive(Clone)]
pub struct RelayContext {
    /// The store.
    pub store: Store,
    /// The console's live feed, for the events a delivery logs.
    pub console: ConsoleHub,
    /// Wake-ups.
    pub outbox: Outbox,
    /// This instance's id (lease owner).
    pub instance: String,
    /// Tuning.
    pub settings: RelaySettings,
    /// Delivery deadlines (for the SMS a fallback sends).
    pub delivery: DeliveryPolicy,
}

fn secs(s: u64) -> Millis {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// How long a message may go unconfirmed before its fallback runs (`[notify]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryPolicy {
    /// An offer pushed to the app and not confirmed by it within this many seconds is sent again
    /// as an SMS (default 15).
    pub receipt_timeout_s: u64,
    /// An SMS offer not delivered to the handset within this many seconds calls an operator
    /// (default 120).
    pub sms_delivery_timeout_s: u64,
    /// When no family contact's SMS is delivered or answered within this many seconds, an
    /// operator is called (default 300).
    pub family_reach_timeout_s: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            receipt_timeout_s: 15,
            sms_delivery_timeout_s: 120,
            family_reach_timeout_s: 300,
        }
    }
}

impl DeliveryPolicy {
    /// `s` seconds in milliseconds.
    pub fn ms(s: u64) -> Millis {
        secs(s)
    }
}

/// Runs `transport`'s relay until `shutdown`.
pub fn spawn_relay<T: Transport>(
    transport: Arc<T>,
    ctx: RelayContext,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let channel = transport.channel();
        let poll = Duration::from_millis(ctx.settings.poll_ms.max(10));
        loop {
            let busy = match relay_once(&*transport, &ctx).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(channel = channel.as_str(), error = %e, "claiming notifications failed");
                    metrics::counter!("onekey_store_errors_total", "op" => "outbox_claim")
                        .increment(1);
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ctx.outbox.woken(channel) => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(channel = channel.as_str(), "relay stopped");
    })
}

/// Claims one batch and delivers it; returns how many were claimed.
async fn relay_once<T: Transport>(transport: &T, ctx: &RelayContext) -> anyhow::Result<usize> {
    let channel = transport.channel();
    let claimed = ctx
        .store
        .claim_notifications(
            channel,
            &ctx.instance,
            ctx.settings.batch.max(1),
            crate::domain::wall_span(i64::try_from(ctx.settings.lease_ms).unwrap_or(30_000)),
            now_millis(),
        )
        .await?;
    let n = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(transport.window().max(1), |row| async move {
            let attempt = transport.deliver(&row).await;
            if let Err(e) = record(ctx, &row, attempt).await {
                tracing::warn!(id = row.id, error = %e, "recording a delivery failed; retried after its lease");
            }
        })
        .await;
    Ok(n)
}

async fn record(ctx: &RelayContext, row: &Notification, attempt: Attempt) -> anyhow::Result<()> {
    let channel = row.channel.as_str();
    let now = now_millis();
    match attempt {
        Attempt::Sent(external) => {
            metrics::counter!("onekey_notifications_total", "channel" => channel, "outcome" => "sent")
                .increment(1);
            if row.channel == Channel::Push {
                metrics::counter!("onekey_mqtt_pushes_total", "outcome" => "sent").increment(1);
            }
            metrics::histogram!("onekey_notification_send_seconds", "channel" => channel)
                .record((now - row.created_at).max(0) as f64 / 1000.0);
            let sent = ctx
                .store
                .notification_sent(row.id, &ctx.instance, external.as_deref(), now)
                .await?;
            if let Some(sent) = sent {
                after_sent(ctx, &sent, now).await?;
            }
        }
        Attempt::Retry(error) | Attempt::Failed(error)
            if row.attempts + 1 >= ctx.settings.max_attempts =>
        {
            give_up(ctx, row, &error, now).await?;
        }
        Attempt::Retry(error) => {
            metrics::counter!("onekey_notifications_total", "channel" => channel, "outcome" => "retry")
                .increment(1);
            tracing::info!(id = row.id, channel, attempt = row.attempts + 1, error = %error, "delivery failed; will retry");
            let at = now + crate::domain::wall_span(ctx.settings.retry_delay(row.attempts));
            ctx.store
                .notification_attempt_failed(row.id, &ctx.instance, &error, Some(at), now)
                .await?;
        }
        Attempt::Failed(error) => give_up(ctx, row, &error, now).await?,
    }
    Ok(())
}

async fn give_up(
    ctx: &RelayContext,
    row: &Notification,
    error: &str,
    now: Millis,
) -> anyhow::Result<()> {
    let channel = row.channel.as_str();
    metrics::counter!("onekey_notifications_total", "channel" => channel, "outcome" => "failed")
        .increment(1);
    tracing::warn!(id = row.id, channel, recipient = %row.recipient, error, "delivery given up");
    if let Some(failed) = ctx
        .store
        .notification_attempt_failed(row.id, &ctx.instance, error, None, now)
        .await?
        && let Some(incident) = failed.incident_id
    {
        let detail = serde_json::json!({ "notification_id": failed.id, "channel": channel,
            "purpose": failed.purpose, "recipient": failed.recipient, "error": error });
        if let Some(e) = ctx
            .store
            .log_incident_event(incident, "notification_failed", "system", detail, now)
            .await?
        {
            ctx.console.publish([e]);
        }
    }
    Ok(())
}

/// What a row's being sent means on its incident: the family's SMS taken by the SMS centre is
/// logged as `contacts_notified` (one per contact).
async fn after_sent(ctx: &RelayContext, row: &Notification, now: Millis) -> anyhow::Result<()> {
    if row.purpose != "family_alert" {
        return Ok(());
    }
    let Some(incident) = row.incident_id else {
        return Ok(());
    };
    let detail = serde_json::json!({ "notification_id": row.id, "phone": row.recipient,
        "contact": row.payload.get("contact"), "key_holder": row.payload.get("key_holder") });
    if let Some(e) = ctx
        .store
        .log_incident_event(incident, "contacts_notified", "system", detail, now)
        .await?
    {
        ctx.console.publish([e]);
    }
    Ok(())
}

/// Runs the fallbacks of notifications that were not delivered in time (or failed), every
/// `every`, until `shutdown`.
pub fn spawn_supervisor(
    ctx: RelayContext,
    every: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = supervise_once(&ctx).await {
                tracing::warn!(error = %e, "running notification fallbacks failed");
            }
            gauge_backlog(&ctx).await;
        }
    })
}

/// `onekey_outbox_pending{channel}`: notifications waiting to be sent, every channel (0 included,
/// so an alert on the backlog always has a series to read).
async fn gauge_backlog(ctx: &RelayContext) {
    match ctx.store.outbox_backlog().await {
        Ok(backlog) => {
            for channel in ["push", "sms", "webhook"] {
                let n = backlog
                    .iter()
                    .find(|(c, _)| c == channel)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("onekey_outbox_pending", "channel" => channel).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox backlog"),
    }
}

/// Claims due fallbacks and runs each once; returns how many ran.
pub async fn supervise_once(ctx: &RelayContext) -> anyhow::Result<usize> {
    let now = now_millis();
    let due = ctx.store.claim_fallbacks(now, 256).await?;
    let n = due.len();
    for row in due {
        let Some(fallback) = row.fallback.clone() else {
            continue;
        };
        run_fallback(ctx, &row, fallback, now).await?;
    }
    Ok(n)
}

async fn run_fallback(
    ctx: &RelayContext,
    row: &Notification,
    fallback: Fallback,
    now: Millis,
) -> anyhow::Result<()> {
    let Some(incident) = row.incident_id else {
        return Ok(());
    };
    match fallback {
        Fallback::SmsToResponder { text } => {
            let Some(responder) = row.responder_id else {
                return Ok(());
            };
            if !ctx.store.offer_pending(incident, responder).await? {
                return Ok(()); // answered, withdrawn or expired meanwhile: nothing to chase
            }
            let phone = ctx
                .store
                .get_responder(responder)
                .await?
                .map(|r| crate::domain::normalize_phone(&r.phone))
                .filter(|p| !p.is_empty());
            let Some(phone) = phone else {
                return raise(ctx, incident, "delivery_failed", row, now).await;
            };
            metrics::counter!("onekey_notification_fallbacks_total", "to" => "sms").increment(1);
            let sms = NewNotification {
                idem_key: format!("{}/sms", row.idem_key),
                incident_id: Some(incident),
                channel: Channel::Sms,
                recipient: phone,
                responder_id: Some(responder),
                purpose: "offer_sms".into(),
                payload: serde_json::json!({ "text": text, "instead_of": row.id }),
                due_at: now,
                confirm_by: Some(now + secs(ctx.delivery.sms_delivery_timeout_s)),
                fallback: Some(Fallback::Attention {
                    reason: "delivery_failed".into(),
                    unless_purpose: None,
                }),
            };
            if let Some(q) = ctx.store.enqueue_notification(&sms, now).await? {
                tracing::info!(
                    incident,
                    responder,
                    id = q.id,
                    "offer not confirmed by the app; sent as SMS"
                );
                ctx.outbox.wake(Channel::Sms);
            }
            Ok(())
        }
        Fallback::Attention {
            reason,
            unless_purpose,
        } => {
            if let Some(purpose) = unless_purpose
                && ctx.store.purpose_delivered(incident, &purpose).await?
            {
                return Ok(());
            }
            if row.purpose == "offer_sms"
                && let Some(responder) = row.responder_id
                && !ctx.store.offer_pending(incident, responder).await?
            {
                return Ok(());
            }
            raise(ctx, incident, &reason, row, now).await
        }
    }
}

async fn raise(
    ctx: &RelayContext,
    incident: i64,
    reason: &str,
    row: &Notification,
    now: Millis,
) -> anyhow::Result<()> {
    metrics::counter!("onekey_notification_fallbacks_total", "to" => "operator").increment(1);
    let detail = serde_json::json!({ "notification_id": row.id, "channel": row.channel,
        "purpose": row.purpose, "recipient": row.recipient, "status": row.status });
    if let Some(e) = ctx
        .store
        .raise_attention(incident, reason, detail, now)
        .await?
    {
        tracing::warn!(incident, reason, "an operator is needed");
        ctx.console.publish([e]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_the_cap() {
        let s = RelaySettings {
            retry_min_ms: 100,
            retry_max_ms: 1000,
            ..Default::default()
        };
        let delays: Vec<_> = (0..6).map(|a| s.retry_delay(a)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }
}
