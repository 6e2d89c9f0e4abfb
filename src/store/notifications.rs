//! The outbox: every message that leaves the server (responder pushes, SMS, webhooks) is a row in
//! `notifications`, inserted in the transaction that decided it and delivered by a relay that
//! claims due rows under a lease, records each outcome and retries with backoff.
//!
//! A row's life: `pending` (due at `due_at`) → `sent` (the channel took it: the broker's PUBACK,
//! the SMS centre's `submit_sm_resp`, a 2xx from a webhook) → `delivered` (the app's receipt, the
//! handset's delivery report); or `failed` with the reason. Unless it is delivered by
//! `confirm_by`, its `fallback` runs once (SMS instead of the app, or an operator is called).
//! `idem_key` is unique, so a step written twice, or by two instances, queues one message.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::log_order::{self, LogPage, LogPosition};
use super::{Backend, Store, StoreError, StoreResult};
use crate::domain::{IncidentEvent, Millis};

/// The ways out of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The responder's app: the MQTT task topic and the app's live stream.
    Push,
    /// A text message through the SMS centre (SMPP) or an HTTP SMS provider.
    Sms,
    /// An HTTP POST to another system of the district.
    Webhook,
}

impl Channel {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    /// Parses [`Channel::as_str`].
    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Push, Channel::Sms, Channel::Webhook]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its relay (or for the next attempt).
    Pending,
    /// The channel took it (broker, SMS centre, webhook receiver).
    Sent,
    /// The recipient's app or handset confirmed it.
    Delivered,
    /// Given up; `last_error` says why.
    Failed,
}

impl DeliveryStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryStatus {
        match s {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// What runs when a notification is not delivered in time (or fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fallback {
    /// The same offer as an SMS (`text`, with reply codes) to the responder's phone.
    SmsToResponder {
        /// The message.
        text: String,
    },
    /// An operator is called back to the incident (`attention` = `reason`), unless another
    /// notification of the incident with purpose `unless_purpose` was delivered or answered.
    Attention {
        /// The incident's attention reason.
        reason: String,
        /// Skip when a sibling of this purpose reached its recipient.
        #[serde(default)]
        unless_purpose: Option<String>,
    },
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Unique per logical message.
    pub idem_key: String,
    /// The incident it is about.
    pub incident_id: Option<i64>,
    /// Which way out.
    pub channel: Channel,
    /// Responder id, phone number or subscription id.
    pub recipient: String,
    /// The responder, when the recipient is one.
    pub responder_id: Option<i64>,
    /// What it is for (`offer`, `family_alert`, …).
    pub purpose: String,
    /// The message (JSON; for SMS `{"text": …}`).
    pub payload: serde_json::Value,
    /// First attempt.
    pub due_at: Millis,
    /// Deadline for delivery before the fallback runs.
    pub confirm_by: Option<Millis>,
    /// What runs when it is not delivered by `confirm_by`.
    pub fallback: Option<Fallback>,
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Row id; carried in the message so the recipient can confirm and drop repeats.
    pub id: i64,
    /// Unique per logical message.
    pub idem_key: String,
    /// The incident it is about.
    pub incident_id: Option<i64>,
    /// Which way out.
    pub channel: Channel,
    /// Responder id, phone number or subscription id.
    pub recipient: String,
    /// The responder, when the recipient is one.
    pub responder_id: Option<i64>,
    /// What it is for.
    pub purpose: String,
    /// The message.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt.
    pub due_at: Millis,
    /// Deadline for delivery before the fallback runs.
    pub confirm_by: Option<Millis>,
    /// The fallback, if any.
    #[serde(skip)]
    pub fallback: Option<Fallback>,
    /// The channel's own id (SMS centre message id).
    pub external_id: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Queued.
    pub created_at: Millis,
    /// Taken by the channel.
    pub sent_at: Option<Millis>,
    /// Confirmed by the recipient.
    pub delivered_at: Option<Millis>,
    /// Given up.
    pub failed_at: Option<Millis>,
}

const COLUMNS: &str = "id, idem_key, incident_id, channel, recipient, responder_id, purpose, payload, \
     status, attempts, due_at, confirm_by, fallback, external_id, last_error, created_at, sent_at, \
     delivered_at, failed_at";

fn notification(r: &AnyRow) -> StoreResult<Notification> {
    let channel: String = r.try_get(3)?;
    let payload: String = r.try_get(7)?;
    let status: String = r.try_get(8)?;
    let fallback: Option<String> = r.try_get(12)?;
    Ok(Notification {
        id: r.try_get(0)?,
        idem_key: r.try_get(1)?,
        incident_id: r.try_get(2)?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::Invalid(format!("unknown channel {channel:?}")))?,
        recipient: r.try_get(4)?,
        responder_id: r.try_get(5)?,
        purpose: r.try_get(6)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        status: DeliveryStatus::parse(&status),
        attempts: r.try_get(9)?,
        due_at: r.try_get(10)?,
        confirm_by: r.try_get(11)?,
        fallback: fallback.and_then(|f| serde_json::from_str(&f).ok()),
        external_id: r.try_get(13)?,
        last_error: r.try_get(14)?,
        created_at: r.try_get(15)?,
        sent_at: r.try_get(16)?,
        delivered_at: r.try_get(17)?,
        failed_at: r.try_get(18)?,
    })
}

