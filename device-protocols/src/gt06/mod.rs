//! GT06 / Concox, the binary protocol of most Chinese SOS pendants, watches and trackers.
//!
//! A frame is `78 78 LEN(1) PROTO CONTENT SERIAL(2) CRC(2) 0D 0A`, or `79 79 LEN(2) …` for long
//! packets. LEN counts PROTO through CRC; the CRC is CRC-16/X-25 over LEN…SERIAL. A device first
//! logs in (0x01, BCD IMEI); every later frame belongs to that IMEI. Status (0x13), GPS/LBS
//! (0x12, 0x22…), alarm packets (0x16/0x26/0x27/0x19/0xA4/0xA5/0x95/0x70…) and command answers
//! (0x15/0x21) follow, and most are acknowledged with `78 78 05 PROTO SERIAL CRC 0D 0A`.
//! [`Gt06Codec`] cuts frames from the stream, [`parse`] decodes one, [`encode_command`] builds a
//! 0x80 server command. `shared/protocols/REFERENCE.md` §1 is the specification followed.
//!
//! Decisions on inconsistent data:
//! - **CRC mismatch**: the CRC is verified, but a frame that fails is still decoded and answered
//!   (an alarm is never dropped for it: TCP already guards the bytes, so a bad CRC means a firmware
//!   or test-data quirk, and an unanswered alarm would be resent forever). [`parse_at`] returns the
//!   verdict as [`Parsed::crc`] and [`Session::crc_mismatches`] counts the failures for the log.
//! - **LEN that does not describe the frame** (Wi-Fi 0x69/0x17 put an access-point count there;
//!   some devices miscount or drop the serial): the frame is read up to its `0D 0A`, without serial
//!   and CRC ([`CrcStatus::Absent`]); an ACK then echoes serial 0.
//! - **Before login** every frame but a login is refused with [`ParseError::NotLoggedIn`] and gets
//!   no reply, so the device resends it once it has logged in (the reference does the same).
//! - **Alarms**: the terminal-information bits 3–5 and the alarm byte (12-bit in 0x27/0xA4) both
//!   count; one [`Report::Alarm`] per [`AlarmKind`](crate::report::AlarmKind) per frame, the codes joined by `,` in `raw_code`
//!   (`gt06:0x01`, `gt06:ti:4`, `gt06:0x0107`, `gt06:event:0x88`, `gt06:module:0x12`). The
//!   mapping is [`alarm_kind`]: alarms the shared vocabulary has no word for (vibration, overspeed,
//!   door, driving behaviour, unknown codes…) are reported as `DeviceFault`, never dropped.
//! - **Models**: a few layouts depend on the device model (traccar's model override), set with
//!   [`Session::set_model`]: `LW*`, `SEEWORLD`, `R11`, `NT*`/`XT40`, `QH302R`.
//! - Every frame accepted after login yields at least one report; frames that say nothing more
//!   yield a bare [`Report::Heartbeat`] (a sign of life).
//! - Times in GPS blocks are the device's local time; the offset from the login (if any) is
//!   subtracted. The time-request reply and command times use UTC.

mod alarms;
pub(crate) mod civil;
mod codec;
mod fields;
mod frame;
mod messages;

pub use alarms::alarm_kind;
pub use codec::{FrameError, Gt06Codec};

use crate::report::{Decoded, Report, ServerCommand};

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the smallest frame.
    #[error("frame too short")]
    TooShort,
    /// The frame does not start with `78 78` or `79 79`.
    #[error("frame does not start with 78 78 or 79 79")]
    BadStart,
    /// A frame other than a login arrived before the login; it is not answered.
    #[error("frame before login")]
    NotLoggedIn,
    /// A field is missing or invalid.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// The verdict of the CRC-16/X-25 check of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcStatus {
    /// The CRC matched.
    Valid,
    /// The CRC did not match; the frame was decoded anyway.
    Mismatch {
        /// The CRC the frame carried.
        received: u16,
        /// The CRC computed over LEN…SERIAL.
        computed: u16,
    },
    /// LEN does not describe the frame (Wi-Fi packets, miscounting devices), so there is no CRC to check.
    Absent,
}

