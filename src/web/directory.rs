//! The directory: areas of the grid, elders, devices, responders, operator accounts.
//! Operators read and write the directory; only admins manage operator accounts.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Admin, Operator};
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::domain::{Area, Device, Elder, Responder};
use crate::store::{AreaInput, DeviceInput, ElderInput, ResponderInput};

/// Routes for every directory resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_areas, create_area))
        .routes(routes!(get_area, update_area))
        .routes(routes!(list_elders, create_elder))
        .routes(routes!(get_elder, update_elder))
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, update_device))
        .routes(routes!(command_device))
        .routes(routes!(list_responders, create_responder))
        .routes(routes!(get_responder, update_responder))
        .routes(routes!(create_operator))
}

/// Paging and filters for directory lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only this grid (elders).
    pub grid_id: Option<i64>,
    /// Only this elder (devices).
    pub elder_id: Option<i64>,
    /// At most this many (default 500, at most 10000).
    pub limit: Option<i64>,
}

impl ListParams {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(500).clamp(1, 10_000)
    }
}

/// All areas of the grid hierarchy.
#[utoipa::path(get, path = "/areas", tag = "directory", responses((status = 200, body = Vec<Area>)))]
async fn list_areas(State(app): State<AppState>, _: Operator) -> ApiResult<Json<Vec<Area>>> {
    Ok(Json(app.store.list_areas().await?))
}

/// Creates an area (district, street, community or grid).
#[utoipa::path(post, path = "/areas", tag = "directory", request_body = AreaInput,
    responses((status = 201, body = Area), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_area(
    State(app): State<AppState>,
    _: Operator,
    JsonBody(a): JsonBody<AreaInput>,
) -> ApiResult<(StatusCode, Json<Area>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.store.save_area(None, &a).await?),
    ))
}

/// One area.
#[utoipa::path(get, path = "/areas/{id}", tag = "directory", responses((status = 200, body = Area), (status = 404, body = ErrorBody)))]
async fn get_area(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Area>> {
    app.store
        .get_area(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("area"))
}

/// Replaces an area.
#[utoipa::path(put, path = "/areas/{id}", tag = "directory", request_body = AreaInput,
    responses((status = 200, body = Area), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_area(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(a): JsonBody<AreaInput>,
) -> ApiResult<Json<Area>> {
    app.store
        .get_area(id)
        .await?
        .ok_or(ApiError::NotFound("area"))?;
    Ok(Json(app.store.save_area(Some(id), &a).await?))
}

/// Elders, optionally of one grid.
#[utoipa::path(get, path = "/elders", tag = "directory", params(ListParams), responses((status = 200, body = Vec<Elder>)))]
async fn list_elders(
    State(app): State<AppState>,
    _: Operator,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Elder>>> {
    Ok(Json(app.store.list_elders(p.grid_id, p.limit()).await?))
}

/// Registers an elder.
#[utoipa::path(post, path = "/elders", tag = "directory", request_body = ElderInput,
    responses((status = 201, body = Elder), (status = 400, body = ErrorBody)))]
async fn create_elder(
    State(app): State<AppState>,
    _: Operator,
    JsonBody(e): JsonBody<ElderInput>,
) -> ApiResult<(StatusCode, Json<Elder>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.store.save_elder(None, &e).await?),
    ))
}