/// The push notifications of `responder_id`, or of everyone.
fn push_filter(responder_id: Option<i64>) -> String {
    match responder_id {
        Some(id) => format!("channel = 'push' AND responder_id = {id}"),
        None => "channel = 'push'".into(),
    }
}

fn rows(rows: &[AnyRow]) -> StoreResult<Vec<Notification>> {
    let mut v: Vec<Notification> = rows.iter().map(notification).collect::<Result<_, _>>()?;
    v.sort_by_key(|n| n.id);
    Ok(v)
}

/// Queues `n` inside `tx`; `None` when a notification with its `idem_key` already exists.
pub(crate) async fn insert(
    tx: &mut sqlx::AnyConnection,
    n: &NewNotification,
    now: Millis,
) -> StoreResult<Option<Notification>> {
    let fallback = match &n.fallback {
        Some(f) => Some(
            serde_json::to_string(f).map_err(|e| StoreError::Invalid(format!("fallback: {e}")))?,
        ),
        None => None,
    };
    let row = sqlx::query(&format!(
        "INSERT INTO notifications (idem_key, incident_id, channel, recipient, responder_id, \
         purpose, payload, status, due_at, confirm_by, fallback, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11) \
         ON CONFLICT (idem_key) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&n.idem_key)
    .bind(n.incident_id)
    .bind(n.channel.as_str())
    .bind(&n.recipient)
    .bind(n.responder_id)
    .bind(&n.purpose)
    .bind(n.payload.to_string())
    .bind(n.due_at)
    .bind(n.confirm_by)
    .bind(fallback)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    row.as_ref().map(notification).transpose()
}

/// Sets an incident's attention (why an operator is needed) and logs `attention_raised`, inside
/// `tx`. Returns the event, or `None` when the incident is closed.
pub(crate) async fn raise_attention(
    tx: &mut sqlx::AnyConnection,
    incident_id: i64,
    reason: &str,
    detail: serde_json::Value,
    at: Millis,
) -> StoreResult<Option<IncidentEvent>> {
    let r = sqlx::query(
        "UPDATE incidents SET attention = $2, attention_at = $3 \
         WHERE id = $1 AND status <> 'closed'",
    )
    .bind(incident_id)
    .bind(reason)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("reason".into(), reason.into());
    } else {
        detail = serde_json::json!({ "reason": reason });
    }
    let event =
        super::events::append_event(tx, incident_id, at, "attention_raised", "system", detail)
            .await?;
    Ok(Some(event))
}

impl Store {
    /// Queues one notification in its own transaction (an operator's message, a fallback).
    pub async fn enqueue_notification(
        &self,
        n: &NewNotification,
        now: Millis,
    ) -> StoreResult<Option<Notification>> {
        let mut tx = super::begin_ordered(self, super::Order::Unlocked).await?;
        let queued = insert(&mut tx, n, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due notifications of `channel` for instance `me` under a lease of
    /// `lease_ms`; nobody else claims them until the lease runs out. On PostgreSQL the candidates
    /// are locked with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other.
    pub async fn claim_notifications(
        &self,
        channel: Channel,
        me: &str,
        limit: i64,
        lease_ms: Millis,
        now: Millis,
    ) -> StoreResult<Vec<Notification>> {
        let _turn = self.write_turn().await;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claimed = sqlx::query(&format!(
            "UPDATE notifications SET claimed_by = $1, claimed_until = $2 WHERE id IN \
             (SELECT id FROM notifications WHERE channel = $3 AND status = 'pending' \
             AND due_at <= $4 AND (claimed_until IS NULL OR claimed_until <= $4) \
             ORDER BY id LIMIT $5{lock}) RETURNING {COLUMNS}"
        ))
        .bind(me)
        .bind(now.saturating_add(lease_ms.max(1)))
        .bind(channel.as_str())
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(&claimed)
    }

    /// Records that the channel took a claimed notification. False when `me` no longer holds it.
    pub async fn notification_sent(
        &self,
        id: i64,
        me: &str,
        external_id: Option<&str>,
        now: Millis,
    ) -> StoreResult<Option<Notification>> {
        let _turn = self.write_turn().await;
        let row = sqlx::query(&format!(
            "UPDATE notifications SET status = 'sent', sent_at = $3, external_id = $4, \
             attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL, last_error = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending' RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(me)
        .bind(now)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(notification).transpose()
    }

    /// Records a failed attempt: tried again at `retry_at`, or given up when `retry_at` is `None`.
    /// Returns the row when it was given up now.
    pub async fn notification_attempt_failed(
        &self,
        id: i64,
        me: &str,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> StoreResult<Option<Notification>> {
        let _turn = self.write_turn().await;
        let error: String = error.chars().take(500).collect();
        match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE notifications SET attempts = attempts + 1, due_at = $3, \
                     last_error = $4, claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
                )
                .bind(id)
                .bind(me)
                .bind(at)
                .bind(&error)
                .execute(&self.pool)
                .await?;
                Ok(None)
            }
            None => {
                let row = sqlx::query(&format!(
                    "UPDATE notifications SET status = 'failed', attempts = attempts + 1, \
                     failed_at = $3, last_error = $4, claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $1 AND claimed_by = $2 AND status = 'pending' RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(me)
                .bind(now)
                .bind(&error)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(notification).transpose()
            }
        }
    }

    /// A delivery report for the message the channel knows as `external_id`: delivered, or
    /// failed with `error`. Returns the row when its state changed now.
    pub async fn notification_report(
        &self,
        channel: Channel,
        external_id: &str,
        delivered: bool,
        error: Option<&str>,
        now: Millis,
    ) -> StoreResult<Option<Notification>> {
        let _turn = self.write_turn().await;
        let sql = if delivered {
            format!(
                "UPDATE notifications SET status = 'delivered', delivered_at = $3 \
                 WHERE channel = $1 AND external_id = $2 AND status IN ('pending', 'sent') \
                 RETURNING {COLUMNS}"
            )
        } else {
            format!(
                "UPDATE notifications SET status = 'failed', failed_at = $3, last_error = $4 \
                 WHERE channel = $1 AND external_id = $2 AND status IN ('pending', 'sent') \
                 RETURNING {COLUMNS}"
            )
        };
        let mut q = sqlx::query(&sql)
            .bind(channel.as_str())
            .bind(external_id)
            .bind(now);
        if !delivered {
            q = q.bind(error.unwrap_or("undelivered"));
        }
        let row = q.fetch_all(&self.pool).await?;
        Ok(rows(&row)?.into_iter().next())
    }

    /// The recipient answered notification `id`: it reached them (delivered, if not already).
    pub async fn notification_confirmed(&self, id: i64, now: Millis) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2 \
             WHERE id = $1 AND status IN ('pending', 'sent')",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A responder's app confirms receipt of push notifications `ids` (its own only). Returns
    /// those confirmed now.
    pub async fn push_receipts(
        &self,
        responder_id: i64,
        ids: &[i64],
        now: Millis,
    ) -> StoreResult<Vec<Notification>> {
        let _turn = self.write_turn().await;
        let mut confirmed = Vec::new();
        for &id in ids.iter().take(256) {
            let row = sqlx::query(&format!(
                "UPDATE notifications SET status = 'delivered', delivered_at = $3, \
                 sent_at = COALESCE(sent_at, $3) \
                 WHERE id = $1 AND responder_id = $2 AND channel = 'push' \
                 AND status IN ('pending', 'sent') RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(responder_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                confirmed.push(notification(&r)?);
            }
        }
        Ok(confirmed)
    }

    /// Claims up to `limit` notifications whose fallback is due: not delivered by `confirm_by`,
    /// or failed. Each is claimed once (`fallback_done`), across instances.
    pub async fn claim_fallbacks(&self, now: Millis, limit: i64) -> StoreResult<Vec<Notification>> {
        let _turn = self.write_turn().await;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claimed = sqlx::query(&format!(
            "UPDATE notifications SET fallback_done = 1 WHERE id IN \
             (SELECT id FROM notifications WHERE fallback_done = 0 AND fallback IS NOT NULL \
             AND status <> 'delivered' AND (status = 'failed' OR confirm_by <= $1) \
             ORDER BY id LIMIT $2{lock}) RETURNING {COLUMNS}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(&claimed)
    }

    /// Whether any notification of `incident_id` with `purpose` reached its recipient.
    pub async fn purpose_delivered(&self, incident_id: i64, purpose: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM notifications WHERE incident_id = $1 AND purpose = $2 \
             AND status = 'delivered'",
        )
        .bind(incident_id)
        .bind(purpose)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Up to `limit` push notifications after `after`, in log order (`store/log_order.rs`), of
    /// one responder or of all: what app streams follow, on every instance alike.
    pub async fn pushes_after(
        &self,
        responder_id: Option<i64>,
        after: LogPosition,
        limit: i64,
    ) -> StoreResult<LogPage<Notification>> {
        let filter = push_filter(responder_id);
        let sql = log_order::page_sql(
            self.backend,
            COLUMNS,
            "notifications",
            &filter,
            "id",
            "tx_id",
        );
        let found = sqlx::query(&sql)
            .bind(after.tx)
            .bind(after.id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        log_order::page(&found, 0, notification)
    }

    /// Where an app that saw push `id` stands in the push log (`Last-Event-ID`).
    pub async fn push_position(&self, id: i64) -> StoreResult<LogPosition> {
        log_order::position_of(&self.pool, "notifications", "channel = 'push'", id).await
    }

    /// The position of the last final push notification: where a follower starting now begins.
    pub async fn push_log_end(&self) -> StoreResult<LogPosition> {
        log_order::end_of(
            &self.pool,
            self.backend,
            "notifications",
            "channel = 'push'",
        )
        .await
    }

    /// `NOTIFY channel, payload` (PostgreSQL only; other instances listen).
    pub async fn notify(&self, channel: &str, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every notification about an incident, oldest first (the incident page's delivery view).
    pub async fn incident_notifications(&self, incident_id: i64) -> StoreResult<Vec<Notification>> {
        let found = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE incident_id = $1 ORDER BY id"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows(&found)
    }

    /// The newest SMS with reply codes sent to `phone` since `since` (what a reply answers).
    pub async fn latest_sms_to(
        &self,
        phone: &str,
        since: Millis,
    ) -> StoreResult<Option<Notification>> {
        let found = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE channel = 'sms' AND recipient = $1 \
             AND created_at >= $2 AND purpose IN ('family_alert', 'offer_sms') \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(phone)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        found.as_ref().map(notification).transpose()
    }

    /// Notifications of `channel` given up on, newest first (the webhook dead-letter list).
    pub async fn failed_notifications(
        &self,
        channel: Channel,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let found = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE channel = $1 AND status = 'failed' \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(channel.as_str())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        let mut v = rows(&found)?;
        v.reverse();
        Ok(v)
    }

    /// Queues a failed notification again, now. False when it is not a failed one.
    pub async fn replay_notification(&self, id: i64, now: Millis) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE notifications SET status = 'pending', due_at = $2, attempts = 0, \
             failed_at = NULL, claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// One notification.
    pub async fn get_notification(&self, id: i64) -> StoreResult<Option<Notification>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(notification).transpose()
    }

    /// Notifications not yet delivered or given up, per channel (for `/metrics`).
    pub async fn outbox_backlog(&self) -> StoreResult<Vec<(String, i64)>> {
        let found = sqlx::query(
            "SELECT channel, COUNT(*) FROM notifications WHERE status = 'pending' GROUP BY channel",
        )
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Calls an operator back to an incident: sets its attention and logs it, in one transaction.
    pub async fn raise_attention(
        &self,
        incident_id: i64,
        reason: &str,
        detail: serde_json::Value,
        at: Millis,
    ) -> StoreResult<Option<IncidentEvent>> {
        let mut tx = super::begin_ordered(self, super::Order::Incident(incident_id)).await?;
        let event = raise_attention(&mut tx, incident_id, reason, detail, at).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// An operator acknowledges the incident's current attention step. Returns the logged event,
    /// or `None` when nothing needed attention.
    pub async fn acknowledge_attention(
        &self,
        incident_id: i64,
        by: &str,
        at: Millis,
    ) -> StoreResult<Option<IncidentEvent>> {
        let mut tx = super::begin_ordered(self, super::Order::Incident(incident_id)).await?;
        let row = sqlx::query("SELECT attention FROM incidents WHERE id = $1")
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(reason) = row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        sqlx::query("UPDATE incidents SET attention = NULL, attention_at = NULL WHERE id = $1")
            .bind(incident_id)
            .execute(&mut *tx)
            .await?;
        let event = super::events::append_event(
            &mut tx,
            incident_id,
            at,
            "attention_acknowledged",
            &format!("operator:{by}"),
            serde_json::json!({ "reason": reason }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(event))
    }
}
