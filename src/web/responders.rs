//! An operator's message to a responder's app: queued in the outbox like every other push, so it
//! reaches the MQTT task topic (`<prefix>/responder/<id>/tasks`, QoS 1) and the app's live stream,
//! and shows as delivered once the app confirms it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::domain::now_millis;
use crate::store::{Channel, NewNotification};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(push_to_responder))
}

/// A message for a responder's app.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PushInput {
    /// Free text shown to the responder (1–500 characters, not blank).
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub text: String,
    /// Incident it concerns, if any.
    pub incident_id: Option<i64>,
}

/// The queued message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushQueued {
    /// Notification id: the `id` of the message the app receives.
    pub id: i64,
}

/// Queues a message to a responder's app (delivered at least once; QoS 1 to a persistent session).
#[utoipa::path(post, path = "/responders/{id}/push", tag = "responders", request_body = PushInput,
    responses((status = 202, body = PushQueued), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn push_to_responder(
    State(app): State<AppState>,
    operator: Operator,
    Path(id): Path<i64>,
    JsonBody(input): JsonBody<PushInput>,
) -> ApiResult<(StatusCode, Json<PushQueued>)> {
    let text = input.text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::BadRequest(
            "text must be 1 to 500 characters".into(),
        ));
    }
    if app.store.get_responder(id).await?.is_none() {
        return Err(ApiError::NotFound("responder"));
    }
    if let Some(incident) = input.incident_id
        && app.store.get_incident(incident).await?.is_none()
    {
        return Err(ApiError::NotFound("incident"));
    }
    let now = now_millis();
    let message = NewNotification {
        idem_key: format!("message:{id}:{now}:{:016x}", rand::random::<u64>()),
        incident_id: input.incident_id,
        channel: Channel::Push,
        recipient: id.to_string(),
        responder_id: Some(id),
        purpose: "message".into(),
        payload: serde_json::json!({
            "type": "message",
            "text": text,
            "from_operator": operator.0.name,
        }),
        due_at: now,
        confirm_by: None,
        fallback: None,
    };
    let queued = app
        .store
        .enqueue_notification(&message, now)
        .await?
        .ok_or_else(|| ApiError::Conflict("message already queued".into()))?;
    app.responders.publish([&queued]);
    app.outbox.wake(Channel::Push);
    tracing::info!(responder = id, id = queued.id, by = %operator.0.name, "operator message queued");
    Ok((StatusCode::ACCEPTED, Json(PushQueued { id: queued.id })))
}
