//! The directory: areas of the grid, elders, devices, responders, operator accounts. Who may read
//! and write what is in [`super::policy`]; every read of an elder's record and every change here is
//! written to the audit log. Lists never carry key-safe codes.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use super::policy::Caller;
use super::scope;
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
        .routes(routes!(update_operator))
}

/// Paging and filters for directory lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only this grid (elders).
    pub grid_id: Option<i64>,
    /// Only this elder (devices).
    pub elder_id: Option<i64>,
    /// At most this many (default 500; smaller values count as 1, larger as 10000).
    pub limit: Option<i64>,
}

impl ListParams {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(500).clamp(1, 10_000)
    }
}

/// All areas of the grid hierarchy.
#[utoipa::path(get, path = "/areas", tag = "directory", responses((status = 200, body = Vec<Area>)))]
async fn list_areas(State(app): State<AppState>, _: Caller) -> ApiResult<Json<Vec<Area>>> {
    Ok(Json(app.store.list_areas().await?))
}

/// Creates an area (district, street, community or grid).
#[utoipa::path(post, path = "/areas", tag = "directory", request_body = AreaInput,
    responses((status = 201, body = Area), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_area(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(a): JsonBody<AreaInput>,
) -> ApiResult<(StatusCode, Json<Area>)> {
    let area = app.store.save_area(None, &a).await?;
    app.audit(
        &caller,
        "area_created",
        &format!("area:{}", area.id),
        serde_json::json!({"code": area.code}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(area)))
}

/// One area.
#[utoipa::path(get, path = "/areas/{id}", tag = "directory", responses((status = 200, body = Area), (status = 404, body = ErrorBody)))]
async fn get_area(
    State(app): State<AppState>,
    _: Caller,
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
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(a): JsonBody<AreaInput>,
) -> ApiResult<Json<Area>> {
    app.store
        .get_area(id)
        .await?
        .ok_or(ApiError::NotFound("area"))?;
    let area = app.store.save_area(Some(id), &a).await?;
    app.audit(
        &caller,
        "area_updated",
        &format!("area:{id}"),
        serde_json::json!({"code": area.code}),
    )
    .await;
    Ok(Json(area))
}

/// Elders, optionally of one grid.
#[utoipa::path(get, path = "/elders", tag = "directory", params(ListParams), responses((status = 200, body = Vec<Elder>)))]
async fn list_elders(
    State(app): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Elder>>> {
    let elders = app.store.list_elders(p.grid_id, p.limit()).await?;
    Ok(Json(
        elders
            .into_iter()
            .filter(|e| caller.sees_grid(e.grid_id))
            .map(|e| scope::redact(e, &caller, true))
            .collect(),
    ))
}

/// Registers an elder.
#[utoipa::path(post, path = "/elders", tag = "directory", request_body = ElderInput,
    responses((status = 201, body = Elder), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_elder(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(e): JsonBody<ElderInput>,
) -> ApiResult<(StatusCode, Json<Elder>)> {
    if !caller.sees_grid(e.grid_id) && caller.scope.is_some() {
        return Err(ApiError::Forbidden("that grid is outside your area"));
    }
    let elder = app.store.save_elder(None, &e).await?;
    app.audit(
        &caller,
        "elder_created",
        &format!("elder:{}", elder.id),
        serde_json::json!({}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(elder)))
}

/// One elder (the read is recorded in the audit log).
#[utoipa::path(get, path = "/elders/{id}", tag = "directory", responses((status = 200, body = Elder), (status = 404, body = ErrorBody)))]
async fn get_elder(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Elder>> {
    let elder = app
        .store
        .get_elder(id)
        .await?
        .filter(|e| caller.sees_grid(e.grid_id))
        .ok_or(ApiError::NotFound("elder"))?;
    app.audit(
        &caller,
        "elder_read",
        &format!("elder:{id}"),
        serde_json::json!({}),
    )
    .await;
    Ok(Json(scope::redact(elder, &caller, false)))
}

/// Replaces an elder's record.
#[utoipa::path(put, path = "/elders/{id}", tag = "directory", request_body = ElderInput,
    responses((status = 200, body = Elder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_elder(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(e): JsonBody<ElderInput>,
) -> ApiResult<Json<Elder>> {
    let old = app
        .store
        .get_elder(id)
        .await?
        .filter(|e| caller.sees_grid(e.grid_id))
        .ok_or(ApiError::NotFound("elder"))?;
    let elder = app.store.save_elder(Some(id), &e).await?;
    let detail = serde_json::json!({
        "key_safe_code_changed": old.key_safe_code != elder.key_safe_code,
        "grid_id": elder.grid_id,
    });
    app.audit(&caller, "elder_updated", &format!("elder:{id}"), detail)
        .await;
    Ok(Json(elder))
}

/// Devices, optionally of one elder.
#[utoipa::path(get, path = "/devices", tag = "directory", params(ListParams), responses((status = 200, body = Vec<Device>)))]
async fn list_devices(
    State(app): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Device>>> {
    let devices = app.store.list_devices(p.elder_id, p.limit()).await?;
    if caller.scope.is_none() {
        return Ok(Json(devices));
    }
    let mut out = Vec::new();
    for d in devices {
        if scope::sees_elder(&app, &caller, d.elder_id).await? {
            out.push(d);
        }
    }
    Ok(Json(out))
}

/// Registers a device. Its frames are accepted from now on.
#[utoipa::path(post, path = "/devices", tag = "directory", request_body = DeviceInput,
    responses((status = 201, body = Device), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_device(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(d): JsonBody<DeviceInput>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let device = app.store.save_device(None, &d).await?;
    app.registry.forget(&device.protocol, &device.ident);
    let detail = serde_json::json!({"protocol": device.protocol, "ident": device.ident,
        "elder_id": device.elder_id, "key_set": d.secret_hex.is_some()});
    app.audit(
        &caller,
        "device_created",
        &format!("device:{}", device.id),
        detail,
    )
    .await;
    Ok((StatusCode::CREATED, Json(device)))
}

/// One device.
#[utoipa::path(get, path = "/devices/{id}", tag = "directory", responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_device(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Device>> {
    let device = app
        .store
        .get_device(id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    if !scope::sees_elder(&app, &caller, device.elder_id).await? {
        return Err(ApiError::NotFound("device"));
    }
    Ok(Json(device))
}

/// Replaces a device's registration (omit `secret_hex` to keep the key). Open connections of the
/// device follow at once: disabled or re-keyed ends them.
#[utoipa::path(put, path = "/devices/{id}", tag = "directory", request_body = DeviceInput,
    responses((status = 200, body = Device), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_device(
    State(app): State<AppState>,
    caller: Caller,
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
    let detail = serde_json::json!({"key_changed": d.secret_hex.is_some(), "enabled": device.enabled,
        "elder_id": device.elder_id, "previous_elder_id": old.elder_id});
    app.audit(&caller, "device_updated", &format!("device:{id}"), detail)
        .await;
    Ok(Json(device))
}

/// Sends a command to a connected device (locate, help_coming, reset, …) and waits until it is
/// written. `text`, `set_sos_numbers`, `reset` and `set_heartbeat` are for admins only; every
/// command is recorded in the audit log.
#[utoipa::path(post, path = "/devices/{id}/command", tag = "directory", request_body = super::incidents::CommandRequest,
    responses((status = 200, body = CommandAccepted), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a command only admins may send"),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn command_device(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<super::incidents::CommandRequest>,
) -> ApiResult<Json<CommandAccepted>> {
    let command = super::incidents::parse_command(&req, &caller)?;
    let device = app
        .store
        .get_device(id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    if !scope::sees_elder(&app, &caller, device.elder_id).await? {
        return Err(ApiError::NotFound("device"));
    }
    let command_id = app.devices.send(id, command).await.map_err(|e| match e {
        crate::notify::CommandError::Unsupported => ApiError::BadRequest(e.to_string()),
        _ => ApiError::Unavailable(e.to_string()),
    })?;
    tracing::info!(device_id = id, operator = %caller.principal.name, command = %req.command, command_id, "command sent");
    app.audit(
        &caller,
        "device_command",
        &format!("device:{id}"),
        super::incidents::command_detail(&req, command_id),
    )
    .await;
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
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<Responder>>> {
    let list = app.store.list_responders(p.limit()).await?;
    Ok(Json(
        list.into_iter()
            .filter(|r| caller.sees_grid(r.grid_id))
            .collect(),
    ))
}

/// Registers a responder.
#[utoipa::path(post, path = "/responders", tag = "directory", request_body = ResponderInput,
    responses((status = 201, body = Responder), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_responder(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<ResponderInput>,
) -> ApiResult<(StatusCode, Json<Responder>)> {
    let responder = app.store.save_responder(None, &r).await?;
    app.audit(
        &caller,
        "responder_created",
        &format!("responder:{}", responder.id),
        serde_json::json!({"password_set": r.password.is_some()}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(responder)))
}

/// One responder.
#[utoipa::path(get, path = "/responders/{id}", tag = "directory", responses((status = 200, body = Responder), (status = 404, body = ErrorBody)))]
async fn get_responder(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Responder>> {
    app.store
        .get_responder(id)
        .await?
        .filter(|r| caller.sees_grid(r.grid_id))
        .map(Json)
        .ok_or(ApiError::NotFound("responder"))
}

/// Replaces a responder's record (omit `password` to keep it; a new one ends their sessions).
#[utoipa::path(put, path = "/responders/{id}", tag = "directory", request_body = ResponderInput,
    responses((status = 200, body = Responder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_responder(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<ResponderInput>,
) -> ApiResult<Json<Responder>> {
    app.store
        .get_responder(id)
        .await?
        .filter(|r| caller.sees_grid(r.grid_id))
        .ok_or(ApiError::NotFound("responder"))?;
    let responder = app.store.save_responder(Some(id), &r).await?;
    if let Some(password) = &r.password {
        app.store.set_responder_password(id, password).await?;
    }
    app.audit(
        &caller,
        "responder_updated",
        &format!("responder:{id}"),
        serde_json::json!({"password_changed": r.password.is_some()}),
    )
    .await;
    Ok(Json(responder))
}

/// A new operator account.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct OperatorInput {
    /// Login name (not blank).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Password, 8 to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// The role.
    pub role: OperatorRole,
    /// Limit the operator to one district, street or community.
    #[serde(default)]
    pub scope_area_id: Option<i64>,
}

/// An operator's role (`operator` is accepted as the former name of `dispatcher`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Every right.
    Admin,
    /// Works incidents and the directory of people.
    Dispatcher,
    /// Reads only.
    Viewer,
    /// Former name of `dispatcher`.
    Operator,
}

impl OperatorRole {
    fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Admin => "admin",
            OperatorRole::Dispatcher | OperatorRole::Operator => "dispatcher",
            OperatorRole::Viewer => "viewer",
        }
    }
}

/// Changes to an operator account.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct OperatorUpdate {
    /// The role.
    pub role: OperatorRole,
    /// A disabled operator cannot log in, and their sessions end at once (omit to keep).
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Limit the operator to one district, street or community (`null`: everything; omit to
    /// keep).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub scope_area_id: Option<Option<i64>>,
    /// A new password (at least 8 characters); omit to keep it. Their sessions end.
    #[serde(default)]
    pub password: Option<String>,
}

/// A field that is present (possibly `null`), as opposed to absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
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
    responses((status = 201, body = OperatorCreated), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_operator(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(o): JsonBody<OperatorInput>,
) -> ApiResult<(StatusCode, Json<OperatorCreated>)> {
    let id = app
        .store
        .create_operator(&o.name, &o.password, o.role.as_str(), o.scope_area_id)
        .await?;
    app.audit(&caller, "operator_created", &format!("operator:{id}"),
        serde_json::json!({"name": o.name, "role": o.role.as_str(), "scope_area_id": o.scope_area_id}))
        .await;
    Ok((
        StatusCode::CREATED,
        Json(OperatorCreated { id, name: o.name }),
    ))
}

/// Changes an operator's role, scope or disabled flag (admins only). Disabling ends the
/// operator's sessions at once, their live streams included.
#[utoipa::path(put, path = "/operators/{id}", tag = "directory", request_body = OperatorUpdate,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_operator(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(o): JsonBody<OperatorUpdate>,
) -> ApiResult<StatusCode> {
    let current = app
        .store
        .list_operators()
        .await?
        .into_iter()
        .find(|op| op.id == id)
        .ok_or(ApiError::NotFound("operator"))?;
    if id == caller.principal.id
        && caller.principal.kind == crate::store::SubjectKind::Operator
        && (o.role.as_str() != "admin" || o.disabled == Some(true))
    {
        return Err(ApiError::BadRequest(
            "you cannot take away your own admin role or disable yourself".into(),
        ));
    }
    let password = o.password.as_deref().filter(|p| !p.is_empty());
    if password.is_some_and(|p| p.chars().count() < 8) {
        return Err(ApiError::BadRequest(
            "a password has at least 8 characters".into(),
        ));
    }
    let disabled = o.disabled.unwrap_or(current.disabled);
    let scope = o.scope_area_id.unwrap_or(current.scope_area_id);
    if !app
        .store
        .update_operator(id, o.role.as_str(), disabled, scope)
        .await?
    {
        return Err(ApiError::NotFound("operator"));
    }
    if let Some(password) = password {
        app.store.set_operator_password(id, password).await?;
    }
    app.audit(
        &caller,
        "operator_updated",
        &format!("operator:{id}"),
        serde_json::json!({"role": o.role.as_str(), "disabled": disabled, "scope_area_id": scope,
                           "password_changed": password.is_some()}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
