//! An SMPP 3.4 client session (an ESME): binds as a transceiver, submits text in UCS-2 with long
//! messages split and concatenated, asks for a delivery receipt on the last segment, answers the
//! SMSC's `deliver_sm` (delivery receipts and replies) and `enquire_link`, sends its own
//! `enquire_link` to notice a dead link, keeps at most `window` submits in flight, and reconnects
//! with capped backoff. Every submit gets an answer: the SMSC's message id, or why not.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::pdu::{self, Bind, Body, Pdu, PduCodec, Sm};
use super::{Inbound, SubmitError};
use crate::mqtt::Backoff;

/// `[notify.sms.smpp]`: the SMS centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmppSettings {
    /// `host:port` of the SMSC (default `127.0.0.1:2775`).
    pub addr: String,
    /// Bind system id.
    pub system_id: String,
    /// Bind password.
    pub password: String,
    /// Bind system type.
    pub system_type: String,
    /// Our sender address (the centre's short code, e.g. `12349`).
    pub source_addr: String,
    /// Source TON (default 5, alphanumeric/short code: 0 unknown).
    pub source_ton: u8,
    /// Source NPI.
    pub source_npi: u8,
    /// Destination TON (default 1, international).
    pub dest_ton: u8,
    /// Destination NPI (default 1, E.164).
    pub dest_npi: u8,
    /// Submits awaiting their response at once (the SMSC's window; default 10).
    pub window: usize,
    /// Seconds between our `enquire_link`s (default 30).
    pub enquire_link_s: u64,
    /// Seconds to wait for any response before the link is taken for dead (default 10).
    pub response_timeout_s: u64,
    /// First reconnect delay, milliseconds (default 500).
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, milliseconds (default 30000).
    pub backoff_max_ms: u64,
}

impl Default for SmppSettings {
    fn default() -> Self {
        SmppSettings {
            addr: "127.0.0.1:2775".into(),
            system_id: "onekey".into(),
            password: String::new(),
            system_type: String::new(),
            source_addr: "12349".into(),
            source_ton: 0,
            source_npi: 0,
            dest_ton: 1,
            dest_npi: 1,
            window: 10,
            enquire_link_s: 30,
            response_timeout_s: 10,
            backoff_min_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

/// One message to send.
pub struct Submit {
    /// Destination number.
    pub to: String,
    /// The text.
    pub text: String,
    /// The SMSC's message id of the last segment (the one with the receipt), or why not.
    pub done: oneshot::Sender<Result<String, SubmitError>>,
}

/// Starts the session task; returns where to hand submits.
pub fn start(
    settings: SmppSettings,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> (mpsc::Sender<Submit>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.window.max(1) * 4);
    let task = tokio::spawn(run(settings, rx, inbound, shutdown));
    (tx, task)
}

async fn run(
    settings: SmppSettings,
    mut rx: mpsc::Receiver<Submit>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(
        Duration::from_millis(settings.backoff_min_ms),
        Duration::from_millis(settings.backoff_max_ms),
    );
    let mut reference: u8 = rand::random();
    loop {
        let error = match connect(&settings).await {
            Ok(framed) => {
                backoff.reset();
                metrics::gauge!("onekey_smpp_bound").set(1.0);
                tracing::info!(smsc = %settings.addr, "SMPP bound as transceiver");
                let mut session = Session {
                    settings: &settings,
                    framed,
                    next_seq: 2,
                    pending: HashMap::new(),
                    submits: HashMap::new(),
                    last_heard: Instant::now(),
                    reference: &mut reference,
                };
                let result = session.serve(&mut rx, &inbound, &shutdown).await;
                session.fail_all("connection to the SMS centre lost");
                match result {
                    Ok(()) => return, // shut down
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        metrics::gauge!("onekey_smpp_bound").set(0.0);
        metrics::counter!("onekey_smpp_connection_errors_total").increment(1);
        let delay = backoff.next_delay();
        tracing::warn!(smsc = %settings.addr, error = %error, retry_in = ?delay, "SMPP session down");
        // Submits that arrive while the link is down are answered at once: the relay retries them.
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(until) => break,
                s = rx.recv() => match s {
                    Some(s) => { let _ = s.done.send(Err(SubmitError::Transient("SMS centre unreachable".into()))); }
                    None => return,
                },
            }
        }
    }
}

async fn connect(settings: &SmppSettings) -> Result<Framed<TcpStream, PduCodec>, String> {
    let timeout = Duration::from_secs(settings.response_timeout_s.max(1));
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&settings.addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, PduCodec);
    let bind = Pdu {
        command: pdu::BIND_TRANSCEIVER,
        status: 0,
        sequence: 1,
        body: Body::Bind(Bind {
            system_id: settings.system_id.clone(),
            password: settings.password.clone(),
            system_type: settings.system_type.clone(),
            ..Default::default()
        }),
    };
    framed.send(bind).await.map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(timeout, framed.next())
        .await
        .map_err(|_| "no bind response".to_string())?
        .ok_or("closed during bind")?
        .map_err(|e| e.to_string())?;
    if resp.command != pdu::BIND_TRANSCEIVER_RESP || resp.status != 0 {
        return Err(format!(
            "bind refused (command {:#010x}, status {:#010x})",
            resp.command, resp.status
        ));
    }
    Ok(framed)
}

/// A submit split into segments, waiting for each segment's response.
struct InFlight {
    done: Option<oneshot::Sender<Result<String, SubmitError>>>,
    left: usize,
    last_id: Option<String>,
}

struct Session<'a> {
    settings: &'a SmppSettings,
    framed: Framed<TcpStream, PduCodec>,
    next_seq: u32,
    /// Sequence number → (submit key, sent at, is the last segment).
    pending: HashMap<u32, (u64, Instant, bool)>,
    submits: HashMap<u64, InFlight>,
    last_heard: Instant,
    reference: &'a mut u8,
}

impl Session<'_> {
    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = if s >= 0x7fff_ffff { 2 } else { s + 1 };
        s
    }

