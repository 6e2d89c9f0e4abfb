//! `GET /api/v1/device-log`: every event devices sent, in storage order, page by page (admins):
//! what an audit or a simulated day compares with what the devices had ACKed.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Admin;
use super::error::ApiResult;
use crate::store::DeviceLogRow;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(device_log))
}

/// Which page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeviceLogQuery {
    /// Events stored after this row id (default 0: from the first).
    pub after: Option<i64>,
    /// At most this many (default 1000, at most 10000).
    pub limit: Option<i64>,
}

/// Device events stored after `after`, oldest first; page on with the last row's id.
#[utoipa::path(get, path = "/device-log", tag = "reports", params(DeviceLogQuery),
    responses((status = 200, body = Vec<DeviceLogRow>)))]
async fn device_log(
    State(app): State<AppState>,
    _: Admin,
    Query(q): Query<DeviceLogQuery>,
) -> ApiResult<Json<Vec<DeviceLogRow>>> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    Ok(Json(
        app.store
            .device_log_after(q.after.unwrap_or(0).max(0), limit)
            .await?,
    ))
}
