//! Create, read and update for the directory: areas, elders, devices, responders.

use serde::Deserialize;
use sqlx::Row;

use super::rows::{self, AREA_COLUMNS, DEVICE_COLUMNS, ELDER_COLUMNS, RESPONDER_COLUMNS};
use super::sealing;
use super::{Store, StoreError, StoreResult};
use crate::domain::{
    Area, AreaLevel, Contact, Device, Elder, LivingSituation, Responder, ResponderKind, Shift,
    now_millis,
};

/// Fields to create or replace an area.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct AreaInput {
    /// Enclosing area; required for every level but district.
    pub parent_id: Option<i64>,
    /// Level.
    pub level: AreaLevel,
    /// Stable unique code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Responsible grid worker (responder id).
    #[serde(default)]
    pub worker_id: Option<i64>,
    /// Outline as `[lat, lon]` pairs.
    #[serde(default)]
    pub boundary: Vec<[f64; 2]>,
}

/// Fields to create or replace an elder.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct ElderInput {
    /// Full name (not blank).
    #[schema(pattern = "\\S")]
    pub name: String,
    /// Phone at home.
    #[serde(default)]
    pub phone: Option<String>,
    /// Address.
    pub address: String,
    /// Latitude.
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Longitude.
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    /// Grid.
    #[serde(default)]
    pub grid_id: Option<i64>,
    /// Living situation.
    pub living: LivingSituation,
    /// Health notes.
    #[serde(default)]
    pub health_notes: String,
    /// Medications.
    #[serde(default)]
    pub medications: String,
    /// Contacts and key holders.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Key-safe code.
    #[serde(default)]
    pub key_safe_code: Option<String>,
    /// Hours without a sign of life before a welfare visit (default 24).
    #[serde(default = "default_checkin_hours")]
    pub checkin_hours: i64,
}

fn default_checkin_hours() -> i64 {
    24
}

/// Fields to register or replace a device.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceInput {
    /// `native`, `gt06`, `watch`, `h02`, `sia` or `mqtt`.
    pub protocol: String,
    /// Identity on the wire (not blank).
    #[schema(pattern = "\\S")]
    pub ident: String,
    /// Per-device secret, hex: 32 bytes for the native protocol, an AES key for DC-09 accounts.
    #[serde(default)]
    pub secret_hex: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Elder.
    #[serde(default)]
    pub elder_id: Option<i64>,
    /// Accept frames from it (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Heartbeat period in seconds (default 300).
    #[serde(default = "default_heartbeat")]
    #[schema(minimum = 10, maximum = 86400)]
    pub heartbeat_s: i64,
}

fn default_true() -> bool {
    true
}

fn default_heartbeat() -> i64 {
    300
}

/// Fields to create or replace a responder.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct ResponderInput {
    /// Name (not blank).
    #[schema(pattern = "\\S")]
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Role.
    pub kind: ResponderKind,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
    /// Skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Home grid.
    #[serde(default)]
    pub grid_id: Option<i64>,
    /// Home latitude.
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub home_lat: f64,
    /// Home longitude.
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub home_lon: f64,
    /// Most tasks at once (default 1).
    #[serde(default = "default_max_tasks")]
    pub max_tasks: i64,
    /// Recurring weekly shifts (default none): available inside them without going on duty.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Password for the responder app, 8 to 1024 bytes (stored as an Argon2 hash; never
    /// returned).
    #[serde(default, skip_serializing)]
    #[schema(write_only, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// How offers reach them: `app` (default) or `sms` (no app).
    #[serde(default)]
    pub notify_by: crate::domain::NotifyBy,
}

fn default_max_tasks() -> i64 {
    1
}

/// The protocols a device may be registered with.
pub const PROTOCOLS: &[&str] = &["native", "gt06", "watch", "h02", "sia", "mqtt"];

fn check_coords(lat: f64, lon: f64) -> StoreResult<()> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "coordinates out of range: {lat}, {lon}"
        )))
    }
}

/// The rules an elder's record must meet.
pub fn check_elder(e: &ElderInput) -> StoreResult<()> {
    check_coords(e.lat, e.lon)?;
    if e.name.trim().is_empty() {
        return Err(StoreError::Invalid("name is required".into()));
    }
    Ok(())
}