/// A decoded frame together with its CRC verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// What the frame says and the reply it expects.
    pub decoded: Decoded,
    /// Whether the frame's CRC matched.
    pub crc: CrcStatus,
}

/// Device families whose packets are laid out differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Model {
    #[default]
    Standard,
    /// `LW*`: some alarm codes differ, 0x13 carries a power value.
    Lw,
    /// `SEEWORLD`: 0x13 carries a power value.
    Seeworld,
    /// `R11`: 0x13 carries a power value.
    R11,
    /// `NT*` and `XT40`: 0x22/0x25 start with the IMEI and a time.
    NtXt40,
    /// `QH302R`: 0x12 starts with the IMEI.
    Qh302r,
}

impl Model {
    fn from_name(name: Option<&str>) -> Self {
        let Some(name) = name.map(str::to_ascii_uppercase) else {
            return Self::Standard;
        };
        if name.starts_with("LW") {
            Self::Lw
        } else if name == "SEEWORLD" {
            Self::Seeworld
        } else if name == "R11" {
            Self::R11
        } else if name.starts_with("NT") || name == "XT40" {
            Self::NtXt40
        } else if name == "QH302R" {
            Self::Qh302r
        } else {
            Self::Standard
        }
    }
}

/// Per-connection state: the logged-in IMEI, the device's time zone and model, CRC statistics.
#[derive(Debug, Clone, Default)]
pub struct Session {
    imei: Option<String>,
    model: Option<String>,
    utc_offset_s: i64,
    crc_mismatches: u64,
}

impl Session {
    /// A session before login.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session for a device of a known model (see the module docs for the models that matter).
    pub fn with_model(model: impl Into<String>) -> Self {
        Self {
            model: Some(model.into()),
            ..Self::default()
        }
    }

    /// Sets or clears the device model, e.g. once the IMEI has been looked up.
    pub fn set_model(&mut self, model: Option<String>) {
        self.model = model;
    }

    /// The device model in use, if any.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The IMEI the connection logged in with.
    pub fn imei(&self) -> Option<&str> {
        self.imei.as_deref()
    }

    /// The device's UTC offset in seconds as its login announced it (0 when it did not).
    pub fn utc_offset_s(&self) -> i64 {
        self.utc_offset_s
    }

    /// How many frames on this connection carried a CRC that did not match.
    pub fn crc_mismatches(&self) -> u64 {
        self.crc_mismatches
    }
}

/// Decodes one frame (as cut by [`Gt06Codec`]) using the system clock for the time-request reply.
pub fn parse(frame: &[u8], state: &mut Session) -> Result<Decoded, ParseError> {
    parse_at(frame, state, civil::now_unix()).map(|p| p.decoded)
}

/// Decodes one frame with `now_unix` as the current time, and reports its CRC verdict.
pub fn parse_at(frame: &[u8], state: &mut Session, now_unix: i64) -> Result<Parsed, ParseError> {
    let raw = frame::split(frame)?;
    if matches!(raw.crc, CrcStatus::Mismatch { .. }) {
        state.crc_mismatches = state.crc_mismatches.saturating_add(1);
    }
    let serial = raw.serial.unwrap_or(0);
    let decoded = if raw.proto == 0x01 {
        login(&raw, state, serial)?
    } else {
        if state.imei.is_none() {
            return Err(ParseError::NotLoggedIn);
        }
        let ctx = messages::Ctx {
            model: Model::from_name(state.model()),
            utc_offset_s: state.utc_offset_s,
            now_unix,
        };
        let outcome = messages::decode(&raw, ctx);
        let reply = match outcome.reply {
            messages::Reply::Ack => Some(frame::ack(raw.proto, serial)),
            messages::Reply::ExtendedAck => Some(frame::extended_ack(raw.proto, serial)),
            messages::Reply::Bytes(bytes) => Some(bytes),
            messages::Reply::None => None,
        };
        Decoded {
            identity: None,
            serial: raw.serial.map(u32::from),
            reports: outcome.reports,
            reply,
        }
    };
    Ok(Parsed {
        decoded,
        crc: raw.crc,
    })
}

