//! SIA DC-09 receiver: alarm panels and social-alarm units reporting to a central station over IP.
//!
//! A frame (reference §6) is
//! `<LF> CRC 0LLL "ID" SEQ [Rrcvr] Lline [#acct] [data] [xdata]… [_HH:MM:SS,MM-DD-YYYY] <CR>`.
//! `CRC` is CRC-16/ARC over everything from the first `"` to before `<CR>`, as four hex digits
//! (or two binary bytes, Lupusec); `0LLL` is the length of the same span in hex.
//! The ID token is `SIA-DCS` (SIA DC-03 codes such as `FA`, `MA`, `PA`), `ADM-CID` (Contact ID
//! `QEEE GG ZZZ`) or `NULL` (supervision); a leading `*` means the part after `[` is hex AES-CBC
//! ciphertext (zero IV, 16/24/32-byte key, random pad up to `|` at the front). The receiver answers
//! every message: `ACK` (echoing sequence, receiver, line and account; `*ACK` with an encrypted
//! timestamp for encrypted messages), `NAK` (rejected, never encrypted), or `DUH` (understood but
//! not processable).
//!
//! # Acceptance policy ([`Integrity`], default [`Integrity::Lenient`])
//! The reference data is inconsistent: only 5 of 17 samples have a correct length field and 12 a
//! correct CRC (the real panels' samples are fully consistent; the rest are hand-made). Over TCP a
//! mismatch means a quirky panel far more often than a corrupted message, and refusing a medical
//! alarm from a quirky panel is worse than accepting it. So:
//! - **Lenient** (default): a wrong CRC, a wrong length and a missing CRC/length header are
//!   accepted and recorded in [`Session::warnings`] for logs and metrics.
//! - **Strict**: each of those is answered with `NAK`, as DC-09 prescribes.
//!
//! Leniency covers transmission quirks only, never authentication or freshness. In both modes a
//! message whose timestamp is outside −40 s … +20 s of `now_unix` is refused, encrypted or not (an
//! old message is a replay), an encrypted message must carry a timestamp, a message in clear from an
//! account registered with a key is refused (the key is what authenticates the account, so anyone
//! who knows the account number could otherwise raise its alarms), and these always get `NAK`:
//! unparseable frames,
//! unknown accounts (the account lookup returns `None`), events without an account, encrypted
//! messages without a usable key or that do not decrypt. `DUH` answers unknown ID tokens and
//! messages none of whose events is in [`SIA_TABLE`] / [`CID_TABLE`] (e.g. burglary, which the
//! dispatch vocabulary cannot represent); `NAK` and `DUH` are never encrypted. A `[K…]` key-change
//! request is acknowledged with a plain `ACK` (no `RSP`: this receiver does not hand out keys). The
//! first accepted message of each account on a connection also yields [`Report::Login`].
//! Osborne-Hoffman heartbeats (`SR0001L0001    006969XX    [ID00000000]`, which pysiaalarm accepts)
//! decode to a [`Report::LinkTest`] without reply (the reference does not specify one).

mod codec;
mod codes;
mod crypto;
mod message;
mod time;

use std::collections::HashSet;
use std::fmt;

use crate::report::{Decoded, Location, Report, ServerCommand};

pub use codec::{FrameError, SiaCodec};
pub use codes::{CID_TABLE, Mapping, SIA_TABLE, cid_mapping, cid_to_sia, sia_mapping};
pub use message::{CrcFormat, Event, Message, Token, read_message};

/// Seconds a message may be older than `now` (reference §6.1, pysiaalarm `allowed_timeband`).
pub const MAX_AGE_S: i64 = 40;
/// Seconds a message may be ahead of `now`.
pub const MAX_AHEAD_S: i64 = 20;

