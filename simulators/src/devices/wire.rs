//! What every simulated device's protocol must do: frame the hello, heartbeats and planned actions,
//! and recognise the server's ACK of each in the bytes (or MQTT messages) that come back.

use bytes::BytesMut;

use crate::clock::Ms;
use crate::plan::Action;

/// Which reply acknowledges a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKey {
    /// A sequence number echoed (native, MQTT JSON, DC-09).
    Seq(u32),
    /// GT06: protocol number and serial.
    Gt06(u8, u16),
    /// A text protocol's reply type (watch `AL`/`LK`, H02 `V1`/`HTBT`).
    Text(&'static str),
}

/// One frame to send and the reply that acknowledges it.
#[derive(Debug, Clone)]
pub struct Out {
    /// The bytes (an MQTT payload for MQTT links).
    pub bytes: Vec<u8>,
    /// The reply it waits for.
    pub key: AckKey,
}

/// What the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An ACK: `ok` false when the server refused the frame for good (a replayed sequence).
    Ack {
        /// Which frame.
        key: AckKey,
        /// Accepted (stored or duplicate).
        ok: bool,
        /// The server's clock, Unix seconds, when the reply says.
        server_s: Option<i64>,
    },
    /// A refusal that may succeed later (DC-09 `NAK`, which carries the receiver's clock).
    Nak {
        /// The server's clock, Unix seconds, when the reply says.
        server_s: Option<i64>,
    },
    /// Anything else (commands, replies to nothing pending, unverifiable bytes).
    Other,
}

/// The protocol cannot express the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// A device's protocol, from the device's side.
pub trait Wire: Send {
    /// The frame to send right after connecting (login / hello), if the protocol has one.
    fn hello(&mut self, now: Ms) -> Option<Out>;
    /// A heartbeat reporting `battery` per cent.
    fn heartbeat(&mut self, battery: u8, now: Ms) -> Option<Out>;
    /// The frame of a planned action (a new sequence number or serial).
    fn action(&mut self, action: &Action, battery: u8, now: Ms) -> Result<Out, Unsupported>;
    /// The frame to send again for a retry of `out` at `now`: the same bytes, except where the
    /// protocol refreshes the timestamp (DC-09).
    fn again(&mut self, out: &Out, _now: Ms) -> Vec<u8> {
        out.bytes.clone()
    }
    /// Cuts the next reply off `buf`; `None` when more bytes are needed.
    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply>;
}

/// Unix seconds of a clock time.
pub fn secs(now: Ms) -> i64 {
    now.div_euclid(1000)
}

/// `(year, month, day, hour, minute, second)` of a Unix time in seconds (UTC).
pub fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let s = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

/// Unix seconds of a UTC date and time.
pub fn unix(y: i64, m: i64, d: i64, hh: i64, mi: i64, ss: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mi * 60 + ss
}

/// Removes and returns the bytes from the first `start` to the next `end` (inclusive), dropping
/// anything before `start`; `None` (and the partial frame kept) when `end` has not arrived.
pub fn cut(buf: &mut BytesMut, start: u8, end: u8) -> Option<Vec<u8>> {
    let Some(s) = buf.iter().position(|b| *b == start) else {
        buf.clear();
        return None;
    };
    let e = buf[s..].iter().position(|b| *b == end)? + s;
    let frame = buf.split_to(e + 1);
    Some(frame[s..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        let t = 1_796_140_800 + 3 * 3600 + 7;
        let (y, m, d, hh, mi, ss) = civil(t);
        assert_eq!((y, m, d, hh, mi, ss), (2026, 12, 1, 19, 0, 7));
        assert_eq!(unix(y, m, d, hh, mi, ss), t);
    }

    #[test]
    fn cut_skips_garbage_and_waits_for_the_end() {
        let mut b = BytesMut::from(&b"xx[3G*1*0002*AL][3G*1"[..]);
        assert_eq!(
            cut(&mut b, b'[', b']').as_deref(),
            Some(&b"[3G*1*0002*AL]"[..])
        );
        assert_eq!(cut(&mut b, b'[', b']'), None);
        assert_eq!(&b[..], b"[3G*1");
    }
}
