//! Property tests: the GT06 and H02 codecs never panic, always make progress, and keep every byte
//! accounted for, whatever arrives and however TCP splits it.

use bytes::BytesMut;
use onekey_device_protocols::{gt06, h02};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Feeds `data` in chunks of the given sizes, then ends the stream. Returns the frames, or stops at
/// the first framing error. Panics if a call returns an empty frame (no progress) or loops.
fn run<D>(codec: &mut D, data: &[u8], chunks: &[usize]) -> (Vec<Vec<u8>>, usize)
where
    D: Decoder<Item = BytesMut>,
{
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().cycle();
    let mut calls = 0usize;
    while fed < data.len() {
        let n = (*sizes.next().unwrap()).clamp(1, data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            calls += 1;
            assert!(
                calls < 10 * data.len() + 100,
                "decoder does not make progress"
            );
            match codec.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(!f.is_empty(), "empty frame");
                    frames.push(f.to_vec());
                }
                Ok(None) => break,
                Err(_) => return (frames, buf.len() + data.len() - fed),
            }
        }
    }
    loop {
        calls += 1;
        assert!(
            calls < 10 * data.len() + 100,
            "decode_eof does not terminate"
        );
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => {
                assert!(!f.is_empty(), "empty frame at eof");
                frames.push(f.to_vec());
            }
            Ok(None) | Err(_) => break,
        }
    }
    (frames, buf.len())
}

fn gt06_frame(extended: bool, proto: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let len = content.len() + 5;
    let mut f = if extended {
        vec![0x79, 0x79, (len >> 8) as u8, len as u8]
    } else {
        vec![0x78, 0x78, len as u8]
    };
    f.push(proto);
    f.extend_from_slice(content);
    f.extend_from_slice(&serial.to_be_bytes());
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC).checksum(&f[2..]);
    f.extend_from_slice(&crc.to_be_bytes());
    f.extend_from_slice(&[0x0D, 0x0A]);
    f
}

const PROTOS: &[u8] = &[
    0x01, 0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x19, 0x1A, 0x1E, 0x21, 0x22, 0x23, 0x24, 0x25,
    0x26, 0x27, 0x2A, 0x2D, 0x31, 0x32, 0x33, 0x34, 0x36, 0x37, 0x41, 0x69, 0x70, 0x80, 0x8A, 0x94,
    0x95, 0x9B, 0xA0, 0xA2, 0xA3, 0xA4, 0xA5, 0xF1,
];
const MODELS: &[Option<&str>] = &[
    None,
    Some("LW4G"),
    Some("SEEWORLD"),
    Some("R11"),
    Some("XT40"),
    Some("QH302R"),
];

