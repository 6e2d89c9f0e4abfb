//! SMPP 3.4 PDUs, as far as an ESME that sends text and takes delivery receipts and replies (and
//! an SMS centre that serves one) needs them: `bind_transceiver`, `submit_sm`, `deliver_sm`,
//! `enquire_link`, `unbind`, `generic_nack` and their responses; optional parameters (TLVs) are kept as raw `(tag, value)` pairs. A
//! [`tokio_util`] codec frames them by their 4-byte length, with a maximum so a hostile SMSC
//! cannot make us buffer without end. Decoding never panics: a malformed PDU is an error.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// `generic_nack`.
pub const GENERIC_NACK: u32 = 0x8000_0000;
/// `bind_transceiver`.
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
/// `bind_transceiver_resp`.
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
/// `submit_sm`.
pub const SUBMIT_SM: u32 = 0x0000_0004;
/// `submit_sm_resp`.
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
/// `deliver_sm`.
pub const DELIVER_SM: u32 = 0x0000_0005;
/// `deliver_sm_resp`.
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
/// `unbind`.
pub const UNBIND: u32 = 0x0000_0006;
/// `unbind_resp`.
pub const UNBIND_RESP: u32 = 0x8000_0006;
/// `enquire_link`.
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
/// `enquire_link_resp`.
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;

/// `ESME_RINVCMDID`: the command is not supported.
pub const STATUS_INVALID_COMMAND: u32 = 0x0000_0003;

/// TLV `receipted_message_id` (C-string).
pub const TLV_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
/// TLV `message_state` (one octet).
pub const TLV_MESSAGE_STATE: u16 = 0x0427;
/// TLV `message_payload` (a long message instead of `short_message`).
pub const TLV_MESSAGE_PAYLOAD: u16 = 0x0424;

/// `data_coding` for UCS-2 (UTF-16 big-endian), which Chinese text needs.
pub const DC_UCS2: u8 = 0x08;
/// `esm_class` bit: the message starts with a user data header (concatenation).
pub const ESM_UDHI: u8 = 0x40;
/// `esm_class` bits 2–5 equal to this: an SMSC delivery receipt.
pub const ESM_DELIVERY_RECEIPT: u8 = 0x04;

/// Largest PDU accepted.
pub const MAX_PDU: usize = 64 * 1024;

/// One PDU: the header and the body after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// `command_id`.
    pub command: u32,
    /// `command_status` (0 = OK).
    pub status: u32,
    /// `sequence_number`.
    pub sequence: u32,
    /// The body.
    pub body: Body,
}

/// A PDU's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Nothing after the header (`enquire_link`, `unbind`, `generic_nack`, their responses).
    Empty,
    /// `bind_transceiver`.
    Bind(Bind),
    /// A response carrying an id: `bind_*_resp` (system id), `submit_sm_resp` (message id),
    /// `deliver_sm_resp`.
    Id(String),
    /// `submit_sm` or `deliver_sm`.
    Sm(Sm),
}

/// `bind_transceiver` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    /// System id (≤ 15 characters).
    pub system_id: String,
    /// Password (≤ 8 characters).
    pub password: String,
    /// System type (≤ 12 characters).
    pub system_type: String,
    /// Address TON for the bind.
    pub addr_ton: u8,
    /// Address NPI for the bind.
    pub addr_npi: u8,
    /// Address range (≤ 40 characters).
    pub address_range: String,
}

/// `submit_sm` / `deliver_sm` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sm {
    /// Service type.
    pub service_type: String,
    /// Source TON.
    pub source_ton: u8,
    /// Source NPI.
    pub source_npi: u8,
    /// Source address.
    pub source_addr: String,
    /// Destination TON.
    pub dest_ton: u8,
    /// Destination NPI.
    pub dest_npi: u8,
    /// Destination address.
    pub dest_addr: String,
    /// `esm_class`.
    pub esm_class: u8,
    /// `protocol_id`.
    pub protocol_id: u8,
    /// `priority_flag`.
    pub priority: u8,
    /// `registered_delivery` (1 = a delivery receipt is wanted).
    pub registered_delivery: u8,
    /// `data_coding`.
    pub data_coding: u8,
    /// `short_message` (at most 254 octets).
    pub short_message: Vec<u8>,
    /// Optional parameters.
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

impl Sm {
    /// The value of TLV `tag`, if present.
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }
}

