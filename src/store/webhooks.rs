//! Webhook subscriptions of other systems of the district, and the fan-out of committed incident
//! events into the outbox: events are read in id order after a durable cursor (incident events
//! commit in id order, so reading `id > cursor` never skips one) and each event that matches a
//! subscription becomes a `webhook` notification, in one transaction with the cursor's move. So
//! the hot path pays nothing for webhooks, and a crash between reading and writing repeats
//! nothing (the cursor moves with the rows; `idem_key` is unique).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::log_order::{self, LogPosition};
use super::notifications::{self, Channel, NewNotification};
use super::sealing;
use super::{Store, StoreError, StoreResult};
use crate::domain::{Category, IncidentEvent, Millis};

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookSubscription {
    /// Row id.
    pub id: i64,
    /// Who it is for (`120 调度`, `智慧养老平台`).
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event kinds (`opened`, `offer_accepted`, `closed`…); empty: every kind.
    pub kinds: Vec<String>,
    /// Incident categories; empty: every category.
    pub categories: Vec<Category>,
    /// An area (district, street, community or grid); only incidents of elders inside it.
    pub area_id: Option<i64>,
    /// Whether events are still sent.
    pub enabled: bool,
    /// Created.
    pub created_at: Millis,
}

/// A subscription to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct WebhookInput {
    /// Who it is for.
    pub name: String,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// Event kinds; empty: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Incident categories; empty: every category.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Only incidents of elders inside this area.
    #[serde(default)]
    pub area_id: Option<i64>,
    /// The signing secret (at least 16 characters); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

/// The cursor's name in `outbox_cursors`.
const CURSOR: &str = "webhooks";

fn subscription(r: &sqlx::any::AnyRow) -> StoreResult<(WebhookSubscription, String)> {
    let kinds: String = r.try_get(3)?;
    let categories: String = r.try_get(4)?;
    let enabled: i64 = r.try_get(6)?;
    Ok((
        WebhookSubscription {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            url: r.try_get(2)?,
            kinds: serde_json::from_str(&kinds).unwrap_or_default(),
            categories: serde_json::from_str(&categories).unwrap_or_default(),
            area_id: r.try_get(5)?,
            enabled: enabled != 0,
            created_at: r.try_get(7)?,
        },
        r.try_get(8)?,
    ))
}

const SUB_COLUMNS: &str = "id, name, url, kinds, categories, area_id, enabled, created_at, secret";

/// One event with what the filters need.
struct Fanned {
    event: IncidentEvent,
    category: Option<Category>,
    grid: Option<i64>,
}

