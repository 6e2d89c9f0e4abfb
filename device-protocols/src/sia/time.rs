//! DC-09 timestamps: `HH:MM:SS,MM-DD-YYYY`, always UTC.

/// Parses `HH:MM:SS,MM-DD-YYYY` to Unix seconds.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            2 | 5 => c == b':',
            8 => c == b',',
            11 | 14 => c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| s.get(from..to)?.parse::<i64>().ok();
    let (hour, minute, second) = (num(0, 2)?, num(3, 5)?, num(6, 8)?);
    let (month, day, year) = (num(9, 11)?, num(12, 14)?, num(15, 19)?);
    let valid = hour < 24
        && minute < 60
        && second <= 60
        && (1..=12).contains(&month)
        && (1..=31).contains(&day);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Formats Unix seconds as `_HH:MM:SS,MM-DD-YYYY` (with the leading underscore of the wire format).
pub(crate) fn format_timestamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "_{:02}:{:02}:{:02},{:02}-{:02}-{:04}",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60,
        month,
        day,
        year
    )
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

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_timestamp("18:24:52,07-05-2020").unwrap();
        assert_eq!(t, 1_593_973_492);
        assert_eq!(format_timestamp(t), "_18:24:52,07-05-2020");
        assert_eq!(format_timestamp(0), "_00:00:00,01-01-1970");
        assert_eq!(format_timestamp(951_782_400), "_00:00:00,02-29-2000");
        for t in [-86_401, 0, 1, 951_868_799, 4_102_444_800] {
            let s = format_timestamp(t);
            assert_eq!(parse_timestamp(&s[1..]), Some(t), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_timestamp("14:12:04,09-25-201"), None);
        assert_eq!(parse_timestamp("24:00:00,01-01-2020"), None);
        assert_eq!(parse_timestamp("12:00:00,13-01-2020"), None);
        assert_eq!(parse_timestamp("١٢:00:00,01-01-2020"), None);
    }
}
