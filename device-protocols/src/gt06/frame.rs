//! Splitting one GT06 frame into its fields, the CRC-16/X-25 check, and building packets.

use crc::{CRC_16_IBM_SDLC, Crc};

use super::{CrcStatus, ParseError};

/// CRC-16/X-25 (poly 0x1021 reflected, init and xorout 0xFFFF), over LEN…SERIAL.
pub(crate) const X25: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// `0D 0A`, the trailer of every frame.
pub(crate) const TRAILER: [u8; 2] = [0x0D, 0x0A];

/// The fields of one frame.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame<'a> {
    /// `79 79` (two-byte LEN) rather than `78 78`.
    pub extended: bool,
    /// The LEN field as sent (for Wi-Fi packets: an access-point count).
    pub len_field: usize,
    /// The protocol number.
    pub proto: u8,
    /// Everything between PROTO and SERIAL (or up to the trailer when LEN does not describe the frame).
    pub content: &'a [u8],
    /// The information serial, when the frame has one where LEN says.
    pub serial: Option<u16>,
    /// Whether the CRC matched.
    pub crc: CrcStatus,
    /// LEN does not describe the frame (Wi-Fi AP count, devices that miscount): fields were taken up
    /// to the trailer and the frame has no serial or CRC we can find.
    pub loose: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Splits a frame as cut by [`super::Gt06Codec`] (or any byte string) into its fields.
///
/// LEN is trusted when the body it declares fits in the frame and leaves at most the 2-byte trailer
/// after it (one real device drops the final `0A`). Otherwise the frame is read loosely up to its
/// trailer, without serial and CRC.
pub(crate) fn split(frame: &[u8]) -> Result<RawFrame<'_>, ParseError> {
    let extended = match frame.get(..2) {
        Some([0x78, 0x78]) => false,
        Some([0x79, 0x79]) => true,
        Some(_) => return Err(ParseError::BadStart),
        None => return Err(ParseError::TooShort),
    };
    let header = if extended { 4 } else { 3 };
    let len_field = if extended {
        usize::from(be16(frame, 2).ok_or(ParseError::TooShort)?)
    } else {
        usize::from(*frame.get(2).ok_or(ParseError::TooShort)?)
    };
    let declared_end = header + len_field;
    if len_field >= 5 && declared_end <= frame.len() && frame.len() - declared_end <= 2 {
        let body = frame
            .get(header..declared_end)
            .ok_or(ParseError::TooShort)?;
        let proto = *body.first().ok_or(ParseError::TooShort)?;
        let content = body.get(1..len_field - 4).ok_or(ParseError::TooShort)?;
        let serial = be16(body, len_field - 4);
        let received = be16(body, len_field - 2).ok_or(ParseError::TooShort)?;
        let computed = X25.checksum(frame.get(2..declared_end - 2).ok_or(ParseError::TooShort)?);
        let crc = if received == computed {
            CrcStatus::Valid
        } else {
            CrcStatus::Mismatch { received, computed }
        };
        return Ok(RawFrame {
            extended,
            len_field,
            proto,
            content,
            serial,
            crc,
            loose: false,
        });
    }
    let end = if frame.ends_with(&TRAILER) {
        frame.len() - 2
    } else {
        frame.len()
    };
    let body = frame.get(header..end).ok_or(ParseError::TooShort)?;
    let (&proto, content) = body.split_first().ok_or(ParseError::TooShort)?;
    Ok(RawFrame {
        extended,
        len_field,
        proto,
        content,
        serial: None,
        crc: CrcStatus::Absent,
        loose: true,
    })
}

/// True when `frame` (from the start marker through `0D 0A`) carries a CRC that matches, whatever
/// its LEN says. Used by the framer to accept a frame whose LEN is wrong.
pub(crate) fn crc_consistent(frame: &[u8]) -> bool {
    let n = frame.len();
    if n < 10 {
        return false;
    }
    match (frame.get(2..n - 4), be16(frame, n - 4)) {
        (Some(covered), Some(received)) => X25.checksum(covered) == received,
        _ => false,
    }
}

/// Builds a packet: header, LEN (= 5 + content), PROTO, content, SERIAL, CRC, `0D 0A`.
/// `None` when the content does not fit the LEN field.
pub(crate) fn packet(extended: bool, proto: u8, content: &[u8], serial: u16) -> Option<Vec<u8>> {
    let len = content.len().checked_add(5)?;
    let mut out = Vec::with_capacity(len + 6);
    if extended {
        out.extend_from_slice(&[0x79, 0x79]);
        out.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    } else {
        out.extend_from_slice(&[0x78, 0x78, u8::try_from(len).ok()?]);
    }
    out.push(proto);
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = X25.checksum(out.get(2..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&TRAILER);
    Some(out)
}

/// The short-form ACK `78 78 05 PROTO SERIAL CRC 0D 0A`.
pub(crate) fn ack(proto: u8, serial: u16) -> Vec<u8> {
    packet(false, proto, &[], serial).unwrap_or_default()
}

/// The extended-form ACK `79 79 00 05 PROTO SERIAL CRC 0D 0A`.
pub(crate) fn extended_ack(proto: u8, serial: u16) -> Vec<u8> {
    packet(true, proto, &[], serial).unwrap_or_default()
}