/// One elder.
#[utoipa::path(get, path = "/elders/{id}", tag = "directory", responses((status = 200, body = Elder), (status = 404, body = ErrorBody)))]
async fn get_elder(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Elder>> {
    app.store
        .get_elder(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("elder"))
}

/// Replaces an elder's record.
#[utoipa::path(put, path = "/elders/{id}", tag = "directory", request_body = ElderInput,
    responses((status = 200, body = Elder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_elder(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(e): JsonBody<ElderInput>,
) -> ApiResult<Json<Elder>> {
    app.store
        .get_elder(id)
        .await?
        .ok_or(ApiError::NotFound("elder"))?;
    Ok(Json(app.store.save_elder(Some(id), &e).await?))
}

/// Devices, optionally of one elder.
#[utoipa::path(get, path = "/devices", tag = "directory", params(ListParams), responses((status = 200, body = Vec<Device>)))]
async fn list_devices(
    State(app): State<AppState>,
    _: Operator,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(app.store.list_devices(p.elder_id, p.limit()).await?))
}

/// Registers a device. Its frames are accepted from now on.
#[utoipa::path(post, path = "/devices", tag = "directory", request_body = DeviceInput,
    responses((status = 201, body = Device), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_device(
    State(app): State<AppState>,
    _: Operator,
    JsonBody(d): JsonBody<DeviceInput>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let device = app.store.save_device(None, &d).await?;
    app.registry.forget(&device.protocol, &device.ident);
    Ok((StatusCode::CREATED, Json(device)))
}

/// One device.
#[utoipa::path(get, path = "/devices/{id}", tag = "directory", responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_device(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Device>> {
    app.store
        .get_device(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("device"))
}

/// Replaces a device's registration (omit `secret_hex` to keep the key).
#[utoipa::path(put, path = "/devices/{id}", tag = "directory", request_body = DeviceInput,
    responses((status = 200, body = Device), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_device(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(d): JsonBody<DeviceInput>,
) -> ApiResult<Json<Device>> {
    let old = app
        .store
        .get_device(id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let device = app.store.save_device(Some(id), &d).await?;
    app.registry.forget(&old.protocol, &old.ident);
    app.registry.forget(&device.protocol, &device.ident);
    Ok(Json(device))
}

/// Sends a command to a connected device (locate, help_coming, reset, …) and waits until it is written.
#[utoipa::path(post, path = "/devices/{id}/command", tag = "directory", request_body = super::incidents::CommandRequest,
    responses((status = 200, body = CommandAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn command_device(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<super::incidents::CommandRequest>,
) -> ApiResult<Json<CommandAccepted>> {
    let command = super::incidents::parse_command(&req)?;
    app.store
        .get_device(id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let command_id = app.devices.send(id, command).await.map_err(|e| match e {
        crate::notify::CommandError::Unsupported => ApiError::BadRequest(e.to_string()),
        _ => ApiError::Unavailable(e.to_string()),
    })?;
    tracing::info!(device_id = id, operator = %op.name, command = %req.command, command_id, "command sent");
    Ok(Json(CommandAccepted { command_id }))
}

/// A command written to a device's connection.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct CommandAccepted {
    /// The id the device echoes in its result (native protocol).
    pub command_id: u32,
}

/// Responders.
#[utoipa::path(get, path = "/responders", tag = "directory", params(ListParams), responses((status = 200, body = Vec<Responder>)))]
async fn list_responders(
    State(app): State<AppState>,
    _: Operator,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Responder>>> {
    Ok(Json(app.store.list_responders(p.limit()).await?))
}

/// Registers a responder.
#[utoipa::path(post, path = "/responders", tag = "directory", request_body = ResponderInput,
    responses((status = 201, body = Responder), (status = 400, body = ErrorBody)))]
async fn create_responder(
    State(app): State<AppState>,
    _: Operator,
    JsonBody(r): JsonBody<ResponderInput>,
) -> ApiResult<(StatusCode, Json<Responder>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.store.save_responder(None, &r).await?),
    ))
}

/// One responder.
#[utoipa::path(get, path = "/responders/{id}", tag = "directory", responses((status = 200, body = Responder), (status = 404, body = ErrorBody)))]
async fn get_responder(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Responder>> {
    app.store
        .get_responder(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("responder"))
}

/// Replaces a responder's record (omit `password` to keep it).
#[utoipa::path(put, path = "/responders/{id}", tag = "directory", request_body = ResponderInput,
    responses((status = 200, body = Responder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_responder(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ResponderInput>,
) -> ApiResult<Json<Responder>> {
    app.store
        .get_responder(id)
        .await?
        .ok_or(ApiError::NotFound("responder"))?;
    Ok(Json(app.store.save_responder(Some(id), &r).await?))
}

/// A new operator account.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct OperatorInput {
    /// Login name.
    pub name: String,
    /// Password, at least 8 characters.
    pub password: String,
    /// `admin` or `operator`.
    pub role: String,
}

/// Created operator.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct OperatorCreated {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
}

/// Creates an operator account (admins only).
#[utoipa::path(post, path = "/operators", tag = "directory", request_body = OperatorInput,
    responses((status = 201, body = OperatorCreated), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_operator(
    State(app): State<AppState>,
    _: Admin,
    JsonBody(o): JsonBody<OperatorInput>,
) -> ApiResult<(StatusCode, Json<OperatorCreated>)> {
    let id = app
        .store
        .create_operator(&o.name, &o.password, &o.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(OperatorCreated { id, name: o.name }),
    ))
}
