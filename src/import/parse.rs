//! The first stage of an import: text to typed records, with no database.
//!
//! [`parse`] strips the BOM, tells a JSON dataset from a CSV file, checks the dataset's format or
//! the CSV's kind, and turns every entry or row into a record. What can be checked without the
//! database is checked here: the JSON types and the CSV columns, `living`, a responder's `kind`,
//! `contacts`, an area's `level`, and the store's own rules for a record (coordinates, a name,
//! shifts; a device's protocol, identity, hex secret and heartbeat).
//!
//! A check the import has always made before any lookup refuses the record outright (the entry's
//! or row's `Err`). A check it has always made only for a record that is not in the database yet
//! (an area's level; the store's rules) is kept as a verdict on the record
//! ([`Area::level`], `check`), which the store stage reports only when it would create the
//! record: a row whose record is already there is `exists` whatever else is wrong with it.

use onekey_dataset::{AreaRec, ContactRec, DeviceRec, ElderRec, FORMAT, ResponderRec};
use serde::Deserialize;

use crate::domain::{AreaLevel, Contact, LivingSituation, ResponderKind, Shift};
use crate::store::{DeviceInput, ElderInput, ResponderInput};

/// Why a file cannot be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// It starts with `{` but is not a dataset object.
    #[error("not a OneKey dataset: {0}")]
    NotADataset(String),
    /// A dataset of another format.
    #[error("unknown dataset format {0:?} (expected {FORMAT:?})")]
    UnknownFormat(String),
    /// The CSV header cannot be read.
    #[error("cannot read the CSV header: {0}")]
    CsvHeader(String),
    /// A CSV header without the column that tells its kind.
    #[error(
        "cannot tell what this CSV holds from its header {0:?}: expected a `living` (elders), \
         `level` (areas), `kind` (responders) or `protocol`+`ident` (devices) column"
    )]
    UnknownCsv(Vec<String>),
}

/// A parsed import file.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A `onekey-dataset/1` JSON dataset.
    Dataset(DatasetFile),
    /// One CSV file.
    Csv(CsvFile),
}

/// A JSON dataset, entry by entry.
#[derive(Debug, Clone, Default)]
pub struct DatasetFile {
    /// Entries that are not records of their list, in list order (`areas[3]: missing field …`).
    pub errors: Vec<String>,
    /// The `areas` that are records.
    pub areas: Vec<Entry<Area>>,
    /// The `responders` that are records.
    pub responders: Vec<Entry<Responder>>,
    /// The `elders` that are records.
    pub elders: Vec<Entry<Elder>>,
    /// The `devices` that are records.
    pub devices: Vec<Entry<Device>>,
}

/// One entry of a dataset list.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// List and position: `elders[12]`.
    pub label: String,
    /// What its errors name it by: the area's code, the responder's or elder's name, the
    /// device's identity.
    pub name: String,
    /// The record, or why it is refused.
    pub record: Result<T, String>,
}

/// The kind of a CSV file, told by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvKind {
    /// A `living` column.
    Elders,
    /// A `level` column.
    Areas,
    /// A `kind` column.
    Responders,
    /// `protocol` and `ident` columns.
    Devices,
}

impl CsvKind {
    /// `elders`, `areas`, `responders` or `devices`: the import's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CsvKind::Elders => "elders",
            CsvKind::Areas => "areas",
            CsvKind::Responders => "responders",
            CsvKind::Devices => "devices",
        }
    }
}

/// One CSV file, row by row.
#[derive(Debug, Clone)]
pub struct CsvFile {
    /// What its rows are.
    pub kind: CsvKind,
    /// Every data row, in file order.
    pub rows: Vec<CsvRow>,
}

/// One CSV data row.
#[derive(Debug, Clone)]
pub struct CsvRow {
    /// Line number in the file (the header is on line 1 or later).
    pub line: u64,
    /// The row's `name`, `code` or `ident` (the first of these columns the file has).
    pub name: String,
    /// The record (of the file's kind), or why the row is refused.
    pub record: Result<Record, String>,
}

/// A CSV row's record.
#[derive(Debug, Clone)]
pub enum Record {
    /// A row of areas.csv.
    Area(Area),
    /// A row of responders.csv.
    Responder(Responder),
    /// A row of elders.csv.
    Elder(Elder),
    /// A row of devices.csv.
    Device(Device),
}

