//! SIA DC-09 panels, in clear or AES-encrypted with the account's key, framed with the builders of
//! [`crate::deployed`].
//!
//! Alarms go as Contact ID (`ADM-CID`, qualifier 1, partition 01, zone 001): `sos` 101, `medical`
//! 100, `fire` 110, `smoke` 111, `panic` 120, `tamper` 137, `gas` 151, `water_leak` 154,
//! `power_loss` 301, `low_battery` 384; `fall` and `wandering`, which Contact ID has no code for,
//! as 101 (personal emergency). `inactivity` and `device_fault` go as SIA-DCS `NA` and `UT`.
//! `Cancel` ("I'm OK" at the panel) sends Contact ID 406 (cancel), which makes the open alarm a
//! probable false alarm, as a native cancel does. Check-ins and service requests are unsupported. The supervision
//! message `NULL` is the heartbeat and is sent on connecting, so a panel whose clock is off learns
//! the receiver's from the `NAK` before its first alarm. A retry keeps the sequence number and
//! refreshes the timestamp (and the pad), as panels do.

use bytes::BytesMut;

use super::wire::{AckKey, Out, Reply, Unsupported, Wire, cut, secs, unix};
use crate::clock::Ms;
use crate::dataset::Rng;
use crate::deployed as build;
use crate::plan::Action;

/// A DC-09 panel.
pub struct SiaWire {
    account: String,
    key: Option<Vec<u8>>,
    seq: u16,
    rng: Rng,
    /// The restoral of the last alarm: (token, data).
    restore: Option<(&'static str, String)>,
    /// The last framed event message, for retries: (seq, token, data).
    last: Option<(u16, &'static str, String)>,
}

impl SiaWire {
    /// Account `account`, AES `key` (16, 24 or 32 bytes) or none, pad letters from `rng`.
    pub fn new(account: &str, key: Option<Vec<u8>>, rng: Rng) -> Option<SiaWire> {
        let ok_account =
            (3..=16).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_alphanumeric());
        let ok_key = key.as_ref().is_none_or(|k| matches!(k.len(), 16 | 24 | 32));
        (ok_account && ok_key).then(|| SiaWire {
            account: account.to_string(),
            key,
            seq: 1,
            rng,
            restore: None,
            last: None,
        })
    }

    fn encode(&mut self, seq: u16, token: &'static str, data: &str, now: Ms) -> Vec<u8> {
        let ts = build::dc09_timestamp(secs(now));
        match &self.key {
            Some(key) => {
                let rng = &mut self.rng;
                build::dc09_encrypted_with(token, seq, &self.account, data, &ts, key, || {
                    rng.below(256) as u8
                })
                .unwrap_or_default()
            }
            None => build::dc09(token, seq, &self.account, data, &ts),
        }
    }

    fn message(&mut self, token: &'static str, data: String, now: Ms) -> Out {
        let seq = self.seq;
        self.seq = if self.seq >= 9999 { 1 } else { self.seq + 1 };
        let bytes = self.encode(seq, token, &data, now);
        // A supervision message sent while an alarm waits for its ACK (the hello after a
        // reconnect) must not make the alarm's retry go out with its old timestamp.
        if token != "NULL" {
            self.last = Some((seq, token, data));
        }
        Out {
            bytes,
            key: AckKey::Seq(u32::from(seq)),
        }
    }
}

/// The Contact ID event of an alarm kind, or the SIA-DCS code pair (alarm, restoral).
enum Code {
    Cid(u16),
    Sia(&'static str, Option<&'static str>),
}

fn code(kind: &str) -> Code {
    match kind {
        "medical" => Code::Cid(100),
        "fire" => Code::Cid(110),
        "smoke" => Code::Cid(111),
        "panic" => Code::Cid(120),
        "tamper" => Code::Cid(137),
        "gas" => Code::Cid(151),
        "water_leak" => Code::Cid(154),
        "power_loss" => Code::Cid(301),
        "low_battery" => Code::Cid(384),
        "inactivity" => Code::Sia("NA", None),
        "device_fault" => Code::Sia("UT", Some("UJ")),
        _ => Code::Cid(101),
    }
}

impl Wire for SiaWire {
    fn hello(&mut self, now: Ms) -> Option<Out> {
        Some(self.message("NULL", String::new(), now))
    }

    fn heartbeat(&mut self, _battery: u8, now: Ms) -> Option<Out> {
        Some(self.message("NULL", String::new(), now))
    }

