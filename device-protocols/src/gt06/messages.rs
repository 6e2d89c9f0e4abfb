//! Per-packet-type decoding of GT06 frames after login.

use crate::report::{Location, Report};

use super::Model;
use super::alarms::{Alarms, alarm_kind, event_name, module_event_name};
use super::civil::{civil, unix_time};
use super::fields::{
    GPS_LEN, Status, alive, charging, device_time, gps, location, signal_pct, u16_at, u32_at,
};
use super::frame::RawFrame;

/// How the frame is answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Short-form ACK echoing PROTO and SERIAL.
    Ack,
    /// Extended-form (`79 79`) ACK echoing PROTO and SERIAL.
    ExtendedAck,
    /// These exact bytes.
    Bytes(Vec<u8>),
    /// Nothing.
    None,
}

/// What one frame says and how to answer it.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub reports: Vec<Report>,
    pub reply: Reply,
}

impl Outcome {
    fn new(reports: Vec<Report>, reply: Reply) -> Self {
        Self { reports, reply }
    }
}

/// What a handler may look at besides the frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub model: Model,
    pub utc_offset_s: i64,
    pub now_unix: i64,
}

/// Decodes a frame from a logged-in device.
pub(crate) fn decode(raw: &RawFrame<'_>, ctx: Ctx) -> Outcome {
    let c = raw.content;
    let len = raw.len_field;
    match (raw.extended, raw.proto) {
        (_, 0x8A) => Outcome::new(vec![alive()], Reply::Bytes(time_response(ctx.now_unix))),
        (_, 0x2A) => Outcome::new(vec![alive()], Reply::Bytes(address_response())),
        (_, 0x23) => Outcome::new(vec![gk310_heartbeat(c)], Reply::Ack),
        (false, 0x13) => Outcome::new(status_packet(c, ctx), Reply::Ack),
        (false, 0x69) => wifi(raw),
        (false, 0x17) if raw.loose => wifi(raw),
        (false, 0x12) => Outcome::new(gps_lbs_1(c, len, ctx), Reply::Ack),
        (false, 0x16 | 0x26) => Outcome::new(gps_lbs_status(c, len, ctx), Reply::Ack),
        (false, 0x27 | 0xA4) => Outcome::new(
            gps_status_at(c, c.len().saturating_sub(6), true, ctx),
            Reply::Ack,
        ),
        (false, 0xA3) if !matches!(len, 0x0C | 0x18) => Outcome::new(
            gps_status_at(c, c.len().saturating_sub(5), false, ctx),
            Reply::Ack,
        ),
        (false, 0x19) if len == 0x12 => Outcome::new(status_only(c, ctx), Reply::Ack),
        (false, 0xA5) if c.len() >= 20 => Outcome::new(status_only(c, ctx), Reply::Ack),
        (_, 0x95) => Outcome::new(alarm_packet(c, ctx), Reply::Ack),
        (true, 0x70) => Outcome::new(modular(c), Reply::Ack),
        (true, 0x32 | 0x33) => Outcome::new(az735(c, raw.proto == 0x33, ctx), Reply::ExtendedAck),
        (false, 0x34) => Outcome::new(position_at(c, 4, ctx), Reply::None),
        (false, 0x10 | 0x11 | 0x17 | 0x1A | 0x1E | 0x2D | 0x31 | 0x32 | 0x37 | 0xA0) => {
            Outcome::new(position_at(c, 0, ctx), Reply::Ack)
        }
        (false, 0x22) => Outcome::new(position_at(c, imei_prefix(ctx.model), ctx), Reply::Ack),
        (false, 0x25) if ctx.model == Model::NtXt40 => {
            Outcome::new(position_at(c, 15, ctx), Reply::Ack)
        }
        (false, 0x24) if len == 0x2E => Outcome::new(position_at(c, 0, ctx), Reply::None),
        (false, 0x36) if len == 0x35 => Outcome::new(position_at(c, 0, ctx), Reply::Ack),
        (false, 0xA2) if len == 0x40 => Outcome::new(position_at(c, 0, ctx), Reply::Ack),
        (_, 0x15) => Outcome::new(vec![string_response(c)], Reply::Ack),
        (_, 0x21) => Outcome::new(string_info(c), Reply::None),
        (_, 0x9B) => Outcome::new(vec![serial_data(c)], Reply::None),
        (_, 0x94 | 0x8C | 0x38 | 0xF3 | 0x80..=0x82) => Outcome::new(vec![alive()], Reply::None),
        (true, 0x41) => Outcome::new(vec![alive()], Reply::ExtendedAck),
        (true, 0xF1 | 0xF2) | (false, _) => Outcome::new(vec![alive()], Reply::Ack),
        (true, _) => Outcome::new(vec![alive()], Reply::None),
    }
}

