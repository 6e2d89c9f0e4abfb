//! The DC-09 message grammar: envelope (`<LF>CRC 0LLL … <CR>`), header, data, xdata, timestamp.

use super::codes;
use super::crypto;
use super::time::parse_timestamp;
use super::{Account, Reason, Session};

/// How the frame carried its CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcFormat {
    /// Four ASCII hex digits (the standard).
    Hex,
    /// Two binary bytes, big-endian (Lupusec panels).
    Binary,
    /// No CRC/length header at all (a bare `"ID"…` body).
    Absent,
}

/// The message's ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `SIA-DCS`: SIA DC-03 event data.
    SiaDcs,
    /// `ADM-CID`: Ademco Contact ID event data.
    AdmCid,
    /// `NULL`: link supervision.
    Null,
    /// Any other token (answered with `DUH`).
    Other(String),
}

/// One event of a message's data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A SIA-DCS event: two-letter code, the zone / value after it, and the `^text^` if any.
    Sia {
        /// The two-letter event code (`FA`, `CL`…).
        code: String,
        /// What follows the code up to the next `/` or `^` (usually the zone).
        zone: String,
        /// The free text between carets.
        text: Option<String>,
    },
    /// A Contact ID event `Q EEE GG ZZZ`.
    ContactId {
        /// 1 new event, 3 restore, 6 previously reported and still present.
        qualifier: u8,
        /// The three-digit event code.
        event: u16,
        /// Partition (group), two hex digits.
        partition: String,
        /// Zone or user, three hex digits.
        zone: String,
    },
}

impl Event {
    /// The SIA code of the event (Contact ID events through [`codes::CID_TABLE`]).
    pub fn sia_code(&self) -> Option<&str> {
        match self {
            Event::Sia { code, .. } => Some(code),
            Event::ContactId {
                qualifier, event, ..
            } => codes::cid_to_sia(*qualifier, *event),
        }
    }

    /// What the event means to the server, `None` when unknown.
    pub fn mapping(&self) -> Option<codes::Mapping> {
        match self {
            Event::Sia { code, .. } => codes::sia_mapping(code),
            Event::ContactId {
                qualifier, event, ..
            } => codes::cid_mapping(*qualifier, *event),
        }
    }

    /// The code for the event log: `sia:FA`, `cid:E110` (E new, R restore, P still present).
    pub fn raw_code(&self) -> String {
        match self {
            Event::Sia { code, .. } => format!("sia:{code}"),
            Event::ContactId {
                qualifier, event, ..
            } => {
                let q = match qualifier {
                    3 => 'R',
                    6 => 'P',
                    _ => 'E',
                };
                format!("cid:{q}{event:03}")
            }
        }
    }
}

/// One decoded DC-09 message, before any acceptance policy is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The ID token.
    pub token: Token,
    /// Whether the token had the `*` (encrypted) prefix.
    pub encrypted: bool,
    /// The sender's sequence number (0000–9999).
    pub sequence: u16,
    /// The receiver number (hex digits after `R`), if sent.
    pub receiver: Option<String>,
    /// The line / account prefix (hex digits after `L`).
    pub line: String,
    /// The account, from the header or else from the data block.
    pub account: Option<String>,
    /// The events of the data block (empty for `NULL`).
    pub events: Vec<Event>,
    /// The extended data blocks, without brackets (`X006E07.7777777`, `M0026B9E4268B`…).
    pub xdata: Vec<String>,
    /// The message's timestamp (Unix seconds, UTC), if it carries one.
    pub timestamp: Option<i64>,
    /// How the CRC was sent.
    pub crc_format: CrcFormat,
    /// The CRC as sent, when there was a header.
    pub declared_crc: Option<u16>,
    /// CRC-16/ARC of the body as received.
    pub computed_crc: u16,
    /// The length field as sent, when there was a header.
    pub declared_len: Option<usize>,
    /// The body length as received (from the first `"` to before `<CR>`).
    pub actual_len: usize,
}

impl Message {
    /// `false` when a CRC was sent and does not match.
    pub fn crc_ok(&self) -> bool {
        self.declared_crc.is_none_or(|c| c == self.computed_crc)
    }

    /// `false` when a length was sent and does not match.
    pub fn len_ok(&self) -> bool {
        self.declared_len.is_none_or(|l| l == self.actual_len)
    }
}

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_ARC);

/// CRC-16/ARC as DC-09 uses it.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    CRC.checksum(data)
}

