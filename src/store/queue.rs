//! Reads for the console's working views: the queue with names and addresses, the people an
//! operator may offer a task to, the names behind an incident log's actors, and the points of the
//! city map. One query each, the same on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use sqlx::Row;

use super::rows::{self, INCIDENT_COLUMNS, RESPONDER_COLUMNS};
use super::{Store, StoreResult};
use crate::domain::{Incident, Responder};

/// One line of the console's queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct QueueRow {
    /// The incident.
    pub incident: Incident,
    /// Where it stands (see [`Incident::stage`]).
    pub stage: String,
    /// The elder's name.
    pub elder_name: Option<String>,
    /// The elder's phone.
    pub elder_phone: Option<String>,
    /// The elder's address.
    pub address: Option<String>,
    /// The elder's grid.
    pub grid_name: Option<String>,
    /// The responder who accepted, when one did.
    pub responder_name: Option<String>,
    /// Offers waiting for an answer.
    pub pending_offers: i64,
}

/// A point of the city map.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MapPoint {
    /// Elder or responder id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// The grid.
    pub grid_id: Option<i64>,
}

fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Open incidents (and those closed since `closed_since`, when given), most urgent and oldest
    /// first, with the elder's name, phone, address and grid, the accepted responder and the offers
    /// in flight.
    pub async fn queue(&self, closed_since: Option<i64>) -> StoreResult<Vec<QueueRow>> {
        let sql = format!(
            "SELECT {}, e.name AS elder_name, e.phone AS elder_phone, e.address AS elder_address, \
             a.name AS grid_name, \
             (SELECT r.name FROM dispatch_offers o JOIN responders r ON r.id = o.responder_id \
              WHERE o.incident_id = i.id AND o.status IN ('accepted', 'arrived', 'completed') \
              ORDER BY o.answered_at, o.id LIMIT 1) AS responder_name, \
             (SELECT COUNT(*) FROM dispatch_offers o WHERE o.incident_id = i.id AND o.status = 'pending') AS pending, \
             (SELECT COUNT(*) FROM dispatch_offers o WHERE o.incident_id = i.id AND o.status = 'completed') AS completed \
             FROM incidents i LEFT JOIN elders e ON e.id = i.elder_id LEFT JOIN areas a ON a.id = e.grid_id \
             WHERE i.status <> 'closed' OR i.closed_at >= $1 \
             ORDER BY (CASE WHEN i.status = 'closed' THEN 1 ELSE 0 END), i.priority, i.received_at LIMIT 2000",
            prefixed(INCIDENT_COLUMNS, "i")
        );
        let rows = sqlx::query(&sql)
            .bind(closed_since.unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let incident = rows::incident(r)?;
                let completed: i64 = r.try_get("completed")?;
                Ok(QueueRow {
                    stage: incident.stage(completed > 0).to_string(),
                    incident,
                    elder_name: r.try_get("elder_name")?,
                    elder_phone: r.try_get("elder_phone")?,
                    address: r.try_get("elder_address")?,
                    grid_name: r.try_get("grid_name")?,
                    responder_name: r.try_get("responder_name")?,
                    pending_offers: r.try_get("pending")?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Whether a responder completed an incident's task.
    pub async fn task_done(&self, incident_id: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM dispatch_offers WHERE incident_id = $1 AND status = 'completed'",
        )
        .bind(incident_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Every active responder (for the operator's picker; the caller sorts by distance).
    pub async fn active_responders(&self) -> StoreResult<Vec<Responder>> {
        let rows = sqlx::query(&format!(
            "SELECT {RESPONDER_COLUMNS} FROM responders WHERE active = 1 ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::responder).collect::<Result<_, _>>()?)
    }

    /// Display names for the actors of log entries: `responder:7` → the responder's name,
    /// `device:3` → the device's protocol and identity. Operators are logged by name already.
    pub async fn actor_names(&self, actors: &[&str]) -> StoreResult<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for actor in actors {
            if out.contains_key(*actor) {
                continue;
            }
            let Some((kind, id)) = actor.split_once(':') else {
                continue;
            };
            let name = match (kind, id.parse::<i64>()) {
                ("responder", Ok(id)) => sqlx::query("SELECT name FROM responders WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get::<String, _>(0))
                    .transpose()?,
                ("device", Ok(id)) => sqlx::query(
                    "SELECT protocol || ' ' || ident || CASE WHEN model <> '' THEN ' · ' || model ELSE '' END \
                     FROM devices WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()?,
                ("operator", _) => Some(id.to_string()),
                _ => None,
            };
            if let Some(name) = name {
                out.insert(actor.to_string(), name);
            }
        }
        Ok(out)
    }

    /// Every active elder's registered home, for the city map.
    pub async fn elder_points(&self) -> StoreResult<Vec<MapPoint>> {
        let rows = sqlx::query(
            "SELECT id, name, lat, lon, grid_id FROM elders WHERE active = 1 ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MapPoint {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    lat: r.try_get(2)?,
                    lon: r.try_get(3)?,
                    grid_id: r.try_get(4)?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
