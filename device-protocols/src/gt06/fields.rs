//! Field decoders shared by several GT06 packet types: the GPS block and the status block.

use crate::report::{Location, Report};

use super::civil::unix_time;

/// Length of the standard GPS block: time(6) satellites(1) lat(4) lon(4) speed(1) course/status(2).
pub(crate) const GPS_LEN: usize = 18;

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// A binary `YY MM DD hh mm ss` (device local time, `utc_offset_s` east of UTC) as Unix seconds.
pub(crate) fn device_time(b: &[u8], utc_offset_s: i64) -> Option<i64> {
    let [y, mo, d, h, mi, s] = *b.get(..6)? else {
        return None;
    };
    unix_time(
        2000 + i64::from(y),
        mo.into(),
        d.into(),
        h.into(),
        mi.into(),
        s.into(),
    )
    .map(|t| t - utc_offset_s)
}

/// A position from raw coordinates (units of 1/30000 minute) and the course/status word: bit 12
/// fix valid, bit 10 north, bit 11 west. `None` for a fix-less all-zero position or an impossible one.
pub(crate) fn location(
    lat_raw: u32,
    lon_raw: u32,
    course_status: u16,
    time: Option<i64>,
) -> Option<Location> {
    let valid = course_status & 0x1000 != 0;
    if !valid && lat_raw == 0 && lon_raw == 0 {
        return None;
    }
    let mut lat = f64::from(lat_raw) / 30_000.0 / 60.0;
    let mut lon = f64::from(lon_raw) / 30_000.0 / 60.0;
    if lat > 90.0 || lon > 180.0 {
        return None;
    }
    if course_status & 0x0400 == 0 {
        lat = -lat;
    }
    if course_status & 0x0800 != 0 {
        lon = -lon;
    }
    Some(Location {
        lat,
        lon,
        accuracy_m: None,
        valid,
        time,
    })
}

/// The standard 18-byte GPS block at the start of `b`.
pub(crate) fn gps(b: &[u8], utc_offset_s: i64) -> Option<Location> {
    if b.len() < GPS_LEN {
        return None;
    }
    location(
        u32_at(b, 7)?,
        u32_at(b, 11)?,
        u16_at(b, 16)?,
        device_time(b, utc_offset_s),
    )
}

/// Battery percent from a voltage-level byte: 0–6 is a level (6 = full), 7–100 a percent.
pub(crate) fn battery_pct(level: u8) -> Option<u8> {
    match level {
        0..=6 => u8::try_from(u16::from(level) * 100 / 6).ok(),
        7..=100 => Some(level),
        _ => None,
    }
}

/// Signal percent from a GSM strength byte 0 (none) … 4 (strong).
pub(crate) fn signal_pct(gsm: u8) -> Option<u8> {
    (gsm <= 4).then_some(gsm.saturating_mul(25))
}

/// Mains/charging from terminal-information bit 2.
pub(crate) fn charging(terminal_info: u8) -> bool {
    terminal_info & 0x04 != 0
}

/// The 5-byte status block `terminalInfo voltage gsm alarm language`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub terminal: u8,
    pub voltage: u8,
    pub gsm: u8,
    pub alarm: u8,
    pub language: u8,
}

impl Status {
    /// Reads the block at `at` in `b`.
    pub fn at(b: &[u8], at: usize) -> Option<Self> {
        match *b.get(at..at.checked_add(5)?)? {
            [terminal, voltage, gsm, alarm, language] => Some(Self {
                terminal,
                voltage,
                gsm,
                alarm,
                language,
            }),
            _ => None,
        }
    }

    /// The 12-bit alarm code of 0x27/0xA4/0x39/0xA9: alarm | (language >> 4) << 8.
    pub fn alarm12(self) -> u16 {
        u16::from(self.alarm) | (u16::from(self.language >> 4) << 8)
    }

    /// The block as a heartbeat report.
    pub fn heartbeat(self) -> Report {
        Report::Heartbeat {
            battery_pct: battery_pct(self.voltage),
            mains: Some(charging(self.terminal)),
            signal_pct: signal_pct(self.gsm),
        }
    }
}

/// A heartbeat that says only that the device is alive.
pub(crate) fn alive() -> Report {
    Report::Heartbeat {
        battery_pct: None,
        mains: None,
        signal_pct: None,
    }
}