/// What the receiver knows about a registered account.
#[derive(Clone, PartialEq, Eq)]
pub enum Account {
    /// Registered; messages are sent in clear.
    Plain,
    /// Registered with an AES key (16, 24 or 32 bytes, e.g. the ASCII bytes of the configured key).
    Aes(Vec<u8>),
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Plain => f.write_str("Plain"),
            Account::Aes(k) => write!(f, "Aes(<{} bytes>)", k.len()),
        }
    }
}

/// How [`parse`] treats integrity defects (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// NAK every defect, as the standard says.
    Strict,
    /// Accept CRC, length and header defects, with a warning.
    #[default]
    Lenient,
}

/// Why a message was refused, or (in [`Session::warnings`]) what was tolerated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The bytes are not a DC-09 message.
    #[error("not a DC-09 message")]
    NotDc09,
    /// The message does not follow the grammar.
    #[error("malformed DC-09 message: {0}")]
    Malformed(&'static str),
    /// The CRC field does not match the body.
    #[error("CRC mismatch: sent {declared:04X}, computed {computed:04X}")]
    CrcMismatch {
        /// As sent.
        declared: u16,
        /// CRC-16/ARC of the body.
        computed: u16,
    },
    /// The length field does not match the body.
    #[error("length mismatch: sent {declared}, actual {actual}")]
    LengthMismatch {
        /// As sent.
        declared: usize,
        /// Bytes from the first `"` to before `<CR>`.
        actual: usize,
    },
    /// No CRC/length header.
    #[error("no CRC/length header")]
    MissingHeader,
    /// An event message without any account.
    #[error("message without account")]
    NoAccount,
    /// The account lookup does not know the account.
    #[error("unknown account {0}")]
    UnknownAccount(String),
    /// An encrypted message for an account without a (valid) key.
    #[error("no AES key for account {0}")]
    NoKey(String),
    /// The ciphertext is malformed or the key is wrong.
    #[error("message does not decrypt")]
    Decrypt,
    /// An unencrypted message from an account configured with a key (always refused).
    #[error("unencrypted message from account {0}, which has a key")]
    Unencrypted(String),
    /// An encrypted message without timestamp.
    #[error("encrypted message without timestamp")]
    MissingTimestamp,
    /// The timestamp is outside −40 s … +20 s of now (always refused).
    #[error("timestamp {skew_s} s from now, outside the window")]
    StaleTimestamp {
        /// Message time minus now.
        skew_s: i64,
    },
    /// An ID token other than `SIA-DCS`, `ADM-CID` and `NULL`.
    #[error("unknown ID token {0}")]
    UnknownToken(String),
    /// None of the message's events is in the code tables.
    #[error("no known event code in {0:?}")]
    UnknownCode(Vec<String>),
}

impl Reason {
    /// True when the answer is `DUH` (understood but not processable) rather than `NAK`.
    pub fn is_duh(&self) -> bool {
        matches!(self, Reason::UnknownToken(_) | Reason::UnknownCode(_))
    }
}

/// A refused message and the negative answer the panel expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Why.
    pub reason: Reason,
    /// The account, when it could be read.
    pub account: Option<String>,
    /// The framed `NAK` or `DUH` to send back.
    pub reply: Vec<u8>,
}

type AccountLookup = dyn Fn(&str) -> Option<Account> + Send + Sync;

/// Per-connection state: the account lookup, the policy, and which accounts already logged in.
pub struct Session {
    accounts: Box<AccountLookup>,
    integrity: Integrity,
    logged_in: HashSet<String>,
    warnings: Vec<Reason>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("integrity", &self.integrity)
            .field("logged_in", &self.logged_in)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose accounts come from `lookup` (`None` = unknown account, answered with `NAK`).
    pub fn new(lookup: impl Fn(&str) -> Option<Account> + Send + Sync + 'static) -> Self {
        Self {
            accounts: Box::new(lookup),
            integrity: Integrity::default(),
            logged_in: HashSet::new(),
            warnings: Vec::new(),
        }
    }