/// 0x01: `IMEI(8, BCD, first nibble dropped) [type(2) [time zone(2)]]`.
fn login(
    raw: &frame::RawFrame<'_>,
    state: &mut Session,
    serial: u16,
) -> Result<Decoded, ParseError> {
    let bcd = raw
        .content
        .get(..8)
        .ok_or(ParseError::Malformed("login without IMEI"))?;
    let digits = hex::encode(bcd);
    let imei = digits.get(1..).unwrap_or_default();
    if !imei.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed("IMEI is not BCD"));
    }
    state.imei = Some(imei.to_owned());
    state.utc_offset_s = fields::u16_at(raw.content, 10)
        .filter(|_| !raw.loose)
        .map_or(0, utc_offset);
    Ok(Decoded {
        identity: Some(imei.to_owned()),
        serial: raw.serial.map(u32::from),
        reports: vec![Report::Login],
        reply: Some(frame::ack(0x01, serial)),
    })
}

/// The login's time-zone word: bits 4–15 are `hhmm` in decimal, bit 3 set means west of UTC.
fn utc_offset(ext: u16) -> i64 {
    let hhmm = i64::from(ext >> 4);
    let (hours, minutes) = (hhmm / 100, hhmm % 100);
    if hours > 14 || minutes >= 60 {
        return 0;
    }
    let offset = (hours * 60 + minutes) * 60;
    if ext & 0x08 != 0 { -offset } else { offset }
}

/// Builds a 0x80 server command `78 78 LEN 80 (4+n) 00000000 <ASCII> SERIAL CRC 0D 0A`:
/// `Locate` → `WHERE#`, `Reset` → `RESET#`, `SetSosNumbers` → `SOS,A,n1,n2,n3#`, `Text(t)` → `t`.
/// `None` when the text is empty, not ASCII or too long for one packet, or the numbers are not
/// 1–3 dial strings. `serial` is the information serial (its low 16 bits).
pub fn encode_command(cmd: &ServerCommand, _session: &Session, serial: u32) -> Option<Vec<u8>> {
    let text = match cmd {
        ServerCommand::Locate => "WHERE#".to_owned(),
        ServerCommand::Reset => "RESET#".to_owned(),
        ServerCommand::SetSosNumbers(numbers) => sos_numbers_command(numbers)?,
        ServerCommand::Text(text) => text.clone(),
    };
    if text.is_empty() || !text.is_ascii() {
        return None;
    }
    let mut content = vec![u8::try_from(text.len() + 4).ok()?, 0, 0, 0, 0];
    content.extend_from_slice(text.as_bytes());
    frame::packet(false, 0x80, &content, serial as u16)
}

fn sos_numbers_command(numbers: &[String]) -> Option<String> {
    let valid = |n: &String| {
        !n.is_empty()
            && n.len() <= 20
            && n.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'+'))
    };
    if numbers.is_empty() || numbers.len() > 3 || !numbers.iter().all(valid) {
        return None;
    }
    Some(format!("SOS,A,{}#", numbers.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_word() {
        assert_eq!(utc_offset(0x3201), 8 * 3600);
        assert_eq!(utc_offset(0x190A), -4 * 3600);
        assert_eq!(utc_offset(0x0000), 0);
        assert_eq!(utc_offset(0xFFFF), 0);
    }

    #[test]
    fn models() {
        assert_eq!(Model::from_name(Some("LW4G-4B")), Model::Lw);
        assert_eq!(Model::from_name(Some("NT20")), Model::NtXt40);
        assert_eq!(Model::from_name(Some("VL103")), Model::Standard);
        assert_eq!(Model::from_name(None), Model::Standard);
    }
}
