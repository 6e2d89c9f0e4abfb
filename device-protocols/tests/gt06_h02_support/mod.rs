//! Loading the real-device vectors (tests/vectors) for the GT06 and H02 tests.
#![allow(dead_code)]

use std::path::PathBuf;

use onekey_device_protocols::report::AlarmKind;
use onekey_device_protocols::{Location, Report};

/// The real-device vectors kept in the repository (`device-protocols/tests/vectors`, provenance in
/// its README).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))
}

/// Reads a vector file, failing the test loudly when it is missing.
pub fn read_vectors(name: &str) -> String {
    let path = vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "vector file {} not readable ({e}); it belongs in device-protocols/tests/vectors",
            path.display()
        )
    })
}

/// One row of a vector TSV.
#[derive(Debug, Clone)]
pub struct Row {
    pub index: u32,
    pub kind: String,
    pub payload: Vec<u8>,
    /// `key=value` pairs of the `expected` column, `ctx.*` keys included.
    pub expected: Vec<(String, String)>,
}

impl Row {
    /// The value of an expected key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.expected
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a vector TSV (header row first).
pub fn rows(name: &str) -> Vec<Row> {
    let text = read_vectors(name);
    let rows: Vec<Row> =
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                assert!(cols.len() >= 6, "{name}: short row {line:?}");
                let payload = match cols[5] {
                    "hex" => hex::decode(cols[2])
                        .unwrap_or_else(|e| panic!("{name} row {}: {e}", cols[0])),
                    "text" => unescape(cols[2]),
                    other => panic!("{name}: unknown encoding {other}"),
                };
                let expected = cols[3]
                    .split(';')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.to_owned(), unescape_str(v))
                    })
                    .collect();
                Row {
                    index: cols[0].parse().expect("index"),
                    kind: cols[1].to_owned(),
                    payload,
                    expected,
                }
            })
            .collect();
    assert!(!rows.is_empty(), "{name} holds no rows");
    rows
}

/// Undoes the TSV text escaping: `\\`, `\r`, `\n`, `\t`, `\xNN`.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'\\' => out.push(b'\\'),
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'x' if i + 3 < bytes.len() => {
                    let v = u8::from_str_radix(&s[i + 2..i + 4], 16).expect("\\xNN escape");
                    out.push(v);
                    i += 4;
                    continue;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn unescape_str(s: &str) -> String {
    String::from_utf8(unescape(s)).expect("utf-8 expected value")
}

/// The alarm mapping this codec promises, written out independently of the code under test.
pub fn expected_kind(reference_name: &str) -> AlarmKind {
    match reference_name {
        "sos" => AlarmKind::Sos,
        "fallDown" => AlarmKind::Fall,
        "powerCut" => AlarmKind::PowerLoss,
        "lowBattery" | "lowPower" => AlarmKind::LowBattery,
        "removing" | "tampering" => AlarmKind::Tamper,
        "geofenceExit" | "geofence" => AlarmKind::Wandering,
        "vibration" | "overspeed" | "geofenceEnter" | "powerOff" | "door" | "general"
        | "accident" | "hardBraking" | "hardAcceleration" | "hardCornering" | "jamming"
        | "temperature" | "idle" => AlarmKind::DeviceFault,
        other => panic!("no mapping written for reference alarm {other:?}"),
    }
}

/// The alarm kinds among `reports`, sorted.
pub fn alarm_kinds(reports: &[Report]) -> Vec<AlarmKind> {
    let mut kinds: Vec<AlarmKind> = reports
        .iter()
        .filter_map(|r| {
            if let Report::Alarm { kind, .. } = r {
                Some(*kind)
            } else {
                None
            }
        })
        .collect();
    kinds.sort();
    kinds
}

/// The first location any report carries.
pub fn location(reports: &[Report]) -> Option<Location> {
    reports.iter().find_map(|r| match r {
        Report::Position(l) => Some(*l),
        Report::Alarm { location, .. } => *location,
        _ => None,
    })
}

/// `2015-10-20 14:21:11.000` as Unix seconds.
pub fn parse_time(s: &str) -> i64 {
    let n: Vec<i64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap())
        .collect();
    let (y, mo, d) = (n[0], n[1], n[2]);
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n[3] * 3600 + n[4] * 60 + n[5]
}

/// Asserts a position expectation `time=…;valid=…;lat=…;lon=…` (each part optional).
pub fn check_position(row: &Row, loc: &Location) {
    let tol = 0.00005;
    if let Some(lat) = row.get("lat") {
        let lat: f64 = lat.parse().unwrap();
        assert!(
            (loc.lat - lat).abs() < tol,
            "row {}: lat {} != {lat}",
            row.index,
            loc.lat
        );
    }
    if let Some(lon) = row.get("lon") {
        let lon: f64 = lon.parse().unwrap();
        assert!(
            (loc.lon - lon).abs() < tol,
            "row {}: lon {} != {lon}",
            row.index,
            loc.lon
        );
    }
    if let Some(valid) = row.get("valid") {
        assert_eq!(loc.valid.to_string(), valid, "row {}: valid", row.index);
    }
    if let Some(time) = row.get("time") {
        assert_eq!(loc.time, Some(parse_time(time)), "row {}: time", row.index);
    }
}
