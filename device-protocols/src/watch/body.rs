//! The comma-separated position body of `UD`/`UD2`/`UD3`/`UD_LTE`/`UD_WCDMA`/`WT`/`AL*` messages.

use crate::report::{AlarmKind, Location};

/// Field positions after the message type (reference §2.3).
const DATE: usize = 0;
const TIME: usize = 1;
const VALIDITY: usize = 2;
const LAT: usize = 3;
const LAT_HEMI: usize = 4;
const LON: usize = 5;
const LON_HEMI: usize = 6;
const GSM: usize = 11;
const BATTERY: usize = 12;
const STATUS: usize = 15;

/// What one position body says, each part independently optional so that a damaged body still
/// yields whatever it can (an `AL` must raise its alarm even when its coordinates are garbage).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Body<'a> {
    pub location: Option<Location>,
    pub battery_pct: Option<u8>,
    pub signal_pct: Option<u8>,
    /// The status word as sent (hex text) and its value.
    pub status: Option<(&'a str, u32)>,
}

impl<'a> Body<'a> {
    /// Parses the fields that follow the message type.
    pub fn parse(fields: &[&'a str]) -> Self {
        let get = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or_default();
        let status = u32::from_str_radix(get(STATUS), 16)
            .ok()
            .map(|v| (get(STATUS), v));
        Self {
            location: location(&get),
            battery_pct: percent(get(BATTERY)),
            signal_pct: percent(get(GSM)),
            status,
        }
    }
}

fn percent(s: &str) -> Option<u8> {
    s.parse::<u32>().ok().map(|v| v.min(100) as u8)
}

/// The fix, or `None` when the coordinates are missing, out of range or exactly 0/0 (the watches'
/// "no fix" value).
fn location<'a>(get: &impl Fn(usize) -> &'a str) -> Option<Location> {
    let lat = coordinate(get(LAT), get(LAT_HEMI), 'S', 90.0)?;
    let lon = coordinate(get(LON), get(LON_HEMI), 'W', 180.0)?;
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    Some(Location {
        lat,
        lon,
        accuracy_m: None,
        valid: get(VALIDITY) == "A",
        time: unix_time(get(DATE), get(TIME)),
    })
}

/// A decimal coordinate. Some watches already send it signed; a southern/western hemisphere letter
/// makes it negative, never positive.
fn coordinate(value: &str, hemisphere: &str, negative: char, limit: f64) -> Option<f64> {
    let v: f64 = value.parse().ok()?;
    if !v.is_finite() || v.abs() > limit {
        return None;
    }
    let south_or_west = hemisphere.len() == 1 && hemisphere.starts_with(negative);
    Some(if south_or_west { -v.abs() } else { v })
}

/// `ddmmyy` + `hhmmss` (UTC) to Unix seconds.
fn unix_time(date: &str, time: &str) -> Option<i64> {
    let d = two_digit_triplet(date)?;
    let t = two_digit_triplet(time)?;
    let (day, month, year) = (d[0], d[1], 2000 + d[2]);
    let valid = (1..=31).contains(&day) && (1..=12).contains(&month) && t[0] < 24 && t[1] < 60;
    if !valid || t[2] > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + t[0] * 3_600 + t[1] * 60 + t[2])
}

fn two_digit_triplet(s: &str) -> Option<[i64; 3]> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| s.get(i..i + 2)?.parse::<i64>().ok();
    Some([n(0)?, n(2)?, n(4)?])
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a set status bit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusMeaning {
    /// Raise this alarm.
    Alarm(AlarmKind),
    /// The wearer came back inside a geofence.
    GeofenceEnter,
}

/// Bits meaning the wearer came back inside a geofence.
const GEOFENCE_ENTER_BITS: &[u32] = &[2, 19];

fn any_bit(status: u32, bits: &[u32]) -> bool {
    bits.iter().any(|&bit| status & (1 << bit) != 0)
}

/// Every meaning whose bit is set in `status`, most urgent first, each once.
pub(crate) fn status_meanings(status: u32) -> Vec<StatusMeaning> {
    let alarms = super::STATUS_ALARM_TABLE
        .iter()
        .filter(|(bits, _)| any_bit(status, bits))
        .map(|&(_, kind)| StatusMeaning::Alarm(kind));
    let enter = any_bit(status, GEOFENCE_ENTER_BITS).then_some(StatusMeaning::GeofenceEnter);
    alarms.chain(enter).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(unix_time("210716", "231601"), Some(1_469_142_961));
    }

    #[test]
    fn signed_and_hemisphere_coordinates() {
        assert_eq!(
            coordinate("-84.1422119", "W", 'W', 180.0),
            Some(-84.1422119)
        );
        assert_eq!(coordinate("68.119072", "S", 'S', 90.0), Some(-68.119072));
        assert_eq!(coordinate("-33.48", "N", 'S', 90.0), Some(-33.48));
        assert_eq!(coordinate("9.1", "", 'W', 180.0), Some(9.1));
        assert_eq!(coordinate("91", "N", 'S', 90.0), None);
    }

    #[test]
    fn status_order_and_dedup() {
        use StatusMeaning::*;
        assert_eq!(
            status_meanings(0x0001_0001),
            vec![Alarm(AlarmKind::Sos), Alarm(AlarmKind::LowBattery)]
        );
        assert_eq!(status_meanings(0x0060_0010), vec![Alarm(AlarmKind::Fall)]);
        assert_eq!(status_meanings(0x0000_0010), vec![]);
        assert_eq!(status_meanings(0x0008_0000), vec![GeofenceEnter]);
    }
}
