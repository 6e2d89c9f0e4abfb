//! H02 binary `$` frames: BCD fields, 32 or 45 bytes (42 with a 15-digit id, over UDP).

use crate::report::{Location, Report};

use super::status::alarm_report;
use super::{ParseError, Session, r12_reply};
use crate::gt06::civil::unix_time;

/// The nibbles of `b`, high nibble first.
fn nibbles(b: &[u8]) -> impl Iterator<Item = u8> + '_ {
    b.iter().flat_map(|&x| [x >> 4, x & 0x0F])
}

/// A decimal number from BCD nibbles, `None` if a nibble is not 0–9.
fn bcd(mut digits: impl Iterator<Item = u8>) -> Option<u32> {
    digits.try_fold(0u32, |acc, d| {
        if d <= 9 {
            acc.checked_mul(10)?.checked_add(u32::from(d))
        } else {
            None
        }
    })
}

/// `(degrees, minutes×10⁴)` from `deg_digits` degree nibbles then 6 minute nibbles.
fn coordinate(digits: &[u8], deg_digits: usize) -> Option<f64> {
    let deg = bcd(digits.get(..deg_digits)?.iter().copied())?;
    let min = bcd(digits.get(deg_digits..deg_digits + 6)?.iter().copied())?;
    let minutes = f64::from(min) / 10_000.0;
    (minutes < 60.0).then(|| f64::from(deg) + minutes / 60.0)
}

/// H02 battery byte: 0 none, 1–3 → (v−1)×10 %, 4–6 → (v−1)×20 %, up to 100 a percent, 0xF1–0xF6 the
/// same 1–6 scale.
pub(crate) fn battery_pct(v: u8) -> Option<u8> {
    match v {
        0 => None,
        1..=3 => Some((v - 1) * 10),
        4..=6 => Some((v - 1) * 20),
        7..=100 => Some(v),
        0xF1..=0xF6 => battery_pct(v - 0xF0),
        _ => None,
    }
}

/// Decodes `$ id(5|8) hhmmss DDMMYY lat(4) battery lon(4.5)+flags speed(1.5) course(1.5) status(4) …`.
pub(crate) fn parse(
    frame: &[u8],
    session: &mut Session,
    now_unix: i64,
) -> Result<crate::Decoded, ParseError> {
    let id_len = if frame.len() == 42 { 8 } else { 5 };
    let need = 1 + id_len + 6 + 4 + 1 + 5 + 3 + 4;
    if frame.len() < need {
        return Err(ParseError::TooShort);
    }
    let id_hex = hex::encode(frame.get(1..1 + id_len).ok_or(ParseError::TooShort)?);
    let id = id_hex
        .get(..if id_len == 8 { 15 } else { 10 })
        .unwrap_or_default()
        .to_owned();
    let rest = frame.get(1 + id_len..need).ok_or(ParseError::TooShort)?;
    let digits: Vec<u8> = nibbles(rest).collect();
    let two = |at: usize| bcd(digits.get(at..at + 2)?.iter().copied());
    let time = match (two(0), two(2), two(4), two(6), two(8), two(10)) {
        (Some(h), Some(mi), Some(s), Some(d), Some(mo), Some(y)) => {
            unix_time(2000 + i64::from(y), mo, d, h, mi, s)
        }
        _ => None,
    };
    let lat = digits.get(12..20).and_then(|d| coordinate(d, 2));
    let battery = rest.get(10).copied().and_then(battery_pct);
    let lon = digits.get(22..31).and_then(|d| coordinate(d, 3));
    let flags = digits.get(31).copied().unwrap_or_default();
    let status = rest
        .get(19..23)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(ParseError::TooShort)?;
    let valid = flags & 0x02 != 0;
    let location = match (lat, lon) {
        (Some(lat), Some(lon))
            if lat <= 90.0 && lon <= 180.0 && (valid || lat != 0.0 || lon != 0.0) =>
        {
            Some(Location {
                lat: if flags & 0x04 != 0 { lat } else { -lat },
                lon: if flags & 0x08 != 0 { lon } else { -lon },
                accuracy_m: None,
                valid,
                time,
            })
        }
        _ => None,
    };
    let mut reports = Vec::new();
    match alarm_report(status, location) {
        Some(alarm) => reports.push(alarm),
        None => reports.extend(location.map(Report::Position)),
    }
    reports.push(Report::Heartbeat {
        battery_pct: battery,
        mains: None,
        signal_pct: None,
    });
    session.remember(&id);
    let reply = r12_reply(session, Some(&id), now_unix);
    Ok(crate::Decoded {
        identity: Some(id),
        serial: None,
        reports,
        reply,
    })
}