/// The envelope around the body.
struct Envelope<'a> {
    crc_format: CrcFormat,
    declared_crc: Option<u16>,
    declared_len: Option<usize>,
    body: &'a [u8],
}

fn hex_value(s: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(s).ok()?;
    s.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| usize::from_str_radix(s, 16).ok())?
}

/// Tries the 4-hex-CRC and the 2-byte-CRC header at the start of `s`.
fn header_at(s: &[u8]) -> Option<Envelope<'_>> {
    if s.get(8) == Some(&b'"') {
        if let (Some(crc), Some(len)) = (hex_value(s.get(..4)?), hex_value(s.get(4..8)?)) {
            return Some(Envelope {
                crc_format: CrcFormat::Hex,
                declared_crc: u16::try_from(crc).ok(),
                declared_len: Some(len),
                body: s.get(8..)?,
            });
        }
    }
    if s.get(6) == Some(&b'"') {
        let len = hex_value(s.get(2..6)?)?;
        let crc = u16::from_be_bytes([*s.first()?, *s.get(1)?]);
        return Some(Envelope {
            crc_format: CrcFormat::Binary,
            declared_crc: Some(crc),
            declared_len: Some(len),
            body: s.get(6..)?,
        });
    }
    None
}

/// Finds the envelope: optional `<LF>`, header, body, optional `<CR>` (and trailing NULs).
fn envelope(frame: &[u8]) -> Option<Envelope<'_>> {
    let end = frame
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n' | 0))
        .map_or(0, |p| p + 1);
    let s = frame.get(..end)?;
    let without_lf = s.strip_prefix(b"\n");
    let found = header_at(s).or_else(|| without_lf.and_then(header_at));
    if found.is_some() {
        return found;
    }
    let bare = without_lf.unwrap_or(s).trim_ascii_start();
    bare.starts_with(b"\"").then_some(Envelope {
        crc_format: CrcFormat::Absent,
        declared_crc: None,
        declared_len: None,
        body: bare,
    })
}

