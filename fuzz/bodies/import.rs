//! Arbitrary bytes (lossily UTF-8) as an import file, through the import's parsing stage
//! (`onekey::import::parse`, no database): it must not panic, must give the same answer twice,
//! must account for every dataset entry once (a record or an error, by its position), and must
//! give every CSV data row exactly one record-or-error of the file's kind, on the row's own line.

use onekey::import::{CsvKind, Parsed, Record};
use serde::de::IgnoredAny;

/// One fuzz input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = onekey::import::parse(&text);
    // Debug, not PartialEq: a CSV coordinate may be NaN, which is equal to nothing.
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", onekey::import::parse(&text)),
        "parsing is deterministic"
    );
    let body = text.trim_start_matches('\u{feff}');
    match parsed {
        Ok(Parsed::Dataset(d)) => {
            let lists: Lists = serde_json::from_str(body).expect("a dataset has its lists");
            let len = |list: &str| match list {
                "areas" => lists.areas.len(),
                "responders" => lists.responders.len(),
                "elders" => lists.elders.len(),
                _ => lists.devices.len(),
            };
            let labels = |list: &str, records: Vec<(&str, &str)>| {
                let mut seen: Vec<usize> = records
                    .iter()
                    .map(|(label, _)| index(list, label).expect("an entry's label"))
                    .chain(d.errors.iter().filter_map(|e| {
                        let (label, _) = e.split_once(": ")?;
                        index(list, label)
                    }))
                    .collect();
                seen.sort_unstable();
                assert_eq!(
                    seen,
                    (0..len(list)).collect::<Vec<_>>(),
                    "every entry of {list} once"
                );
            };
            labels(
                "areas",
                d.areas
                    .iter()
                    .map(|e| {
                        if let Ok(a) = &e.record {
                            assert_eq!(a.code, e.name);
                        }
                        (e.label.as_str(), e.name.as_str())
                    })
                    .collect(),
            );
            labels(
                "responders",
                d.responders
                    .iter()
                    .map(|e| {
                        if let Ok(r) = &e.record {
                            assert_eq!(r.input.name, e.name);
                        }
                        (e.label.as_str(), e.name.as_str())
                    })
                    .collect(),
            );
            labels(
                "elders",
                d.elders
                    .iter()
                    .map(|e| {
                        if let Ok(r) = &e.record {
                            assert_eq!(r.input.name, e.name);
                            assert!(r.device.is_none(), "a dataset's devices are its own list");
                        }
                        (e.label.as_str(), e.name.as_str())
                    })
                    .collect(),
            );
            labels(
                "devices",
                d.devices
                    .iter()
                    .map(|e| {
                        if let Ok(r) = &e.record {
                            assert_eq!(r.input.ident, e.name);
                            assert_eq!(r.input.elder_id, None, "datasets refer by ref");
                        }
                        (e.label.as_str(), e.name.as_str())
                    })
                    .collect(),
            );
        }
        Ok(Parsed::Csv(c)) => {
            let mut last = 1;
            for row in &c.rows {
                assert!(row.line > last, "rows in order, below the header: {row:?}");
                last = row.line;
                if let Ok(r) = &row.record {
                    let kind = match r {
                        Record::Area(_) => CsvKind::Areas,
                        Record::Responder(_) => CsvKind::Responders,
                        Record::Elder(_) => CsvKind::Elders,
                        Record::Device(_) => CsvKind::Devices,
                    };
                    assert_eq!(kind, c.kind, "{row:?}");
                }
            }
            // Without quotes every physical line is one record: the rows are the non-empty lines
            // after the header's, each on its own line number.
            if !body.contains('"') {
                let lines = lines(body);
                let header = lines.iter().position(|l| !l.is_empty());
                let expected: Vec<u64> = match header {
                    Some(h) => (h + 1..lines.len())
                        .filter(|&i| !lines[i].is_empty())
                        .map(|i| i as u64 + 1)
                        .collect(),
                    None => vec![],
                };
                let got: Vec<u64> = c.rows.iter().map(|r| r.line).collect();
                assert_eq!(
                    got, expected,
                    "one row per non-empty line, numbered as in an editor"
                );
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
}

/// A dataset's lists, any entries, read at least as leniently as the import reads them: anything
/// else is skipped unread, as the import skips it (a number too large for a `Value`, say).
#[derive(serde::Deserialize)]
struct Lists {
    #[serde(default)]
    areas: Vec<IgnoredAny>,
    #[serde(default)]
    responders: Vec<IgnoredAny>,
    #[serde(default)]
    elders: Vec<IgnoredAny>,
    #[serde(default)]
    devices: Vec<IgnoredAny>,
}

/// `3` for `label` = `list[3]`.
fn index(list: &str, label: &str) -> Option<usize> {
    label
        .strip_prefix(list)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Physical lines, ended by `\r\n`, `\n` or `\r` (what a CSV reader and an editor take as ends).
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let end = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + end..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}
