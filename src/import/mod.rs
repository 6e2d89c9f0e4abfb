//! `onekey import <file>`: load areas, responders (grid workers included), elders and devices.
//!
//! # Formats
//! - **JSON**: the `onekey-dataset/1` format that `onekey-sim dataset` writes (documented in
//!   `onekey_dataset`). References are by area `code` and by `ref`, never by database id.
//! - **CSV**: one file per kind, recognised by its header (UTF-8, comma-separated, a header row;
//!   columns in any order, the optional ones may be left out):
//!
//! | kind | recognised by | columns (optional in brackets) |
//! |---|---|---|
//! | elders | a `living` column | `name, address, lat, lon, living, [ref, phone, grid_code, health_notes, medications, key_safe_code, checkin_hours, contacts, device_protocol, device_ident, device_secret_hex, device_model]` |
//! | areas | a `level` column | `code, level, name, [parent_code]` |
//! | responders | a `kind` column | `name, phone, kind, home_lat, home_lon, [team, skills, grid_code, max_tasks]` |
//! | devices | `protocol` and `ident` | `protocol, ident, [secret_hex, model, elder_id, heartbeat_s]` |
//!
//! `contacts` is `name|relation|phone|key` entries separated by `;` (`key` marks a key holder);
//! `skills` is `;`-separated. `living` is `alone`, `empty_nest`, `three_no` or `with_family`; a
//! responder `kind` is one of the server's kinds. `elder_id` in devices.csv is the elder's id in the
//! database (`GET /api/v1/elders`); an elders.csv row can carry its device in the `device_*` columns.
//!
//! # Idempotent-ish
//! Whatever already exists is skipped and counted as such: areas by `code`, responders by name and
//! phone, elders by name and address, devices by protocol and identity. A grid without a worker gets
//! the first imported `grid_worker` whose home grid it is. So importing the same file twice creates
//! nothing the second time.
//!
//! # Errors
//! A bad row (CSV line number, or JSON list and position) is reported and skipped; the others are
//! still imported. The command then exits non-zero.
//!
//! # Preview
//! [`preview_text`] runs the same checks and lookups without writing anything and says, per CSV
//! row, whether it would be created, is already there, or is refused and why.

use std::collections::HashMap;
use std::path::Path;

use onekey_dataset::{AreaRec, ContactRec, Dataset, DeviceRec, ElderRec, ResponderRec};
use serde::Deserialize;
use sqlx::Row;

use crate::domain::{AreaLevel, Contact, LivingSituation, ResponderKind};
use crate::store::{AreaInput, DeviceInput, ElderInput, ResponderInput, Store};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Per kind (`areas`, `responders`, `elders`, `devices`): (created, already there).
    pub counts: Vec<(&'static str, u64, u64)>,
    /// Grids that got a worker.
    pub grid_workers_assigned: u64,
    /// One line per bad row.
    pub errors: Vec<String>,
    /// Per CSV row: what happened (or, in a preview, would happen) to it.
    pub rows: Vec<RowOutcome>,
}

/// What became of one CSV row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RowOutcome {
    /// CSV line number.
    pub line: u64,
    /// `areas`, `elders`, `responders` or `devices`.
    pub kind: String,
    /// The row's name, code or identity.
    pub name: String,
    /// `create`, `exists` (already there, left unchanged) or `error`.
    pub action: String,
    /// Why it was refused.
    pub message: Option<String>,
}

impl ImportReport {
    fn bump(&mut self, kind: &'static str, created: bool) {
        let i = match self.counts.iter().position(|c| c.0 == kind) {
            Some(i) => i,
            None => {
                self.counts.push((kind, 0, 0));
                self.counts.len() - 1
            }
        };
        if created {
            self.counts[i].1 += 1;
        } else {
            self.counts[i].2 += 1;
        }
    }

    /// Created count of one kind.
    pub fn created(&self, kind: &str) -> u64 {
        self.counts
            .iter()
            .find(|c| c.0 == kind)
            .map(|c| c.1)
            .unwrap_or(0)
    }

    /// A human summary.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, c, e)| format!("{k}: {c} created, {e} already there"))
            .collect();
        if self.grid_workers_assigned > 0 {
            parts.push(format!(
                "grid workers assigned: {}",
                self.grid_workers_assigned
            ));
        }
        parts.push(format!("errors: {}", self.errors.len()));
        parts.join("; ")
    }
}

