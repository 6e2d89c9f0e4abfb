//! Whole frames through the public API: round trips, authentication, truncation and size limits.

mod common;

use common::{DEVICE_ID, KEY, encode_example, examples};
use onekey_protocol::*;

fn sos() -> (Header, Message) {
    let header = Header {
        device_id: DEVICE_ID,
        seq: 77,
        timestamp: 0,
    };
    let message = Message::Alarm(Alarm {
        kind: AlarmKind::Sos,
        location: None,
    });
    (header, message)
}

#[test]
fn every_example_round_trips_and_every_message_type_is_covered() {
    let mut covered = Vec::new();
    for (name, header, message) in examples() {
        let bytes = encode_example(&header, &message);
        assert_eq!(bytes.len(), encoded_len(&message), "{name}");
        assert_eq!(frame_len(&bytes), Ok(bytes.len()), "{name}");
        let (unverified, used) = decode(&bytes).expect(name);
        assert_eq!(used, bytes.len(), "{name}");
        assert_eq!(unverified.header(), &header, "{name}");
        assert_eq!(unverified.message_type(), message.message_type(), "{name}");
        let frame = unverified.verify(&KEY).expect(name);
        assert_eq!(frame, Frame { header, message }, "{name}");
        covered.push(message.message_type());
    }
    for ty in MessageType::ALL {
        assert!(covered.contains(ty), "no example of {ty}");
    }
}

#[test]
fn frame_encode_equals_encode() {
    let (header, message) = sos();
    let mut a = [0u8; MAX_FRAME_LEN];
    let mut b = [0u8; MAX_FRAME_LEN];
    let n = encode(&header, &message, &KEY, &mut a).unwrap();
    let m = Frame { header, message }.encode(&KEY, &mut b).unwrap();
    assert_eq!(a[..n], b[..m]);
}

#[test]
fn decoded_frame_outlives_the_buffer() {
    let (header, message) = sos();
    let frame = {
        let bytes = encode_example(&header, &message);
        decode(&bytes).unwrap().0.verify(&KEY).unwrap()
    };
    assert_eq!(frame.message, message);
}

#[test]
fn wrong_key_is_refused() {
    let (header, message) = sos();
    let bytes = encode_example(&header, &message);
    let (unverified, _) = decode(&bytes).unwrap();
    let mut other = KEY;
    other[0] ^= 0x01;
    assert_eq!(unverified.verify(&other), Err(AuthError::BadTag));
    assert_eq!(unverified.verify(&[0u8; 32]), Err(AuthError::BadTag));
}

