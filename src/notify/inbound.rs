//! What comes back from the SMS side: delivery reports and people's replies.
//!
//! A report marks its notification delivered or failed (a failed one's fallback then runs); for a
//! family contact, delivered is logged on the incident as `contact_reached`. A reply is matched to
//! the newest SMS with reply codes sent to that number in the last day: a family member's `1`
//! ("I'm going") or `2` is logged as `contact_replied` (and counts as reached); a responder's
//! answer to an SMS offer accepts or declines it through dispatch, exactly as the app would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::ConsoleHub;
use super::channels::sms::Inbound;
use crate::domain::{Millis, normalize_phone, now_millis};
use crate::store::{Channel, Notification, Store, StoreResult};

/// How long a reply may come after the message it answers.
const REPLY_WINDOW_MS: Millis = 24 * 3_600_000;

/// A boxed future, for [`ReplySink`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a responder's SMS answer to an offer goes (dispatch implements it).
pub trait ReplySink: Send + Sync + 'static {
    /// `responder_id` accepts (`true`) or declines the offer of `incident_id`; whether it took.
    fn answer(
        &self,
        incident_id: i64,
        responder_id: i64,
        accept: bool,
    ) -> BoxFuture<'_, StoreResult<bool>>;
}

/// `1` (going / accept) or `2` (not going / decline), in ASCII or full-width digits, or the
/// words people use.
pub fn parse_answer(text: &str) -> Option<bool> {
    let t = text.trim();
    let first = t.chars().next()?;
    match first {
        '1' | '１' => Some(true),
        '2' | '２' => Some(false),
        _ if ["不", "否", "去不了"].iter().any(|w| t.starts_with(w)) => Some(false),
        _ if ["是", "好", "去", "马上", "收到"]
            .iter()
            .any(|w| t.starts_with(w)) =>
        {
            Some(true)
        }
        _ => None,
    }
}

/// Handles inbound SMS events until the sender side closes.
pub async fn run(
    mut rx: mpsc::Receiver<Inbound>,
    store: Store,
    console: ConsoleHub,
    sink: Option<Arc<dyn ReplySink>>,
) {
    while let Some(event) = rx.recv().await {
        let result = match event {
            Inbound::Report {
                message_id,
                delivered,
                state,
            } => report(&store, &console, &message_id, delivered, &state).await,
            Inbound::Reply { from, text } => {
                reply(&store, &console, sink.as_deref(), &from, &text).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "an inbound SMS event was not recorded");
            metrics::counter!("onekey_store_errors_total", "op" => "sms_inbound").increment(1);
        }
    }
}

async fn report(
    store: &Store,
    console: &ConsoleHub,
    message_id: &str,
    delivered: bool,
    state: &str,
) -> StoreResult<()> {
    metrics::counter!("onekey_sms_reports_total", "delivered" => delivered.to_string())
        .increment(1);
    // The report may overtake the relay's record of the message id (the SMSC answers the submit
    // and reports at once): look again a few times before giving up on it.
    let mut row = None;
    for attempt in 0..10 {
        let error = (!delivered).then_some(state);
        row = store
            .notification_report(Channel::Sms, message_id, delivered, error, now_millis())
            .await?;
        if row.is_some() || attempt == 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some(n) = row else {
        tracing::info!(message_id, state, "delivery report for no pending message");
        return Ok(());
    };
    let Some(incident) = n.incident_id else {
        return Ok(());
    };
    let (kind, detail) = if delivered {
        if n.purpose != "family_alert" {
            return Ok(());
        }
        (
            "contact_reached",
            json!({ "phone": n.recipient, "contact": n.payload.get("contact"), "via": "sms",
                    "notification_id": n.id }),
        )
    } else {
        (
            "notification_failed",
            json!({ "notification_id": n.id, "channel": "sms", "purpose": n.purpose,
                    "recipient": n.recipient, "error": state }),
        )
    };
    if let Some(e) = store
        .log_incident_event(incident, kind, "system", detail, now_millis())
        .await?
    {
        console.publish([e]);
    }
    Ok(())
}

async fn reply(
    store: &Store,
    console: &ConsoleHub,
    sink: Option<&dyn ReplySink>,
    from: &str,
    text: &str,
) -> StoreResult<()> {
    let phone = normalize_phone(from);
    let now = now_millis();
    let Some(n) = store.latest_sms_to(&phone, now - REPLY_WINDOW_MS).await? else {
        tracing::info!(phone, "SMS reply matches no message we sent");
        metrics::counter!("onekey_sms_replies_total", "matched" => "false").increment(1);
        return Ok(());
    };
    metrics::counter!("onekey_sms_replies_total", "matched" => "true").increment(1);
    let Some(incident) = n.incident_id else {
        return Ok(());
    };
    let answer = parse_answer(text);
    let was_reached = n.status == crate::store::DeliveryStatus::Delivered;
    store.notification_confirmed(n.id, now).await?;
    match n.purpose.as_str() {
        "family_alert" => {
            family_reply(store, console, &n, incident, answer, text, was_reached).await
        }
        _ => {
            let Some(responder) = n.responder_id else {
                return Ok(());
            };
            let detail = json!({ "responder_id": responder, "phone": phone, "text": text,
                                 "answer": answer });
            if let Some(e) = store
                .log_incident_event(
                    incident,
                    "sms_reply",
                    &format!("responder:{responder}"),
                    detail,
                    now,
                )
                .await?
            {
                console.publish([e]);
            }
            match (answer, sink) {
                (Some(accept), Some(sink)) => {
                    let took = sink.answer(incident, responder, accept).await?;
                    tracing::info!(incident, responder, accept, took, "SMS answer to an offer");
                }
                (None, _) => tracing::info!(incident, responder, text, "SMS reply without a code"),
                (Some(_), None) => tracing::warn!("SMS answer, but dispatch is off here"),
            }
            Ok(())
        }
    }
}

async fn family_reply(
    store: &Store,
    console: &ConsoleHub,
    n: &Notification,
    incident: i64,
    answer: Option<bool>,
    text: &str,
    was_reached: bool,
) -> StoreResult<()> {
    let now = now_millis();
    let contact = n.payload.get("contact").cloned();
    let mut events = Vec::new();
    if !was_reached {
        let detail = json!({ "phone": n.recipient, "contact": contact, "via": "reply",
                             "notification_id": n.id });
        events.extend(
            store
                .log_incident_event(incident, "contact_reached", "system", detail, now)
                .await?,
        );
    }
    let detail = json!({ "phone": n.recipient, "contact": contact, "text": text,
        "going": answer, "relation": n.payload.get("relation") });
    events.extend(
        store
            .log_incident_event(
                incident,
                "contact_replied",
                &format!("contact:{}", n.recipient),
                detail,
                now,
            )
            .await?,
    );
    console.publish(events);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn reply_codes_in_any_form() {
        for yes in ["1", " 1 ", "１", "1 马上到", "好的", "马上去"] {
            assert_eq!(parse_answer(yes), Some(true), "{yes}");
        }
        for no in ["2", "２", "不去", "去不了"] {
            assert_eq!(parse_answer(no), Some(false), "{no}");
        }
        for none in ["", "?", "谁啊"] {
            assert_eq!(parse_answer(none), None, "{none}");
        }
    }
}