fn logged_in(model: Option<&str>) -> gt06::Session {
    let mut s = gt06::Session::new();
    s.set_model(model.map(str::to_owned));
    gt06::parse(
        &gt06_frame(
            false,
            0x01,
            &[0x08, 0x64, 0x71, 0x70, 0x03, 0x28, 0x35, 0x81],
            1,
        ),
        &mut s,
    )
    .unwrap();
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gt06_stream_never_panics_and_accounts_for_every_byte(
        data in proptest::collection::vec(prop_oneof![any::<u8>(), Just(0x78u8), Just(0x79), Just(0x0D), Just(0x0A)], 0..1500),
        chunks in proptest::collection::vec(1usize..80, 1..8),
        max in 8usize..600,
    ) {
        let mut codec = gt06::Gt06Codec::new(max);
        let (frames, left) = run(&mut codec, &data, &chunks);
        let framed: usize = frames.iter().map(Vec::len).sum();
        prop_assert!(framed as u64 + codec.skipped_bytes() + left as u64 == data.len() as u64);
        let mut session = logged_in(None);
        for f in &frames {
            let _ = gt06::parse(f, &mut session);
        }
    }

    #[test]
    fn gt06_valid_frames_survive_any_split(
        frames in proptest::collection::vec(
            (any::<bool>(), proptest::sample::select(PROTOS), proptest::collection::vec(any::<u8>().prop_filter("no CR", |b| *b != 0x0D), 0..60), any::<u16>()),
            1..6),
        chunks in proptest::collection::vec(1usize..40, 1..6),
    ) {
        let built: Vec<Vec<u8>> = frames.iter().map(|(ext, p, c, s)| gt06_frame(*ext, *p, c, *s)).collect();
        let stream: Vec<u8> = built.concat();
        let mut codec = gt06::Gt06Codec::default();
        let (got, left) = run(&mut codec, &stream, &chunks);
        prop_assert_eq!(got, built);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(codec.skipped_bytes(), 0);
    }

    #[test]
    fn gt06_parse_never_panics(
        proto in proptest::sample::select(PROTOS),
        content in proptest::collection::vec(any::<u8>(), 0..120),
        serial in any::<u16>(),
        extended in any::<bool>(),
        model in proptest::sample::select(MODELS),
        now in any::<i64>(),
    ) {
        let frame = gt06_frame(extended, proto, &content, serial);
        let mut session = logged_in(model);
        if let Ok(parsed) = gt06::parse_at(&frame, &mut session, now) {
            prop_assert!(!parsed.decoded.reports.is_empty());
            prop_assert_eq!(parsed.crc, gt06::CrcStatus::Valid);
        }
        let mut fresh = gt06::Session::new();
        let _ = gt06::parse_at(&frame, &mut fresh, now);
    }

    #[test]
    fn gt06_parse_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..300), now in any::<i64>()) {
        let mut session = logged_in(None);
        let _ = gt06::parse_at(&data, &mut session, now);
        let mut prefixed = vec![0x78, 0x78];
        prefixed.extend_from_slice(&data);
        let _ = gt06::parse_at(&prefixed, &mut session, now);
        prefixed[0] = 0x79;
        prefixed[1] = 0x79;
        let _ = gt06::parse_at(&prefixed, &mut session, now);
    }

    #[test]
    fn h02_stream_never_panics(
        data in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'*'), Just(b'$'), Just(b'X'), Just(b'#'), Just(b'\n')], 0..1500),
        chunks in proptest::collection::vec(1usize..80, 1..8),
        max in 8usize..600,
        binary in proptest::option::of(prop_oneof![Just(32usize), Just(45)]),
    ) {
        let mut codec = match binary {
            Some(n) => h02::H02Codec::with_binary_len(max, n),
            None => h02::H02Codec::new(max),
        };
        let (frames, left) = run(&mut codec, &data, &chunks);
        let framed: usize = frames.iter().map(Vec::len).sum();
        prop_assert!(framed as u64 + codec.skipped_bytes() + left as u64 <= data.len() as u64);
        let mut session = h02::Session::new();
        session.set_ack(true);
        for f in &frames {
            let _ = h02::parse(f, &mut session);
        }
    }

    #[test]
    fn h02_text_never_panics(
        fields in proptest::collection::vec("[0-9A-FNSEWVBX.: -]{0,12}", 0..25),
        kind in proptest::sample::select(&["V1", "V4", "V19", "VP1", "NBR", "LINK", "V3", "HTBT", "V0", "SMS", "XT", ""][..]),
        now in any::<i64>(),
    ) {
        let sentence = format!("*HQ,1234567890,{kind},{}#", fields.join(","));
        let mut session = h02::Session::new();
        session.set_ack(true);
        let decoded = h02::parse_at(sentence.as_bytes(), &mut session, now).unwrap();
        prop_assert!(!decoded.reports.is_empty());
    }

    #[test]
    fn h02_binary_never_panics(body in proptest::collection::vec(any::<u8>(), 0..60), now in any::<i64>()) {
        let mut frame = vec![b'$'];
        frame.extend_from_slice(&body);
        let mut session = h02::Session::new();
        if let Ok(decoded) = h02::parse_at(&frame, &mut session, now) {
            prop_assert!(!decoded.reports.is_empty());
        }
        let _ = h02::parse_at(&body, &mut session, now);
    }
}