/// An area, by code.
#[derive(Debug, Clone)]
pub struct Area {
    /// Stable code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Its level, or why the level is not one (reported only if no area has the code yet).
    pub level: Result<AreaLevel, String>,
    /// The enclosing area's code.
    pub parent: Option<String>,
    /// Its grid worker's `ref` (datasets only).
    pub worker: Option<String>,
    /// Outline as `[lat, lon]` pairs.
    pub boundary: Vec<[f64; 2]>,
}

/// A responder.
#[derive(Debug, Clone)]
pub struct Responder {
    /// The dataset's `ref` (empty in a CSV file).
    pub reference: String,
    /// Home grid's code.
    pub grid: Option<String>,
    /// What the store is given, but for `grid_id`, which the store stage looks up from `grid`.
    pub input: ResponderInput,
    /// The store's rules for `input` (reported only if the responder is not there yet).
    pub check: Result<(), String>,
}

/// An elder.
#[derive(Debug, Clone)]
pub struct Elder {
    /// The dataset's `ref` (the `ref` column in a CSV file, or empty).
    pub reference: String,
    /// Grid's code.
    pub grid: Option<String>,
    /// What the store is given, but for `grid_id`, which the store stage looks up from `grid`.
    pub input: ElderInput,
    /// The store's rules for `input` (reported only if the elder is not there yet).
    pub check: Result<(), String>,
    /// The device of an elders.csv row's `device_*` columns.
    pub device: Option<Device>,
}

/// A device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its elder's `ref` (datasets only).
    pub elder: Option<String>,
    /// What the store is given; `elder_id` is devices.csv's column (else the store stage's).
    pub input: DeviceInput,
    /// The store's rules for a new device (reported only if the device is not there yet).
    pub check: Result<(), String>,
}

/// Parses an import file: a JSON dataset or one CSV file (a leading BOM is ignored).
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        dataset(text).map(Parsed::Dataset)
    } else {
        csv_file(text).map(Parsed::Csv)
    }
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

fn dataset(text: &str) -> Result<DatasetFile, ParseError> {
    let d: LooseDataset =
        serde_json::from_str(text).map_err(|e| ParseError::NotADataset(e.to_string()))?;
    if let Some(f) = d.format
        && f != FORMAT
    {
        return Err(ParseError::UnknownFormat(f));
    }
    let mut errors = Vec::new();
    let areas = entries(d.areas, "areas", &mut errors, |a: AreaRec| {
        (a.code.clone(), Ok(area(a)))
    });
    let responders = entries(
        d.responders,
        "responders",
        &mut errors,
        |r: ResponderRec| (r.name.clone(), responder(r)),
    );
    let elders = entries(d.elders, "elders", &mut errors, |e: ElderRec| {
        (e.name.clone(), elder(e, None))
    });
    let devices = entries(d.devices, "devices", &mut errors, |d: DeviceRec| {
        (d.ident.clone(), Ok(device(d, None)))
    });
    Ok(DatasetFile {
        errors,
        areas,
        responders,
        elders,
        devices,
    })
}

/// The entries of one list that are `T`s, each made a record by `record` (name, record); the
/// others go to `errors`.
fn entries<T: serde::de::DeserializeOwned, R>(
    list: Vec<serde_json::Value>,
    list_name: &str,
    errors: &mut Vec<String>,
    record: impl Fn(T) -> (String, Result<R, String>),
) -> Vec<Entry<R>> {
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let label = format!("{list_name}[{i}]");
        match serde_json::from_value::<T>(v) {
            Ok(t) => {
                let (name, record) = record(t);
                out.push(Entry {
                    label,
                    name,
                    record,
                });
            }
            Err(e) => errors.push(format!("{label}: {e}")),
        }
    }
    out
}

fn area(a: AreaRec) -> Area {
    let level = AreaLevel::parse(&a.level).ok_or_else(|| {
        format!(
            "level {:?} is not district, street, community or grid",
            a.level
        )
    });
    Area {
        code: a.code,
        name: a.name,
        level,
        parent: a.parent,
        worker: a.worker,
        boundary: a.boundary,
    }
}

fn responder(r: ResponderRec) -> Result<Responder, String> {
    let kind = ResponderKind::parse(&r.kind)
        .ok_or_else(|| format!("unknown responder kind {:?}", r.kind))?;
    let input = ResponderInput {
        name: r.name,
        phone: r.phone,
        kind,
        team: r.team,
        skills: r.skills,
        grid_id: None,
        home_lat: r.home_lat,
        home_lon: r.home_lon,
        max_tasks: r.max_tasks,
        shifts: r
            .shifts
            .iter()
            .map(|s| Shift {
                weekdays: s.weekdays,
                start_min: s.start_min,
                end_min: s.end_min,
            })
            .collect(),
        password: r.password,
        notify_by: Default::default(),
    };
    let check = crate::store::check_responder(&input).map_err(|e| e.to_string());
    Ok(Responder {
        reference: r.reference,
        grid: r.grid,
        input,
        check,
    })
}

