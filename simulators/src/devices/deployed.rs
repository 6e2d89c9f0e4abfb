//! GT06, 3G watch and H02 devices, framed with the builders of [`crate::deployed`].
//!
//! None of them can cancel an alarm, check in or ask for a service: those actions are
//! unsupported. Alarm kinds each can express, as the server's codecs map them:
//!
//! | kind | GT06 `0x16` alarm byte | watch `AL` status bit | H02 status bit (active low) |
//! |---|---|---|---|
//! | `sos` | `0x01` | 16 | 1 |
//! | `fall` | `0x23` | 21 | — (SOS) |
//! | `power_loss` | `0x02` | 14 | 19 |
//! | `low_battery` | `0x0E` | 0 | — (0, vibration: `device_fault`) |
//! | `tamper` | `0x0C` | 20 | — (0, vibration: `device_fault`) |
//! | `wandering` | `0x05` | 1 | — (SOS) |
//! | `device_fault` | `0x03` (vibration) | — (SOS) | 0 (vibration) |
//! | anything else (`smoke`, `gas`, `inactivity`, `medical`…) | `0x01` SOS | 16 SOS | 1 SOS |
//!
//! A retry sends the same bytes (the server recognises it by serial and digest within the hour).
//! Heartbeats: GT06 `0x13` status with the battery, watch `LK,steps,rolls,battery`, H02
//! `HTBT,battery`.

use bytes::{Buf, BytesMut};

use super::wire::{AckKey, Out, Reply, Unsupported, Wire, civil, cut, secs, unix};
use crate::clock::Ms;
use crate::deployed as build;
use crate::plan::Action;

/// A GT06 pendant.
pub struct Gt06Wire {
    imei: String,
    serial: u16,
}

impl Gt06Wire {
    /// The pendant with this IMEI (digits), first serial `serial`.
    pub fn new(imei: &str, serial: u16) -> Option<Gt06Wire> {
        let ok = (1..=16).contains(&imei.len()) && imei.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Gt06Wire {
            imei: imei.to_string(),
            serial,
        })
    }

    fn next(&mut self) -> u16 {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1).max(1);
        s
    }
}

/// The GT06 voltage byte for a battery percentage (7–100 is read as per cent, 0–6 as a level).
fn gt06_voltage(battery: u8) -> u8 {
    if battery >= 7 {
        battery.min(100)
    } else {
        battery * 6 / 100
    }
}

/// Charging off, GPS on.
const GT06_TERMINAL: u8 = 0x40;

impl Wire for Gt06Wire {
    fn hello(&mut self, _now: Ms) -> Option<Out> {
        let serial = self.next();
        Some(Out {
            bytes: build::gt06_login(&self.imei, serial),
            key: AckKey::Gt06(0x01, serial),
        })
    }

    fn heartbeat(&mut self, battery: u8, _now: Ms) -> Option<Out> {
        let serial = self.next();
        Some(Out {
            bytes: build::gt06_status(GT06_TERMINAL, gt06_voltage(battery), 4, serial),
            key: AckKey::Gt06(0x13, serial),
        })
    }

    fn action(&mut self, action: &Action, battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let Action::Alarm { kind } = action else {
            return Err(Unsupported);
        };
        let code = match kind.as_str() {
            "power_loss" => 0x02,
            "low_battery" => 0x0E,
            "fall" => 0x23,
            "tamper" => 0x0C,
            "wandering" => 0x05,
            "device_fault" => 0x03,
            _ => 0x01,
        };
        let (y, m, d, hh, mi, ss) = civil(secs(now));
        let time = [y.rem_euclid(100), m, d, hh, mi, ss].map(|v| v as u8);
        let serial = self.next();
        Ok(Out {
            bytes: build::gt06_alarm(code, gt06_voltage(battery), GT06_TERMINAL, time, serial),
            key: AckKey::Gt06(0x16, serial),
        })
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        loop {
            let start = buf
                .windows(2)
                .position(|w| w == [0x78, 0x78] || w == [0x79, 0x79]);
            let Some(start) = start else {
                let keep = usize::from(buf.last() == Some(&0x78) || buf.last() == Some(&0x79));
                buf.advance(buf.len() - keep);
                return None;
            };
            buf.advance(start);
            let total = if buf[0] == 0x78 {
                usize::from(*buf.get(2)?) + 5
            } else {
                usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])) + 6
            };
            if buf.len() < total {
                return None;
            }
            let frame = buf.split_to(total);
            if frame.len() < 10 || !frame.ends_with(&[0x0D, 0x0A]) {
                continue;
            }
            let n = frame.len();
            let proto = frame[if frame[0] == 0x78 { 3 } else { 4 }];
            let serial = u16::from_be_bytes([frame[n - 6], frame[n - 5]]);
            return Some(Reply::Ack {
                key: AckKey::Gt06(proto, serial),
                ok: true,
                server_s: None,
            });
        }
    }
}