/// Imports `path` (JSON dataset or CSV) into `store`.
pub async fn import_file(store: &Store, path: &Path) -> anyhow::Result<ImportReport> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    import_text(store, &text).await
}

/// Imports a JSON dataset or one CSV file given as text.
pub async fn import_text(store: &Store, text: &str) -> anyhow::Result<ImportReport> {
    run(store, text, false).await
}

/// What importing `text` would do, without writing anything.
pub async fn preview_text(store: &Store, text: &str) -> anyhow::Result<ImportReport> {
    run(store, text, true).await
}

async fn run(store: &Store, text: &str, dry_run: bool) -> anyhow::Result<ImportReport> {
    let text = text.trim_start_matches('\u{feff}');
    let mut importer = Importer::new(store).await?;
    importer.dry_run = dry_run;
    if text.trim_start().starts_with('{') {
        importer.json(text).await?;
    } else {
        importer.csv(text).await?;
    }
    Ok(importer.report)
}

/// A dataset whose lists are parsed entry by entry, so one bad entry does not sink the others.
#[derive(Deserialize)]
struct LooseDataset {
    format: Option<String>,
    #[serde(default)]
    areas: Vec<serde_json::Value>,
    #[serde(default)]
    responders: Vec<serde_json::Value>,
    #[serde(default)]
    elders: Vec<serde_json::Value>,
    #[serde(default)]
    devices: Vec<serde_json::Value>,
}

struct Importer<'a> {
    store: &'a Store,
    areas: HashMap<String, (i64, AreaLevel, Option<i64>)>,
    responders: HashMap<String, i64>,
    elders: HashMap<String, i64>,
    report: ImportReport,
    /// Check and look up, write nothing; records that would be created get made-up negative ids.
    dry_run: bool,
    made_up: i64,
}

fn entries<T: serde::de::DeserializeOwned>(
    list: Vec<serde_json::Value>,
    name: &str,
    errors: &mut Vec<String>,
) -> Vec<(String, T)> {
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let label = format!("{name}[{i}]");
        match serde_json::from_value::<T>(v) {
            Ok(t) => out.push((label, t)),
            Err(e) => errors.push(format!("{label}: {e}")),
        }
    }
    out
}

