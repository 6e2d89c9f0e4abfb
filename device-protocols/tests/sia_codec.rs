//! Stream-splitting behaviour of the DC-09 codec.

mod ws_support;

use bytes::BytesMut;
use onekey_device_protocols::sia::{FrameError, SiaCodec};
use tokio_util::codec::{Decoder, Encoder};
use ws_support::{load, run_codec};

const ACK: &[u8] = b"\n246C0013\"ACK\"0005L0#12345[]\r";
const NULL: &[u8] = b"\n8A9B0010\"NULL\"0000R0L0[]\r";

/// Every vector with a CRC/length header, framed with `<LF>` … `<CR>` as a panel sends it.
fn framed_vectors() -> Vec<Vec<u8>> {
    load("sia_dc09.tsv")
        .into_iter()
        .filter(|r| {
            r.payload
                .iter()
                .position(|&b| b == b'"')
                .is_some_and(|q| q >= 8)
        })
        .map(|r| {
            let lf = if r.payload.starts_with(b"\n") {
                &b""[..]
            } else {
                b"\n"
            };
            [lf, &r.payload[..], b"\r"].concat()
        })
        .collect()
}

#[test]
fn every_vector_is_cut_exactly_in_any_chunking() {
    let frames = framed_vectors();
    assert_eq!(frames.len(), 18);
    let stream: Vec<u8> = frames
        .iter()
        .flat_map(|f| [&f[..], b"\0"].concat())
        .collect();
    for chunk in [1, 2, 5, 9, 64, usize::MAX] {
        let mut codec = SiaCodec::default();
        let out = run_codec(&mut codec, &stream, chunk);
        let expected: Vec<Result<Vec<u8>, String>> = frames.iter().cloned().map(Ok).collect();
        assert_eq!(out, expected, "chunk {chunk}");
        assert_eq!(codec.skipped_total(), 18, "one trailing NUL per frame");
    }
}

#[test]
fn partial_frames_wait_for_the_rest() {
    let mut codec = SiaCodec::default();
    for split in 1..ACK.len() {
        let mut buf = BytesMut::from(&ACK[..split]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "split {split}");
        buf.extend_from_slice(&ACK[split..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().as_deref(),
            Some(ACK),
            "split {split}"
        );
    }
}

#[test]
fn garbage_and_truncated_frames_are_skipped_and_counted() {
    let stream = [&b"hello\n\nworld"[..], &ACK[..12], NULL, b"\r\n", ACK].concat();
    let mut codec = SiaCodec::default();
    let out = run_codec(&mut codec, &stream, 4);
    assert_eq!(out, vec![Ok(NULL.to_vec()), Ok(ACK.to_vec())]);
    assert_eq!(codec.take_skipped(), 12 + 12 + 2);
    assert_eq!(codec.take_skipped(), 0);
}

#[test]
fn oversized_frame_is_an_error_and_decoding_goes_on() {
    let big = [
        &b"\n0000FFFF\"SIA-DCS\"0001L0#123["[..],
        &[b'x'; 200],
        b"]\r",
    ]
    .concat();
    let stream = [&big[..], NULL].concat();
    let mut codec = SiaCodec::new(64);
    let mut buf = BytesMut::from(&stream[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::TooLarge { limit: 64 })
    ));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(NULL));
}

#[test]
fn eof_discards_a_partial_frame() {
    let mut codec = SiaCodec::default();
    let mut buf = BytesMut::from(&ACK[..20]);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
    assert_eq!(codec.skipped_total(), 20);
}

#[test]
fn encoder_writes_raw_bytes() {
    let mut codec = SiaCodec::default();
    let mut dst = BytesMut::new();
    codec.encode(ACK.to_vec(), &mut dst).unwrap();
    codec.encode(NULL, &mut dst).unwrap();
    assert_eq!(&dst[..], [ACK, NULL].concat());
}
