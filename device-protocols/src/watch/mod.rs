//! The "3G watch" text protocol (3G / SG / CS / ZJ elderly and kids' 4G watches), over TCP.
//!
//! Every frame is `[MM*ID*LLLL*CONTENT]`, or `[MM*ID*IIII*LLLL*CONTENT]` with a 4-hex index (ZJ
//! watches). `MM` is the manufacturer code, `ID` the device id (every frame carries it, so there is
//! no login), `LLLL` the content length in hex, and `CONTENT` is `TYPE[,field…]`: `LK` link /
//! heartbeat, `UD*`/`WT` positions, `AL*` alarms, `INIT`, `TKQ`, voice chunks (`JXTK`, `TK`),
//! health readings and command echoes. Binary payloads escape `} [ ] , *` as `}` + `01`…`05`.
//!
//! # Decisions about inconsistent data
//! - **Framing ignores the length field.** 14 of the 50 reference frames carry a wrong `LLLL`, and
//!   the field counts escaped wire bytes on real devices but unescaped bytes in other samples. A
//!   frame runs from a `[` that starts a plausible header (`[` + 2 alphanumerics + `*` + id) to the
//!   *matching* `]`, counting nested brackets (Wi-Fi names such as `[LG_Wall-Mount A/C]` appear
//!   unescaped). A `[` that starts a new plausible header inside an unfinished frame means the
//!   earlier frame was truncated: it is dropped as garbage. Mismatching length fields are only
//!   counted ([`WatchCodec::length_mismatches`]).
//! - **One alarm per mapped status bit.** Traccar reports only the first matching bit, so a watch
//!   with low battery *and* SOS would report low battery only. Here every mapped bit yields its own
//!   [`Report::Alarm`], most urgent first (see [`STATUS_ALARM_TABLE`]).
//! - **An `AL` without a mapped bit is an SOS.** Traccar calls it `general`; `AL` is the message
//!   these watches send when the SOS key is pressed, and a false SOS costs a phone call while a
//!   missed one may cost a life. Its `raw_code` (`watch:AL:00000000`) keeps the distinction
//!   visible.
//! - **Only `AL*` messages raise alarms.** Status bits in `UD`/`WT` uploads describe a state that
//!   the watch already reported (and retransmits until acknowledged) with `AL`; they are not
//!   alarms.
//! - **0/0 is no fix.** Watches send `0.000000,N,0.000000,E` without GPS; such bodies give no
//!   [`Location`] (an alarm then carries `location: None`).
//! - Health readings (`heart`, `PULSE`, `bphrt`, `BLOOD`, `TEMP`, `btemp2`, `oxygen`), media (`TK`,
//!   `img`) and unknown types decode to no report and no reply (the shared [`Report`] has no
//!   variant for them yet).
//!
//! Replies (reference §2.2) echo manufacturer, id and index; commands follow traccar's encoder
//! (manufacturer `3G` is addressed as `SG`, index `0001` when the watch uses one).

mod body;
mod codec;
mod header;

use crate::report::{AlarmKind, Decoded, Location, Report, ServerCommand};

pub use codec::{FrameError, WatchCodec};

use body::{Body, StatusMeaning, status_meanings};
use header::Header;

/// Status bit → alarm, in the order alarms are reported (reference §2.3). Bits 2/19 (geofence
/// enter) give a [`Report::Restore`] instead; bit 4 (motion) and all others are ignored.
pub const STATUS_ALARM_TABLE: &[(&[u32], AlarmKind)] = &[
    (&[16], AlarmKind::Sos),
    (&[21, 22], AlarmKind::Fall),
    (&[20], AlarmKind::Tamper),
    (&[14], AlarmKind::PowerLoss),
    (&[1, 18], AlarmKind::Wandering),
    (&[0, 17], AlarmKind::LowBattery),
];

/// Message types the server sends as commands; a frame of such a type from the watch is its
/// acknowledgement ([`Report::CommandResult`]).
const COMMAND_ECHOES: &[&str] = &[
    "CR", "RESET", "SOS", "SOS1", "SOS2", "SOS3", "UPLOAD", "LZ", "POWEROFF", "SOSSMS", "LOWBAT",
    "REMOVE", "MESSAGE", "FACTORY", "CENTER", "PW", "FIND", "MONITOR",
];