fn elder(e: ElderRec, device: Option<Device>) -> Result<Elder, String> {
    let living: LivingSituation =
        serde_json::from_value(serde_json::Value::String(e.living.clone())).map_err(|_| {
            format!(
                "living {:?} is not alone, empty_nest, three_no or with_family",
                e.living
            )
        })?;
    let input = ElderInput {
        name: e.name,
        phone: e.phone,
        address: e.address,
        lat: e.lat,
        lon: e.lon,
        grid_id: None,
        living,
        health_notes: e.health_notes,
        medications: e.medications,
        contacts: e
            .contacts
            .into_iter()
            .map(|c| Contact {
                name: c.name,
                relation: c.relation,
                phone: c.phone,
                key_holder: c.key_holder,
            })
            .collect(),
        key_safe_code: e.key_safe_code,
        checkin_hours: e.checkin_hours,
    };
    let check = crate::store::check_elder(&input).map_err(|e| e.to_string());
    Ok(Elder {
        reference: e.reference,
        grid: e.grid,
        input,
        check,
        device,
    })
}

fn device(d: DeviceRec, elder_id: Option<i64>) -> Device {
    let input = DeviceInput {
        protocol: d.protocol,
        ident: d.ident,
        secret_hex: d.secret_hex,
        model: d.model,
        elder_id,
        enabled: true,
        heartbeat_s: d.heartbeat_s,
    };
    let check = crate::store::check_device(true, &input).map_err(|e| e.to_string());
    Device {
        elder: d.elder,
        input,
        check,
    }
}

fn csv_file(text: &str) -> Result<CsvFile, ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ParseError::CsvHeader(e.to_string()))?
        .clone();
    let has = |c: &str| headers.iter().any(|h| h == c);
    let kind = if has("living") {
        CsvKind::Elders
    } else if has("level") {
        CsvKind::Areas
    } else if has("kind") {
        CsvKind::Responders
    } else if has("protocol") && has("ident") {
        CsvKind::Devices
    } else {
        return Err(ParseError::UnknownCsv(
            headers.iter().map(String::from).collect(),
        ));
    };
    let label_column = ["name", "code", "ident"]
        .iter()
        .find_map(|c| headers.iter().position(|h| h == *c));
    let mut lines = Lines::new(text);
    let mut rows = Vec::new();
    for record in reader.records() {
        let row = match record {
            Ok(rec) => CsvRow {
                line: lines.at(rec.position()),
                name: label_column
                    .and_then(|i| rec.get(i))
                    .unwrap_or_default()
                    .to_string(),
                record: csv_record(kind, &rec, &headers),
            },
            Err(e) => CsvRow {
                line: lines.at(e.position()),
                name: String::new(),
                record: Err(e.to_string()),
            },
        };
        rows.push(row);
    }
    Ok(CsvFile { kind, rows })
}

/// Line numbers of CSV records as an editor shows them.
///
/// The CSV reader numbers a record by where it started reading it: before the blank lines it
/// skipped and, after a `\r\n`, before the `\n`; and it counts only `\n`, though it takes a lone
/// `\r` for a line end too. So with CRLF line ends every row was said to be on the line above,
/// the first one on the header's. Here a record's line is 1 + the line ends (`\r\n`, `\n` or
/// `\r`) before its first byte.
struct Lines<'a> {
    text: &'a [u8],
    /// Bytes counted so far.
    at: usize,
    /// The line that byte `at` is on.
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the record the reader began at `pos` (records come in order).
    fn at(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let from = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if from < self.at {
            (self.at, self.line) = (0, 1);
        }
        let start = self.text[from..]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(self.text.len(), |i| from + i);
        for i in self.at..start {
            let line_end = match self.text[i] {
                b'\r' => true,
                b'\n' => i == 0 || self.text[i - 1] != b'\r',
                _ => false,
            };
            self.line += u64::from(line_end);
        }
        self.at = start;
        self.line
    }
}