impl<'a> Importer<'a> {
    async fn new(store: &'a Store) -> anyhow::Result<Importer<'a>> {
        let areas = store
            .list_areas()
            .await?
            .into_iter()
            .map(|a| (a.code, (a.id, a.level, a.worker_id)))
            .collect();
        Ok(Importer {
            store,
            areas,
            responders: HashMap::new(),
            elders: HashMap::new(),
            report: ImportReport::default(),
            dry_run: false,
            made_up: 0,
        })
    }

    async fn json(&mut self, text: &str) -> anyhow::Result<()> {
        let d: LooseDataset =
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not a OneKey dataset: {e}"))?;
        if let Some(f) = &d.format
            && f != onekey_dataset::FORMAT
        {
            anyhow::bail!(
                "unknown dataset format {f:?} (expected {:?})",
                onekey_dataset::FORMAT
            );
        }
        let errors = &mut self.report.errors;
        let areas: Vec<(String, AreaRec)> = entries(d.areas, "areas", errors);
        let responders: Vec<(String, ResponderRec)> = entries(d.responders, "responders", errors);
        let elders: Vec<(String, ElderRec)> = entries(d.elders, "elders", errors);
        let devices: Vec<(String, DeviceRec)> = entries(d.devices, "devices", errors);
        let mut workers = Vec::new();
        for (label, a) in &areas {
            if let Err(e) = self.area(a).await {
                self.report
                    .errors
                    .push(format!("{label} ({}): {e}", a.code));
            } else if let Some(w) = &a.worker {
                workers.push((a.code.clone(), w.clone()));
            }
        }
        for (label, r) in &responders {
            if let Err(e) = self.responder(r).await {
                self.report
                    .errors
                    .push(format!("{label} ({}): {e}", r.name));
            }
        }
        for (code, worker) in workers {
            if let Some(&rid) = self.responders.get(&worker) {
                self.assign_worker(&code, rid).await?;
            }
        }
        for (label, e) in &elders {
            if let Err(err) = self.elder(e).await {
                self.report
                    .errors
                    .push(format!("{label} ({}): {err}", e.name));
            }
        }
        for (label, d) in &devices {
            let elder_id = match &d.elder {
                Some(r) => match self.elders.get(r) {
                    Some(&id) => Some(id),
                    None => {
                        self.report.errors.push(format!(
                            "{label} ({}): unknown or failed elder {r:?}",
                            d.ident
                        ));
                        continue;
                    }
                },
                None => None,
            };
            if let Err(e) = self.device(d, elder_id).await {
                self.report
                    .errors
                    .push(format!("{label} ({}): {e}", d.ident));
            }
        }
        Ok(())
    }

    async fn csv(&mut self, text: &str) -> anyhow::Result<()> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| anyhow::anyhow!("cannot read the CSV header: {e}"))?
            .clone();
        let has = |c: &str| headers.iter().any(|h| h == c);
        let kind = if has("living") {
            "elders"
        } else if has("level") {
            "areas"
        } else if has("kind") {
            "responders"
        } else if has("protocol") && has("ident") {
            "devices"
        } else {
            anyhow::bail!(
                "cannot tell what this CSV holds from its header {:?}: expected a `living` (elders), \
                 `level` (areas), `kind` (responders) or `protocol`+`ident` (devices) column",
                headers.iter().collect::<Vec<_>>()
            );
        };
        let label_column = ["name", "code", "ident"]
            .iter()
            .find_map(|c| headers.iter().position(|h| h == *c));
        for record in reader.records() {
            let created_before = self.report.created(kind);
            let mut name = String::new();
            let (line, result) = match record {
                Ok(rec) => {
                    let line = rec.position().map(|p| p.line()).unwrap_or(0);
                    name = label_column
                        .and_then(|i| rec.get(i))
                        .unwrap_or_default()
                        .to_string();
                    let r = match kind {
                        "elders" => match rec.deserialize::<ElderRow>(Some(&headers)) {
                            Ok(row) => self.elder_row(row).await,
                            Err(e) => Err(e.to_string()),
                        },
                        "areas" => match rec.deserialize::<AreaRow>(Some(&headers)) {
                            Ok(row) => self
                                .area(&AreaRec {
                                    code: row.code,
                                    level: row.level,
                                    name: row.name,
                                    parent: row.parent_code.filter(|p| !p.is_empty()),
                                    worker: None,
                                    boundary: vec![],
                                })
                                .await
                                .map(|_| ()),
                            Err(e) => Err(e.to_string()),
                        },
                        "responders" => match rec.deserialize::<ResponderRow>(Some(&headers)) {
                            Ok(row) => self.responder_row(row).await,
                            Err(e) => Err(e.to_string()),
                        },
                        _ => match rec.deserialize::<DeviceRow>(Some(&headers)) {
                            Ok(row) => self
                                .device(
                                    &DeviceRec {
                                        protocol: row.protocol,
                                        ident: row.ident,
                                        secret_hex: row.secret_hex.filter(|s| !s.is_empty()),
                                        model: row.model.unwrap_or_default(),
                                        elder: None,
                                        heartbeat_s: row.heartbeat_s.unwrap_or(300),
                                    },
                                    row.elder_id,
                                )
                                .await
                                .map(|_| ()),
                            Err(e) => Err(e.to_string()),
                        },
                    };
                    (line, r)
                }
                Err(e) => (
                    e.position().map(|p| p.line()).unwrap_or(0),
                    Err(e.to_string()),
                ),
            };
            let (action, message) = match &result {
                Err(e) => ("error", Some(e.clone())),
                Ok(()) if self.report.created(kind) > created_before => ("create", None),
                Ok(()) => ("exists", None),
            };
            self.report.rows.push(RowOutcome {
                line,
                kind: kind.to_string(),
                name,
                action: action.to_string(),
                message,
            });
            if let Err(e) = result {
                self.report.errors.push(format!("line {line}: {e}"));
            }
        }
        Ok(())
    }

    fn made_up_id(&mut self) -> i64 {
        self.made_up -= 1;
        self.made_up
    }

    async fn elder_row(&mut self, row: ElderRow) -> Result<(), String> {
        let contacts = parse_contacts(row.contacts.as_deref().unwrap_or(""))?;
        let reference = row.reference.clone().unwrap_or_default();
        let rec = ElderRec {
            reference: reference.clone(),
            name: row.name,
            phone: row.phone.filter(|s| !s.is_empty()),
            address: row.address,
            lat: row.lat,
            lon: row.lon,
            grid: row.grid_code.filter(|s| !s.is_empty()),
            living: row.living,
            health_notes: row.health_notes.unwrap_or_default(),
            medications: row.medications.unwrap_or_default(),
            contacts,
            key_safe_code: row.key_safe_code.filter(|s| !s.is_empty()),
            checkin_hours: row.checkin_hours.unwrap_or(24),
        };
        let elder_id = self.elder(&rec).await?;
        if let (Some(protocol), Some(ident)) = (
            row.device_protocol.filter(|s| !s.is_empty()),
            row.device_ident.filter(|s| !s.is_empty()),
        ) {
            let d = DeviceRec {
                protocol,
                ident,
                secret_hex: row.device_secret_hex.filter(|s| !s.is_empty()),
                model: row.device_model.unwrap_or_default(),
                elder: None,
                heartbeat_s: 300,
            };
            self.device(&d, Some(elder_id))
                .await
                .map_err(|e| format!("elder imported, device {}: {e}", d.ident))?;
        }
        Ok(())
    }

    async fn responder_row(&mut self, row: ResponderRow) -> Result<(), String> {
        let rec = ResponderRec {
            reference: String::new(),
            name: row.name,
            phone: row.phone,
            kind: row.kind,
            team: row.team.filter(|s| !s.is_empty()),
            skills: row
                .skills
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            grid: row.grid_code.filter(|s| !s.is_empty()),
            home_lat: row.home_lat,
            home_lon: row.home_lon,
            max_tasks: row.max_tasks.unwrap_or(1),
            shifts: Vec::new(),
            password: None,
        };
        let id = self.responder(&rec).await?;
        if rec.kind == "grid_worker"
            && let Some(code) = &rec.grid
        {
            self.assign_worker(code, id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn grid_id(&self, code: Option<&str>) -> Result<Option<i64>, String> {
        match code {
            None => Ok(None),
            Some(c) => match self.areas.get(c) {
                Some((id, AreaLevel::Grid, _)) => Ok(Some(*id)),
                Some(_) => Err(format!("area {c:?} is not a grid")),
                None => Err(format!("unknown grid {c:?}")),
            },
        }
    }

    async fn area(&mut self, a: &AreaRec) -> Result<i64, String> {
        if let Some((id, _, _)) = self.areas.get(&a.code) {
            self.report.bump("areas", false);
            return Ok(*id);
        }
        let level = AreaLevel::parse(&a.level).ok_or_else(|| {
            format!(
                "level {:?} is not district, street, community or grid",
                a.level
            )
        })?;
        let parent_id = match &a.parent {
            None => None,
            Some(p) => Some(
                self.areas
                    .get(p)
                    .map(|x| x.0)
                    .ok_or_else(|| format!("unknown parent {p:?}"))?,
            ),
        };
        let input = AreaInput {
            parent_id,
            level,
            code: a.code.clone(),
            name: a.name.clone(),
            worker_id: None,
            boundary: a.boundary.clone(),
        };
        if self.dry_run {
            if let Some(parent) = &a.parent
                && let Some((_, parent_level, _)) = self.areas.get(parent)
                && Some(*parent_level) != level.parent_level()
            {
                return Err(format!(
                    "a {} must be inside a {}",
                    level.as_str(),
                    level
                        .parent_level()
                        .map(|l| l.as_str())
                        .unwrap_or("nothing")
                ));
            }
            if parent_id.is_none() && level.parent_level().is_some() {
                return Err("parent_id is required".into());
            }
            let id = self.made_up_id();
            self.areas.insert(a.code.clone(), (id, level, None));
            self.report.bump("areas", true);
            return Ok(id);
        }
        let area = self
            .store
            .save_area(None, &input)
            .await
            .map_err(|e| e.to_string())?;
        self.areas
            .insert(area.code.clone(), (area.id, area.level, None));
        self.report.bump("areas", true);
        Ok(area.id)
    }

    async fn assign_worker(&mut self, code: &str, responder_id: i64) -> anyhow::Result<()> {
        let Some(&(id, AreaLevel::Grid, None)) = self.areas.get(code) else {
            return Ok(());
        };
        if self.dry_run || id < 0 || responder_id < 0 {
            return Ok(());
        }
        let Some(area) = self.store.get_area(id).await? else {
            return Ok(());
        };
        let input = AreaInput {
            parent_id: area.parent_id,
            level: area.level,
            code: area.code,
            name: area.name,
            worker_id: Some(responder_id),
            boundary: area.boundary,
        };
        self.store.save_area(Some(id), &input).await?;
        self.areas
            .insert(code.to_string(), (id, AreaLevel::Grid, Some(responder_id)));
        self.report.grid_workers_assigned += 1;
        Ok(())
    }

    async fn existing(&self, sql: &str, a: &str, b: &str) -> Result<Option<i64>, String> {
        let row = sqlx::query(sql)
            .bind(a)
            .bind(b)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| e.to_string())?;
        row.map(|r| r.try_get::<i64, _>(0))
            .transpose()
            .map_err(|e| e.to_string())
    }

    async fn responder(&mut self, r: &ResponderRec) -> Result<i64, String> {
        let kind = ResponderKind::parse(&r.kind)
            .ok_or_else(|| format!("unknown responder kind {:?}", r.kind))?;
        let grid_id = self.grid_id(r.grid.as_deref())?;
        if let Some(id) = self
            .existing(
                "SELECT id FROM responders WHERE name = $1 AND phone = $2",
                &r.name,
                &r.phone,
            )
            .await?
        {
            self.report.bump("responders", false);
            self.responders.insert(r.reference.clone(), id);
            return Ok(id);
        }
        let input = ResponderInput {
            name: r.name.clone(),
            phone: r.phone.clone(),
            kind,
            team: r.team.clone(),
            skills: r.skills.clone(),
            grid_id,
            home_lat: r.home_lat,
            home_lon: r.home_lon,
            max_tasks: r.max_tasks,
            shifts: r
                .shifts
                .iter()
                .map(|s| crate::domain::Shift {
                    weekdays: s.weekdays,
                    start_min: s.start_min,
                    end_min: s.end_min,
                })
                .collect(),
            password: r.password.clone(),
            notify_by: Default::default(),
        };
        if self.dry_run {
            crate::store::check_responder(&input).map_err(|e| e.to_string())?;
            let id = self.made_up_id();
            self.report.bump("responders", true);
            self.responders.insert(r.reference.clone(), id);
            return Ok(id);
        }
        let saved = self
            .store
            .save_responder(None, &input)
            .await
            .map_err(|e| e.to_string())?;
        self.report.bump("responders", true);
        if !r.reference.is_empty() {
            self.responders.insert(r.reference.clone(), saved.id);
        }
        Ok(saved.id)
    }

    async fn elder(&mut self, e: &ElderRec) -> Result<i64, String> {
        let living: LivingSituation =
            serde_json::from_value(serde_json::Value::String(e.living.clone())).map_err(|_| {
                format!(
                    "living {:?} is not alone, empty_nest, three_no or with_family",
                    e.living
                )
            })?;
        let grid_id = self.grid_id(e.grid.as_deref())?;
        if let Some(id) = self
            .existing(
                "SELECT id FROM elders WHERE name = $1 AND address = $2",
                &e.name,
                &e.address,
            )
            .await?
        {
            self.report.bump("elders", false);
            self.elders.insert(e.reference.clone(), id);
            return Ok(id);
        }
        let input = ElderInput {
            name: e.name.clone(),
            phone: e.phone.clone(),
            address: e.address.clone(),
            lat: e.lat,
            lon: e.lon,
            grid_id,
            living,
            health_notes: e.health_notes.clone(),
            medications: e.medications.clone(),
            contacts: e
                .contacts
                .iter()
                .map(|c| Contact {
                    name: c.name.clone(),
                    relation: c.relation.clone(),
                    phone: c.phone.clone(),
                    key_holder: c.key_holder,
                })
                .collect(),
            key_safe_code: e.key_safe_code.clone(),
            checkin_hours: e.checkin_hours,
        };
        if self.dry_run {
            crate::store::check_elder(&input).map_err(|e| e.to_string())?;
            let id = self.made_up_id();
            self.report.bump("elders", true);
            self.elders.insert(e.reference.clone(), id);
            return Ok(id);
        }
        let saved = self
            .store
            .save_elder(None, &input)
            .await
            .map_err(|e| e.to_string())?;
        self.report.bump("elders", true);
        if !e.reference.is_empty() {
            self.elders.insert(e.reference.clone(), saved.id);
        }
        Ok(saved.id)
    }

    async fn device(&mut self, d: &DeviceRec, elder_id: Option<i64>) -> Result<i64, String> {
        if let Some(c) = self
            .store
            .device_credentials(&d.protocol, d.ident.trim())
            .await
            .map_err(|e| e.to_string())?
        {
            self.report.bump("devices", false);
            return Ok(c.device_id);
        }
        let input = DeviceInput {
            protocol: d.protocol.clone(),
            ident: d.ident.clone(),
            secret_hex: d.secret_hex.clone(),
            model: d.model.clone(),
            elder_id,
            enabled: true,
            heartbeat_s: d.heartbeat_s,
        };
        if self.dry_run {
            crate::store::check_device(true, &input).map_err(|e| e.to_string())?;
            self.report.bump("devices", true);
            return Ok(self.made_up_id());
        }
        let saved = self
            .store
            .save_device(None, &input)
            .await
            .map_err(|e| e.to_string())?;
        self.report.bump("devices", true);
        Ok(saved.id)
    }
}

fn parse_contacts(text: &str) -> Result<Vec<ContactRec>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split('|').map(str::trim).collect();
            match parts.as_slice() {
                [name, relation, phone, rest @ ..] if rest.len() <= 1 => Ok(ContactRec {
                    name: name.to_string(),
                    relation: relation.to_string(),
                    phone: phone.to_string(),
                    key_holder: rest.first().is_some_and(|k| *k == "key"),
                }),
                _ => Err(format!(
                    "contact {entry:?} is not name|relation|phone or name|relation|phone|key"
                )),
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct ElderRow {
    #[serde(rename = "ref", default)]
    reference: Option<String>,
    name: String,
    #[serde(default)]
    phone: Option<String>,
    address: String,
    lat: f64,
    lon: f64,
    living: String,
    #[serde(default)]
    grid_code: Option<String>,
    #[serde(default)]
    health_notes: Option<String>,
    #[serde(default)]
    medications: Option<String>,
    #[serde(default)]
    key_safe_code: Option<String>,
    #[serde(default)]
    checkin_hours: Option<i64>,
    #[serde(default)]
    contacts: Option<String>,
    #[serde(default)]
    device_protocol: Option<String>,
    #[serde(default)]
    device_ident: Option<String>,
    #[serde(default)]
    device_secret_hex: Option<String>,
    #[serde(default)]
    device_model: Option<String>,
}

#[derive(Deserialize)]
struct AreaRow {
    code: String,
    level: String,
    name: String,
    #[serde(default)]
    parent_code: Option<String>,
}

#[derive(Deserialize)]
struct ResponderRow {
    name: String,
    phone: String,
    kind: String,
    home_lat: f64,
    home_lon: f64,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    skills: Option<String>,
    #[serde(default)]
    grid_code: Option<String>,
    #[serde(default)]
    max_tasks: Option<i64>,
}

#[derive(Deserialize)]
struct DeviceRow {
    protocol: String,
    ident: String,
    #[serde(default)]
    secret_hex: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    elder_id: Option<i64>,
    #[serde(default)]
    heartbeat_s: Option<i64>,
}

/// Generates a dataset and imports it (for `onekey demo` and the load harness).
pub async fn import_dataset(store: &Store, dataset: &Dataset) -> anyhow::Result<ImportReport> {
    import_text(store, &serde_json::to_string(dataset)?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_parse_and_bad_ones_are_named() {
        let c =
            parse_contacts("罗志强|儿子|13900000000|key; 王婷|邻居|13700000000").expect("parse");
        assert_eq!(c.len(), 2);
        assert!(c[0].key_holder);
        assert!(!c[1].key_holder);
        assert_eq!(c[1].relation, "邻居");
        let err = parse_contacts("only-a-name").expect_err("bad contact");
        assert!(err.contains("only-a-name"), "{err}");
    }
}
