//! H02 text sentences `*XX,<id>,<type>,…#`.

use crate::report::{Location, Report};

use super::binary::battery_pct;
use super::status::alarm_report;
use super::{ParseError, Session, r12_reply, v4_reply};
use crate::gt06::civil::unix_time;

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_status(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `hhmmss` + `ddmmyy` as Unix seconds (UTC).
fn sentence_time(hhmmss: &str, ddmmyy: &str) -> Option<i64> {
    if !is_digits(hhmmss, 6) || !is_digits(ddmmyy, 6) {
        return None;
    }
    let n = |s: &str, at: usize| s.get(at..at + 2).and_then(|v| v.parse::<u32>().ok());
    unix_time(
        2000 + i64::from(n(ddmmyy, 4)?),
        n(ddmmyy, 2)?,
        n(ddmmyy, 0)?,
        n(hhmmss, 0)?,
        n(hhmmss, 2)?,
        n(hhmmss, 4)?,
    )
}

/// A coordinate in any of the forms devices send: `ddmm.mmmm` (any number of degree digits),
/// `-dd-mm.mmmm`, or `ddmmmmmm` without a point; signed by the hemisphere letter.
fn coordinate(value: &str, hemisphere: &str, is_lon: bool) -> Option<f64> {
    let negative = match hemisphere.trim() {
        "N" | "E" => false,
        "S" | "W" => true,
        _ => return None,
    };
    let v = value.trim();
    let (degrees, minutes) =
        if let Some((d, m)) = v.strip_prefix('-').and_then(|r| r.split_once('-')) {
            (d.parse::<f64>().ok()?, m.parse::<f64>().ok()?)
        } else if v.contains('.') {
            let x: f64 = v.parse().ok()?;
            let d = (x / 100.0).floor();
            (d, x - d * 100.0)
        } else if v.len() >= 7 && v.bytes().all(|b| b.is_ascii_digit()) {
            let (d, m) = v.split_at(v.len() - 6);
            (d.parse::<f64>().ok()?, m.parse::<f64>().ok()? / 10_000.0)
        } else {
            return None;
        };
    let result = degrees + minutes / 60.0;
    let limit = if is_lon { 180.0 } else { 90.0 };
    let ok = degrees >= 0.0 && (0.0..60.0).contains(&minutes) && result <= limit;
    ok.then_some(if negative { -result } else { result })
}

/// The status word: the first 8-hex field from `from` on that follows a date (or an empty field),
/// else the last field when it is 8 hex digits.
fn find_status(fields: &[&str], from: usize) -> Option<u32> {
    let start = from.max(1);
    let after_date = (start..fields.len()).find(|&i| {
        let prev = fields.get(i - 1).copied().unwrap_or_default();
        fields.get(i).copied().is_some_and(is_status) && (is_digits(prev, 6) || prev.is_empty())
    });
    let last = fields
        .len()
        .checked_sub(1)
        .filter(|&i| i >= start && fields.get(i).copied().is_some_and(is_status));
    let index = after_date.or(last)?;
    u32::from_str_radix(fields.get(index)?, 16).ok()
}

/// A position sentence body starting at the time field `t`: `hhmmss,A|V,lat,N|S,lon,E|W,speed,
/// course[,battery],ddmmyy,STATUS…`. Returns the location and where the status search starts.
fn position_at(fields: &[&str], t: usize) -> (Option<Location>, usize) {
    let f = |i: usize| fields.get(i).copied().unwrap_or_default().trim();
    let validity = f(t + 1);
    let valid =
        validity == "A" || (!validity.is_empty() && validity.bytes().all(|b| b.is_ascii_digit()));
    let date_at = [t + 8, t + 9].into_iter().find(|&i| is_digits(f(i), 6));
    let time = date_at.and_then(|d| sentence_time(f(t), f(d)));
    let location = match (
        coordinate(f(t + 2), f(t + 3), false),
        coordinate(f(t + 4), f(t + 5), true),
    ) {
        (Some(lat), Some(lon)) if valid || lat != 0.0 || lon != 0.0 => Some(Location {
            lat,
            lon,
            accuracy_m: None,
            valid,
            time,
        }),
        _ => None,
    };
    (location, date_at.map_or(t + 8, |d| d + 1))
}

/// `V4,<command>,<result…>[,hhmmss],hhmmss,A,…`: the index of the position's time field, found from
/// the validity letter followed by the two hemisphere letters.
fn v4_position_start(fields: &[&str]) -> Option<usize> {
    (5..fields.len())
        .find(|&j| {
            let f = |i: usize| fields.get(i).copied().unwrap_or_default();
            matches!(f(j), "A" | "V" | "B")
                && matches!(f(j + 2), "N" | "S")
                && matches!(f(j + 4), "E" | "W")
        })
        .map(|j| j - 1)
}

/// Reports for a location and a status word: the alarm carrying the location, else the position.
fn located(location: Option<Location>, status: Option<u32>) -> Vec<Report> {
    match status.and_then(|s| alarm_report(s, location)) {
        Some(alarm) => vec![alarm],
        None => location.map(Report::Position).into_iter().collect(),
    }
}

fn alive() -> Report {
    Report::Heartbeat {
        battery_pct: None,
        mains: None,
        signal_pct: None,
    }
}

/// Decodes a text sentence (`*` … `#`).
pub(crate) fn parse(
    frame: &[u8],
    session: &mut Session,
    now_unix: i64,
) -> Result<crate::Decoded, ParseError> {
    let text = String::from_utf8_lossy(frame);
    let body = text
        .trim()
        .strip_prefix('*')
        .ok_or(ParseError::Malformed("text frame without '*'"))?;
    let body = body.strip_suffix('#').unwrap_or(body);
    let fields: Vec<&str> = body.split(',').collect();
    let vendor = fields.first().copied().unwrap_or_default();
    let id = fields.get(1).map(|s| s.trim()).filter(|s| !s.is_empty());
    let kind = fields.get(2).map(|s| s.trim()).unwrap_or_default();
    if let Some(id) = id {
        session.remember(id);
    }
    let reply_id = id
        .map(str::to_owned)
        .or_else(|| session.device_id().map(str::to_owned));
    let (mut reports, reply) = match kind {
        "V0" | "HTBT" => {
            let battery = fields
                .get(3)
                .and_then(|b| b.trim().parse::<u8>().ok())
                .and_then(battery_pct);
            let echo = reply_id
                .as_ref()
                .map(|id| format!("*{vendor},{id},{kind}#").into_bytes());
            (
                vec![Report::Heartbeat {
                    battery_pct: battery,
                    mains: None,
                    signal_pct: None,
                }],
                echo,
            )
        }
        "LINK" => {
            let n = |i: usize| fields.get(i).and_then(|v| v.trim().parse::<u32>().ok());
            let signal = n(4).map(|rssi| u8::try_from(rssi.min(31) * 100 / 31).unwrap_or(100));
            let battery = n(6)
                .and_then(|b| u8::try_from(b).ok())
                .filter(|&b| b <= 100);
            let mut r = vec![Report::Heartbeat {
                battery_pct: battery,
                mains: None,
                signal_pct: signal,
            }];
            r.extend(find_status(&fields, 3).and_then(|s| alarm_report(s, None)));
            (r, r12_reply(session, reply_id.as_deref(), now_unix))
        }
        "NBR" => {
            let mut r = located(None, find_status(&fields, 3));
            r.push(alive());
            (
                r,
                reply_id.as_deref().map(|id| v4_reply(id, "NBR", now_unix)),
            )
        }
        "SMS" => {
            let text = body.splitn(4, ',').nth(3).unwrap_or_default().to_owned();
            (
                vec![Report::CommandResult { text }],
                r12_reply(session, reply_id.as_deref(), now_unix),
            )
        }
        "VP1" => {
            let f = |i: usize| fields.get(i).copied().unwrap_or_default();
            let location = if matches!(f(3), "A" | "B") {
                match (coordinate(f(4), f(5), false), coordinate(f(6), f(7), true)) {
                    (Some(lat), Some(lon)) => Some(Location {
                        lat,
                        lon,
                        accuracy_m: None,
                        valid: true,
                        time: None,
                    }),
                    _ => None,
                }
            } else {
                None
            };
            (
                located(location, None),
                r12_reply(session, reply_id.as_deref(), now_unix),
            )
        }
        "V4" => {
            let start = v4_position_start(&fields);
            let mut result_end = start.unwrap_or(fields.len());
            if result_end > 4 && fields.get(result_end - 1).is_some_and(|f| is_digits(f, 6)) {
                result_end -= 1;
            }
            let text = fields
                .get(3..result_end)
                .map(|r| r.join(","))
                .unwrap_or_default();
            let mut r = match start {
                Some(t) => {
                    let (location, from) = position_at(&fields, t);
                    located(location, find_status(&fields, from))
                }
                None => Vec::new(),
            };
            r.push(Report::CommandResult { text });
            (r, r12_reply(session, reply_id.as_deref(), now_unix))
        }
        k if k.starts_with('V') => {
            let (location, from) = position_at(&fields, 3);
            let r = located(location, find_status(&fields, from));
            let reply = if k == "V1" {
                reply_id.as_deref().map(|id| v4_reply(id, "V1", now_unix))
            } else {
                r12_reply(session, reply_id.as_deref(), now_unix)
            };
            (r, reply)
        }
        _ => (
            located(None, find_status(&fields, 3)),
            r12_reply(session, reply_id.as_deref(), now_unix),
        ),
    };
    if reports.is_empty() {
        reports.push(alive());
    }
    Ok(crate::Decoded {
        identity: id.map(str::to_owned),
        serial: None,
        reports,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinate_forms() {
        let close = |a: Option<f64>, b: f64| assert!((a.unwrap() - b).abs() < 1e-5, "{a:?} vs {b}");
        close(coordinate("3542.2043", "N", false), 35.70340);
        close(coordinate("38.6508", "W", true), -0.64418);
        close(coordinate("37573392", "S", false), -37.95565);
        close(coordinate("-23-29.0095", "S", false), -23.48349);
        close(coordinate("2117.4683", "E", true), 21.29113);
        assert_eq!(coordinate("0.0000", "0", false), None);
        assert_eq!(coordinate("", "N", false), None);
        assert_eq!(coordinate("9999.0000", "N", false), None);
    }
}