fn csv_record(
    kind: CsvKind,
    rec: &csv::StringRecord,
    headers: &csv::StringRecord,
) -> Result<Record, String> {
    fn row<T: serde::de::DeserializeOwned>(
        rec: &csv::StringRecord,
        headers: &csv::StringRecord,
    ) -> Result<T, String> {
        // Without the reader's position, whose line is the reader's (see `Lines`).
        rec.deserialize::<T>(Some(headers))
            .map_err(|e| match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => format!("CSV deserialize error: {err}"),
                _ => e.to_string(),
            })
    }
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    match kind {
        CsvKind::Elders => {
            let row: ElderRow = row(rec, headers)?;
            let contacts = parse_contacts(row.contacts.as_deref().unwrap_or(""))?;
            let device = match (non_empty(row.device_protocol), non_empty(row.device_ident)) {
                (Some(protocol), Some(ident)) => Some(device(
                    DeviceRec {
                        protocol,
                        ident,
                        secret_hex: non_empty(row.device_secret_hex),
                        model: row.device_model.unwrap_or_default(),
                        elder: None,
                        heartbeat_s: 300,
                    },
                    None,
                )),
                _ => None,
            };
            let e = ElderRec {
                reference: row.reference.unwrap_or_default(),
                name: row.name,
                phone: non_empty(row.phone),
                address: row.address,
                lat: row.lat,
                lon: row.lon,
                grid: non_empty(row.grid_code),
                living: row.living,
                health_notes: row.health_notes.unwrap_or_default(),
                medications: row.medications.unwrap_or_default(),
                contacts,
                key_safe_code: non_empty(row.key_safe_code),
                checkin_hours: row.checkin_hours.unwrap_or(24),
            };
            elder(e, device).map(Record::Elder)
        }
        CsvKind::Areas => {
            let row: AreaRow = row(rec, headers)?;
            Ok(Record::Area(area(AreaRec {
                code: row.code,
                level: row.level,
                name: row.name,
                parent: non_empty(row.parent_code),
                worker: None,
                boundary: vec![],
            })))
        }
        CsvKind::Responders => {
            let row: ResponderRow = row(rec, headers)?;
            responder(ResponderRec {
                reference: String::new(),
                name: row.name,
                phone: row.phone,
                kind: row.kind,
                team: non_empty(row.team),
                skills: row
                    .skills
                    .unwrap_or_default()
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                grid: non_empty(row.grid_code),
                home_lat: row.home_lat,
                home_lon: row.home_lon,
                max_tasks: row.max_tasks.unwrap_or(1),
                shifts: Vec::new(),
                password: None,
            })
            .map(Record::Responder)
        }
        CsvKind::Devices => {
            let row: DeviceRow = row(rec, headers)?;
            Ok(Record::Device(device(
                DeviceRec {
                    protocol: row.protocol,
                    ident: row.ident,
                    secret_hex: non_empty(row.secret_hex),
                    model: row.model.unwrap_or_default(),
                    elder: None,
                    heartbeat_s: row.heartbeat_s.unwrap_or(300),
                },
                row.elder_id,
            )))
        }
    }
}

