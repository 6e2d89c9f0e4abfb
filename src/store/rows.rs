//! Row → domain type mapping, in one place, so that every query selects the same columns.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{
    Area, AreaLevel, Category, Device, DeviceState, Elder, GeoPoint, Incident, IncidentEvent,
    IncidentStatus, LivingSituation, NotifyBy, Outcome, Responder, ResponderKind, now_millis,
};

fn json_col<T: serde::de::DeserializeOwned + Default>(row: &AnyRow, col: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(col)?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

fn bool_col(row: &AnyRow, col: &str) -> sqlx::Result<Option<bool>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v != 0))
}

fn enum_col<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(col)?;
    serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|_| {
        sqlx::Error::ColumnDecode {
            index: col.to_string(),
            source: format!("unknown value {text:?}").into(),
        }
    })
}

pub const INCIDENT_COLUMNS: &str = "id, elder_id, device_id, category, kind, priority, status, \
    outcome, probable_false_alarm, alarm_count, lat, lon, accuracy_m, received_at, stored_at, \
    shown_at, acked_at, acked_by, dispatched_at, accepted_at, on_scene_at, closed_at, closed_by, attention, attention_at, taken_by, taken_at";

pub fn incident(row: &AnyRow) -> sqlx::Result<Incident> {
    let category: String = row.try_get("category")?;
    let status: String = row.try_get("status")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    let lat: Option<f64> = row.try_get("lat")?;
    let lon: Option<f64> = row.try_get("lon")?;
    let accuracy: Option<f64> = row.try_get("accuracy_m")?;
    Ok(Incident {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        device_id: row.try_get("device_id")?,
        category: Category::parse(&category).unwrap_or(Category::Emergency),
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        status: IncidentStatus::parse(&status).unwrap_or(IncidentStatus::New),
        outcome: outcome.and_then(|o| serde_json::from_value::<Outcome>(o.into()).ok()),
        probable_false_alarm: bool_col(row, "probable_false_alarm")?.unwrap_or(false),
        alarm_count: row.try_get("alarm_count")?,
        location: lat.zip(lon).map(|(lat, lon)| GeoPoint {
            lat,
            lon,
            accuracy_m: accuracy.map(|a| a as f32),
        }),
        received_at: row.try_get("received_at")?,
        stored_at: row.try_get("stored_at")?,
        shown_at: row.try_get("shown_at")?,
        acked_at: row.try_get("acked_at")?,
        acked_by: row.try_get("acked_by")?,
        dispatched_at: row.try_get("dispatched_at")?,
        accepted_at: row.try_get("accepted_at")?,
        on_scene_at: row.try_get("on_scene_at")?,
        closed_at: row.try_get("closed_at")?,
        closed_by: row.try_get("closed_by")?,
        attention: row.try_get("attention")?,
        attention_at: row.try_get("attention_at")?,
        taken_by: row.try_get("taken_by")?,
        taken_at: row.try_get("taken_at")?,
    })
}

pub fn incident_event(row: &AnyRow) -> sqlx::Result<IncidentEvent> {
    let detail: String = row.try_get("detail")?;
    Ok(IncidentEvent {
        id: row.try_get("id")?,
        incident_id: row.try_get("incident_id")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        actor: row.try_get("actor")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

pub const AREA_COLUMNS: &str = "id, parent_id, level, code, name, worker_id, boundary, updated_at";

pub fn area(row: &AnyRow) -> sqlx::Result<Area> {
    let level: String = row.try_get("level")?;
    Ok(Area {
        id: row.try_get("id")?,
        parent_id: row.try_get("parent_id")?,
        level: AreaLevel::parse(&level).unwrap_or(AreaLevel::Grid),
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        worker_id: row.try_get("worker_id")?,
        boundary: json_col(row, "boundary")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub const ELDER_COLUMNS: &str = "id, name, phone, address, lat, lon, grid_id, living, \
    health_notes, medications, contacts, key_safe_code, checkin_hours, active, updated_at";

pub fn elder(row: &AnyRow) -> sqlx::Result<Elder> {
    Ok(Elder {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        phone: row.try_get("phone")?,
        address: row.try_get("address")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        grid_id: row.try_get("grid_id")?,
        living: enum_col::<LivingSituation>(row, "living")?,
        health_notes: row.try_get("health_notes")?,
        medications: row.try_get("medications")?,
        contacts: json_col(row, "contacts")?,
        key_safe_code: row.try_get("key_safe_code")?,
        checkin_hours: row.try_get("checkin_hours")?,
        active: bool_col(row, "active")?.unwrap_or(true),
        updated_at: row.try_get("updated_at")?,
    })
}

pub const DEVICE_COLUMNS: &str = "id, protocol, ident, model, elder_id, enabled, heartbeat_s, \
    battery_pct, mains, signal_pct, lat, lon, last_seen, updated_at";

pub fn device(row: &AnyRow) -> sqlx::Result<Device> {
    let heartbeat_s: i64 = row.try_get("heartbeat_s")?;
    let last_seen: Option<i64> = row.try_get("last_seen")?;
    let state = match last_seen {
        None => DeviceState::NeverSeen,
        // Two missed heartbeats and a margin make a device silent.
        Some(t) if now_millis() - t > heartbeat_s * 2_000 + 30_000 => DeviceState::Silent,
        Some(_) => DeviceState::Online,
    };
    Ok(Device {
        id: row.try_get("id")?,
        protocol: row.try_get("protocol")?,
        ident: row.try_get("ident")?,
        model: row.try_get("model")?,
        elder_id: row.try_get("elder_id")?,
        enabled: bool_col(row, "enabled")?.unwrap_or(true),
        heartbeat_s,
        state,
        battery_pct: row.try_get("battery_pct")?,
        mains: bool_col(row, "mains")?,
        signal_pct: row.try_get("signal_pct")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        last_seen,
        updated_at: row.try_get("updated_at")?,
    })
}

pub const RESPONDER_COLUMNS: &str = "id, name, phone, kind, team, skills, grid_id, home_lat, \
    home_lon, lat, lon, on_duty, shifts, max_tasks, active, updated_at, notify_by";

pub fn responder(row: &AnyRow) -> sqlx::Result<Responder> {
    let kind: String = row.try_get("kind")?;
    Ok(Responder {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        phone: row.try_get("phone")?,
        kind: ResponderKind::parse(&kind).unwrap_or(ResponderKind::Volunteer),
        team: row.try_get("team")?,
        skills: json_col(row, "skills")?,
        grid_id: row.try_get("grid_id")?,
        home_lat: row.try_get("home_lat")?,
        home_lon: row.try_get("home_lon")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        on_duty: bool_col(row, "on_duty")?.unwrap_or(false),
        shifts: json_col(row, "shifts")?,
        max_tasks: row.try_get("max_tasks")?,
        active: bool_col(row, "active")?.unwrap_or(true),
        updated_at: row.try_get("updated_at")?,
        notify_by: NotifyBy::parse(&row.try_get::<String, _>("notify_by")?),
    })
}
