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
//!
//! # Two stages
//! [`parse`] turns the text into typed records with no database: the BOM, JSON or CSV, the
//! dataset's format or the CSV's kind, every entry or row (a CSV row with its line number and
//! name), and every check that needs no lookup (`living`, `kind`, `level`, `contacts`, the store's
//! rules for coordinates, names, shifts, protocols and hex secrets). The store stage then applies
//! the records in order: the lookups above, the writes (or, in a preview, none), one
//! [`RowOutcome`] per CSV row. A check that was always made only for a record not yet in the
//! database (an area's level, the store's rules) is parsed as a verdict and reported only then.

use std::collections::HashMap;
use std::path::Path;

use onekey_dataset::Dataset;
use sqlx::Row;

use crate::domain::{AreaLevel, ResponderKind};
use crate::store::{AreaInput, DeviceInput, ElderInput, ResponderInput, Store};

mod parse;

pub use parse::{
    Area, CsvFile, CsvKind, CsvRow, DatasetFile, Device, Elder, Entry, ParseError, Parsed, Record,
    Responder, parse,
};

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
    let parsed = parse(text)?;
    let mut importer = Importer::new(store).await?;
    importer.dry_run = dry_run;
    match parsed {
        Parsed::Dataset(d) => importer.dataset(d).await?,
        Parsed::Csv(c) => importer.csv(c).await,
    }
    Ok(importer.report)
}

/// The second stage: parsed records through the store's lookups and writes.
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

    async fn dataset(&mut self, d: DatasetFile) -> anyhow::Result<()> {
        self.report.errors.extend(d.errors);
        let mut workers = Vec::new();
        for entry in &d.areas {
            let result = match &entry.record {
                Ok(a) => self.area(a).await.map(|_| a),
                Err(e) => Err(e.clone()),
            };
            match result {
                Err(e) => self.entry_error(entry, e),
                Ok(a) => {
                    if let Some(w) = &a.worker {
                        workers.push((a.code.clone(), w.clone()));
                    }
                }
            }
        }
        for entry in &d.responders {
            let result = match &entry.record {
                Ok(r) => self.responder(r).await,
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = result {
                self.entry_error(entry, e);
            }
        }
        for (code, worker) in workers {
            if let Some(&rid) = self.responders.get(&worker) {
                self.assign_worker(&code, rid).await?;
            }
        }
        for entry in &d.elders {
            let result = match &entry.record {
                Ok(e) => self.elder(e).await,
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = result {
                self.entry_error(entry, e);
            }
        }
        for entry in &d.devices {
            let result = match &entry.record {
                Ok(d) => match &d.elder {
                    Some(r) => match self.elders.get(r) {
                        Some(&id) => self.device(d, Some(id)).await,
                        None => Err(format!("unknown or failed elder {r:?}")),
                    },
                    None => self.device(d, None).await,
                },
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = result {
                self.entry_error(entry, e);
            }
        }
        Ok(())
    }

    fn entry_error<T>(&mut self, entry: &Entry<T>, e: String) {
        self.report
            .errors
            .push(format!("{} ({}): {e}", entry.label, entry.name));
    }

    async fn csv(&mut self, file: CsvFile) {
        let kind = file.kind.as_str();
        for row in file.rows {
            let created_before = self.report.created(kind);
            let result = match &row.record {
                Ok(Record::Elder(e)) => self.elder_row(e).await,
                Ok(Record::Area(a)) => self.area(a).await.map(|_| ()),
                Ok(Record::Responder(r)) => self.responder_row(r).await,
                Ok(Record::Device(d)) => self.device(d, d.input.elder_id).await.map(|_| ()),
                Err(e) => Err(e.clone()),
            };
            let line = row.line;
            let (action, message) = match &result {
                Err(e) => ("error", Some(e.clone())),
                Ok(()) if self.report.created(kind) > created_before => ("create", None),
                Ok(()) => ("exists", None),
            };
            self.report.rows.push(RowOutcome {
                line,
                kind: kind.to_string(),
                name: row.name,
                action: action.to_string(),
                message,
            });
            if let Err(e) = result {
                self.report.errors.push(format!("line {line}: {e}"));
            }
        }
    }

    fn made_up_id(&mut self) -> i64 {
        self.made_up -= 1;
        self.made_up
    }

    async fn elder_row(&mut self, e: &Elder) -> Result<(), String> {
        let elder_id = self.elder(e).await?;
        if let Some(d) = &e.device {
            self.device(d, Some(elder_id))
                .await
                .map_err(|err| format!("elder imported, device {}: {err}", d.input.ident))?;
        }
        Ok(())
    }

    async fn responder_row(&mut self, r: &Responder) -> Result<(), String> {
        let id = self.responder(r).await?;
        if r.input.kind == ResponderKind::GridWorker
            && let Some(code) = &r.grid
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

    async fn area(&mut self, a: &Area) -> Result<i64, String> {
        if let Some((id, _, _)) = self.areas.get(&a.code) {
            self.report.bump("areas", false);
            return Ok(*id);
        }
        let level = a.level.clone()?;
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

    async fn responder(&mut self, r: &Responder) -> Result<i64, String> {
        let grid_id = self.grid_id(r.grid.as_deref())?;
        if let Some(id) = self
            .existing(
                "SELECT id FROM responders WHERE name = $1 AND phone = $2",
                &r.input.name,
                &r.input.phone,
            )
            .await?
        {
            self.report.bump("responders", false);
            self.responders.insert(r.reference.clone(), id);
            return Ok(id);
        }
        r.check.clone()?;
        if self.dry_run {
            let id = self.made_up_id();
            self.report.bump("responders", true);
            self.responders.insert(r.reference.clone(), id);
            return Ok(id);
        }
        let input = ResponderInput {
            grid_id,
            ..r.input.clone()
        };
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

    async fn elder(&mut self, e: &Elder) -> Result<i64, String> {
        let grid_id = self.grid_id(e.grid.as_deref())?;
        if let Some(id) = self
            .existing(
                "SELECT id FROM elders WHERE name = $1 AND address = $2",
                &e.input.name,
                &e.input.address,
            )
            .await?
        {
            self.report.bump("elders", false);
            self.elders.insert(e.reference.clone(), id);
            return Ok(id);
        }
        e.check.clone()?;
        if self.dry_run {
            let id = self.made_up_id();
            self.report.bump("elders", true);
            self.elders.insert(e.reference.clone(), id);
            return Ok(id);
        }
        let input = ElderInput {
            grid_id,
            ..e.input.clone()
        };
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

    async fn device(&mut self, d: &Device, elder_id: Option<i64>) -> Result<i64, String> {
        if let Some(c) = self
            .store
            .device_credentials(&d.input.protocol, d.input.ident.trim())
            .await
            .map_err(|e| e.to_string())?
        {
            self.report.bump("devices", false);
            return Ok(c.device_id);
        }
        d.check.clone()?;
        if self.dry_run {
            self.report.bump("devices", true);
            return Ok(self.made_up_id());
        }
        let input = DeviceInput {
            elder_id,
            ..d.input.clone()
        };
        let saved = self
            .store
            .save_device(None, &input)
            .await
            .map_err(|e| e.to_string())?;
        self.report.bump("devices", true);
        Ok(saved.id)
    }
}

/// Generates a dataset and imports it (for `onekey demo` and the load harness).
pub async fn import_dataset(store: &Store, dataset: &Dataset) -> anyhow::Result<ImportReport> {
    import_text(store, &serde_json::to_string(dataset)?).await
}