    /// A session that accepts every account, unencrypted only (tests, commissioning).
    pub fn accept_all() -> Self {
        Self::new(|_| Some(Account::Plain))
    }

    /// The same session with another acceptance policy.
    pub fn with_integrity(mut self, integrity: Integrity) -> Self {
        self.integrity = integrity;
        self
    }

    /// The acceptance policy.
    pub fn integrity(&self) -> Integrity {
        self.integrity
    }

    /// The defects the last [`parse`] tolerated (lenient mode); empty after a clean message.
    pub fn warnings(&self) -> &[Reason] {
        &self.warnings
    }

    pub(crate) fn account(&self, account: &str) -> Option<Account> {
        (self.accounts)(account)
    }

    /// Records `defect`, or refuses the message in strict mode.
    fn tolerate(&mut self, defect: Reason) -> Result<(), Reason> {
        match self.integrity {
            Integrity::Strict => Err(defect),
            Integrity::Lenient => {
                self.warnings.push(defect);
                Ok(())
            }
        }
    }

    /// True the first time `account` is accepted on this connection.
    fn first_login(&mut self, account: &str) -> bool {
        if self.logged_in.len() >= 1024 {
            self.logged_in.clear();
        }
        self.logged_in.insert(account.to_owned())
    }
}

/// Decodes one frame (as cut by [`SiaCodec`], or without `<LF>`/`<CR>`), applies the session's
/// acceptance policy at time `now_unix` (Unix seconds, UTC), maps the events and builds the `ACK`.
/// A refused message is an `Err` that carries the `NAK`/`DUH` to send.
pub fn parse(frame: &[u8], state: &mut Session, now_unix: i64) -> Result<Decoded, ParseError> {
    state.warnings.clear();
    let message = match read_message(frame, state) {
        Ok(m) => m,
        Err(Reason::NotDc09) if osborne_hoffman(frame).is_some() => {
            return Ok(oh_heartbeat(frame, state));
        }
        Err(reason) => return Err(refuse(reason, None, frame_format(frame), now_unix)),
    };
    match accept(&message, state, now_unix) {
        Ok((reports, key)) => Ok(Decoded {
            identity: message.account.clone(),
            serial: Some(u32::from(message.sequence)),
            reports,
            reply: Some(ack(&message, key.as_deref(), now_unix)),
        }),
        Err(reason) => Err(refuse(reason, Some(&message), message.crc_format, now_unix)),
    }
}

/// The account of an Osborne-Hoffman heartbeat `SRrrrrLllll  ACCOUNT  [ID…]`.
fn osborne_hoffman(frame: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(frame).ok()?.trim();
    let rest = s.strip_prefix("SR")?;
    let digits = |t: &str| t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit());
    let (receiver, rest) = rest.split_at_checked(4)?;
    let (line, rest) = rest.strip_prefix('L')?.split_at_checked(4)?;
    let mut words = rest.split_ascii_whitespace();
    let (account, id) = (words.next()?, words.next()?);
    let id_ok = id.starts_with('[') && id.ends_with(']') && id.len() > 2;
    let account_ok = account.len() == 8 && account.bytes().all(|b| b.is_ascii_alphanumeric());
    (digits(receiver) && digits(line) && account_ok && id_ok && words.next().is_none())
        .then_some(account)
}

/// An Osborne-Hoffman heartbeat: a link test of the account. Its reply is not specified by the
/// reference, so none is produced.
fn oh_heartbeat(frame: &[u8], state: &mut Session) -> Decoded {
    let account = osborne_hoffman(frame).map(str::to_owned);
    let login = account.as_deref().is_some_and(|a| state.first_login(a));
    let reports = login
        .then_some(Report::Login)
        .into_iter()
        .chain([Report::LinkTest]);
    Decoded {
        identity: account,
        serial: None,
        reports: reports.collect(),
        reply: None,
    }
}