/// Why a frame could not be decoded. Nothing is sent back for such a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not `[MM*ID*(IIII*)LLLL*CONTENT]`.
    #[error("not a watch frame `[MM*ID*LLLL*CONTENT]`")]
    NotAFrame,
    /// The message type is not ASCII text.
    #[error("watch message type is not ASCII")]
    BadType,
}

/// Per-connection state: what the watch called itself, used to address replies and commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    manufacturer: Option<String>,
    identity: Option<String>,
    uses_index: bool,
}

impl Session {
    /// A fresh connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The device id of the last frame, if any.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    fn observe(&mut self, header: &Header<'_>) {
        self.manufacturer = Some(header.manufacturer.to_owned());
        self.identity = Some(header.id.to_owned());
        self.uses_index = header.index.is_some();
    }
}

/// What a message type asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Link,
    Init,
    Position,
    Alarm,
    TalkQuery,
    VoiceChunk,
    CommandEcho,
    Other,
}

fn classify(kind: &str) -> Kind {
    match kind {
        "LK" => Kind::Link,
        "UD" | "UD2" | "UD3" | "WT" => Kind::Position,
        "TKQ" | "TKQ2" => Kind::TalkQuery,
        "JXTK" => Kind::VoiceChunk,
        k if k.starts_with("UD_") => Kind::Position,
        k if k.starts_with("INIT") => Kind::Init,
        k if k.starts_with("AL") => Kind::Alarm,
        k if COMMAND_ECHOES.iter().any(|c| c.eq_ignore_ascii_case(k)) => Kind::CommandEcho,
        _ => Kind::Other,
    }
}

/// Decodes one frame as cut by [`WatchCodec`] (escapes already removed) and updates `state`.
pub fn parse(frame: &[u8], state: &mut Session) -> Result<Decoded, ParseError> {
    let header = Header::parse(frame).ok_or(ParseError::NotAFrame)?;
    let kind = std::str::from_utf8(header.kind()).map_err(|_| ParseError::BadType)?;
    state.observe(&header);
    let fields = body_fields(header.content);
    let mut decoded = Decoded {
        identity: Some(header.id.to_owned()),
        serial: header.index.and_then(|i| u32::from_str_radix(i, 16).ok()),
        reports: Vec::new(),
        reply: None,
    };
    let reply_with = |content: &str| Some(reply(&header, content));
    match classify(kind) {
        Kind::Link => {
            decoded.reports.push(link_heartbeat(&fields));
            decoded.reply = reply_with("LK");
        }
        Kind::Init => {
            decoded.reports.push(Report::Login);
            decoded.reply = reply_with("INIT,1");
        }
        Kind::Position => decoded.reports = position_reports(&Body::parse(&fields)),
        Kind::Alarm => {
            decoded.reports = alarm_reports(kind, &Body::parse(&fields));
            decoded.reply = reply_with("AL");
        }
        Kind::TalkQuery => decoded.reply = reply_with(kind),
        Kind::VoiceChunk => decoded.reply = reply_with("JXTKR,1"),
        Kind::CommandEcho => decoded.reports.push(Report::CommandResult {
            text: String::from_utf8_lossy(header.content).into_owned(),
        }),
        Kind::Other => {}
    }
    Ok(decoded)
}

/// The comma-separated fields after the message type; non-UTF-8 fields (binary payloads) are empty.
fn body_fields(content: &[u8]) -> Vec<&str> {
    content
        .split(|&b| b == b',')
        .skip(1)
        .map(|f| std::str::from_utf8(f).unwrap_or_default())
        .collect()
}

/// `LK[,steps,rolls,battery%]`: battery only when all three values are present.
fn link_heartbeat(fields: &[&str]) -> Report {
    let battery_pct = match fields {
        [_, _, battery, ..] => battery.trim().parse::<u32>().ok().map(|v| v.min(100) as u8),
        _ => None,
    };
    Report::Heartbeat {
        battery_pct,
        mains: None,
        signal_pct: None,
    }
}

fn heartbeat(body: &Body<'_>) -> Option<Report> {
    (body.battery_pct.is_some() || body.signal_pct.is_some()).then_some(Report::Heartbeat {
        battery_pct: body.battery_pct,
        mains: None,
        signal_pct: body.signal_pct,
    })
}

