//! Stream-splitting behaviour of the watch codec.

mod ws_support;

use bytes::BytesMut;
use onekey_device_protocols::watch::{FrameError, WatchCodec};
use tokio_util::codec::{Decoder, Encoder};
use ws_support::run_codec;

const LK: &[u8] = b"[3G*9705141740*0009*LK,0,0,53]";
const TKQ: &[u8] = b"[3G*9705141740*0003*TKQ]";

fn frames(out: Vec<Result<Vec<u8>, String>>) -> Vec<Vec<u8>> {
    out.into_iter().map(|r| r.expect("no error")).collect()
}

#[test]
fn partial_frames_wait_for_the_rest() {
    let mut codec = WatchCodec::default();
    let mut buf = BytesMut::from(&LK[..10]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(&LK[10..]);
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(LK));
    assert!(buf.is_empty());
}

#[test]
fn several_frames_in_one_read_and_garbage_is_counted() {
    let stream = [b"xx\r\n[", &b"junk"[..], LK, b"]]", TKQ, LK].concat();
    let mut codec = WatchCodec::default();
    let out = frames(run_codec(&mut codec, &stream, usize::MAX));
    assert_eq!(out, vec![LK.to_vec(), TKQ.to_vec(), LK.to_vec()]);
    assert_eq!(codec.take_skipped(), 11);
    assert_eq!(codec.take_skipped(), 0);
    assert_eq!(codec.skipped_total(), 11);
}

#[test]
fn nested_brackets_and_escapes() {
    let ssid = b"[3G*1*0010*UD,x,[LG_Wall A/C],1]";
    let escaped = b"[CS*1234567890*000e*TK,#!AMR}\x01}\x02}\x03}\x04}\x05\xff]";
    let stream = [&ssid[..], escaped].concat();
    for chunk in [1, 5, usize::MAX] {
        let out = frames(run_codec(&mut WatchCodec::default(), &stream, chunk));
        assert_eq!(
            out,
            vec![
                ssid.to_vec(),
                b"[CS*1234567890*000e*TK,#!AMR}[],*\xff]".to_vec()
            ]
        );
    }
}

#[test]
fn truncated_frame_is_dropped_at_the_next_header() {
    let stream = [&b"[3G*9705141740*0009*LK,0,"[..], TKQ].concat();
    let mut codec = WatchCodec::default();
    let out = frames(run_codec(&mut codec, &stream, 3));
    assert_eq!(out, vec![TKQ.to_vec()]);
    assert_eq!(codec.skipped_total(), 25);
}

#[test]
fn bad_escape_is_an_error_and_decoding_goes_on() {
    let stream = [&b"[3G*1*0003*TK,}\x09]"[..], TKQ].concat();
    let out = run_codec(&mut WatchCodec::default(), &stream, usize::MAX);
    assert!(out[0].as_ref().is_err_and(|e| e.contains("escape")));
    assert_eq!(out[1].as_deref(), Ok(TKQ));
}

#[test]
fn oversized_frame_is_an_error_and_decoding_goes_on() {
    let big = [&b"[3G*1*0400*UD,"[..], &[b'1'; 100], b"]"].concat();
    let stream = [&big[..], TKQ].concat();
    let mut codec = WatchCodec::new(64);
    let mut buf = BytesMut::from(&stream[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::TooLarge { limit: 64 })
    ));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(TKQ));
    // Exactly at the limit is fine.
    let mut exact = WatchCodec::new(TKQ.len());
    assert_eq!(
        exact.decode(&mut BytesMut::from(TKQ)).unwrap().as_deref(),
        Some(TKQ)
    );
}

#[test]
fn eof_discards_a_partial_frame() {
    let mut codec = WatchCodec::default();
    let mut buf = BytesMut::from(&LK[..12]);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
    assert_eq!(codec.skipped_total(), 12);
}

#[test]
fn encoder_writes_raw_bytes() {
    let mut codec = WatchCodec::default();
    let mut dst = BytesMut::new();
    codec.encode(b"[3G*1*0002*LK]".to_vec(), &mut dst).unwrap();
    codec.encode(&b"[x]"[..], &mut dst).unwrap();
    assert_eq!(&dst[..], b"[3G*1*0002*LK][x]");
}
