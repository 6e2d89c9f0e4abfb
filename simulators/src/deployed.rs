//! Devices of the protocols already deployed in homes (GT06, 3G watch, H02, SIA DC-09), seen from the
//! device's side: frame builders written from the protocol reference, independent of the server's
//! codecs, and a raw TCP client that sends frames and reads the server's replies.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const X25: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC);
const ARC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_ARC);

/// A raw TCP device.
pub struct RawDevice {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawDevice {
    /// Connects.
    pub async fn connect(addr: &str) -> std::io::Result<RawDevice> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawDevice {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads until `end` has been received (inclusive) or `within` passes; `None` on timeout or close.
    pub async fn read_until(&mut self, end: &[u8], within: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.windows(end.len()).position(|w| w == end) {
                return Some(self.buf.drain(..pos + end.len()).collect());
            }
            let mut chunk = [0u8; 512];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True when the server closes the connection within `within`.
    pub async fn is_closed_by_server(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 256];
        loop {
            match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// GT06 login frame for a 15-digit IMEI: `78 78 0D 01 <IMEI BCD> <serial> <CRC-16/X-25> 0D 0A`.
pub fn gt06_login(imei: &str, serial: u16) -> Vec<u8> {
    let digits = format!("{imei:0>16}");
    let mut body = vec![0x0D, 0x01];
    for pair in digits.as_bytes().chunks(2) {
        body.push(((pair[0] - b'0') << 4) | (pair[1] - b'0'));
    }
    body.extend_from_slice(&serial.to_be_bytes());
    gt06_wrap(&body)
}

/// The short-form GT06 ACK the server must send for `proto` and `serial`.
pub fn gt06_ack(proto: u8, serial: u16) -> Vec<u8> {
    let mut body = vec![0x05, proto];
    body.extend_from_slice(&serial.to_be_bytes());
    gt06_wrap(&body)
}

fn gt06_wrap(len_to_serial: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x78, 0x78];
    frame.extend_from_slice(len_to_serial);
    frame.extend_from_slice(&X25.checksum(len_to_serial).to_be_bytes());
    frame.extend_from_slice(&[0x0D, 0x0A]);
    frame
}

/// gt06.tsv row 26: a real GT06 `0x16` alarm frame with `alarm=sos` (serial 0x035F).
const GT06_SOS_TEMPLATE: [u8; 43] = [
    0x78, 0x78, 0x26, 0x16, 0x17, 0x09, 0x13, 0x0f, 0x3a, 0x2d, 0xcc, 0x02, 0xc5, 0x5f, 0x2a, 0x08,
    0x9f, 0x9a, 0xf9, 0x00, 0x5c, 0x21, 0x09, 0x01, 0x36, 0x04, 0x81, 0xfe, 0x06, 0x6d, 0x9b, 0x03,
    0x41, 0x3e, 0x42, 0x01, 0x02, 0x03, 0x5f, 0x92, 0xfe, 0x0d, 0x0a,
];

/// A GT06 `0x16` SOS alarm (the real frame of gt06.tsv row 26) with its serial replaced and the
/// CRC recomputed, so that every call with a new serial is a new alarm.
pub fn gt06_sos(serial: u16) -> Vec<u8> {
    let t = &GT06_SOS_TEMPLATE;
    let mut len_to_serial = t[2..t.len() - 6].to_vec();
    len_to_serial.extend_from_slice(&serial.to_be_bytes());
    gt06_wrap(&len_to_serial)
}

/// A GT06 `0x16` alarm (the layout of [`gt06_sos`]) with its own time `[yy, mm, dd, hh, mi, ss]`
/// (UTC), battery `voltage` byte (7–100: per cent; 0–6: a level), terminal information and alarm
/// byte (`0x01` SOS, `0x02` power cut, `0x0E` low battery, `0x23` fall, `0x0C` tampering…).
pub fn gt06_alarm(alarm: u8, voltage: u8, terminal: u8, time: [u8; 6], serial: u16) -> Vec<u8> {
    let t = &GT06_SOS_TEMPLATE;
    let mut len_to_serial = t[2..t.len() - 6].to_vec();
    // After LEN and PROTO: the date (6 bytes); the status block is the content's last 5 bytes.
    len_to_serial[2..8].copy_from_slice(&time);
    let n = len_to_serial.len();
    len_to_serial[n - 5] = terminal;
    len_to_serial[n - 4] = voltage;
    len_to_serial[n - 2] = alarm;
    len_to_serial.extend_from_slice(&serial.to_be_bytes());
    gt06_wrap(&len_to_serial)
}

/// A GT06 `0x13` status (heartbeat): terminal information, battery `voltage` byte (as in
/// [`gt06_alarm`]), GSM strength 0–4, no alarm.
pub fn gt06_status(terminal: u8, voltage: u8, gsm: u8, serial: u16) -> Vec<u8> {
    let mut body = vec![0x0A, 0x13, terminal, voltage, gsm, 0x00, 0x02];
    body.extend_from_slice(&serial.to_be_bytes());
    gt06_wrap(&body)
}

/// A 3G-watch `AL_LTE` SOS alarm (watch.tsv row 1's content) at the given time of day `HHMMSS`.
pub fn watch_sos(id: &str, hhmmss: &str) -> Vec<u8> {
    watch_frame(
        "3G",
        id,
        &format!("AL_LTE,281126,{hhmmss},V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0"),
    )
}

/// The protocol number and serial of a short-form GT06 frame.
pub fn gt06_proto_and_serial(frame: &[u8]) -> Option<(u8, u16)> {
    let n = frame.len();
    (n >= 10).then(|| (frame[3], u16::from_be_bytes([frame[n - 6], frame[n - 5]])))
}

/// A watch frame `[MM*ID*LLLL*CONTENT]` with the lowercase hex length of the content.
pub fn watch_frame(maker: &str, id: &str, content: &str) -> Vec<u8> {
    format!("[{maker}*{id}*{:04x}*{content}]", content.len()).into_bytes()
}

/// An H02 `V1` position frame with a status word (active-low alarm bits).
pub fn h02_v1(id: &str, status: u32, hhmmss: &str, ddmmyy: &str) -> Vec<u8> {
    format!("*HQ,{id},V1,{hhmmss},A,2706.7800,N,11458.8000,E,0.00,0,{ddmmyy},{status:08X}#")
        .into_bytes()
}

/// H02 status with the SOS bit (bit 1, active low) asserted.
pub const H02_STATUS_SOS: u32 = !(1 << 1);

/// A DC-09 message `<LF>CRC 0LLL "ID"SEQ L0#acct[data]_timestamp <CR>`, unencrypted.
pub fn dc09(id: &str, seq: u16, account: &str, data: &str, timestamp: &str) -> Vec<u8> {
    let body = format!("\"{id}\"{seq:04}L0#{account}[{data}]{timestamp}");
    let mut frame =
        format!("\n{:04X}{:04X}", ARC.checksum(body.as_bytes()), body.len()).into_bytes();
    frame.extend_from_slice(body.as_bytes());
    frame.push(b'\r');
    frame
}

/// A DC-09 message encrypted with `key` (16, 24 or 32 bytes; AES-CBC, zero IV, DC-09 §6.2): the
/// token gets a `*` and everything after `[` is the hex ciphertext of `<pad>|data]timestamp`.
pub fn dc09_encrypted(
    id: &str,
    seq: u16,
    account: &str,
    data: &str,
    timestamp: &str,
    key: &[u8],
) -> Vec<u8> {
    dc09_encrypted_with(id, seq, account, data, timestamp, key, rand::random)
        .expect("a DC-09 key is 16, 24 or 32 bytes")
}

/// [`dc09_encrypted`] with the pad's letters drawn from `random` (a seeded generator makes the
/// bytes reproducible); `None` when `key` is not 16, 24 or 32 bytes long.
pub fn dc09_encrypted_with(
    id: &str,
    seq: u16,
    account: &str,
    data: &str,
    timestamp: &str,
    key: &[u8],
    mut random: impl FnMut() -> u8,
) -> Option<Vec<u8>> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
    let tail = format!("|{data}]{timestamp}");
    let pad_len = (16 - tail.len() % 16) % 16;
    let pad: String = (0..pad_len)
        .map(|_| char::from(b'A' + random() % 26))
        .collect();
    let plain = format!("{pad}{tail}").into_bytes();
    let iv = [0u8; 16];
    let ciphertext = match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .map(|c| c.encrypt_padded_vec_mut::<NoPadding>(&plain)),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .map(|c| c.encrypt_padded_vec_mut::<NoPadding>(&plain)),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .map(|c| c.encrypt_padded_vec_mut::<NoPadding>(&plain)),
    }
    .ok()?;
    let body = format!(
        "\"*{id}\"{seq:04}L0#{account}[{}",
        hex::encode_upper(ciphertext)
    );
    let mut frame =
        format!("\n{:04X}{:04X}", ARC.checksum(body.as_bytes()), body.len()).into_bytes();
    frame.extend_from_slice(body.as_bytes());
    frame.push(b'\r');
    Some(frame)
}

/// The DC-09 timestamp `_HH:MM:SS,MM-DD-YYYY` (UTC) for a Unix time.
pub fn dc09_timestamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "_{:02}:{:02}:{:02},{m:02}-{d:02}-{y:04}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The unencrypted DC-09 ACK the receiver must send for `seq` and `account`, unframed:
/// `"ACK"SEQL0#acct[]`.
pub fn dc09_ack_body(seq: u16, account: &str) -> String {
    format!("\"ACK\"{seq:04}L0#{account}[]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_match_the_reference_examples() {
        // REFERENCE.md 1.2: login serial 0x0009 → 78780501000955940d0a; 0x16 serial 2 → 787805160002e2d70d0a.
        assert_eq!(hex::encode(gt06_ack(0x01, 9)), "78780501000955940d0a");
        assert_eq!(hex::encode(gt06_ack(0x16, 2)), "787805160002e2d70d0a");
        // gt06.tsv row 2 is a real login of IMEI 0864717003283581, serial 9.
        assert_eq!(
            hex::encode(gt06_login("864717003283581", 9)),
            "78780d01086471700328358100093f040d0a"
        );
        assert_eq!(
            String::from_utf8(watch_frame("3G", "4700186508", "LK")).unwrap(),
            "[3G*4700186508*0002*LK]"
        );
        assert_eq!(ARC.checksum(b"123456789"), 0xBB3D);
        // The template with its own serial is the vector byte for byte (its CRC is right).
        assert_eq!(gt06_sos(0x035F), GT06_SOS_TEMPLATE);
        assert_eq!(gt06_proto_and_serial(&gt06_sos(7)), Some((0x16, 7)));
        // The template's own fields give the template back.
        let t = &GT06_SOS_TEMPLATE;
        let time = [t[4], t[5], t[6], t[7], t[8], t[9]];
        assert_eq!(gt06_alarm(0x01, t[33], t[32], time, 0x035F), t.to_vec());
        assert_eq!(
            gt06_proto_and_serial(&gt06_status(0x44, 80, 4, 9)),
            Some((0x13, 9))
        );
        assert_eq!(
            String::from_utf8(watch_sos("6907919734", "214118")).unwrap(),
            "[3G*6907919734*003e*AL_LTE,281126,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]"
        );
        assert_eq!(dc09_timestamp(0), "_00:00:00,01-01-1970");
        assert_eq!(dc09_timestamp(1_795_870_385), "_12:53:05,11-28-2026");
    }
}