/// The CRC format of a frame that could not be read, for the `NAK` (binary if the panel uses it).
fn frame_format(frame: &[u8]) -> CrcFormat {
    let s = frame.strip_prefix(b"\n").unwrap_or(frame);
    let binary = s.get(6) == Some(&b'"')
        && s.get(2..6)
            .is_some_and(|l| l.iter().all(u8::is_ascii_hexdigit));
    if binary && s.get(8) != Some(&b'"') {
        CrcFormat::Binary
    } else {
        CrcFormat::Hex
    }
}

/// Applies the policy; the reports and, for an encrypted message, the key for the `*ACK`.
fn accept(
    m: &Message,
    state: &mut Session,
    now: i64,
) -> Result<(Vec<Report>, Option<Vec<u8>>), Reason> {
    check_integrity(m, state)?;
    let key = check_account(m, state)?;
    check_time(m, now)?;
    let mut reports = event_reports(m)?;
    if let Some(account) = &m.account {
        if state.first_login(account) {
            reports.insert(0, Report::Login);
        }
    }
    Ok((reports, key))
}

fn check_integrity(m: &Message, state: &mut Session) -> Result<(), Reason> {
    if m.crc_format == CrcFormat::Absent {
        state.tolerate(Reason::MissingHeader)?;
    }
    if let (Some(declared), false) = (m.declared_crc, m.crc_ok()) {
        state.tolerate(Reason::CrcMismatch {
            declared,
            computed: m.computed_crc,
        })?;
    }
    if let (Some(declared), false) = (m.declared_len, m.len_ok()) {
        state.tolerate(Reason::LengthMismatch {
            declared,
            actual: m.actual_len,
        })?;
    }
    Ok(())
}

/// The account must be known; events need one. Returns the key of an encrypted message.
fn check_account(m: &Message, state: &mut Session) -> Result<Option<Vec<u8>>, Reason> {
    let Some(account) = &m.account else {
        return match m.token {
            Token::Null => Ok(None),
            _ => Err(Reason::NoAccount),
        };
    };
    match state.account(account) {
        None => Err(Reason::UnknownAccount(account.clone())),
        Some(Account::Aes(key)) if m.encrypted => Ok(Some(key)),
        Some(Account::Aes(_)) => Err(Reason::Unencrypted(account.clone())),
        Some(Account::Plain) if m.encrypted => Err(Reason::NoKey(account.clone())),
        Some(Account::Plain) => Ok(None),
    }
}

fn check_time(m: &Message, now: i64) -> Result<(), Reason> {
    let Some(ts) = m.timestamp else {
        return if m.encrypted {
            Err(Reason::MissingTimestamp)
        } else {
            Ok(())
        };
    };
    let skew_s = ts.saturating_sub(now);
    if (-MAX_AGE_S..=MAX_AHEAD_S).contains(&skew_s) {
        Ok(())
    } else {
        Err(Reason::StaleTimestamp { skew_s })
    }
}

/// The reports of the message's events; `DUH` when there are events and none is known.
fn event_reports(m: &Message) -> Result<Vec<Report>, Reason> {
    match &m.token {
        Token::Other(token) => return Err(Reason::UnknownToken(token.clone())),
        Token::Null => return Ok(vec![Report::LinkTest]),
        Token::SiaDcs | Token::AdmCid => {}
    }
    let location = xdata_location(m);
    let mut known = false;
    let mut reports = Vec::new();
    for event in &m.events {
        let Some(mapping) = event.mapping() else {
            continue;
        };
        known = true;
        reports.extend(mapping_report(mapping, event.raw_code(), location));
    }
    if known {
        Ok(reports)
    } else {
        Err(Reason::UnknownCode(
            m.events.iter().map(Event::raw_code).collect(),
        ))
    }
}

