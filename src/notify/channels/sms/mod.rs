//! SMS: for family contacts, key holders and responders without the app (or whose app did not
//! confirm an offer in time). Two providers behind one [`Transport`]: an SMPP 3.4 session with the
//! operator's SMS centre ([`smpp`]), or an HTTP SMS gateway ([`http`]). Delivery receipts and
//! replies come back as [`Inbound`] events (from `deliver_sm`, or the HTTP provider's callbacks on
//! `/api/v1/sms/…`) and are handled by [`inbound`](crate::notify::inbound).

pub mod http;
pub mod smpp;

pub use onekey_smpp as pdu;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::notify::{Attempt, Transport};
use crate::store::{Channel, Notification};

/// `[notify.sms]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmsSettings {
    /// `off` (default), `smpp` or `http`.
    pub provider: String,
    /// The SMS centre, for `smpp`.
    pub smpp: smpp::SmppSettings,
    /// The gateway, for `http`.
    pub http: http::HttpSmsSettings,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            provider: "off".into(),
            smpp: smpp::SmppSettings::default(),
            http: http::HttpSmsSettings::default(),
        }
    }
}

/// What the SMS side tells us after a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A delivery report for the message the provider knows as `message_id`.
    Report {
        /// The provider's message id.
        message_id: String,
        /// Reached the handset.
        delivered: bool,
        /// The provider's state word (`DELIVRD`, `UNDELIV`, `EXPIRED`…).
        state: String,
    },
    /// Someone answered: a text from `from`.
    Reply {
        /// The sender's number.
        from: String,
        /// What they wrote.
        text: String,
    },
}

/// Why a submit did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Try again later (link down, throttled, the SMSC's system error).
    #[error("{0}")]
    Transient(String),
    /// This message can never be sent (invalid number, refused).
    #[error("{0}")]
    Permanent(String),
}

impl SubmitError {
    /// An SMPP `command_status` as a transient or permanent failure.
    pub fn from_status(status: u32) -> SubmitError {
        let why = format!("SMS centre refused it (status {status:#010x})");
        match status {
            // Invalid message length, source or destination address, invalid parameters.
            0x01 | 0x0A | 0x0B | 0x0C | 0x42..=0x45 | 0x48 | 0x49 | 0x50 | 0x51 => {
                SubmitError::Permanent(why)
            }
            _ => SubmitError::Transient(why),
        }
    }
}

/// The SMS transport for the outbox relay.
pub enum SmsTransport {
    /// Through the SMS centre.
    Smpp(mpsc::Sender<smpp::Submit>),
    /// Through an HTTP gateway.
    Http(http::HttpSms),
}

/// Starts the configured provider; `None` when SMS is off. Inbound reports and replies go to
/// `inbound`.
pub fn start(
    settings: &SmsSettings,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<(SmsTransport, Option<tokio::task::JoinHandle<()>>)>> {
    match settings.provider.as_str() {
        "off" | "" => Ok(None),
        "smpp" => {
            let (tx, task) = smpp::start(settings.smpp.clone(), inbound, shutdown);
            Ok(Some((SmsTransport::Smpp(tx), Some(task))))
        }
        "http" => Ok(Some((
            SmsTransport::Http(http::HttpSms::new(settings.http.clone())?),
            None,
        ))),
        other => anyhow::bail!("unknown SMS provider {other:?} (off, smpp or http)"),
    }
}

impl Transport for SmsTransport {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn window(&self) -> usize {
        16
    }

    async fn deliver(&self, n: &Notification) -> Attempt {
        let Some(text) = n.payload.get("text").and_then(|t| t.as_str()) else {
            return Attempt::Failed("no text".into());
        };
        if n.recipient.is_empty() || !n.recipient.chars().all(|c| c.is_ascii_digit()) {
            return Attempt::Failed(format!("not a phone number: {:?}", n.recipient));
        }
        let result = match self {
            SmsTransport::Smpp(tx) => {
                let (done, answer) = oneshot::channel();
                let submit = smpp::Submit {
                    to: n.recipient.clone(),
                    text: text.to_string(),
                    done,
                };
                if tx.send(submit).await.is_err() {
                    return Attempt::Retry("SMPP is shutting down".into());
                }
                match tokio::time::timeout(std::time::Duration::from_secs(30), answer).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err(SubmitError::Transient("SMPP session ended".into())),
                    Err(_) => Err(SubmitError::Transient(
                        "no answer from the SMS centre".into(),
                    )),
                }
            }
            SmsTransport::Http(h) => h.send(&n.recipient, text, n.id).await,
        };
        match result {
            Ok(id) => Attempt::Sent(Some(id).filter(|i| !i.is_empty())),
            Err(SubmitError::Transient(e)) => Attempt::Retry(e),
            Err(SubmitError::Permanent(e)) => Attempt::Failed(e),
        }
    }
}