/// NT*/XT40 devices put `01 IMEI(8) time(6)` before the GPS block of 0x22/0x25.
fn imei_prefix(model: Model) -> usize {
    if model == Model::NtXt40 { 15 } else { 0 }
}

/// `Position` (or nothing) for a location, plus alarms carrying it, plus the rest.
fn assemble(
    location: Option<Location>,
    alarms: Alarms,
    rest: impl IntoIterator<Item = Report>,
) -> Vec<Report> {
    let mut reports = Vec::new();
    if alarms.is_empty() {
        reports.extend(location.map(Report::Position));
    } else {
        reports.extend(alarms.into_reports(location));
    }
    reports.extend(rest);
    if reports.is_empty() {
        reports.push(alive());
    }
    reports
}

/// A GPS block at `offset`, nothing else decoded.
fn position_at(c: &[u8], offset: usize, ctx: Ctx) -> Vec<Report> {
    let location = c.get(offset..).and_then(|b| gps(b, ctx.utc_offset_s));
    assemble(location, Alarms::default(), None)
}

/// 0x13 status / heartbeat. The standard content is the 5-byte status block; `LW*`, `SEEWORLD`
/// and `R11` put a 2-byte power value in it, so only the terminal information is read for them.
fn status_packet(c: &[u8], ctx: Ctx) -> Vec<Report> {
    let mut alarms = Alarms::default();
    let heartbeat = match (c.len(), Status::at(c, 0)) {
        (5, Some(status)) if matches!(ctx.model, Model::Lw | Model::Seeworld | Model::R11) => {
            alarms.terminal(status.terminal, false);
            Report::Heartbeat {
                battery_pct: None,
                mains: Some(charging(status.terminal)),
                signal_pct: None,
            }
        }
        (5, Some(status)) => {
            alarms.terminal(status.terminal, false);
            alarms.alarm_byte(status.alarm.into(), ctx.model);
            status.heartbeat()
        }
        (22, _) => Report::Heartbeat {
            battery_pct: c.get(5).copied().filter(|&b| b <= 100),
            mains: None,
            signal_pct: None,
        },
        _ => alive(),
    };
    assemble(None, alarms, Some(heartbeat))
}

/// 0x23 (GK310): status(bit 2 charging), battery voltage u16, signal.
fn gk310_heartbeat(c: &[u8]) -> Report {
    Report::Heartbeat {
        battery_pct: None,
        mains: c.first().map(|&s| charging(s)),
        signal_pct: c.get(3).copied().and_then(signal_pct),
    }
}

/// 0x12 GPS+LBS. Variants by LEN: VXT01 (0x24) and S5 (0x2B) append a status; the QH302R model
/// puts the IMEI before the GPS block.
fn gps_lbs_1(c: &[u8], len: usize, ctx: Ctx) -> Vec<Report> {
    let offset = if ctx.model == Model::Qh302r { 8 } else { 0 };
    let location = c.get(offset..).and_then(|b| gps(b, ctx.utc_offset_s));
    let mut alarms = Alarms::default();
    match len {
        0x24 => {
            if let Some(&terminal) = c.get(26) {
                alarms.terminal(terminal, true);
            }
        }
        0x2B => {
            if let (Some(&terminal), Some(&alarm)) = (c.get(26), c.get(30)) {
                alarms.terminal(terminal, false);
                alarms.alarm_byte(alarm.into(), ctx.model);
            }
        }
        _ => {}
    }
    assemble(location, alarms, None)
}