/// A tiny cursor over the body.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    /// Takes up to `max` bytes matching `f`.
    fn take_while(&mut self, max: usize, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.pos - start < max && self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// The fields before the `[`.
struct Head {
    token: Token,
    encrypted: bool,
    sequence: u16,
    receiver: Option<String>,
    line: String,
    account: Option<String>,
}

fn head(c: &mut Cursor<'_>) -> Result<Head, Reason> {
    let bad = Reason::Malformed;
    if !c.eat(b'"') {
        return Err(bad("body does not start with `\"`"));
    }
    let encrypted = c.eat(b'*');
    let token = c.take_while(16, |b| b != b'"' && b.is_ascii_graphic());
    if token.is_empty() || !c.eat(b'"') {
        return Err(bad("bad ID token"));
    }
    let seq = c.take_while(4, |b| b.is_ascii_digit());
    let sequence = std::str::from_utf8(seq).ok().filter(|s| s.len() == 4);
    let sequence = sequence
        .and_then(|s| s.parse().ok())
        .ok_or(bad("bad sequence"))?;
    let receiver = c
        .eat(b'R')
        .then(|| text(c.take_while(6, |b| b.is_ascii_hexdigit())));
    if receiver.as_ref().is_some_and(String::is_empty) || !c.eat(b'L') {
        return Err(bad("bad receiver or line"));
    }
    let line = text(c.take_while(6, |b| b.is_ascii_hexdigit()));
    let account = c
        .eat(b'#')
        .then(|| text(c.take_while(16, |b| b.is_ascii_alphanumeric())));
    if line.is_empty() || account.as_ref().is_some_and(|a| a.len() < 3) || !c.eat(b'[') {
        return Err(bad("bad line, account or missing `[`"));
    }
    let token = match token {
        b"SIA-DCS" => Token::SiaDcs,
        b"ADM-CID" => Token::AdmCid,
        b"NULL" => Token::Null,
        other => Token::Other(text(other)),
    };
    Ok(Head {
        token,
        encrypted,
        sequence,
        receiver,
        line,
        account,
    })
}

/// Decodes one frame (with or without `<LF>`/`<CR>`), decrypting with the session's key for the
/// account. Applies no acceptance policy: CRC, length, account and time checks are left to the
/// caller.
pub fn read_message(frame: &[u8], session: &Session) -> Result<Message, Reason> {
    let env = envelope(frame).ok_or(Reason::NotDc09)?;
    let mut cursor = Cursor {
        s: env.body,
        pos: 0,
    };
    let head = head(&mut cursor)?;
    let plain;
    let content = if head.encrypted {
        plain = decrypt_content(cursor.rest(), head.account.as_deref(), session)?;
        plain.as_slice()
    } else {
        cursor.rest()
    };
    let parts = content_parts(content, &head.token)?;
    let (data_account, events) = match head.token {
        Token::SiaDcs => sia_data(parts.data)?,
        Token::AdmCid => cid_data(parts.data)?,
        Token::Null | Token::Other(_) => (None, Vec::new()),
    };
    Ok(Message {
        account: head.account.or(data_account),
        token: head.token,
        encrypted: head.encrypted,
        sequence: head.sequence,
        receiver: head.receiver,
        line: head.line,
        events,
        xdata: parts.xdata,
        timestamp: parts.timestamp,
        crc_format: env.crc_format,
        declared_crc: env.declared_crc,
        computed_crc: crc16(env.body),
        declared_len: env.declared_len,
        actual_len: env.body.len(),
    })
}

/// Hex ciphertext → the plaintext after the pad (`<pad>|data]…` or, for `NULL`, `<pad>]…`).
fn decrypt_content(
    hex_text: &[u8],
    account: Option<&str>,
    session: &Session,
) -> Result<Vec<u8>, Reason> {
    let account = account.ok_or(Reason::NoAccount)?;
    let key = match session.account(account) {
        None => return Err(Reason::UnknownAccount(account.to_owned())),
        Some(Account::Aes(key)) if crypto::key_len_ok(&key) => key,
        Some(_) => return Err(Reason::NoKey(account.to_owned())),
    };
    let ciphertext = hex::decode(hex_text.trim_ascii()).map_err(|_| Reason::Decrypt)?;
    let plain = crypto::decrypt(&key, &ciphertext).ok_or(Reason::Decrypt)?;
    let start = pad_end(&plain, account);
    let content = plain.get(start..).unwrap_or_default();
    if std::str::from_utf8(content).is_err() || !content.contains(&b']') {
        return Err(Reason::Decrypt);
    }
    Ok(content.to_vec())
}

/// Where the data starts after the random pad: after `|` before `#<account>|` when present, else
/// after the pad characters (anything but `|`, `[`, `]`) and one optional `|`.
fn pad_end(plain: &[u8], account: &str) -> usize {
    let marker = format!("|#{account}|");
    let marker = marker.as_bytes();
    if let Some(p) = plain.windows(marker.len()).position(|w| w == marker) {
        return p + 1;
    }
    let stop = plain
        .iter()
        .position(|b| matches!(b, b'|' | b'[' | b']'))
        .unwrap_or(plain.len());
    stop + usize::from(plain.get(stop) == Some(&b'|'))
}

/// The data block, the xdata blocks and the timestamp of `data]…[x]…_ts`.
struct Parts<'a> {
    data: &'a [u8],
    xdata: Vec<String>,
    timestamp: Option<i64>,
}

fn content_parts<'a>(content: &'a [u8], token: &Token) -> Result<Parts<'a>, Reason> {
    let bad = Reason::Malformed;
    let carets_quote = *token == Token::SiaDcs;
    let end = data_end(content, carets_quote).ok_or(bad("data block not closed by `]`"))?;
    let mut c = Cursor {
        s: content,
        pos: end + 1,
    };
    let mut xdata = Vec::new();
    while c.eat(b'[') {
        let item = c.take_while(usize::MAX, |b| b != b']');
        if !c.eat(b']') {
            return Err(bad("xdata block not closed"));
        }
        xdata.push(text(item));
    }
    let timestamp = if c.eat(b'_') {
        let ts = std::str::from_utf8(c.rest()).map_err(|_| bad("bad timestamp"))?;
        Some(parse_timestamp(ts).ok_or(bad("bad timestamp"))?)
    } else if c.rest().is_empty() {
        None
    } else {
        return Err(bad("unexpected bytes after the data"));
    };
    Ok(Parts {
        data: content.get(..end).unwrap_or_default(),
        xdata,
        timestamp,
    })
}

/// The first `]`, ignoring those inside `^text^` for SIA-DCS.
fn data_end(content: &[u8], carets_quote: bool) -> Option<usize> {
    let mut in_text = false;
    content.iter().position(|&b| {
        if carets_quote && b == b'^' {
            in_text = !in_text;
        }
        b == b']' && !in_text
    })
}