    fn action(&mut self, action: &Action, _battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let acct = self.account.clone();
        let (token, data) = match action {
            Action::Alarm { kind } => {
                let (token, data, restore) = match code(kind) {
                    Code::Cid(e) => (
                        "ADM-CID",
                        format!("#{acct}|1{e:03} 01 001"),
                        Some(("ADM-CID", format!("#{acct}|3{e:03} 01 001"))),
                    ),
                    Code::Sia(c, r) => (
                        "SIA-DCS",
                        format!("#{acct}|N{c}1"),
                        r.map(|r| ("SIA-DCS", format!("#{acct}|N{r}1"))),
                    ),
                };
                self.restore = restore;
                (token, data)
            }
            Action::Cancel => {
                self.restore.take().ok_or(Unsupported)?;
                ("ADM-CID", format!("#{acct}|1406 01 001"))
            }
            Action::CheckIn | Action::Service { .. } | Action::GoSilent => return Err(Unsupported),
        };
        Ok(self.message(token, data, now))
    }

    fn again(&mut self, out: &Out, now: Ms) -> Vec<u8> {
        match self.last.clone() {
            Some((seq, token, data)) if out.key == AckKey::Seq(u32::from(seq)) => {
                self.encode(seq, token, &data, now)
            }
            _ => out.bytes.clone(),
        }
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        let frame = cut(buf, b'\n', b'\r')?;
        let text = String::from_utf8_lossy(&frame).into_owned();
        let mut quoted = text.splitn(3, '"');
        let (_, token, rest) = (quoted.next(), quoted.next()?, quoted.next()?);
        let seq = rest.get(..4).and_then(|s| s.parse::<u32>().ok());
        Some(match (token, seq) {
            ("ACK" | "*ACK", Some(seq)) => Reply::Ack {
                key: AckKey::Seq(seq),
                ok: true,
                server_s: None,
            },
            ("DUH", Some(seq)) => Reply::Ack {
                key: AckKey::Seq(seq),
                ok: false,
                server_s: None,
            },
            ("NAK", _) => Reply::Nak {
                server_s: rest.rsplit_once('_').and_then(|(_, t)| dc09_time(t.trim())),
            },
            _ => Reply::Other,
        })
    }
}

/// `HH:MM:SS,MM-DD-YYYY` → Unix seconds.
fn dc09_time(t: &str) -> Option<i64> {
    let (time, date) = t.split_once(',')?;
    let mut hms = time.split(':').map(|v| v.parse::<i64>().ok());
    let mut mdy = date.split('-').map(|v| v.parse::<i64>().ok());
    let (hh, mi, ss) = (hms.next()??, hms.next()??, hms.next()??);
    let (m, d, y) = (mdy.next()??, mdy.next()??, mdy.next()??);
    Some(unix(y, m, d, hh, mi, ss))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onekey_device_protocols::sia::{self, Account};
    use onekey_device_protocols::{Report, sia::Session};

    const NOW: Ms = 1_796_140_800_000;

    fn session(key: Option<Vec<u8>>) -> Session {
        Session::new(move |a| {
            (a == "4242").then(|| match &key {
                Some(k) => Account::Aes(k.clone()),
                None => Account::Plain,
            })
        })
    }

    #[test]
    fn the_receiver_reads_our_panels_in_clear_and_encrypted() {
        for key in [None, Some(vec![9u8; 16])] {
            let mut w = SiaWire::new("4242", key.clone(), Rng::new(1)).expect("panel");
            let mut s = session(key.clone());
            let hello = w.hello(NOW).expect("null");
            let d = sia::parse(&hello.bytes, &mut s, NOW / 1000).expect("null accepted");
            let mut reply = BytesMut::from(&d.reply.expect("ack")[..]);
            assert_eq!(
                w.reply(&mut reply),
                Some(Reply::Ack {
                    key: hello.key,
                    ok: true,
                    server_s: None
                })
            );
            for (kind, want) in [
                ("smoke", "smoke"),
                ("fall", "sos"),
                ("power_loss", "power_loss"),
            ] {
                let out = w
                    .action(&Action::Alarm { kind: kind.into() }, 50, NOW)
                    .expect("alarm");
                let retry = w.again(&out, NOW + 3000);
                for bytes in [&out.bytes, &retry] {
                    let d = sia::parse(bytes, &mut s, NOW / 1000 + 2).expect("accepted");
                    let kinds: Vec<_> = d
                        .reports
                        .iter()
                        .filter_map(|r| match r {
                            Report::Alarm { kind, .. } => Some(kind.as_str()),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(kinds, [want], "{kind}");
                }
            }
            let cancel = w.action(&Action::Cancel, 50, NOW).expect("cancel");
            let d = sia::parse(&cancel.bytes, &mut s, NOW / 1000).expect("accepted");
            assert!(matches!(d.reports.last(), Some(Report::Cancel { .. })));
            // A clock 10 minutes off gets a NAK carrying the receiver's time.
            let late = w.heartbeat(50, NOW - 600_000).expect("null");
            let e = sia::parse(&late.bytes, &mut s, NOW / 1000).expect_err("stale");
            let mut reply = BytesMut::from(&e.reply[..]);
            assert_eq!(
                w.reply(&mut reply),
                Some(Reply::Nak {
                    server_s: Some(NOW / 1000)
                })
            );
        }
    }
}