/// 0x16/0x26 GPS+LBS+status (the alarm packet). The status block is the last 5 bytes of the content
/// for the standard (LEN 0x25), VXT01 (0x24, alarm byte unused) and SEEWORLD (0x26) layouts; LEN
/// 0x2D (TRX16I, VL103) puts 8 more bytes after it.
fn gps_lbs_status(c: &[u8], len: usize, ctx: Ctx) -> Vec<Report> {
    let at = if len == 0x2D {
        GPS_LEN + 9
    } else {
        c.len().saturating_sub(5)
    };
    let vxt01 = len == 0x24;
    let location = gps(c, ctx.utc_offset_s);
    let mut alarms = Alarms::default();
    let status = Status::at(c, at).filter(|_| at >= GPS_LEN);
    if let Some(status) = status {
        alarms.terminal(status.terminal, vxt01);
        if !vxt01 {
            alarms.alarm_byte(status.alarm.into(), ctx.model);
        }
    }
    assemble(location, alarms, status.map(Status::heartbeat))
}

/// GPS block first, status block at `at`; `fence` selects the 12-bit alarm (0x27, 0xA4).
fn gps_status_at(c: &[u8], at: usize, fence: bool, ctx: Ctx) -> Vec<Report> {
    let location = gps(c, ctx.utc_offset_s);
    let mut alarms = Alarms::default();
    let status = Status::at(c, at).filter(|_| at >= GPS_LEN);
    if let Some(status) = status {
        alarms.terminal(status.terminal, false);
        let code = if fence {
            status.alarm12()
        } else {
            status.alarm.into()
        };
        alarms.alarm_byte(code, ctx.model);
    }
    assemble(location, alarms, status.map(Status::heartbeat))
}

/// 0x19 LBS+status and 0xA5 LBS alarm: cell data, then the status block as the last 5 bytes.
fn status_only(c: &[u8], ctx: Ctx) -> Vec<Report> {
    let mut alarms = Alarms::default();
    let status = Status::at(c, c.len().saturating_sub(5));
    if let Some(status) = status {
        alarms.terminal(status.terminal, false);
        alarms.alarm_byte(status.alarm.into(), ctx.model);
    }
    assemble(None, alarms, status.map(Status::heartbeat))
}

/// 0x95 (JC100): `date(6) event data(2)`, or with a position `date(6) lat(4) lon(4)
/// course/status(2) event data(2) files…`. The JC400 layout (content starting `FF FF`) carries
/// dash-cam events and is only taken as a sign of life.
fn alarm_packet(c: &[u8], ctx: Ctx) -> Vec<Report> {
    if c.get(..2) == Some(&[0xFF, 0xFF][..]) {
        return vec![alive()];
    }
    let extended = c.len() > 7;
    let (location, event) = if extended {
        let time = device_time(c, ctx.utc_offset_s);
        let loc = match (u32_at(c, 6), u32_at(c, 10), u16_at(c, 14)) {
            (Some(lat), Some(lon), Some(flags)) => location(lat, lon, flags, time),
            _ => None,
        };
        (loc, c.get(16))
    } else {
        (None, c.get(6))
    };
    let mut alarms = Alarms::default();
    if let Some(&event) = event {
        alarms.push(
            alarm_kind(event_name(event, extended)),
            format!("gt06:event:0x{event:02X}"),
        );
    }
    assemble(location, alarms, None)
}