/// The rules a device registration must meet (`new`: a key is required for keyed protocols).
pub fn check_device(new: bool, d: &DeviceInput) -> StoreResult<()> {
    if !PROTOCOLS.contains(&d.protocol.as_str()) {
        return Err(StoreError::Invalid(format!(
            "unknown protocol {:?}; one of {PROTOCOLS:?}",
            d.protocol
        )));
    }
    if d.ident.trim().is_empty() {
        return Err(StoreError::Invalid("ident is required".into()));
    }
    if let Some(secret) = &d.secret_hex {
        let bytes =
            hex::decode(secret).map_err(|_| StoreError::Invalid("secret_hex is not hex".into()))?;
        if d.protocol == "native" && bytes.len() != 32 {
            return Err(StoreError::Invalid(
                "a native device's secret is 32 bytes (64 hex digits)".into(),
            ));
        }
    } else if new && matches!(d.protocol.as_str(), "native" | "mqtt") {
        return Err(StoreError::Invalid(
            "secret_hex is required for this protocol".into(),
        ));
    }
    if !(10..=86_400).contains(&d.heartbeat_s) {
        return Err(StoreError::Invalid("heartbeat_s must be 10..86400".into()));
    }
    Ok(())
}

/// The rules a responder's record must meet.
pub fn check_responder(r: &ResponderInput) -> StoreResult<()> {
    check_coords(r.home_lat, r.home_lon)?;
    if r.name.trim().is_empty() {
        return Err(StoreError::Invalid("name is required".into()));
    }
    if let Some(bad) = r.shifts.iter().find(|s| !s.is_valid()) {
        return Err(StoreError::Invalid(format!(
            "invalid shift {bad:?}: weekdays is a bit set (bit 0 = Monday), times are minutes \
             after midnight (0–1440)"
        )));
    }
    Ok(())
}