/// A 3G watch.
pub struct WatchWire {
    id: String,
    steps: u32,
}

impl WatchWire {
    /// The watch with this id (ASCII letters and digits).
    pub fn new(id: &str) -> Option<WatchWire> {
        let ok = (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| WatchWire {
            id: id.to_string(),
            steps: 0,
        })
    }
}

impl Wire for WatchWire {
    fn hello(&mut self, _now: Ms) -> Option<Out> {
        None
    }

    fn heartbeat(&mut self, battery: u8, _now: Ms) -> Option<Out> {
        self.steps += 37;
        let content = format!("LK,{},0,{}", self.steps, battery.min(100));
        Some(Out {
            bytes: build::watch_frame("3G", &self.id, &content),
            key: AckKey::Text("LK"),
        })
    }

    fn action(&mut self, action: &Action, battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let Action::Alarm { kind } = action else {
            return Err(Unsupported);
        };
        let bit = match kind.as_str() {
            "fall" => 21,
            "tamper" => 20,
            "power_loss" => 14,
            "wandering" => 1,
            "low_battery" => 0,
            _ => 16,
        };
        let (y, m, d, hh, mi, ss) = civil(secs(now));
        let content = format!(
            "AL_LTE,{d:02}{m:02}{:02},{hh:02}{mi:02}{ss:02},A,27.110000,N,114.980000,E,0,0,0,6,80,{},{},0,{:08X},0,0,0",
            y.rem_euclid(100),
            battery.min(100),
            self.steps,
            1u32 << bit
        );
        Ok(Out {
            bytes: build::watch_frame("3G", &self.id, &content),
            key: AckKey::Text("AL"),
        })
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        let frame = cut(buf, b'[', b']')?;
        let text = String::from_utf8_lossy(&frame[1..frame.len() - 1]).into_owned();
        let content = text.rsplit('*').next().unwrap_or_default();
        let kind = content.split(',').next().unwrap_or_default();
        Some(match kind {
            "AL" => ack_text("AL", None),
            "LK" => ack_text("LK", None),
            _ => Reply::Other,
        })
    }
}

fn ack_text(key: &'static str, server_s: Option<i64>) -> Reply {
    Reply::Ack {
        key: AckKey::Text(key),
        ok: true,
        server_s,
    }
}

/// An H02 tracker.
pub struct H02Wire {
    id: String,
}

impl H02Wire {
    /// The tracker with this id (ASCII letters and digits).
    pub fn new(id: &str) -> Option<H02Wire> {
        let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| H02Wire { id: id.to_string() })
    }
}

impl Wire for H02Wire {
    fn hello(&mut self, _now: Ms) -> Option<Out> {
        None
    }

    fn heartbeat(&mut self, battery: u8, _now: Ms) -> Option<Out> {
        Some(Out {
            bytes: format!("*HQ,{},HTBT,{}#", self.id, battery.clamp(7, 100)).into_bytes(),
            key: AckKey::Text("HTBT"),
        })
    }

