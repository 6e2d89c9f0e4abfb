//! SIA DC-09 receiver for alarm panels and telecare units. The account (`#acct`) is readable before
//! decryption; the connection resolves it to a registered account, whose secret (if any) is the AES key
//! of `*`-encrypted messages. A message the receiver refuses (bad CRC in strict mode, timestamp outside
//! −40 s/+20 s, unknown account) gets the protocol's `NAK` or `DUH` and the connection closes.

use bytes::Bytes;
use onekey_device_protocols::sia::{self, Account, SiaCodec};

use super::deployed::{self, RawReplies};
use super::{Adapter, DeviceAuth, Handled, Reject};
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
            None => {
                let mut reject = Reject::new("malformed", "DC-09 frame without a readable account");
                reject.reply = Some(Bytes::from(sia::nak(crate::domain::now_millis() / 1000)));
                Err(reject)
            }
        }
    }

    fn handle(
        &self,
        frame: Vec<u8>,
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
        match sia::parse(&frame, &mut session, now / 1000) {
            Ok(decoded) => Ok(deployed::handled(
                Self::PROTOCOL,
                decoded,
                &frame,
                device,
                now,
            )),
            Err(e) => {
                let mut reject = Reject::new(
                    if e.reason.is_duh() {
                        "unsupported"
                    } else {
                        "refused"
                    },
                    format!("{:?}", e.reason),
                );
                reject.reply = Some(Bytes::from(e.reply));
                Err(reject)
            }
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