/// 0x70 modular packet: TLV modules `type u16, length u16, value`. Module 0x33 is the GPS fix
/// (Unix time, satellites, altitude, lat, lon, speed, course/status), module 0x34 an event.
fn modular(c: &[u8]) -> Vec<Report> {
    let mut location = None;
    let mut alarms = Alarms::default();
    let mut rest = c;
    while let (Some(kind), Some(len)) = (u16_at(rest, 0), u16_at(rest, 2)) {
        let Some(value) = rest.get(4..4 + usize::from(len)) else {
            break;
        };
        match kind {
            0x33 => {
                let time = u32_at(value, 0).map(i64::from);
                location = match (u32_at(value, 7), u32_at(value, 11), u16_at(value, 16)) {
                    (Some(lat), Some(lon), Some(flags)) => {
                        super::fields::location(lat, lon, flags, time)
                    }
                    _ => None,
                };
            }
            0x34 => {
                if let Some(name) = value.first().copied().and_then(module_event_name) {
                    let event = value.first().copied().unwrap_or_default();
                    alarms.push(alarm_kind(name), format!("gt06:module:0x{event:02X}"));
                }
            }
            _ => {}
        }
        rest = rest.get(4 + usize::from(len)..).unwrap_or_default();
    }
    assemble(location, alarms, None)
}

/// AZ735 extended 0x32 (position) / 0x33 (alarm): `time(6) gpsLen [sats lat lon speed course]
/// lbsLen [lbs… rssi] cellsLen [cells] wifiLen [wifi] status …`.
fn az735(c: &[u8], alarm: bool, ctx: Ctx) -> Vec<Report> {
    let time = device_time(c, ctx.utc_offset_s);
    let mut at = 6;
    let gps_len = usize::from(c.get(at).copied().unwrap_or_default());
    let location = match (u32_at(c, at + 2), u32_at(c, at + 6), u16_at(c, at + 11)) {
        (Some(lat), Some(lon), Some(flags)) if gps_len >= 12 => location(lat, lon, flags, time),
        _ => None,
    };
    at += 1 + gps_len;
    let lbs_len = usize::from(c.get(at).copied().unwrap_or_default());
    at += if lbs_len == 0 { 1 } else { lbs_len + 1 };
    for _ in 0..2 {
        at += 1 + usize::from(c.get(at).copied().unwrap_or_default());
    }
    let mut alarms = Alarms::default();
    if let Some(&status) = c.get(at).filter(|_| alarm) {
        let name = match status {
            0xA2 | 0xA3 => Some("lowBattery"),
            0xA4 => Some("general"),
            0xA5 => Some("door"),
            _ => None,
        };
        if let Some(name) = name {
            alarms.push(alarm_kind(name), format!("gt06:az735:0x{status:02X}"));
        }
    }
    assemble(location, alarms, None)
}

/// Wi-Fi 0x69/0x17: BCD time, access points, cells. No position without a geolocation service; the
/// reply echoes the time: `78 78 00 PROTO time(6) 0D 0A`.
fn wifi(raw: &RawFrame<'_>) -> Outcome {
    let reply = match raw.content.get(..6) {
        Some(time) => {
            let mut bytes = vec![0x78, 0x78, 0x00, raw.proto];
            bytes.extend_from_slice(time);
            bytes.extend_from_slice(&super::frame::TRAILER);
            Reply::Bytes(bytes)
        }
        None => Reply::None,
    };
    Outcome::new(vec![alive()], reply)
}

/// 0x8A time request: `78 78 0B 8A YY MM DD hh mm ss 00 00 CRC 0D 0A` (UTC, serial 0).
pub(crate) fn time_response(now_unix: i64) -> Vec<u8> {
    let t = civil(now_unix);
    let year = u8::try_from(t.year - 2000).unwrap_or(0);
    let fields = [t.month, t.day, t.hour, t.minute, t.second].map(|v| u8::try_from(v).unwrap_or(0));
    let mut content = vec![year];
    content.extend_from_slice(&fields);
    super::frame::packet(false, 0x8A, &content, 0).unwrap_or_default()
}

