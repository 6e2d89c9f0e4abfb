//! Messages to a responder's app over MQTT (`<prefix>/responder/<id>/tasks`, QoS 1).
//!
//! The dispatch engine pushes task offers, updates and stand-downs through the same
//! [`Outbox`](crate::ingress::mqtt::Outbox); this endpoint lets an operator message a responder.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::ingress::mqtt::PushError;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(push_to_responder))
}

/// A message for a responder's app.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PushInput {
    /// `message` for operator messages (the dispatch engine uses `offer`, `update`, `stand_down`).
    #[serde(default = "default_type", rename = "type")]
    pub kind: String,
    /// Free text shown to the responder.
    pub text: Option<String>,
    /// Incident it concerns, if any.
    pub incident_id: Option<i64>,
}

fn default_type() -> String {
    "message".into()
}

/// Where the message went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushQueued {
    /// The MQTT topic.
    pub topic: String,
}

/// Queues a message to a responder's app (delivered at least once; QoS 1 to a persistent session).
#[utoipa::path(post, path = "/responders/{id}/push", tag = "responders", request_body = PushInput,
    responses((status = 202, body = PushQueued), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "MQTT off or the push outbox is full")))]
async fn push_to_responder(
    State(app): State<AppState>,
    operator: Operator,
    Path(id): Path<i64>,
    JsonBody(input): JsonBody<PushInput>,
) -> ApiResult<(StatusCode, Json<PushQueued>)> {
    let Some(outbox) = &app.mqtt else {
        return Err(ApiError::Unavailable("MQTT is not enabled".into()));
    };
    if app.store.get_responder(id).await?.is_none() {
        return Err(ApiError::NotFound("responder"));
    }
    let responder = id.to_string();
    let message = serde_json::json!({
        "type": input.kind,
        "text": input.text,
        "incident_id": input.incident_id,
        "from_operator": operator.0.name,
        "sent_at": crate::domain::now_millis(),
    });
    match outbox.publish_to_responder(&responder, &message) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(PushQueued {
                topic: outbox.responder_topic(&responder),
            }),
        )),
        Err(PushError::InvalidId) => Err(ApiError::BadRequest("invalid responder id".into())),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}
