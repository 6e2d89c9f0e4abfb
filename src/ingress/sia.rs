//! SIA DC-09 receiver for alarm panels and telecare units. The account (`#acct`) is readable before
//! decryption; the connection resolves it to a registered account, whose secret (if any) is the AES
//! key of `*`-encrypted messages and then the only way that account is accepted: a message in clear
//! from a keyed account is refused. A message the receiver refuses (bad CRC in strict mode, timestamp
//! outside −40 s/+20 s, encrypted or not, unknown account, plaintext to a keyed account) gets the
//! protocol's `NAK` or `DUH` and the connection closes.
//!
//! A panel retries an unacknowledged message with the same sequence number and a fresh timestamp
//! (and, encrypted, fresh padding), so a retry is recognised by its account, sequence number and
//! events, not by its bytes.

use bytes::Bytes;
use onekey_device_protocols::sia::{self, Account, SiaCodec};
use onekey_device_protocols::{Decoded, Report};

use super::deployed::{self, RawReplies};
use super::{Adapter, DeviceAuth, Handled, Reason, Reject};
use crate::domain::Millis;
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// The DC-09 adapter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sia;

/// The account field of a DC-09 frame: the characters after `#` up to `[`.
pub fn account_of(frame: &[u8]) -> Option<String> {
    let hash = frame.iter().position(|b| *b == b'#')?;
    let rest = &frame[hash + 1..];
    let end = rest.iter().position(|b| *b == b'[')?;
    let account = std::str::from_utf8(&rest[..end]).ok()?;
    (!account.is_empty()
        && account.len() <= 16
        && account.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then(|| account.to_string())
}

/// What a retry of a message repeats: the account, the sequence number and the events (codes and
/// place), without the timestamp or the encryption's padding.
fn fingerprint(account: &str, decoded: &Decoded) -> Vec<u8> {
    let mut out = format!("{account}|{:?}", decoded.serial);
    for report in &decoded.reports {
        match report {
            Report::Login => {}
            Report::Alarm {
                kind,
                location,
                raw_code,
            } => {
                let place = location.map(|l| (l.lat, l.lon));
                out.push_str(&format!("|{raw_code}:{}:{place:?}", kind.as_str()));
            }
            Report::Restore { raw_code } => out.push_str(&format!("|{raw_code}")),
            other => out.push_str(&format!("|{other:?}")),
        }
    }
    out.into_bytes()
}

/// The rejection for a refused message.
fn reason_of(reason: &sia::Reason) -> Reason {
    match reason {
        r if r.is_duh() => Reason::Unsupported,
        sia::Reason::UnknownAccount(_) => Reason::UnknownDevice,
        sia::Reason::Unencrypted(_) => Reason::Unencrypted,
        sia::Reason::StaleTimestamp { .. } | sia::Reason::MissingTimestamp => {
            Reason::StaleTimestamp
        }
        sia::Reason::Decrypt => Reason::BadMac,
        sia::Reason::NoKey(_) => Reason::NoKey,
        _ => Reason::Refused,
    }
}

impl Adapter for Sia {
    const PROTOCOL: &'static str = "sia";
    type Frame = Vec<u8>;
    type Codec = RawReplies<SiaCodec>;
    type Session = ();
    type Pending = Option<Bytes>;

    fn codec(&self, max_frame: usize) -> Self::Codec {
        RawReplies::new(SiaCodec::new(max_frame), Self::PROTOCOL)
    }

    fn session(&self) {}

    fn identity(&self, frame: &Vec<u8>, _: &mut ()) -> Result<Option<String>, Reject> {
        match account_of(frame) {
            Some(account) => Ok(Some(account)),
            None => Err(
                Reject::new(Reason::Malformed, "DC-09 frame without a readable account")
                    .with_reply(Some(Bytes::from(sia::nak(
                        crate::domain::now_millis() / 1000,
                    )))),
            ),
        }
    }

    fn handle(
        &self,
        frame: &Vec<u8>,
        device: &DeviceAuth,
        _: &mut (),
        now: Millis,
    ) -> Result<Handled<Option<Bytes>>, Reject> {
        let ident = device.ident.clone();
        let key = device.secret.clone();
        let mut session = sia::Session::new(move |account| {
            (account == ident).then(|| {
                if key.is_empty() {
                    Account::Plain
                } else {
                    Account::Aes(key.clone())
                }
            })
        });
        match sia::parse(frame, &mut session, now / 1000) {
            Ok(decoded) => {
                for warning in session.warnings() {
                    tracing::warn!(%warning, "DC-09 message accepted despite a defect");
                }
                let fingerprint = fingerprint(&device.ident, &decoded);
                Ok(deployed::handled(
                    Self::PROTOCOL,
                    decoded,
                    &fingerprint,
                    device,
                    now,
                ))
            }
            Err(e) => Err(Reject::new(reason_of(&e.reason), e.reason.to_string())
                .with_reply(Some(Bytes::from(e.reply)))),
        }
    }

    fn reply(
        &self,
        pending: Option<Bytes>,
        stored: &[Stored],
        _: &DeviceAuth,
        _: &mut (),
    ) -> Option<Bytes> {
        deployed::reply(pending, stored)
    }

    fn command(
        &self,
        _: &DeviceCommand,
        _: u32,
        _: &DeviceAuth,
        _: &mut (),
    ) -> Result<Bytes, CommandError> {
        Err(CommandError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_read_before_decryption() {
        assert_eq!(
            account_of(b"\n8D3B0035\"*SIA-DCS\"0002L0#AAA[8E58"),
            Some("AAA".into())
        );
        assert_eq!(account_of(b"\"SIA-DCS\"0002L0#[x"), None);
        assert_eq!(account_of(b"no account"), None);
    }
}