/// 0x2A address request: the "no address" answer `79 79 … 97 0B 00000000 "NA&&NA&&0##" 0000 CRC 0D 0A`.
fn address_response() -> Vec<u8> {
    const NO_ADDRESS: &[u8] = b"NA&&NA&&0##";
    let mut content = vec![u8::try_from(NO_ADDRESS.len()).unwrap_or(0), 0, 0, 0, 0];
    content.extend_from_slice(NO_ADDRESS);
    super::frame::packet(true, 0x97, &content, 0).unwrap_or_default()
}

/// Text with NULs and surrounding whitespace removed.
fn clean(text: &str) -> String {
    text.trim_matches(|ch: char| ch == '\0' || ch.is_whitespace())
        .to_owned()
}

/// 0x15: `command length(1) server flag(4) text [language(2)]`: the answer to a 0x80 command.
fn string_response(c: &[u8]) -> Report {
    let declared = usize::from(c.first().copied().unwrap_or_default());
    let text = match c.get(5..1 + declared) {
        Some(text) if declared >= 4 => text,
        _ => c.get(5..c.len().saturating_sub(2)).unwrap_or_default(),
    };
    Report::CommandResult {
        text: clean(&String::from_utf8_lossy(text)),
    }
}

/// 0x21: `server flag(4) encoding(1: ASCII, else UTF-16BE) text`: a command answer; "Current
/// position!Lat:N…,Lon:E…,…,DateTime:…" answers also give a position.
fn string_info(c: &[u8]) -> Vec<Report> {
    let body = c.get(5..).unwrap_or_default();
    let text = if c.get(4) == Some(&1) {
        String::from_utf8_lossy(body).into_owned()
    } else {
        let units = body
            .chunks_exact(2)
            .filter_map(|p| <[u8; 2]>::try_from(p).ok())
            .map(u16::from_be_bytes);
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    let text = clean(&text);
    let mut reports: Vec<Report> = text_position(&text)
        .map(Report::Position)
        .into_iter()
        .collect();
    reports.push(Report::CommandResult { text });
    reports
}

/// Parses `Lat:N54.739332,Lon:E25.273270,…,DateTime:2017-05-26  10:27:47`.
fn text_position(text: &str) -> Option<Location> {
    let coord = |key: &str, neg: char| -> Option<f64> {
        let rest = text.split_once(key)?.1;
        let mut chars = rest.chars();
        let hemi = chars.next()?;
        let value: f64 = chars.as_str().split(',').next()?.trim().parse().ok()?;
        Some(if hemi == neg { -value } else { value })
    };
    let lat = coord("Lat:", 'S').filter(|v| v.abs() <= 90.0)?;
    let lon = coord("Lon:", 'W').filter(|v| v.abs() <= 180.0)?;
    let time = text
        .split_once("DateTime:")
        .and_then(|(_, dt)| text_time(dt));
    Some(Location {
        lat,
        lon,
        accuracy_m: None,
        valid: true,
        time,
    })
}

/// `YYYY-MM-DD  hh:mm:ss` (any spacing) as Unix seconds.
fn text_time(s: &str) -> Option<i64> {
    let nums: Vec<u32> = s
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(6)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match nums[..] {
        [y, mo, d, h, mi, sec] => unix_time(y.into(), mo, d, h, mi, sec),
        _ => None,
    }
}

/// 0x9B serial pass-through: `device type(1) data`. Printable data is returned as text (trailing
/// CR/LF removed), anything else as lowercase hex.
fn serial_data(c: &[u8]) -> Report {
    let data = c.get(1..).unwrap_or_default();
    let trimmed = data.strip_suffix(b"\r\n").unwrap_or(data);
    let text = if !trimmed.is_empty() && trimmed.iter().all(|b| (0x20..0x7F).contains(b)) {
        String::from_utf8_lossy(trimmed).into_owned()
    } else {
        hex::encode(data)
    };
    Report::CommandResult { text }
}
