//! H02 ("HQ", Sinotrack and many clones): text sentences and fixed-size binary reports over TCP.
//!
//! Text: `*HQ,<id>,<type>,hhmmss,A|V,ddmm.mmmm,N|S,dddmm.mmmm,E|W,speed,course,ddmmyy,STATUS…#`
//! (vendor `HQ`/`hq`/`TH`; types V1…V19, VI1, VP1, V4 command receipts, NBR/V3 cells, LINK, HTBT,
//! SMS…). Binary: `$` + BCD id, time, coordinates, battery, speed, course and the status word, 32
//! bytes (45 on some devices). No checksum. The 32-bit STATUS carries alarms as active-low bits.
//! [`H02Codec`] cuts frames, [`parse`] decodes one, [`encode_command`] builds a server command.
//! `shared/protocols/REFERENCE.md` §3 is the specification followed.
//!
//! Decisions:
//! - **Status alarms**: one per frame ([`status_alarm_name`]), in the order SOS, power cut,
//!   vibration, overspeed; the reference checks vibration first, which would let a vibration bit
//!   hide an SOS. Mapped with [`crate::gt06::alarm_kind`] (vibration/overspeed → `DeviceFault`),
//!   `raw_code` `h02:status:XXXXXXXX`. The bits are levels, not events: the same alarm is reported
//!   on every frame while the condition lasts, so the server must merge repeats.
//! - **Replies** (§3.5): `V0`/`HTBT` are echoed, `V1` gets `*HQ,<id>,V4,V1,<yyyyMMddHHmmss>#`,
//!   `NBR` gets `*HQ,<id>,V4,NBR,<…>#`; everything else gets `*HQ,<id>,R12,<HHmmss>#` only when
//!   acknowledgements are switched on for the device ([`Session::set_ack`]). Times are UTC.
//! - **Binary length**: 32 bytes unless the first `$` frame is clearly 45 bytes long (see
//!   [`H02Codec`]), or as configured.
//! - A sentence without an id (`*HQ,,V1,…`) is decoded with `identity: None`; replies then use the
//!   id seen last on the connection. Every accepted frame yields at least one report.
//! - Coordinates are accepted as `ddmm.mmmm` (any number of degree digits), `-dd-mm.mmmm` and
//!   `ddmmmmmm`; a hemisphere other than N/S/E/W, or a fix-less 0/0, gives no location.

mod binary;
mod codec;
mod status;
mod text;

pub use codec::{FrameError, H02Codec};
pub use status::{status_alarm, status_alarm_name};

use crate::gt06::civil::{civil, now_unix};
use crate::report::{Decoded, ServerCommand};

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Too few bytes for the frame type.
    #[error("frame too short")]
    TooShort,
    /// The frame starts with neither `*` nor `$` (the rare `X` binary form is not decoded either).
    #[error("unsupported frame marker")]
    Unsupported,
    /// A field is missing or invalid.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Per-connection state: the device id seen last and whether to acknowledge every frame.
#[derive(Debug, Clone, Default)]
pub struct Session {
    device_id: Option<String>,
    ack: bool,
}

impl Session {
    /// A fresh connection, acknowledgements (`R12`) off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Switches the `*HQ,<id>,R12,<HHmmss>#` acknowledgement of ordinary frames on or off
    /// (traccar's `h02.ack`; some devices resend until they get it).
    pub fn set_ack(&mut self, ack: bool) {
        self.ack = ack;
    }

    /// Whether ordinary frames are acknowledged.
    pub fn ack(&self) -> bool {
        self.ack
    }

    /// The device id the connection's frames carried last.
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    fn remember(&mut self, id: &str) {
        if self.device_id.as_deref() != Some(id) {
            self.device_id = Some(id.to_owned());
        }
    }
}

/// `HHmmss` of a Unix time (UTC).
fn hhmmss(now_unix: i64) -> String {
    let t = civil(now_unix);
    format!("{:02}{:02}{:02}", t.hour, t.minute, t.second)
}

/// `*HQ,<id>,V4,<kind>,<yyyyMMddHHmmss>#`.
fn v4_reply(id: &str, kind: &str, now_unix: i64) -> Vec<u8> {
    let t = civil(now_unix);
    format!(
        "*HQ,{id},V4,{kind},{:04}{:02}{:02}{:02}{:02}{:02}#",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
    .into_bytes()
}

/// `*HQ,<id>,R12,<HHmmss>#` when acknowledgements are on.
fn r12_reply(session: &Session, id: Option<&str>, now_unix: i64) -> Option<Vec<u8>> {
    let id = id.filter(|_| session.ack)?;
    Some(format!("*HQ,{id},R12,{}#", hhmmss(now_unix)).into_bytes())
}

/// Decodes one frame (as cut by [`H02Codec`]) using the system clock for reply times.
pub fn parse(frame: &[u8], state: &mut Session) -> Result<Decoded, ParseError> {
    parse_at(frame, state, now_unix())
}

/// Decodes one frame with `now_unix` as the current time.
pub fn parse_at(frame: &[u8], state: &mut Session, now_unix: i64) -> Result<Decoded, ParseError> {
    match frame.first() {
        Some(b'*') => text::parse(frame, state, now_unix),
        Some(b'$') => binary::parse(frame, state, now_unix),
        Some(_) => Err(ParseError::Unsupported),
        None => Err(ParseError::TooShort),
    }
}

/// Builds a server command for the connection's device (the id it sent last); see
/// [`encode_command_at`]. `serial` is unused: H02 has no message serial.
pub fn encode_command(cmd: &ServerCommand, session: &Session, _serial: u32) -> Option<Vec<u8>> {
    encode_command_at(cmd, session.device_id()?, now_unix())
}

/// Builds `*HQ,<id>,<CMD>,<HHmmss>[,<args>]#` (§3.5) at `now_unix`: `Reset` → `R1`,
/// `Text("S20,1,1")` → `S20` with arguments `1,1`. `Locate` and `SetSosNumbers` have no H02
/// command in the reference and give `None` (every `V4` receipt carries a position, so any command
/// answered by the device also locates it); so do texts containing `*`, `#` or non-ASCII.
pub fn encode_command_at(cmd: &ServerCommand, device_id: &str, now_unix: i64) -> Option<Vec<u8>> {
    let valid_id = !device_id.is_empty() && device_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let text = match cmd {
        ServerCommand::Reset => "R1",
        ServerCommand::Text(text) => text.trim(),
        ServerCommand::Locate | ServerCommand::SetSosNumbers(_) => return None,
    };
    if !valid_id || text.is_empty() || !text.is_ascii() || text.contains(['*', '#']) {
        return None;
    }
    let (name, args) = match text.split_once(',') {
        Some((name, args)) => (name, Some(args)),
        None => (text, None),
    };
    let mut out = format!("*HQ,{device_id},{name},{}", hhmmss(now_unix));
    if let Some(args) = args {
        out.push(',');
        out.push_str(args);
    }
    out.push('#');
    Some(out.into_bytes())
}
