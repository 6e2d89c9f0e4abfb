//! Property tests: the watch and DC-09 codecs and parsers never panic and always terminate.

mod ws_support;

use onekey_device_protocols::{sia, watch};
use proptest::prelude::*;
use ws_support::run_codec;

/// Bytes biased towards the protocols' structural characters.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        2 => prop::sample::select(b"[]*,}\x01\x02\x03\x04\x05\n\r\"#|^_0123456789ABCDEFLRGZJS3".to_vec()),
    ];
    prop::collection::vec(byte, 0..600)
}

fn sessions() -> (watch::Session, sia::Session) {
    let keyed = sia::Session::new(|a| match a.len() % 3 {
        0 => Some(sia::Account::Aes(b"AAAAAAAAAAAAAAAA".to_vec())),
        1 => Some(sia::Account::Plain),
        _ => None,
    });
    (watch::Session::new(), keyed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn watch_codec_and_parse_never_panic(data in stream(), chunk in 1usize..40, max in 8usize..300) {
        let mut codec = watch::WatchCodec::new(max);
        let (mut session, _) = sessions();
        for frame in run_codec(&mut codec, &data, chunk).into_iter().flatten() {
            prop_assert!(frame.len() <= max);
            let _ = watch::parse(&frame, &mut session);
        }
        let _ = watch::parse(&data, &mut session);
    }

    #[test]
    fn sia_codec_and_parse_never_panic(data in stream(), chunk in 1usize..40, max in 11usize..300, now in any::<i64>()) {
        let mut codec = sia::SiaCodec::new(max);
        let (_, mut session) = sessions();
        for frame in run_codec(&mut codec, &data, chunk).into_iter().flatten() {
            prop_assert!(frame.len() <= max);
            let _ = sia::parse(&frame, &mut session, now);
        }
        let _ = sia::parse(&data, &mut session, now);
        let strict = sia::Session::accept_all().with_integrity(sia::Integrity::Strict);
        let _ = sia::read_message(&data, &strict);
    }

    /// Valid frames separated by garbage that cannot start a frame all come out intact.
    #[test]
    fn watch_frames_survive_garbage(garbage in prop::collection::vec("[^\\[]{0,20}", 1..6), chunk in 1usize..50) {
        let frame = b"[3G*4700186508*000B*LK,0,10,100]";
        let stream: Vec<u8> = garbage.iter().flat_map(|g| [g.as_bytes(), frame].concat()).collect();
        let mut codec = watch::WatchCodec::default();
        let out = run_codec(&mut codec, &stream, chunk);
        prop_assert_eq!(out.len(), garbage.len());
        prop_assert!(out.iter().all(|f| f.as_deref() == Ok(&frame[..])));
        prop_assert_eq!(codec.skipped_total(), garbage.iter().map(|g| g.len() as u64).sum::<u64>());
    }

    #[test]
    fn sia_frames_survive_garbage(garbage in prop::collection::vec("[^\\n]{0,20}", 1..6), chunk in 1usize..50) {
        let frame = b"\n246C0013\"ACK\"0005L0#12345[]\r";
        let stream: Vec<u8> = garbage.iter().flat_map(|g| [g.as_bytes(), frame].concat()).collect();
        let mut codec = sia::SiaCodec::default();
        let out = run_codec(&mut codec, &stream, chunk);
        prop_assert_eq!(out.len(), garbage.len());
        prop_assert!(out.iter().all(|f| f.as_deref() == Ok(&frame[..])));
    }
}
