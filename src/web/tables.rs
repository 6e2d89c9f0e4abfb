//! Administration tables: paged, searchable lists of elders, devices and responders with names
//! (`GET /tables/…`), switching records off and on without deleting them
//! (`POST /{elders,devices,responders,operators}/{id}/active`) and editing operator accounts
//! (`PUT /operators/{id}`, admins only).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Admin, Operator};
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::store::{
    ActiveTable, DeviceEntry, DeviceInput, ElderEntry, Page, ResponderEntry, TableQuery,
};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(elders))
        .routes(routes!(devices))
        .routes(routes!(responders))
        .routes(routes!(elder_active))
        .routes(routes!(device_active))
        .routes(routes!(responder_active))
        .routes(routes!(operator_active))
}

/// Elders matching `q`, a page at a time, with grid names and device counts.
#[utoipa::path(get, path = "/tables/elders", tag = "directory", params(TableQuery),
    responses((status = 200, body = Page<ElderEntry>)))]
async fn elders(
    State(app): State<AppState>,
    _: Operator,
    Query(q): Query<TableQuery>,
) -> ApiResult<Json<Page<ElderEntry>>> {
    Ok(Json(app.store.elder_table(&q).await?))
}

/// Devices matching `q`, a page at a time, with the elder's and grid's names.
#[utoipa::path(get, path = "/tables/devices", tag = "directory", params(TableQuery),
    responses((status = 200, body = Page<DeviceEntry>)))]
async fn devices(
    State(app): State<AppState>,
    _: Operator,
    Query(q): Query<TableQuery>,
) -> ApiResult<Json<Page<DeviceEntry>>> {
    Ok(Json(app.store.device_table(&q).await?))
}

/// Responders matching `q`, a page at a time, with grid names and tasks in hand.
#[utoipa::path(get, path = "/tables/responders", tag = "directory", params(TableQuery),
    responses((status = 200, body = Page<ResponderEntry>)))]
async fn responders(
    State(app): State<AppState>,
    _: Operator,
    Query(q): Query<TableQuery>,
) -> ApiResult<Json<Page<ResponderEntry>>> {
    Ok(Json(app.store.responder_table(&q).await?))
}

/// On or off.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ActiveRequest {
    /// `false` disables the record, `true` enables it again.
    pub active: bool,
}

async fn set(app: &AppState, table: ActiveTable, id: i64, active: bool) -> ApiResult<StatusCode> {
    if !app.store.set_active(table, id, active).await? {
        return Err(ApiError::NotFound("record"));
    }
    if table == ActiveTable::Responders
        && let Some(d) = &app.dispatch
    {
        d.refresh_responders().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Disables an elder (no welfare checks; alarms from their devices are still handled) or enables
/// them again.
#[utoipa::path(post, path = "/elders/{id}/active", tag = "directory", request_body = ActiveRequest,
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn elder_active(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ActiveRequest>,
) -> ApiResult<StatusCode> {
    set(&app, ActiveTable::Elders, id, r.active).await
}

/// Disables a responder (no offers, signed out of the app) or enables them again.
#[utoipa::path(post, path = "/responders/{id}/active", tag = "directory", request_body = ActiveRequest,
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn responder_active(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ActiveRequest>,
) -> ApiResult<StatusCode> {
    set(&app, ActiveTable::Responders, id, r.active).await
}

/// Disables an operator account (signed out, cannot sign in) or enables it again (admins only).
#[utoipa::path(post, path = "/operators/{id}/active", tag = "directory", request_body = ActiveRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn operator_active(
    State(app): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ActiveRequest>,
) -> ApiResult<StatusCode> {
    if id == me.id && !r.active {
        return Err(ApiError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    set(&app, ActiveTable::Operators, id, r.active).await
}

/// Disables a device (its frames are refused) or enables it again.
#[utoipa::path(post, path = "/devices/{id}/active", tag = "directory", request_body = ActiveRequest,
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn device_active(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ActiveRequest>,
) -> ApiResult<StatusCode> {
    let d = app
        .store
        .get_device(id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let input = DeviceInput {
        protocol: d.protocol.clone(),
        ident: d.ident.clone(),
        secret_hex: None,
        model: d.model,
        elder_id: d.elder_id,
        enabled: r.active,
        heartbeat_s: d.heartbeat_s,
    };
    app.store.save_device(Some(id), &input).await?;
    app.registry.forget(&d.protocol, &d.ident);
    Ok(StatusCode::NO_CONTENT)
}
