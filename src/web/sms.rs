//! Callbacks of an HTTP SMS provider: delivery reports and people's replies, authenticated by the
//! shared token in `X-OneKey-Sms-Token` (`[notify.sms.http] callback_token`). The SMPP provider
//! needs none of this: its reports and replies arrive on the SMPP session.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::notify::channels::sms::Inbound;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbound))
        .routes(routes!(report))
}

/// A text someone sent to the centre's number.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InboundSms {
    /// The sender's number.
    pub from: String,
    /// What they wrote.
    pub text: String,
}

/// A delivery report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SmsReport {
    /// The provider's message id (from its answer to the send).
    pub message_id: String,
    /// The message reached the handset.
    pub delivered: bool,
    /// The provider's state word, if any (`DELIVRD`, `UNDELIV`…).
    #[serde(default)]
    pub state: Option<String>,
}

fn checked(app: &AppState, headers: &HeaderMap) -> ApiResult<tokio::sync::mpsc::Sender<Inbound>> {
    let Some(cb) = &app.sms_inbound else {
        return Err(ApiError::NotFound("SMS callback"));
    };
    let given = headers
        .get("x-onekey-sms-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let same = !cb.token.is_empty()
        && given.len() == cb.token.len()
        && given
            .bytes()
            .zip(cb.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        metrics::counter!("onekey_sms_callbacks_refused_total").increment(1);
        tracing::warn!("SMS callback with a wrong token refused");
        return Err(ApiError::Unauthorized);
    }
    Ok(cb.inbound.clone())
}

async fn forward(tx: tokio::sync::mpsc::Sender<Inbound>, event: Inbound) -> ApiResult<StatusCode> {
    tx.send(event)
        .await
        .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    Ok(StatusCode::ACCEPTED)
}

/// A reply from a family member or responder (`1` going / accept, `2` not going / decline).
#[utoipa::path(post, path = "/sms/inbound", tag = "sms", request_body = InboundSms,
    security(()),
    responses((status = 202), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no HTTP SMS provider configured")))]
async fn inbound(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(sms): JsonBody<InboundSms>,
) -> ApiResult<StatusCode> {
    let tx = checked(&app, &headers)?;
    if sms.from.len() > 32 || sms.text.chars().count() > 1000 {
        return Err(ApiError::BadRequest("number or text too long".into()));
    }
    forward(
        tx,
        Inbound::Reply {
            from: sms.from,
            text: sms.text,
        },
    )
    .await
}

/// A delivery report for a message sent through the provider.
#[utoipa::path(post, path = "/sms/report", tag = "sms", request_body = SmsReport,
    security(()),
    responses((status = 202), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no HTTP SMS provider configured")))]
async fn report(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(r): JsonBody<SmsReport>,
) -> ApiResult<StatusCode> {
    let tx = checked(&app, &headers)?;
    if r.message_id.is_empty() || r.message_id.len() > 128 {
        return Err(ApiError::BadRequest(
            "message_id must be 1 to 128 characters".into(),
        ));
    }
    let state = r
        .state
        .unwrap_or_else(|| if r.delivered { "DELIVRD" } else { "UNDELIV" }.into());
    forward(
        tx,
        Inbound::Report {
            message_id: r.message_id,
            delivered: r.delivered,
            state,
        },
    )
    .await
}