fn position_reports(body: &Body<'_>) -> Vec<Report> {
    let position = body.location.map(Report::Position);
    position.into_iter().chain(heartbeat(body)).collect()
}

/// One report per mapped status bit (an SOS when none is mapped), then the heartbeat.
fn alarm_reports(kind: &str, body: &Body<'_>) -> Vec<Report> {
    let raw_code = match body.status {
        Some((text, _)) => format!("watch:{kind}:{text}"),
        None => format!("watch:{kind}"),
    };
    let meanings = status_meanings(body.status.map_or(0, |(_, v)| v));
    let mut reports: Vec<Report> = meanings
        .iter()
        .map(|m| meaning_report(*m, body.location, &raw_code))
        .collect();
    if meanings.is_empty() {
        reports.insert(0, alarm(AlarmKind::Sos, body.location, &raw_code));
    }
    reports.extend(heartbeat(body));
    reports
}

fn meaning_report(meaning: StatusMeaning, location: Option<Location>, raw_code: &str) -> Report {
    match meaning {
        StatusMeaning::Alarm(kind) => alarm(kind, location, raw_code),
        StatusMeaning::GeofenceEnter => Report::Restore {
            raw_code: raw_code.to_owned(),
        },
    }
}

fn alarm(kind: AlarmKind, location: Option<Location>, raw_code: &str) -> Report {
    Report::Alarm {
        kind,
        location,
        raw_code: raw_code.to_owned(),
    }
}

/// The reply frame to `header`'s message: same manufacturer, id and index.
fn reply(header: &Header<'_>, content: &str) -> Vec<u8> {
    header::frame(
        header.manufacturer,
        header.id,
        header.index,
        content.as_bytes(),
    )
}

/// Whether the `LLLL` field of `frame` equals the number of content bytes in it as given (wire
/// bytes for a frame straight off the socket); `None` when `frame` is not a watch frame.
/// Informational only.
pub fn declared_len_matches(frame: &[u8]) -> Option<bool> {
    Header::parse(frame).map(|h| h.length_matches())
}

/// The frame(s) that send `cmd` to watch `identity`, or `None` when the command cannot be expressed
/// (bad id, more than three or malformed SOS numbers, text containing `[`, `]` or `}`).
///
/// `Locate` → `CR`, `Reset` → `RESET`, `SetSosNumbers([a, b…])` → one `SOS1,a`, `SOS2,b`… frame per
/// number (slots beyond the list are left alone), `Text(t)` → `t` as the content.
pub fn encode_command(cmd: &ServerCommand, identity: &str, session: &Session) -> Option<Vec<u8>> {
    let id_ok =
        (1..=20).contains(&identity.len()) && identity.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_ok {
        return None;
    }
    let contents = command_contents(cmd)?;
    let manufacturer = match session.manufacturer.as_deref() {
        None => "CS",
        Some("3G") => "SG",
        Some(m) => m,
    };
    let index = session.uses_index.then_some("0001");
    let frames = contents
        .iter()
        .flat_map(|c| header::frame(manufacturer, identity, index, c.as_bytes()));
    Some(frames.collect())
}

fn command_contents(cmd: &ServerCommand) -> Option<Vec<String>> {
    match cmd {
        ServerCommand::Locate => Some(vec!["CR".into()]),
        ServerCommand::Reset => Some(vec!["RESET".into()]),
        ServerCommand::SetSosNumbers(numbers) => sos_contents(numbers),
        ServerCommand::Text(text) => {
            let ok = !text.is_empty() && !text.contains(['[', ']', '}']);
            ok.then(|| vec![text.clone()])
        }
    }
}

fn sos_contents(numbers: &[String]) -> Option<Vec<String>> {
    if numbers.is_empty() || numbers.len() > 3 || !numbers.iter().all(|n| phone_ok(n)) {
        return None;
    }
    let contents = numbers.iter().enumerate();
    Some(contents.map(|(i, n)| format!("SOS{},{n}", i + 1)).collect())
}

/// Digits with an optional leading `+`, at most 20 characters; empty clears the slot.
fn phone_ok(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    number.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}