/// Splits an optional `#account|` (or a bare `|`) off the data block.
fn data_account(data: &[u8]) -> Result<(Option<String>, &[u8]), Reason> {
    if let Some(rest) = data.strip_prefix(b"#") {
        let bar = rest.iter().position(|&b| b == b'|');
        let bar = bar.ok_or(Reason::Malformed("account in data without `|`"))?;
        let account = rest.get(..bar).unwrap_or_default();
        let ok = (3..=16).contains(&account.len()) && account.iter().all(u8::is_ascii_alphanumeric);
        if !ok {
            return Err(Reason::Malformed("bad account in data"));
        }
        return Ok((Some(text(account)), rest.get(bar + 1..).unwrap_or_default()));
    }
    Ok((None, data.strip_prefix(b"|").unwrap_or(data)))
}

/// SIA-DCS data: `[#acct|][N][modifiers]CCzone[^text^][/…]`.
fn sia_data(data: &[u8]) -> Result<(Option<String>, Vec<Event>), Reason> {
    let (account, rest) = data_account(data)?;
    let mut c = Cursor { s: rest, pos: 0 };
    let pair =
        |c: &Cursor<'_>, f: fn(&u8) -> bool| c.rest().get(..2).is_some_and(|p| p.iter().all(f));
    if c.peek() == Some(b'N') {
        c.pos += 1;
        let flag = pair(&c, u8::is_ascii_lowercase) || pair(&c, u8::is_ascii_uppercase);
        c.pos -= usize::from(!flag);
    }
    let mut events: Vec<Event> = Vec::new();
    while let Some(b) = c.peek() {
        if b == b'/' || b == b' ' {
            c.pos += 1;
        } else if pair(&c, u8::is_ascii_lowercase) {
            c.pos += 2;
            c.take_while(32, |b| b.is_ascii_digit() || b == b':' || b == b'-');
        } else if pair(&c, u8::is_ascii_uppercase) {
            let code = text(c.take_while(2, |_| true));
            let zone = text(c.take_while(64, |b| b != b'/' && b != b'^'));
            events.push(Event::Sia {
                code,
                zone,
                text: None,
            });
        } else if c.eat(b'^') {
            let t = text(c.take_while(usize::MAX, |b| b != b'^'));
            c.eat(b'^');
            if let Some(Event::Sia { text, .. }) = events.last_mut() {
                *text = Some(t);
            }
        } else {
            return Err(Reason::Malformed("unexpected character in SIA-DCS data"));
        }
    }
    Ok((account, events))
}

/// ADM-CID data: `[#acct|]QEEE GG ZZZ`.
fn cid_data(data: &[u8]) -> Result<(Option<String>, Vec<Event>), Reason> {
    let (account, rest) = data_account(data)?;
    let shape_ok = rest.len() == 11
        && rest.iter().enumerate().all(|(i, &b)| match i {
            0..=3 => b.is_ascii_digit(),
            4 | 7 => b == b' ',
            _ => b.is_ascii_hexdigit(),
        });
    if !shape_ok {
        return Err(Reason::Malformed("Contact ID data is not `QEEE GG ZZZ`"));
    }
    let s = |from: usize, to: usize| text(rest.get(from..to).unwrap_or_default());
    let event = Event::ContactId {
        qualifier: rest.first().map_or(0, |b| b - b'0'),
        event: s(1, 4)
            .parse()
            .map_err(|_| Reason::Malformed("bad Contact ID event"))?,
        partition: s(5, 7),
        zone: s(8, 11),
    };
    Ok((account, vec![event]))
}

/// A coordinate from xdata: plain decimal (`52.21`) or degrees + hemisphere + minutes
/// (`49N06.6666666`, `006E07.7777777`).
pub(crate) fn xdata_coordinate(value: &str, limit: f64) -> Option<f64> {
    let v = match value.find(['N', 'S', 'E', 'W']) {
        None => value.parse::<f64>().ok()?,
        Some(p) => {
            let degrees: f64 = value.get(..p)?.parse().ok()?;
            let minutes: f64 = value.get(p + 1..)?.parse().ok()?;
            let sign = if matches!(value.get(p..=p), Some("S" | "W")) {
                -1.0
            } else {
                1.0
            };
            if !(0.0..60.0).contains(&minutes) {
                return None;
            }
            sign * (degrees + minutes / 60.0)
        }
    };
    (v.is_finite() && v.abs() <= limit).then_some(v)
}