#[test]
fn any_flipped_bit_is_caught() {
    for (name, header, message) in examples() {
        let bytes = encode_example(&header, &message);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                // Either the bytes no longer parse, or the tag no longer matches.
                if let Ok((unverified, _)) = decode(&bad) {
                    assert_eq!(
                        unverified.verify(&KEY),
                        Err(AuthError::BadTag),
                        "{name}: byte {i} bit {bit}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_bad_tag_is_bad_tag_not_a_decode_error() {
    let (header, message) = sos();
    let mut bytes = encode_example(&header, &message);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let (unverified, _) = decode(&bytes).expect("the tag is not checked by decode");
    assert_eq!(unverified.verify(&KEY), Err(AuthError::BadTag));
}

#[test]
fn every_truncation_is_incomplete_with_the_right_count() {
    for (name, header, message) in examples() {
        let bytes = encode_example(&header, &message);
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            let needed = if cut < PREFIX_LEN {
                PREFIX_LEN - cut
            } else {
                bytes.len() - cut
            };
            assert_eq!(
                decode(part).map(|(_, n)| n),
                Err(DecodeError::Incomplete { needed }),
                "{name} cut at {cut}"
            );
            if cut < PREFIX_LEN {
                assert_eq!(frame_len(part), Err(DecodeError::Incomplete { needed }));
            } else {
                assert_eq!(frame_len(part), Ok(bytes.len()), "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn back_to_back_frames_are_split_by_the_consumed_count() {
    let all: Vec<(Header, Message)> = examples().into_iter().map(|(_, h, m)| (h, m)).collect();
    let stream: Vec<u8> = all.iter().flat_map(|(h, m)| encode_example(h, m)).collect();
    let mut rest = &stream[..];
    for (header, message) in &all {
        let (unverified, used) = decode(rest).unwrap();
        assert_eq!(unverified.verify(&KEY).unwrap().message, *message);
        assert_eq!(unverified.header(), header);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(
        decode(rest).map(|(_, n)| n),
        Err(DecodeError::Incomplete { needed: 6 })
    );
}

#[test]
fn oversized_body_length_is_refused_from_the_prefix() {
    for body_len in [MAX_BODY_LEN + 1, 0x100, 0xffff] {
        let [hi, lo] = (body_len as u16).to_be_bytes();
        let prefix = [b'O', b'K', VERSION, MessageType::Alarm.code(), hi, lo];
        assert_eq!(frame_len(&prefix), Err(DecodeError::TooLong { body_len }));
        let mut long = prefix.to_vec();
        long.resize(body_len + HEADER_LEN + TAG_LEN, 0);
        assert_eq!(
            decode(&long).map(|(_, n)| n),
            Err(DecodeError::TooLong { body_len })
        );
    }
    let [hi, lo] = (MAX_BODY_LEN as u16).to_be_bytes();
    let largest = [b'O', b'K', VERSION, MessageType::Alarm.code(), hi, lo];
    assert_eq!(frame_len(&largest), Ok(MAX_FRAME_LEN));
}

#[test]
fn a_length_that_does_not_fit_the_type_is_bad_length() {
    let (header, message) = sos();
    let mut bytes = encode_example(&header, &message);
    // Claim a 3-byte body and append a byte so the frame is whole.
    bytes[5] = 3;
    bytes.push(0);
    assert_eq!(
        decode(&bytes).map(|(_, n)| n),
        Err(DecodeError::BadLength {
            message_type: MessageType::Alarm,
            body_len: 3
        })
    );
}

#[test]
fn garbage_is_refused_at_the_first_bad_byte() {
    assert_eq!(frame_len(b"GET / HTTP/1.1\r\n"), Err(DecodeError::BadMagic));
    assert_eq!(frame_len(b"\x78\x78\x11\x01"), Err(DecodeError::BadMagic));
    assert_eq!(
        decode(b"OK\x00").map(|(_, n)| n),
        Err(DecodeError::UnsupportedVersion { version: 0 })
    );
    assert_eq!(
        decode(b"OK\x01\x80").map(|(_, n)| n),
        Err(DecodeError::UnknownMessageType { code: 0x80 })
    );
}

#[test]
fn invalid_messages_are_not_encoded() {
    let header = sos().0;
    let mut buf = [0u8; MAX_FRAME_LEN];
    let bad = Message::Heartbeat(Heartbeat {
        battery_percent: Some(101),
        mains_power: true,
        signal_percent: None,
        location: None,
    });
    assert_eq!(
        encode(&header, &bad, &KEY, &mut buf),
        Err(EncodeError::InvalidField {
            field: "battery_percent"
        })
    );
    let bad = Message::Alarm(Alarm {
        kind: AlarmKind::Sos,
        location: Some(Location {
            lat_e6: 0,
            lon_e6: i32::MIN,
            accuracy_m: 0,
        }),
    });
    assert_eq!(
        encode(&header, &bad, &KEY, &mut buf),
        Err(EncodeError::InvalidField { field: "longitude" })
    );
    let bad = Message::Ack(Ack {
        acked_seq: 1,
        status: AckStatus::Rejected,
        reason: RejectReason::None,
        server_time: 0,
    });
    assert_eq!(
        encode(&header, &bad, &KEY, &mut buf),
        Err(EncodeError::InvalidField {
            field: "reject_reason"
        })
    );
}

#[test]
fn every_message_fits_the_largest_frame_with_room_to_spare() {
    let worst = Message::Heartbeat(Heartbeat {
        battery_percent: Some(1),
        mains_power: true,
        signal_percent: Some(1),
        location: Some(common::HOME),
    });
    assert_eq!(encoded_len(&worst), HEADER_LEN + 14 + TAG_LEN);
    for (_, _, message) in examples() {
        assert!(encoded_len(&message) <= encoded_len(&worst));
    }
}

#[test]
fn imei_sized_and_extreme_header_values_survive() {
    let (_, message) = sos();
    for (device_id, seq, timestamp) in [
        (999_999_999_999_999, 1, 1),
        (u64::MAX, u32::MAX, u32::MAX),
        (0, 0, 0),
    ] {
        let header = Header {
            device_id,
            seq,
            timestamp,
        };
        let bytes = encode_example(&header, &message);
        let frame = decode(&bytes).unwrap().0.verify(&KEY).unwrap();
        assert_eq!(frame.header, header);
    }
}
