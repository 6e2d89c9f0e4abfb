//! The simulated world's SMS centre: where the families' and volunteers' handsets live. It serves
//! OneKey's SMPP 3.4 transceiver bind (PDUs from `onekey-smpp`), takes `submit_sm` (joining
//! concatenated segments), answers with a message id, sends a delivery receipt when one is asked
//! for, and lets each handset answer: a family member replying `1` to an alarm text, a volunteer
//! replying to an SMS offer. Every message is kept for the report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use onekey_smpp::{self as pdu, Body, Pdu, PduCodec, Sm};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::clock::{Ms, SimClock};

/// One text that reached the centre.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsRecord {
    /// Its message id.
    pub id: String,
    /// The number it was for.
    pub to: String,
    /// Its text (segments joined).
    pub text: String,
    /// When it arrived (clock ms).
    pub at: Ms,
    /// What the handset answered, if anything.
    pub reply: Option<String>,
}

/// What a handset does with a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// It reaches the handset (a delivery receipt says so); false: switched off, out of range.
    pub delivered: bool,
    /// The owner answers `text` after `delay` clock-ms.
    pub reply: Option<(Ms, String)>,
}

/// The people behind the numbers.
pub trait Handsets: Send + Sync + 'static {
    /// What the owner of `to` does with `text`.
    fn receive(&self, to: &str, text: &str) -> Reaction;
}

/// The running SMS centre.
#[derive(Clone)]
pub struct Smsc {
    /// Where it listens.
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<SmsRecord>>>,
}

impl Smsc {
    /// Every text received so far.
    pub fn messages(&self) -> Vec<SmsRecord> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Starts the centre on `bind` (e.g. `127.0.0.1:0`).
pub async fn start(
    bind: &str,
    clock: SimClock,
    handsets: Arc<dyn Handsets>,
    shutdown: CancellationToken,
) -> std::io::Result<Smsc> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let messages = Arc::new(Mutex::new(Vec::new()));
    let smsc = Smsc {
        addr,
        messages: messages.clone(),
    };
    let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let session = Session {
                clock,
                handsets: handsets.clone(),
                messages: messages.clone(),
                next_id: next_id.clone(),
                parts: HashMap::new(),
            };
            tokio::spawn(session.run(stream, shutdown.clone()));
        }
    });
    Ok(smsc)
}

struct Session {
    clock: SimClock,
    handsets: Arc<dyn Handsets>,
    messages: Arc<Mutex<Vec<SmsRecord>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    /// (number, reference) → segments received.
    parts: HashMap<(String, u8), Vec<Option<String>>>,
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

impl Session {
    async fn run(mut self, stream: TcpStream, shutdown: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let (mut sink, mut source) = Framed::new(stream, PduCodec).split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Pdu>();
        let writer = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if sink.send(p).await.is_err() {
                    break;
                }
            }
        });
        let mut seq = 1u32;
        loop {
            let frame = tokio::select! {
                _ = shutdown.cancelled() => break,
                f = source.next() => f,
            };
            let Some(Ok(p)) = frame else { break };
            match p.command {
                pdu::BIND_TRANSCEIVER => {
                    let _ = tx.send(Pdu {
                        command: pdu::BIND_TRANSCEIVER_RESP,
                        status: 0,
                        sequence: p.sequence,
                        body: Body::Id("onekey-sim".into()),
                    });
                }
                pdu::ENQUIRE_LINK => {
                    let _ = tx.send(Pdu::empty(pdu::ENQUIRE_LINK_RESP, 0, p.sequence));
                }
                pdu::UNBIND => {
                    let _ = tx.send(Pdu::empty(pdu::UNBIND_RESP, 0, p.sequence));
                    break;
                }
                pdu::SUBMIT_SM => {
                    let id = format!(
                        "s{}",
                        self.next_id
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    );
                    let _ = tx.send(Pdu {
                        command: pdu::SUBMIT_SM_RESP,
                        status: 0,
                        sequence: p.sequence,
                        body: Body::Id(id.clone()),
                    });
                    if let Body::Sm(sm) = p.body
                        && let Some((to, text)) = self.joined(&sm)
                    {
                        self.deliver(&tx, &mut seq, id, sm, to, text);
                    }
                }
                _ => {}
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    /// The whole text once its last segment is in.
    fn joined(&mut self, sm: &Sm) -> Option<(String, String)> {
        let to = sm.dest_addr.clone();
        let udh = (sm.esm_class & pdu::ESM_UDHI != 0)
            .then(|| sm.short_message.get(..6))
            .flatten()
            .filter(|h| h[0] == 5 && h[1] == 0 && h[2] == 3);
        let text = pdu::decode_text(sm);
        let Some(h) = udh else {
            return Some((to, text));
        };
        let (reference, total, n) = (h[3], usize::from(h[4]), usize::from(h[5]));
        let slots = self
            .parts
            .entry((to.clone(), reference))
            .or_insert_with(|| vec![None; total.max(1)]);
        if let Some(slot) = n.checked_sub(1).and_then(|i| slots.get_mut(i)) {
            *slot = Some(text);
        }
        if slots.iter().all(Option::is_some) {
            let whole: String = slots.iter().flatten().cloned().collect();
            self.parts.remove(&(to.clone(), reference));
            return Some((to, whole));
        }
        None
    }

    fn deliver(
        &mut self,
        tx: &mpsc::UnboundedSender<Pdu>,
        seq: &mut u32,
        id: String,
        sm: Sm,
        to: String,
        text: String,
    ) {
        let reaction = self.handsets.receive(&to, &text);
        let record = SmsRecord {
            id: id.clone(),
            to: to.clone(),
            text,
            at: self.clock.now(),
            reply: reaction.reply.as_ref().map(|(_, r)| r.clone()),
        };
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        let mut next = || {
            *seq = seq.wrapping_add(1).max(2);
            *seq
        };
        if sm.registered_delivery & 1 == 1 {
            let state = if reaction.delivered { 2u8 } else { 5 };
            let stat = if reaction.delivered {
                "DELIVRD"
            } else {
                "UNDELIV"
            };
            let receipt = Pdu {
                command: pdu::DELIVER_SM,
                status: 0,
                sequence: next(),
                body: Body::Sm(Sm {
                    source_addr: to.clone(),
                    dest_addr: sm.source_addr.clone(),
                    esm_class: pdu::ESM_DELIVERY_RECEIPT,
                    short_message: format!("id:{id} sub:001 dlvrd:001 stat:{stat} err:000 text:")
                        .into_bytes(),
                    tlvs: vec![
                        (
                            pdu::TLV_RECEIPTED_MESSAGE_ID,
                            format!("{id}\0").into_bytes(),
                        ),
                        (pdu::TLV_MESSAGE_STATE, vec![state]),
                    ],
                    ..Default::default()
                }),
            };
            let _ = tx.send(receipt);
        }
        if let (true, Some((delay, reply))) = (reaction.delivered, reaction.reply) {
            let mo = Pdu {
                command: pdu::DELIVER_SM,
                status: 0,
                sequence: next(),
                body: Body::Sm(Sm {
                    source_addr: to,
                    dest_addr: sm.source_addr,
                    data_coding: pdu::DC_UCS2,
                    short_message: ucs2(&reply),
                    ..Default::default()
                }),
            };
            let tx = tx.clone();
            let clock = self.clock;
            tokio::spawn(async move {
                clock.sleep(delay).await;
                let _ = tx.send(mo);
            });
        }
    }
}