/// `name|relation|phone[|key]` entries separated by `;`.
pub(super) fn parse_contacts(text: &str) -> Result<Vec<ContactRec>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> CsvFile {
        match parse(text).expect("parses") {
            Parsed::Csv(c) => c,
            Parsed::Dataset(_) => panic!("a CSV file"),
        }
    }

    fn dataset(text: &str) -> DatasetFile {
        match parse(text).expect("parses") {
            Parsed::Dataset(d) => d,
            Parsed::Csv(_) => panic!("a dataset"),
        }
    }

    fn message(row: &CsvRow) -> &str {
        row.record.as_ref().expect_err("a refused row")
    }

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

    #[test]
    fn elder_rows_are_records_or_their_reasons() {
        let f = csv(
            "\u{feff}name,address,lat,lon,living,grid_code,contacts,device_protocol,device_ident\n\
             胡秀英,文山路1号,27.111,114.977,alone,JZ-WS-SY-01,罗志强|儿子|139|key,gt06,868120000000005\n\
             王德明,文山路2号,not-a-number,114.977,alone,,,,\n\
             李玉兰,文山路3号,27.1,114.9,lonely,,,,\n\
             陈福生,文山路4号,27.1,114.9,lonely,,bad-contact,,\n\
             周桂英,文山路5号,95,114.9,three_no,,,pager,1\n",
        );
        assert_eq!(f.kind, CsvKind::Elders);
        let lines: Vec<u64> = f.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        let names: Vec<&str> = f.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["胡秀英", "王德明", "李玉兰", "陈福生", "周桂英"]);

        let Ok(Record::Elder(hu)) = &f.rows[0].record else {
            panic!("{:?}", f.rows[0]);
        };
        assert_eq!(hu.grid.as_deref(), Some("JZ-WS-SY-01"));
        assert_eq!(hu.input.living, LivingSituation::Alone);
        assert_eq!(hu.input.checkin_hours, 24);
        assert_eq!(hu.input.phone, None, "an absent column is no phone");
        assert!(hu.input.contacts[0].key_holder);
        assert_eq!(hu.check, Ok(()));
        let d = hu.device.as_ref().expect("the row's device");
        assert_eq!(
            (d.input.protocol.as_str(), d.input.ident.as_str()),
            ("gt06", "868120000000005")
        );
        assert_eq!((d.input.heartbeat_s, d.check.clone()), (300, Ok(())));

        assert_eq!(
            message(&f.rows[1]),
            "CSV deserialize error: field 2: invalid float literal"
        );
        assert_eq!(
            message(&f.rows[2]),
            "living \"lonely\" is not alone, empty_nest, three_no or with_family"
        );
        // Contacts are read before `living`, as they always were.
        assert_eq!(
            message(&f.rows[3]),
            "contact \"bad-contact\" is not name|relation|phone or name|relation|phone|key"
        );
        // Out-of-range coordinates and an unknown protocol are verdicts, not refusals: an elder
        // or device already in the database is `exists` whatever the row says.
        let Ok(Record::Elder(zhou)) = &f.rows[4].record else {
            panic!("{:?}", f.rows[4]);
        };
        assert_eq!(
            zhou.check,
            Err("coordinates out of range: 95, 114.9".to_string())
        );
        let check = &zhou.device.as_ref().expect("device").check;
        assert!(
            check
                .as_ref()
                .is_err_and(|e| e.starts_with("unknown protocol \"pager\"")),
            "{check:?}"
        );
    }

    /// Found by the fuzz target: a lone `\r` ends a record but not, for the CSV reader, a line.
    #[test]
    fn rows_are_numbered_by_their_own_line_whatever_the_line_ends() {
        let lines = |text: &str| -> Vec<u64> { csv(text).rows.iter().map(|r| r.line).collect() };
        assert_eq!(lines("kind\r7"), [2]);
        assert_eq!(
            lines("code,level,name\r\nA,district,a\r\nB,district,b\r\n"),
            [2, 3]
        );
        assert_eq!(
            lines("code,level,name\rA,district,a\rB,district,b\r"),
            [2, 3]
        );
        assert_eq!(
            lines("\n\ncode,level,name\n\nA,district,a\n\n  \nB,district,b\r\n\r\nC\n"),
            [5, 7, 8, 10]
        );
        // A quoted field's line ends are lines too.
        assert_eq!(
            lines("code,level,name\nA,district,\"a\r\nb\"\nB,x,y\n"),
            [2, 4]
        );
        // A row refused for its fields says its own line, and no other.
        let f = csv("code,level,name\r\nA,district\r\n");
        assert_eq!(f.rows[0].line, 2);
        assert_eq!(
            message(&f.rows[0]),
            "CSV deserialize error: expected field, but got end of row"
        );
    }

    #[test]
    fn area_responder_and_device_rows() {
        let areas = csv("code,level,name,parent_code\nJZ,district,吉州区,\nJZ-XX,planet,火星,JZ\n");
        assert_eq!(areas.kind, CsvKind::Areas);
        let Ok(Record::Area(jz)) = &areas.rows[0].record else {
            panic!("{:?}", areas.rows[0]);
        };
        assert_eq!(
            (jz.level.clone(), jz.parent.clone()),
            (Ok(AreaLevel::District), None)
        );
        let Ok(Record::Area(xx)) = &areas.rows[1].record else {
            panic!("{:?}", areas.rows[1]);
        };
        assert_eq!(
            xx.level,
            Err("level \"planet\" is not district, street, community or grid".to_string())
        );
        assert_eq!(xx.parent.as_deref(), Some("JZ"));

        let responders = csv("name,phone,kind,skills,grid_code,home_lat,home_lon\n\
             刘建华,139,grid_worker,first_aid; ;visit,JZ-1,27.1,114.9\n\
             A,1,wizard,,,1,1\n\
             B,2,volunteer,,,99,1\n\
             C,3,volunteer\n");
        let Ok(Record::Responder(liu)) = &responders.rows[0].record else {
            panic!("{:?}", responders.rows[0]);
        };
        assert_eq!(liu.input.kind, ResponderKind::GridWorker);
        assert_eq!(liu.input.skills, ["first_aid", "visit"]);
        assert_eq!(
            (liu.input.max_tasks, liu.grid.as_deref()),
            (1, Some("JZ-1"))
        );
        assert_eq!(
            message(&responders.rows[1]),
            "unknown responder kind \"wizard\""
        );
        let Ok(Record::Responder(b)) = &responders.rows[2].record else {
            panic!("{:?}", responders.rows[2]);
        };
        assert_eq!(b.check, Err("coordinates out of range: 99, 1".to_string()));
        assert!(
            message(&responders.rows[3]).ends_with("expected field, but got end of row"),
            "{}",
            message(&responders.rows[3])
        );

        let devices =
            csv("ident,protocol,secret_hex,elder_id,heartbeat_s\n1,native,zz,7,\n2,sia,,,5\n");
        assert_eq!(devices.kind, CsvKind::Devices);
        let checks: Vec<(Option<i64>, Result<(), String>)> = devices
            .rows
            .iter()
            .map(|r| match &r.record {
                Ok(Record::Device(d)) => (d.input.elder_id, d.check.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            checks,
            [
                (Some(7), Err("secret_hex is not hex".to_string())),
                (None, Err("heartbeat_s must be 10..86400".to_string())),
            ]
        );
    }

    #[test]
    fn dataset_entries_are_records_or_their_reasons() {
        let d = dataset(
            r#"{"format": "onekey-dataset/1",
                "areas": [{"code": "JZ", "level": "district", "name": "吉州区"}, {"code": 5}],
                "responders": [{"ref": "R1", "name": "刘", "phone": "1", "kind": "wizard",
                                "home_lat": 1, "home_lon": 1}],
                "elders": [{"ref": "E1", "name": "胡", "address": "a", "lat": 1, "lon": 1,
                            "living": "alone", "contacts": [{"name": "罗", "phone": "139"}]}],
                "devices": [{"protocol": "mqtt", "ident": "m1", "elder": "E1"}]}"#,
        );
        assert_eq!(
            d.errors,
            ["areas[1]: invalid type: integer `5`, expected a string"]
        );
        assert_eq!(d.areas.len(), 1);
        assert_eq!(
            (d.areas[0].label.as_str(), d.areas[0].name.as_str()),
            ("areas[0]", "JZ")
        );
        assert_eq!(
            (
                d.responders[0].name.as_str(),
                d.responders[0].record.as_ref().err()
            ),
            ("刘", Some(&"unknown responder kind \"wizard\"".to_string()))
        );
        let e = d.elders[0].record.as_ref().expect("an elder");
        assert_eq!((e.reference.as_str(), e.input.checkin_hours), ("E1", 24));
        assert_eq!(e.input.contacts[0].relation, "");
        let dev = d.devices[0].record.as_ref().expect("a device");
        assert_eq!(dev.elder.as_deref(), Some("E1"));
        assert_eq!(
            dev.check,
            Err("secret_hex is required for this protocol".to_string())
        );
    }

    #[test]
    fn files_that_cannot_be_imported_say_why() {
        let err = |text: &str| parse(text).map(|_| ()).expect_err("refused");
        assert_eq!(
            err(r#"{"format": "onekey-dataset/2"}"#).to_string(),
            "unknown dataset format \"onekey-dataset/2\" (expected \"onekey-dataset/1\")"
        );
        assert_eq!(
            err(" {").to_string(),
            "not a OneKey dataset: EOF while parsing an object at line 1 column 2"
        );
        assert_eq!(
            err(r#"{"areas": 3}"#),
            ParseError::NotADataset(
                "invalid type: integer `3`, expected a sequence at line 1 column 11".into()
            )
        );
        assert_eq!(
            err("\u{feff}foo,bar\n1,2\n").to_string(),
            "cannot tell what this CSV holds from its header [\"foo\", \"bar\"]: expected a \
             `living` (elders), `level` (areas), `kind` (responders) or `protocol`+`ident` \
             (devices) column"
        );
        assert_eq!(err(""), ParseError::UnknownCsv(vec![]));
        // `protocol` alone is not a devices file.
        assert!(matches!(
            err("protocol\nnative\n"),
            ParseError::UnknownCsv(_)
        ));
    }
}