fn mapping_report(
    mapping: Mapping,
    raw_code: String,
    location: Option<Location>,
) -> Option<Report> {
    match mapping {
        Mapping::Alarm(kind) => Some(Report::Alarm {
            kind,
            location,
            raw_code,
        }),
        Mapping::Restore => Some(Report::Restore { raw_code }),
        Mapping::Cancel => Some(Report::Cancel { raw_code }),
        Mapping::LinkTest => Some(Report::LinkTest),
        Mapping::Info => None,
    }
}

/// The `[X…]` longitude and `[Y…]` latitude xdata, when both are present and valid.
fn xdata_location(m: &Message) -> Option<Location> {
    let find = |tag: char| m.xdata.iter().find_map(|x| x.strip_prefix(tag));
    let lon = message::xdata_coordinate(find('X')?, 180.0)?;
    let lat = message::xdata_coordinate(find('Y')?, 90.0)?;
    Some(Location {
        lat,
        lon,
        accuracy_m: None,
        valid: true,
        time: m.timestamp,
    })
}

/// `<LF>` + CRC + `0LLL` + body + `<CR>`.
fn framed(body: &str, format: CrcFormat) -> Vec<u8> {
    let crc = message::crc16(body.as_bytes());
    let mut out = Vec::with_capacity(body.len() + 10);
    out.push(b'\n');
    match format {
        CrcFormat::Binary => out.extend_from_slice(&crc.to_be_bytes()),
        CrcFormat::Hex | CrcFormat::Absent => {
            out.extend_from_slice(format!("{crc:04X}").as_bytes())
        }
    }
    out.extend_from_slice(format!("{:04X}", body.len()).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out.push(b'\r');
    out
}

/// `"TYPE"seq[Rr]Ll[#acct]` — the echoed part of `ACK`/`DUH`.
fn echo_head(kind: &str, m: &Message) -> String {
    let receiver = m
        .receiver
        .as_deref()
        .map(|r| format!("R{r}"))
        .unwrap_or_default();
    let account = m
        .account
        .as_deref()
        .map(|a| format!("#{a}"))
        .unwrap_or_default();
    format!("\"{kind}\"{:04}{receiver}L{}{account}", m.sequence, m.line)
}

/// `ACK`, or `*ACK` with `hex(AES(pad|]_timestamp))` for an encrypted message.
fn ack(m: &Message, key: Option<&[u8]>, now: i64) -> Vec<u8> {
    let sealed = key.and_then(|key| {
        let tail = format!("|]{}", time::format_timestamp(now));
        let pad = "0".repeat((16 - tail.len() % 16) % 16);
        crypto::encrypt(key, format!("{pad}{tail}").as_bytes())
    });
    let body = match sealed {
        Some(c) => format!("{}[{}", echo_head("*ACK", m), hex::encode_upper(c)),
        None => format!("{}[]", echo_head("ACK", m)),
    };
    framed(&body, m.crc_format)
}

/// The framed `NAK` (`"NAK"0000R0L0A0[]_timestamp`, reference §6.3) for time `now_unix`.
pub fn nak(now_unix: i64) -> Vec<u8> {
    nak_in(now_unix, CrcFormat::Hex)
}

fn nak_in(now: i64, format: CrcFormat) -> Vec<u8> {
    let body = format!("\"NAK\"0000R0L0A0[]{}", time::format_timestamp(now));
    framed(&body, format)
}

fn refuse(reason: Reason, m: Option<&Message>, format: CrcFormat, now: i64) -> ParseError {
    let reply = match m {
        Some(m) if reason.is_duh() => framed(&format!("{}[]", echo_head("DUH", m)), format),
        _ => nak_in(now, format),
    };
    ParseError {
        account: m.and_then(|m| m.account.clone()),
        reason,
        reply,
    }
}

/// DC-09 has no server commands: always `None`.
pub fn encode_command(
    _cmd: &ServerCommand,
    _identity: &str,
    _session: &Session,
) -> Option<Vec<u8>> {
    None
}
