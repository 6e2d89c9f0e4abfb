//! `GET /api/v1/fleet`: devices by state and responders on duty, per grid, with the grids that
//! nobody covers, for the console's fleet page.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::policy::Caller;
use crate::domain::{Area, AreaLevel, Device, DeviceState, Millis, Responder};

/// A battery at or below this share is low (the same share that raises the alarm).
pub const LOW_BATTERY_PCT: i64 = crate::domain::power::LOW_BATTERY_PCT as i64;
const ALL: i64 = 100_000;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fleet))
}

/// Devices of one grid by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceCounts {
    /// Heard from within its heartbeat period.
    pub online: u64,
    /// Silent past its heartbeat period, or never connected.
    pub silent: u64,
    /// Battery at or below 20 %.
    pub low_battery: u64,
    /// An open tamper or removal incident.
    pub tamper: u64,
    /// All devices of the grid.
    pub total: u64,
}

/// One grid's coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridFleet {
    /// The grid (`null`: devices of elders without a grid).
    pub area_id: Option<i64>,
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Devices by state.
    pub devices: DeviceCounts,
    /// Responders of this grid on duty now.
    pub responders_on_duty: u64,
    /// Nobody of this grid on duty.
    pub uncovered: bool,
}

/// One device and the state the fleet page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetDevice {
    /// Row id.
    pub id: i64,
    /// Protocol.
    pub protocol: String,
    /// Identity on the wire.
    pub ident: String,
    /// Model.
    pub model: String,
    /// The elder.
    pub elder_id: Option<i64>,
    /// The elder's grid.
    pub grid_id: Option<i64>,
    /// `online`, `silent`, `low_battery` or `tamper` (the worst applies).
    pub state: String,
    /// Battery.
    pub battery_pct: Option<i64>,
    /// Last heard, Unix ms.
    pub last_seen: Option<Millis>,
}

/// The fleet page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fleet {
    /// Per grid.
    pub grids: Vec<GridFleet>,
    /// Every device.
    pub devices: Vec<FleetDevice>,
}

/// Devices by state and responders on duty, per grid.
#[utoipa::path(get, path = "/fleet", tag = "reports", responses((status = 200, body = Fleet)))]
async fn fleet(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Fleet>> {
    let mut areas = app.store.list_areas().await?;
    let mut devices = app.store.list_devices(None, ALL).await?;
    let elders = app.store.list_elders(None, ALL).await?;
    let mut responders = app.store.list_responders(ALL).await?;
    let tampered = app.store.tampered_devices().await?;
    let grid_of: HashMap<i64, Option<i64>> = elders.iter().map(|e| (e.id, e.grid_id)).collect();
    if caller.scope.is_some() {
        // A scoped operator's fleet: the grids of their area, and what is in them.
        areas.retain(|a| a.level != AreaLevel::Grid || caller.sees_grid(Some(a.id)));
        devices.retain(|d| {
            caller.sees_grid(d.elder_id.and_then(|e| grid_of.get(&e).copied().flatten()))
        });
        responders.retain(|r| caller.sees_grid(r.grid_id));
    }
    Ok(Json(build(
        &areas,
        &devices,
        &grid_of,
        &responders,
        &tampered,
    )))
}

/// The worst state of a device: tamper, then silent, then low battery.
pub fn state_of(device: &Device, tampered: bool) -> &'static str {
    if tampered {
        "tamper"
    } else if device.state != DeviceState::Online {
        "silent"
    } else if device.battery_pct.is_some_and(|b| b <= LOW_BATTERY_PCT) {
        "low_battery"
    } else {
        "online"
    }
}

/// Aggregates per grid. Pure.
pub fn build(
    areas: &[Area],
    devices: &[Device],
    grid_of_elder: &HashMap<i64, Option<i64>>,
    responders: &[Responder],
    tampered: &[i64],
) -> Fleet {
    let mut grids: Vec<GridFleet> = areas
        .iter()
        .filter(|a| a.level == AreaLevel::Grid)
        .map(|a| GridFleet {
            area_id: Some(a.id),
            code: a.code.clone(),
            name: a.name.clone(),
            devices: DeviceCounts::default(),
            responders_on_duty: 0,
            uncovered: true,
        })
        .collect();
    let mut out_devices = Vec::with_capacity(devices.len());
    for d in devices.iter().filter(|d| d.enabled) {
        let grid_id = d
            .elder_id
            .and_then(|e| grid_of_elder.get(&e).copied().flatten());
        let state = state_of(d, tampered.contains(&d.id));
        let slot = match grids.iter().position(|g| g.area_id == grid_id) {
            Some(i) => i,
            None => {
                grids.push(GridFleet {
                    area_id: grid_id,
                    code: String::new(),
                    name: String::new(),
                    devices: DeviceCounts::default(),
                    responders_on_duty: 0,
                    uncovered: false,
                });
                grids.len() - 1
            }
        };
        let c = &mut grids[slot].devices;
        c.total += 1;
        match state {
            "tamper" => c.tamper += 1,
            "silent" => c.silent += 1,
            "low_battery" => c.low_battery += 1,
            _ => c.online += 1,
        }
        out_devices.push(FleetDevice {
            id: d.id,
            protocol: d.protocol.clone(),
            ident: d.ident.clone(),
            model: d.model.clone(),
            elder_id: d.elder_id,
            grid_id,
            state: state.to_string(),
            battery_pct: d.battery_pct,
            last_seen: d.last_seen,
        });
    }
    for r in responders.iter().filter(|r| r.on_duty) {
        if let Some(g) = grids
            .iter_mut()
            .find(|g| g.area_id.is_some() && g.area_id == r.grid_id)
        {
            g.responders_on_duty += 1;
        }
    }
    for g in grids.iter_mut().filter(|g| g.area_id.is_some()) {
        g.uncovered = g.responders_on_duty == 0;
    }
    Fleet {
        grids,
        devices: out_devices,
    }
}