impl Store {
    /// Creates a subscription; returns it and its signing secret.
    pub async fn create_webhook(
        &self,
        w: &WebhookInput,
        now: Millis,
    ) -> StoreResult<(WebhookSubscription, String)> {
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) || w.url.len() > 2000 {
            return Err(StoreError::Invalid("url must be an http(s) URL".into()));
        }
        if w.name.trim().is_empty() || w.name.chars().count() > 200 {
            return Err(StoreError::Invalid(
                "name must be 1 to 200 characters".into(),
            ));
        }
        if let Some(area) = w.area_id
            && self.get_area(area).await?.is_none()
        {
            return Err(StoreError::Invalid(format!("no area {area}")));
        }
        let secret = match &w.secret {
            Some(s) if s.len() >= 16 => s.clone(),
            Some(_) => {
                return Err(StoreError::Invalid(
                    "secret must have at least 16 characters".into(),
                ));
            }
            None => hex::encode(rand::random::<[u8; 32]>()),
        };
        let row = sqlx::query(&format!(
            "INSERT INTO webhook_subscriptions (name, url, secret, kinds, categories, area_id, \
             enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) RETURNING {SUB_COLUMNS}"
        ))
        .bind(w.name.trim())
        .bind(&w.url)
        .bind(self.seal(sealing::WEBHOOK_SECRET, Some(&secret)))
        .bind(serde_json::to_string(&w.kinds).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&w.categories).unwrap_or_else(|_| "[]".into()))
        .bind(w.area_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((subscription(&row)?.0, secret))
    }

    /// Every subscription (without secrets).
    pub async fn list_webhooks(&self) -> StoreResult<Vec<WebhookSubscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(subscription(r)?.0)).collect()
    }

    /// One subscription with its secret (for signing).
    pub async fn webhook(&self, id: i64) -> StoreResult<Option<(WebhookSubscription, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((sub, sealed)) = row.as_ref().map(subscription).transpose()? else {
            return Ok(None);
        };
        let secret = self.unseal(sealing::WEBHOOK_SECRET, Some(sealed))?;
        Ok(secret.map(|secret| (sub, secret)))
    }

    /// Stops a subscription; false when there is none.
    pub async fn disable_webhook(&self, id: i64) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE webhook_subscriptions SET enabled = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves the webhook fan-out forward by up to `limit` events: queues a notification per
    /// matching (event, subscription) and moves the cursor, in one transaction. Returns the
    /// notifications queued; an instance that lost the race to move the cursor queues none.
    pub async fn fan_out_webhooks(&self, limit: i64, now: Millis) -> StoreResult<usize> {
        let cursor =
            sqlx::query("SELECT position_tx, position FROM outbox_cursors WHERE name = $1")
                .bind(CURSOR)
                .fetch_optional(&self.pool)
                .await?;
        let Some(cursor) = cursor else {
            // First start: deliver from now on, not the whole history.
            let end = self.incident_log_end().await?;
            sqlx::query(
                "INSERT INTO outbox_cursors (name, position_tx, position) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(CURSOR)
            .bind(end.tx)
            .bind(end.id)
            .execute(&self.pool)
            .await?;
            return Ok(0);
        };
        let position = LogPosition {
            tx: cursor.try_get(0)?,
            id: cursor.try_get(1)?,
        };
        let subs: Vec<WebhookSubscription> = self
            .list_webhooks()
            .await?
            .into_iter()
            .filter(|s| s.enabled)
            .collect();
        let sql = log_order::page_sql(
            self.backend,
            "ev.id, ev.incident_id, ev.at, ev.kind, ev.actor, ev.detail, i.category, e.grid_id",
            "incident_events ev JOIN incidents i ON i.id = ev.incident_id \
             LEFT JOIN elders e ON e.id = i.elder_id",
            "",
            "ev.id",
            "ev.tx_id",
        );
        let rows = sqlx::query(&sql)
            .bind(position.tx)
            .bind(position.id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let page = log_order::page(&rows, 0, |r| {
            let detail: String = r.try_get(5)?;
            let category: String = r.try_get(6)?;
            Ok(Fanned {
                event: IncidentEvent {
                    id: r.try_get(0)?,
                    incident_id: r.try_get(1)?,
                    at: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                },
                category: Category::parse(&category),
                grid: r.try_get(7)?,
            })
        })?;
        let Some(last) = page.rows.last().map(|(p, _)| *p) else {
            return Ok(0);
        };
        let events: Vec<Fanned> = page.rows.into_iter().map(|(_, f)| f).collect();
        let areas = if subs.iter().any(|s| s.area_id.is_some()) {
            self.area_parents().await?
        } else {
            Default::default()
        };
        let inside = |grid: Option<i64>, area: i64| {
            let mut at = grid;
            for _ in 0..16 {
                match at {
                    Some(a) if a == area => return true,
                    Some(a) => at = areas.get(&a).copied().flatten(),
                    None => return false,
                }
            }
            false
        };
        let mut queued = Vec::new();
        for f in &events {
            for s in &subs {
                let kind_ok = s.kinds.is_empty() || s.kinds.contains(&f.event.kind);
                let cat_ok = s.categories.is_empty()
                    || f.category.is_some_and(|c| s.categories.contains(&c));
                let area_ok = s.area_id.is_none_or(|a| inside(f.grid, a));
                if kind_ok && cat_ok && area_ok {
                    queued.push(NewNotification {
                        idem_key: format!("webhook:{}:{}", s.id, f.event.id),
                        incident_id: Some(f.event.incident_id),
                        channel: Channel::Webhook,
                        recipient: s.id.to_string(),
                        responder_id: None,
                        purpose: "event".into(),
                        payload: serde_json::json!({
                            "event": f.event,
                            "category": f.category,
                            "grid_id": f.grid,
                            "subscription": s.name,
                        }),
                        due_at: now,
                        confirm_by: None,
                        fallback: None,
                    });
                }
            }
        }
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE outbox_cursors SET position_tx = $1, position = $2 \
             WHERE name = $3 AND position_tx = $4 AND position = $5",
        )
        .bind(last.tx)
        .bind(last.id)
        .bind(CURSOR)
        .bind(position.tx)
        .bind(position.id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(0); // another instance moved it first
        }
        let mut n = 0;
        for q in &queued {
            if notifications::insert(&mut tx, q, now).await?.is_some() {
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Every area's parent.
    async fn area_parents(&self) -> StoreResult<std::collections::HashMap<i64, Option<i64>>> {
        let rows = sqlx::query("SELECT id, parent_id FROM areas")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
