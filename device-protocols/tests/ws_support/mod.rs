//! Loading the real-device vectors (tests/vectors) for the watch and SIA tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One TSV row: named columns, plus the decoded payload and `expected` pairs.
#[derive(Debug, Clone)]
pub struct Row {
    pub columns: BTreeMap<String, String>,
    pub payload: Vec<u8>,
    pub expected: Vec<(String, String)>,
}

impl Row {
    pub fn col(&self, name: &str) -> &str {
        self.columns
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn index(&self) -> usize {
        self.col("index").parse().expect("numeric index column")
    }

    pub fn kind(&self) -> &str {
        self.col("kind")
    }

    pub fn expect(&self, key: &str) -> Option<&str> {
        self.expected
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The real-device vectors kept in the repository (`device-protocols/tests/vectors`, provenance in
/// its README). Panics when missing, so that a broken checkout fails instead of silently passing.
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    assert!(
        dir.join("README.md").is_file(),
        "device vectors not found at {}",
        dir.display()
    );
    dir
}

/// Reads `name` from the vectors directory; panics with a clear message when absent or empty.
pub fn load(name: &str) -> Vec<Row> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("header row").split('\t').collect();
    let rows: Vec<Row> = lines.map(|line| row(&header, line)).collect();
    assert!(!rows.is_empty(), "{} has no rows", path.display());
    rows
}

fn row(header: &[&str], line: &str) -> Row {
    let columns: BTreeMap<String, String> = header
        .iter()
        .zip(line.split('\t').chain(std::iter::repeat("")))
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect();
    let raw = columns.get("payload").cloned().unwrap_or_default();
    let payload = match columns.get("encoding").map(String::as_str) {
        Some("hex") => hex::decode(&raw).expect("hex payload"),
        _ => unescape_text(&raw),
    };
    let expected = columns
        .get("expected")
        .map(|e| {
            e.split(';')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (p.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    Row {
        columns,
        payload,
        expected,
    }
}

/// Undoes the TSV text encoding: `\\`, `\r`, `\n`, `\t`, `\xNN` and `<x0A>` markers.
pub fn unescape_text(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex_at = |from: usize| {
            s.get(from..from + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'\\')) => (out.push(b'\\'), i += 2).1,
            (b'\\', Some(b'r')) => (out.push(b'\r'), i += 2).1,
            (b'\\', Some(b'n')) => (out.push(b'\n'), i += 2).1,
            (b'\\', Some(b't')) => (out.push(b'\t'), i += 2).1,
            (b'\\', Some(b'x')) if hex_at(i + 2).is_some() => {
                out.push(hex_at(i + 2).unwrap_or_default());
                i += 4;
            }
            (b'<', Some(b'x')) if hex_at(i + 2).is_some() && b.get(i + 4) == Some(&b'>') => {
                out.push(hex_at(i + 2).unwrap_or_default());
                i += 5;
            }
            (c, _) => (out.push(c), i += 1).1,
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS(.fff)` or `YYYY-MM-DDTHH:MM:SS(+00:00)` to Unix seconds (UTC).
pub fn unix(s: &str) -> i64 {
    let n = |a: usize, b: usize| -> i64 { s[a..b].parse().expect("date digits") };
    let (y, mo, d, h, mi, se) = (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19));
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + h * 3_600 + mi * 60 + se
}

/// Feeds `stream` to `codec` in chunks of `chunk` bytes, collecting frames and errors.
pub fn run_codec<C>(codec: &mut C, stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>>
where
    C: tokio_util::codec::Decoder<Item = Vec<u8>>,
    C::Error: std::fmt::Display,
{
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    let mut chunks = stream.chunks(chunk.max(1)).peekable();
    loop {
        let last = chunks.peek().is_none();
        if let Some(c) = chunks.next() {
            buf.extend_from_slice(c);
        }
        loop {
            let before = buf.len();
            let step = if last {
                codec.decode_eof(&mut buf)
            } else {
                codec.decode(&mut buf)
            };
            match step {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
            assert!(
                buf.len() < before || before == 0,
                "decoder made no progress"
            );
        }
        if last {
            return out;
        }
    }
}