    fn action(&mut self, action: &Action, _battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let Action::Alarm { kind } = action else {
            return Err(Unsupported);
        };
        let bit = match kind.as_str() {
            "power_loss" => 19,
            "device_fault" | "low_battery" | "tamper" => 0,
            _ => 1,
        };
        let (y, m, d, hh, mi, ss) = civil(secs(now));
        let status = !(1u32 << bit);
        let hhmmss = format!("{hh:02}{mi:02}{ss:02}");
        let ddmmyy = format!("{d:02}{m:02}{:02}", y.rem_euclid(100));
        Ok(Out {
            bytes: build::h02_v1(&self.id, status, &hhmmss, &ddmmyy),
            key: AckKey::Text("V1"),
        })
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        let frame = cut(buf, b'*', b'#')?;
        let text = String::from_utf8_lossy(&frame[1..frame.len() - 1]).into_owned();
        let fields: Vec<&str> = text.split(',').collect();
        Some(match fields.get(2..) {
            Some(["V4", "V1", time, ..]) => ack_text("V1", h02_time(time)),
            Some(["HTBT", ..]) => ack_text("HTBT", None),
            _ => Reply::Other,
        })
    }
}

/// `yyyyMMddHHmmss` → Unix seconds.
fn h02_time(t: &str) -> Option<i64> {
    if t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok());
    Some(unix(
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10)?,
        n(10, 12)?,
        n(12, 14)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onekey_device_protocols::{Report, gt06, h02, watch};

    fn kinds(reports: &[Report]) -> Vec<&'static str> {
        reports
            .iter()
            .filter_map(|r| match r {
                Report::Alarm { kind, .. } => Some(kind.as_str()),
                _ => None,
            })
            .collect()
    }

    fn alarm(kind: &str) -> Action {
        Action::Alarm { kind: kind.into() }
    }

    const NOW: Ms = 1_796_140_800_000;

    #[test]
    fn the_servers_codecs_read_our_frames_as_planned() {
        let mut g = Gt06Wire::new("864717003283581", 1).expect("imei");
        let mut s = gt06::Session::new();
        let login = g.hello(NOW).expect("login");
        gt06::parse(&login.bytes, &mut s).expect("login parses");
        for (k, want) in [
            ("sos", "sos"),
            ("fall", "fall"),
            ("power_loss", "power_loss"),
            ("low_battery", "low_battery"),
            ("tamper", "tamper"),
            ("smoke", "sos"),
        ] {
            let out = g.action(&alarm(k), 50, NOW).expect("alarm");
            let d = gt06::parse(&out.bytes, &mut s).expect("alarm parses");
            assert_eq!(kinds(&d.reports), [want], "{k}");
            let mut reply = BytesMut::from(&d.reply.expect("reply")[..]);
            assert_eq!(
                g.reply(&mut reply),
                Some(ack_text_gt06(out.key)),
                "the server's ACK matches"
            );
        }
        let hb = g.heartbeat(42, NOW).expect("hb");
        let d = gt06::parse(&hb.bytes, &mut s).expect("hb parses");
        assert!(d.reports.contains(&Report::Heartbeat {
            battery_pct: Some(42),
            mains: Some(false),
            signal_pct: Some(100)
        }));

        let mut w = WatchWire::new("4700186508").expect("id");
        let mut ws = watch::Session::new();
        for (k, want) in [("sos", "sos"), ("fall", "fall"), ("gas", "sos")] {
            let out = w.action(&alarm(k), 50, NOW).expect("alarm");
            let d = watch::parse(&out.bytes, &mut ws).expect("parses");
            assert_eq!(kinds(&d.reports), [want], "{k}");
            let mut reply = BytesMut::from(&d.reply.expect("reply")[..]);
            assert_eq!(w.reply(&mut reply), Some(ack_text("AL", None)));
        }
        assert_eq!(w.action(&Action::Cancel, 50, NOW).err(), Some(Unsupported));

        let mut h = H02Wire::new("4210051415").expect("id");
        let mut hs = h02::Session::new();
        for (k, want) in [
            ("sos", "sos"),
            ("power_loss", "power_loss"),
            ("fall", "sos"),
        ] {
            let out = h.action(&alarm(k), 50, NOW).expect("alarm");
            let d = h02::parse(&out.bytes, &mut hs).expect("parses");
            assert_eq!(kinds(&d.reports), [want], "{k}");
            let mut reply = BytesMut::from(&d.reply.expect("reply")[..]);
            assert!(matches!(
                h.reply(&mut reply),
                Some(Reply::Ack {
                    key: AckKey::Text("V1"),
                    server_s: Some(_),
                    ..
                })
            ));
        }
    }

    fn ack_text_gt06(key: AckKey) -> Reply {
        Reply::Ack {
            key,
            ok: true,
            server_s: None,
        }
    }
}
