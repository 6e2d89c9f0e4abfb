//! Webhook subscriptions (admins): create, list, stop; the dead-letter list of events that could
//! not be delivered, and replaying one.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Admin;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::domain::now_millis;
use crate::store::{Channel, Notification, WebhookInput, WebhookSubscription};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stop))
        .routes(routes!(dead))
        .routes(routes!(replay))
}

/// A new subscription and the secret its receiver checks signatures with (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    /// The subscription.
    pub subscription: WebhookSubscription,
    /// HMAC-SHA256 key of `X-OneKey-Signature`.
    pub secret: String,
}

/// Every subscription.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookSubscription>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
async fn list(State(app): State<AppState>, _: Admin) -> ApiResult<Json<Vec<WebhookSubscription>>> {
    Ok(Json(app.store.list_webhooks().await?))
}

/// Subscribes a system to incident events (by kind, category and area).
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses((status = 201, body = WebhookCreated), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    Admin(admin): Admin,
    JsonBody(input): JsonBody<WebhookInput>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let (subscription, secret) = app
        .store
        .create_webhook(&input, now_millis())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Invalid(m) => ApiError::BadRequest(m),
            other => other.into(),
        })?;
    tracing::info!(id = subscription.id, url = %subscription.url, by = %admin.name, "webhook subscribed");
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            subscription,
            secret,
        }),
    ))
}

/// Stops a subscription (queued deliveries to it are dropped as failed).
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn stop(State(app): State<AppState>, _: Admin, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    if app.store.disable_webhook(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook"))
    }
}

/// How many dead letters to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeadParams {
    /// At most this many, newest last (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Webhook deliveries given up on, with the last error.
#[utoipa::path(get, path = "/webhooks/dead", tag = "webhooks", params(DeadParams),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
async fn dead(
    State(app): State<AppState>,
    _: Admin,
    Query(p): Query<DeadParams>,
) -> ApiResult<Json<Vec<Notification>>> {
    Ok(Json(
        app.store
            .failed_notifications(Channel::Webhook, p.limit.unwrap_or(100))
            .await?,
    ))
}

/// Queues a failed notification again, now.
#[utoipa::path(post, path = "/notifications/{id}/replay", tag = "webhooks",
    responses((status = 202), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not a failed notification")))]
async fn replay(
    State(app): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let n = app
        .store
        .get_notification(id)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    if !app.store.replay_notification(id, now_millis()).await? {
        return Err(ApiError::Conflict(
            "only a failed notification can be replayed".into(),
        ));
    }
    tracing::info!(id, by = %admin.name, "notification replayed");
    app.outbox.wake(n.channel);
    Ok(StatusCode::ACCEPTED)
}