impl Store {
    /// Creates (`id = None`) or replaces an area.
    pub async fn save_area(&self, id: Option<i64>, a: &AreaInput) -> StoreResult<Area> {
        match (a.level.parent_level(), a.parent_id) {
            (None, Some(_)) => return Err(StoreError::Invalid("a district has no parent".into())),
            (Some(_), None) => return Err(StoreError::Invalid("parent_id is required".into())),
            (Some(level), Some(parent)) => {
                let p = self
                    .get_area(parent)
                    .await?
                    .ok_or_else(|| StoreError::Invalid("parent not found".into()))?;
                if p.level != level {
                    return Err(StoreError::Invalid(format!(
                        "a {} must be inside a {}",
                        a.level.as_str(),
                        level.as_str()
                    )));
                }
            }
            (None, None) => {}
        }
        let boundary = serde_json::to_string(&a.boundary).unwrap_or_else(|_| "[]".into());
        let now = now_millis();
        let sql = match id {
            None => format!(
                "INSERT INTO areas (parent_id, level, code, name, worker_id, boundary, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {AREA_COLUMNS}"
            ),
            Some(_) => format!(
                "UPDATE areas SET parent_id = $1, level = $2, code = $3, name = $4, worker_id = $5, \
                 boundary = $6, updated_at = $7 WHERE id = $8 RETURNING {AREA_COLUMNS}"
            ),
        };
        let mut q = sqlx::query(&sql)
            .bind(a.parent_id)
            .bind(a.level.as_str())
            .bind(a.code.as_str())
            .bind(a.name.as_str())
            .bind(a.worker_id)
            .bind(boundary)
            .bind(now);
        if let Some(id) = id {
            q = q.bind(id);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(rows::area)
            .transpose()?
            .ok_or_else(|| StoreError::Invalid("area not found".into()))
    }

    /// One area.
    pub async fn get_area(&self, id: i64) -> StoreResult<Option<Area>> {
        let row = sqlx::query(&format!("SELECT {AREA_COLUMNS} FROM areas WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(rows::area).transpose()?)
    }

    /// Every area, by level then code.
    pub async fn list_areas(&self) -> StoreResult<Vec<Area>> {
        let rows = sqlx::query(&format!("SELECT {AREA_COLUMNS} FROM areas ORDER BY code"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(rows::area).collect::<Result<_, _>>()?)
    }

    /// The ids of the grids inside area `id` (itself, when it is a grid).
    pub async fn grids_under(&self, id: i64) -> StoreResult<Vec<i64>> {
        let areas = self.list_areas().await?;
        let mut inside = vec![id];
        let mut grids = Vec::new();
        while let Some(parent) = inside.pop() {
            for a in &areas {
                if a.id == parent && a.level == AreaLevel::Grid {
                    grids.push(a.id);
                }
                if a.parent_id == Some(parent) && inside.len() < areas.len() {
                    inside.push(a.id);
                }
            }
        }
        grids.sort_unstable();
        grids.dedup();
        Ok(grids)
    }

    /// An elder's row, its key-safe code unsealed.
    pub(super) fn elder(&self, row: &sqlx::any::AnyRow) -> StoreResult<Elder> {
        let mut elder = rows::elder(row)?;
        elder.key_safe_code = self.unseal(sealing::KEY_SAFE_CODE, elder.key_safe_code.take())?;
        Ok(elder)
    }

    /// Creates (`id = None`) or replaces an elder.
    pub async fn save_elder(&self, id: Option<i64>, e: &ElderInput) -> StoreResult<Elder> {
        check_elder(e)?;
        let contacts = serde_json::to_string(&e.contacts).unwrap_or_else(|_| "[]".into());
        let living = serde_json::to_value(e.living)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let sql = match id {
            None => format!(
                "INSERT INTO elders (name, phone, address, lat, lon, grid_id, living, health_notes, \
                 medications, contacts, key_safe_code, checkin_hours, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {ELDER_COLUMNS}"
            ),
            Some(_) => format!(
                "UPDATE elders SET name = $1, phone = $2, address = $3, lat = $4, lon = $5, grid_id = $6, \
                 living = $7, health_notes = $8, medications = $9, contacts = $10, key_safe_code = $11, \
                 checkin_hours = $12, updated_at = $13 WHERE id = $14 RETURNING {ELDER_COLUMNS}"
            ),
        };
        let mut q = sqlx::query(&sql)
            .bind(e.name.as_str())
            .bind(e.phone.clone())
            .bind(e.address.as_str())
            .bind(e.lat)
            .bind(e.lon)
            .bind(e.grid_id)
            .bind(living)
            .bind(e.health_notes.as_str())
            .bind(e.medications.as_str())
            .bind(contacts)
            .bind(self.seal(sealing::KEY_SAFE_CODE, e.key_safe_code.as_deref()))
            .bind(e.checkin_hours)
            .bind(now_millis());
        if let Some(id) = id {
            q = q.bind(id);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(|r| self.elder(r))
            .transpose()?
            .ok_or_else(|| StoreError::Invalid("elder not found".into()))
    }

    /// One elder.
    pub async fn get_elder(&self, id: i64) -> StoreResult<Option<Elder>> {
        let row = sqlx::query(&format!("SELECT {ELDER_COLUMNS} FROM elders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| self.elder(r)).transpose()
    }

    /// Elders, optionally of one grid, by name.
    pub async fn list_elders(&self, grid_id: Option<i64>, limit: i64) -> StoreResult<Vec<Elder>> {
        let sql = format!(
            "SELECT {ELDER_COLUMNS} FROM elders WHERE ($1 IS NULL OR grid_id = $1) ORDER BY name LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(grid_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.elder(r)).collect()
    }

    /// Registers (`id = None`) or replaces a device.
    pub async fn save_device(&self, id: Option<i64>, d: &DeviceInput) -> StoreResult<Device> {
        check_device(id.is_none(), d)?;
        let sql = match id {
            None => format!(
                "INSERT INTO devices (protocol, ident, secret_hex, model, elder_id, enabled, heartbeat_s, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {DEVICE_COLUMNS}"
            ),
            Some(_) => format!(
                "UPDATE devices SET protocol = $1, ident = $2, secret_hex = COALESCE($3, secret_hex), model = $4, \
                 elder_id = $5, enabled = $6, heartbeat_s = $7, updated_at = $8 WHERE id = $9 RETURNING {DEVICE_COLUMNS}"
            ),
        };
        let mut q = sqlx::query(&sql)
            .bind(d.protocol.as_str())
            .bind(d.ident.trim())
            .bind(self.seal(sealing::DEVICE_SECRET, d.secret_hex.as_deref()))
            .bind(d.model.as_str())
            .bind(d.elder_id)
            .bind(i64::from(d.enabled))
            .bind(d.heartbeat_s)
            .bind(now_millis());
        if let Some(id) = id {
            q = q.bind(id);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(rows::device)
            .transpose()?
            .ok_or_else(|| StoreError::Invalid("device not found".into()))
    }

    /// One device.
    pub async fn get_device(&self, id: i64) -> StoreResult<Option<Device>> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::device).transpose()?)
    }

    /// Devices, optionally of one elder.
    pub async fn list_devices(
        &self,
        elder_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Device>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE ($1 IS NULL OR elder_id = $1) ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(elder_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(rows::device).collect::<Result<_, _>>()?)
    }

    /// What ingress needs to authenticate a device: row id, elder, secret, enabled, last sequence.
    pub async fn device_credentials(
        &self,
        protocol: &str,
        ident: &str,
    ) -> StoreResult<Option<DeviceCredentials>> {
        let row = sqlx::query(
            "SELECT d.id, d.elder_id, e.grid_id, d.secret_hex, d.enabled, d.heartbeat_s, d.last_seq \
             FROM devices d LEFT JOIN elders e ON e.id = d.elder_id \
             WHERE d.protocol = $1 AND d.ident = $2",
        )
        .bind(protocol)
        .bind(ident)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let secret = self.unseal(sealing::DEVICE_SECRET, row.try_get("secret_hex")?)?;
        Ok(Some(DeviceCredentials {
            device_id: row.try_get("id")?,
            elder_id: row.try_get("elder_id")?,
            grid_id: row.try_get("grid_id")?,
            secret: secret.and_then(|s| hex::decode(s).ok()).unwrap_or_default(),
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            heartbeat_s: row.try_get("heartbeat_s")?,
            last_seq: row.try_get("last_seq")?,
        }))
    }

    /// Creates (`id = None`) or replaces a responder.
    pub async fn save_responder(
        &self,
        id: Option<i64>,
        r: &ResponderInput,
    ) -> StoreResult<Responder> {
        check_responder(r)?;
        let skills = serde_json::to_string(&r.skills).unwrap_or_else(|_| "[]".into());
        let shifts = serde_json::to_string(&r.shifts).unwrap_or_else(|_| "[]".into());
        let hash = match r.password.as_deref() {
            Some(p) => Some(super::accounts::hash_password_async(p).await?),
            None => None,
        };
        let sql = match id {
            None => format!(
                "INSERT INTO responders (name, phone, kind, team, skills, grid_id, home_lat, home_lon, max_tasks, \
                 password_hash, updated_at, shifts, notify_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 RETURNING {RESPONDER_COLUMNS}"
            ),
            Some(_) => format!(
                "UPDATE responders SET name = $1, phone = $2, kind = $3, team = $4, skills = $5, grid_id = $6, \
                 home_lat = $7, home_lon = $8, max_tasks = $9, password_hash = COALESCE($10, password_hash), \
                 updated_at = $11, shifts = $12, notify_by = $13 WHERE id = $14 RETURNING {RESPONDER_COLUMNS}"
            ),
        };
        let mut q = sqlx::query(&sql)
            .bind(r.name.as_str())
            .bind(r.phone.as_str())
            .bind(r.kind.as_str())
            .bind(r.team.clone())
            .bind(skills)
            .bind(r.grid_id)
            .bind(r.home_lat)
            .bind(r.home_lon)
            .bind(r.max_tasks)
            .bind(hash)
            .bind(now_millis())
            .bind(shifts)
            .bind(r.notify_by.as_str());
        if let Some(id) = id {
            q = q.bind(id);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(rows::responder)
            .transpose()?
            .ok_or_else(|| StoreError::Invalid("responder not found".into()))
    }

    /// One responder.
    pub async fn get_responder(&self, id: i64) -> StoreResult<Option<Responder>> {
        let row = sqlx::query(&format!(
            "SELECT {RESPONDER_COLUMNS} FROM responders WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::responder).transpose()?)
    }

    /// Active responders, by name (disabled ones are left out, so dispatch never offers to them).
    pub async fn list_responders(&self, limit: i64) -> StoreResult<Vec<Responder>> {
        let rows = sqlx::query(&format!(
            "SELECT {RESPONDER_COLUMNS} FROM responders WHERE active = 1 ORDER BY name LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::responder).collect::<Result<_, _>>()?)
    }
}

/// A device's credentials as ingress needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    /// Row id.
    pub device_id: i64,
    /// Elder.
    pub elder_id: Option<i64>,
    /// The elder's grid.
    pub grid_id: Option<i64>,
    /// Secret key bytes (empty when none is set).
    pub secret: Vec<u8>,
    /// Whether frames are accepted.
    pub enabled: bool,
    /// Heartbeat period.
    pub heartbeat_s: i64,
    /// Highest native sequence number committed.
    pub last_seq: i64,
}