    fn fail_all(&mut self, why: &str) {
        for (_, mut s) in self.submits.drain() {
            if let Some(done) = s.done.take() {
                let _ = done.send(Err(SubmitError::Transient(why.into())));
            }
        }
        self.pending.clear();
    }

    async fn serve(
        &mut self,
        rx: &mut mpsc::Receiver<Submit>,
        inbound: &mpsc::Sender<Inbound>,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let timeout = Duration::from_secs(self.settings.response_timeout_s.max(1));
        let mut enquire =
            tokio::time::interval(Duration::from_secs(self.settings.enquire_link_s.max(1)));
        enquire.tick().await;
        let mut check = tokio::time::interval(Duration::from_millis(500));
        let mut next_key: u64 = 0;
        loop {
            let room = self.pending.len() < self.settings.window.max(1);
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let seq = self.seq();
                    let _ = self.framed.send(Pdu::empty(pdu::UNBIND, 0, seq)).await;
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.framed.next()).await;
                    return Ok(());
                }
                submit = rx.recv(), if room => {
                    let Some(submit) = submit else { return Ok(()) };
                    next_key += 1;
                    self.submit(next_key, submit).await?;
                }
                frame = self.framed.next() => match frame {
                    Some(Ok(pdu)) => {
                        self.last_heard = Instant::now();
                        self.received(pdu, inbound).await?;
                    }
                    Some(Err(e)) => return Err(format!("bad PDU from the SMS centre: {e}")),
                    None => return Err("the SMS centre closed the connection".into()),
                },
                _ = enquire.tick() => {
                    let seq = self.seq();
                    self.framed
                        .send(Pdu::empty(pdu::ENQUIRE_LINK, 0, seq))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                _ = check.tick() => {
                    let silent = self.last_heard.elapsed();
                    if silent > timeout + Duration::from_secs(self.settings.enquire_link_s.max(1)) {
                        return Err(format!("no word from the SMS centre for {silent:?}"));
                    }
                    if self.pending.values().any(|(_, at, _)| at.elapsed() > timeout) {
                        return Err("a submit got no response in time".into());
                    }
                }
            }
        }
    }

    async fn submit(&mut self, key: u64, submit: Submit) -> Result<(), String> {
        *self.reference = self.reference.wrapping_add(1);
        let segments = pdu::ucs2_segments(&submit.text, *self.reference);
        let n = segments.len();
        self.submits.insert(
            key,
            InFlight {
                done: Some(submit.done),
                left: n,
                last_id: None,
            },
        );
        for (i, short_message) in segments.into_iter().enumerate() {
            let last = i + 1 == n;
            let seq = self.seq();
            let sm = Sm {
                source_ton: self.settings.source_ton,
                source_npi: self.settings.source_npi,
                source_addr: self.settings.source_addr.clone(),
                dest_ton: self.settings.dest_ton,
                dest_npi: self.settings.dest_npi,
                dest_addr: submit.to.clone(),
                esm_class: if n > 1 { pdu::ESM_UDHI } else { 0 },
                registered_delivery: u8::from(last),
                data_coding: pdu::DC_UCS2,
                short_message,
                ..Default::default()
            };
            self.pending.insert(seq, (key, Instant::now(), last));
            self.framed
                .feed(Pdu {
                    command: pdu::SUBMIT_SM,
                    status: 0,
                    sequence: seq,
                    body: Body::Sm(sm),
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        self.framed.flush().await.map_err(|e| e.to_string())?;
        metrics::counter!("onekey_smpp_segments_total").increment(n as u64);
        Ok(())
    }

    async fn received(&mut self, pdu: Pdu, inbound: &mpsc::Sender<Inbound>) -> Result<(), String> {
        match pdu.command {
            pdu::SUBMIT_SM_RESP | pdu::GENERIC_NACK => {
                let Some((key, _, last)) = self.pending.remove(&pdu.sequence) else {
                    return Ok(());
                };
                let Some(s) = self.submits.get_mut(&key) else {
                    return Ok(());
                };
                if pdu.status != 0 {
                    if let Some(done) = s.done.take() {
                        let _ = done.send(Err(SubmitError::from_status(pdu.status)));
                    }
                } else if last && let Body::Id(id) = pdu.body {
                    s.last_id = Some(id);
                }
                s.left = s.left.saturating_sub(1);
                if s.left == 0
                    && let Some(mut s) = self.submits.remove(&key)
                    && let Some(done) = s.done.take()
                {
                    let id = s.last_id.take().unwrap_or_default();
                    let _ = done.send(Ok(id));
                }
            }
            pdu::DELIVER_SM => {
                let resp = Pdu {
                    command: pdu::DELIVER_SM_RESP,
                    status: 0,
                    sequence: pdu.sequence,
                    body: Body::Id(String::new()),
                };
                if let Body::Sm(sm) = pdu.body {
                    let event = if sm.esm_class & 0x3c == pdu::ESM_DELIVERY_RECEIPT {
                        pdu::delivery_receipt(&sm).map(|(id, delivered, state)| Inbound::Report {
                            message_id: id,
                            delivered,
                            state,
                        })
                    } else {
                        Some(Inbound::Reply {
                            from: sm.source_addr.clone(),
                            text: pdu::decode_text(&sm),
                        })
                    };
                    // Answer only once the event is queued, so the SMSC redelivers it otherwise.
                    if let Some(event) = event
                        && inbound.send(event).await.is_err()
                    {
                        return Err("shutting down".into());
                    }
                }
                self.framed.send(resp).await.map_err(|e| e.to_string())?;
            }
            pdu::ENQUIRE_LINK => {
                self.framed
                    .send(Pdu::empty(pdu::ENQUIRE_LINK_RESP, 0, pdu.sequence))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            pdu::UNBIND => {
                let _ = self
                    .framed
                    .send(Pdu::empty(pdu::UNBIND_RESP, 0, pdu.sequence))
                    .await;
                return Err("the SMS centre unbound".into());
            }
            pdu::ENQUIRE_LINK_RESP | pdu::DELIVER_SM_RESP | pdu::UNBIND_RESP => {}
            other if other & 0x8000_0000 == 0 => {
                self.framed
                    .send(Pdu::empty(
                        pdu::GENERIC_NACK,
                        pdu::STATUS_INVALID_COMMAND,
                        pdu.sequence,
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }
}