/// Why a PDU could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The length field is below the header's 16 octets or above [`MAX_PDU`].
    #[error("PDU length {0} out of range")]
    Length(usize),
    /// A field ran past the end of the PDU.
    #[error("PDU truncated")]
    Truncated,
    /// A string field is not terminated or longer than allowed.
    #[error("bad string field")]
    String,
    /// An I/O error of the transport.
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for PduError {
    fn from(e: std::io::Error) -> Self {
        PduError::Io(e.to_string())
    }
}

fn put_cstr(out: &mut BytesMut, s: &str, max: usize) {
    let bytes = s.as_bytes();
    out.put_slice(&bytes[..bytes.len().min(max)]);
    out.put_u8(0);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, PduError> {
        let (&b, rest) = self.0.split_first().ok_or(PduError::Truncated)?;
        self.0 = rest;
        Ok(b)
    }

    fn cstr(&mut self, max: usize) -> Result<String, PduError> {
        let end = self
            .0
            .iter()
            .take(max + 1)
            .position(|&b| b == 0)
            .ok_or(PduError::String)?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, PduError> {
        if self.0.len() < n {
            return Err(PduError::Truncated);
        }
        let (v, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(v.to_vec())
    }

    fn tlvs(&mut self) -> Result<Vec<(u16, Vec<u8>)>, PduError> {
        let mut out = Vec::new();
        while !self.0.is_empty() {
            let tag = u16::from_be_bytes([self.u8()?, self.u8()?]);
            let len = usize::from(u16::from_be_bytes([self.u8()?, self.u8()?]));
            out.push((tag, self.bytes(len)?));
        }
        Ok(out)
    }
}

impl Pdu {
    /// A request or response with an empty body.
    pub fn empty(command: u32, status: u32, sequence: u32) -> Pdu {
        Pdu {
            command,
            status,
            sequence,
            body: Body::Empty,
        }
    }

    /// Appends the PDU's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u32(0); // length, patched below
        out.put_u32(self.command);
        out.put_u32(self.status);
        out.put_u32(self.sequence);
        match &self.body {
            Body::Empty => {}
            Body::Id(id) => put_cstr(out, id, 64),
            Body::Bind(b) => {
                put_cstr(out, &b.system_id, 15);
                put_cstr(out, &b.password, 8);
                put_cstr(out, &b.system_type, 12);
                out.put_u8(0x34);
                out.put_u8(b.addr_ton);
                out.put_u8(b.addr_npi);
                put_cstr(out, &b.address_range, 40);
            }
            Body::Sm(sm) => {
                put_cstr(out, &sm.service_type, 5);
                out.put_u8(sm.source_ton);
                out.put_u8(sm.source_npi);
                put_cstr(out, &sm.source_addr, 20);
                out.put_u8(sm.dest_ton);
                out.put_u8(sm.dest_npi);
                put_cstr(out, &sm.dest_addr, 20);
                out.put_u8(sm.esm_class);
                out.put_u8(sm.protocol_id);
                out.put_u8(sm.priority);
                out.put_u8(0); // schedule_delivery_time: immediate
                out.put_u8(0); // validity_period: the SMSC's default
                out.put_u8(sm.registered_delivery);
                out.put_u8(0); // replace_if_present_flag
                out.put_u8(sm.data_coding);
                out.put_u8(0); // sm_default_msg_id
                let len = sm.short_message.len().min(254);
                out.put_u8(len as u8);
                out.put_slice(&sm.short_message[..len]);
                for (tag, value) in &sm.tlvs {
                    out.put_u16(*tag);
                    out.put_u16(value.len().min(usize::from(u16::MAX)) as u16);
                    out.put_slice(&value[..value.len().min(usize::from(u16::MAX))]);
                }
            }
        }
        let len = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Parses one whole PDU (`buf` is exactly its bytes).
    pub fn decode(buf: &[u8]) -> Result<Pdu, PduError> {
        if buf.len() < 16 {
            return Err(PduError::Truncated);
        }
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (command, status, sequence) = (word(4), word(8), word(12));
        let mut r = Reader(&buf[16..]);
        let body = match command {
            BIND_TRANSCEIVER => Body::Bind(Bind {
                system_id: r.cstr(15)?,
                password: r.cstr(8)?,
                system_type: r.cstr(12)?,
                addr_ton: {
                    r.u8()?; // interface_version
                    r.u8()?
                },
                addr_npi: r.u8()?,
                address_range: r.cstr(40)?,
            }),
            SUBMIT_SM | DELIVER_SM => {
                let mut sm = Sm {
                    service_type: r.cstr(5)?,
                    source_ton: r.u8()?,
                    source_npi: r.u8()?,
                    source_addr: r.cstr(64)?,
                    dest_ton: r.u8()?,
                    dest_npi: r.u8()?,
                    dest_addr: r.cstr(64)?,
                    esm_class: r.u8()?,
                    protocol_id: r.u8()?,
                    priority: r.u8()?,
                    ..Default::default()
                };
                r.cstr(16)?; // schedule_delivery_time
                r.cstr(16)?; // validity_period
                sm.registered_delivery = r.u8()?;
                r.u8()?; // replace_if_present_flag
                sm.data_coding = r.u8()?;
                r.u8()?; // sm_default_msg_id
                let len = usize::from(r.u8()?);
                sm.short_message = r.bytes(len)?;
                sm.tlvs = r.tlvs()?;
                Body::Sm(sm)
            }
            SUBMIT_SM_RESP
            | DELIVER_SM_RESP
            | BIND_TRANSCEIVER_RESP
            | 0x8000_0001
            | 0x8000_0002 => {
                if r.0.is_empty() {
                    Body::Id(String::new())
                } else {
                    Body::Id(r.cstr(64)?)
                }
            }
            _ => Body::Empty,
        };
        Ok(Pdu {
            command,
            status,
            sequence,
            body,
        })
    }
}

/// Frames PDUs on a byte stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct PduCodec;

impl Decoder for PduCodec {
    type Item = Pdu;
    type Error = PduError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Pdu>, PduError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if !(16..=MAX_PDU).contains(&len) {
            return Err(PduError::Length(len));
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(len);
        Pdu::decode(&frame).map(Some)
    }
}

impl Encoder<Pdu> for PduCodec {
    type Error = PduError;

    fn encode(&mut self, pdu: Pdu, dst: &mut BytesMut) -> Result<(), PduError> {
        pdu.encode(dst);
        Ok(())
    }
}

/// Text as UCS-2 segments of at most 140 octets each: one message of up to 70 UTF-16 units, or
/// several of up to 67 with a concatenation header (`05 00 03 ref total seq`). A surrogate pair is
/// never split.
pub fn ucs2_segments(text: &str, reference: u8) -> Vec<Vec<u8>> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let to_bytes = |u: &[u16]| u.iter().flat_map(|c| c.to_be_bytes()).collect::<Vec<u8>>();
    if units.len() <= 70 {
        return vec![to_bytes(&units)];
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut end = (i + 67).min(units.len());
        if end < units.len() && (0xD800..0xDC00).contains(&units[end - 1]) {
            end -= 1; // keep the surrogate pair together
        }
        chunks.push(&units[i..end]);
        i = end;
    }
    let total = chunks.len().min(255) as u8;
    chunks
        .iter()
        .take(255)
        .enumerate()
        .map(|(n, c)| {
            let mut seg = vec![0x05, 0x00, 0x03, reference, total, n as u8 + 1];
            seg.extend(to_bytes(c));
            seg
        })
        .collect()
}

/// The text of a received message: UCS-2 or (for the default alphabet and Latin-1) the octets
/// as Latin-1, with a user data header removed when `esm_class` says there is one.
pub fn decode_text(sm: &Sm) -> String {
    let mut body: &[u8] = if sm.short_message.is_empty() {
        sm.tlv(TLV_MESSAGE_PAYLOAD).unwrap_or_default()
    } else {
        &sm.short_message
    };
    if sm.esm_class & ESM_UDHI != 0
        && let Some((&udhl, rest)) = body.split_first()
    {
        body = rest.get(usize::from(udhl)..).unwrap_or_default();
    }
    if sm.data_coding == DC_UCS2 {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        body.iter().map(|&b| char::from(b)).collect()
    }
}

/// A delivery receipt's message id and whether the message reached the handset: from the TLVs
/// `receipted_message_id` and `message_state` when present, else from the receipt text
/// (`id:… stat:DELIVRD …`, SMPP 3.4 appendix B).
pub fn delivery_receipt(sm: &Sm) -> Option<(String, bool, String)> {
    let text = decode_text(sm);
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let id = sm
        .tlv(TLV_RECEIPTED_MESSAGE_ID)
        .map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        })
        .or_else(|| field("id:"))?;
    let stat = match sm.tlv(TLV_MESSAGE_STATE).and_then(|v| v.first()) {
        Some(2) => "DELIVRD".to_string(),
        Some(3) => "EXPIRED".into(),
        Some(4) => "DELETED".into(),
        Some(5) => "UNDELIV".into(),
        Some(8) => "REJECTD".into(),
        _ => field("stat:").unwrap_or_else(|| "UNKNOWN".into()),
    };
    Some((id, stat == "DELIVRD", stat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submit_round_trips_through_the_codec() {
        let pdu = Pdu {
            command: SUBMIT_SM,
            status: 0,
            sequence: 7,
            body: Body::Sm(Sm {
                source_addr: "12349".into(),
                dest_addr: "13800000001".into(),
                registered_delivery: 1,
                data_coding: DC_UCS2,
                short_message: ucs2_segments("王奶奶跌倒", 1).remove(0),
                ..Default::default()
            }),
        };
        let mut buf = BytesMut::new();
        PduCodec.encode(pdu.clone(), &mut buf).expect("encode");
        let mut partial = buf.split_to(10);
        assert_eq!(PduCodec.decode(&mut partial).expect("partial"), None);
        partial.unsplit(buf);
        assert_eq!(
            PduCodec.decode(&mut partial).expect("whole"),
            Some(pdu.clone())
        );
        let Body::Sm(sm) = pdu.body else {
            unreachable!()
        };
        assert_eq!(decode_text(&sm), "王奶奶跌倒");
    }

    #[test]
    fn long_chinese_text_is_split_with_concatenation_headers() {
        let text: String = "一键通报警".repeat(30); // 150 characters
        let segs = ucs2_segments(&text, 9);
        assert_eq!(segs.len(), 3);
        for (i, s) in segs.iter().enumerate() {
            assert!(s.len() <= 140);
            assert_eq!(&s[..6], &[5, 0, 3, 9, 3, i as u8 + 1]);
        }
        let joined: String = segs
            .iter()
            .map(|s| {
                decode_text(&Sm {
                    esm_class: ESM_UDHI,
                    data_coding: DC_UCS2,
                    short_message: s.clone(),
                    ..Default::default()
                })
            })
            .collect();
        assert_eq!(joined, text);
        assert_eq!(ucs2_segments("短信", 1), vec![vec![0x77, 0xed, 0x4f, 0xe1]]);
    }

    #[test]
    fn receipts_are_read_from_tlvs_or_text() {
        let text = Sm {
            esm_class: ESM_DELIVERY_RECEIPT,
            short_message: b"id:abc123 sub:001 dlvrd:001 submit date:2612011200 done date:2612011201 stat:DELIVRD err:000 text:".to_vec(),
            ..Default::default()
        };
        assert_eq!(
            delivery_receipt(&text),
            Some(("abc123".into(), true, "DELIVRD".into()))
        );
        let tlv = Sm {
            esm_class: ESM_DELIVERY_RECEIPT,
            tlvs: vec![
                (TLV_RECEIPTED_MESSAGE_ID, b"m-9\0".to_vec()),
                (TLV_MESSAGE_STATE, vec![5]),
            ],
            ..Default::default()
        };
        assert_eq!(
            delivery_receipt(&tlv),
            Some(("m-9".into(), false, "UNDELIV".into()))
        );
    }

    #[test]
    fn hostile_pdus_are_errors_not_panics() {
        assert_eq!(
            PduCodec.decode(&mut BytesMut::from(&[0, 0, 0, 3][..])),
            Err(PduError::Length(3))
        );
        assert_eq!(
            PduCodec.decode(&mut BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..])),
            Err(PduError::Length(0xffff_ffff))
        );
        let mut header = vec![0, 0, 0, 20, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1];
        header.extend([b'a', b'b', b'c', b'd']); // deliver_sm cut short, unterminated string
        assert!(Pdu::decode(&header).is_err());
        for n in 0..64u8 {
            let mut junk = vec![0, 0, 0, 40, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, n];
            junk.extend((0..24u8).map(|i| i.wrapping_mul(n)));
            let _ = Pdu::decode(&junk);
        }
    }
}
