//! Properties over generated input: valid frames round-trip, truncated frames are incomplete,
//! arbitrary bytes never panic the decoder.

use onekey_protocol::*;
use proptest::prelude::*;

fn pick<T: Copy + core::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

fn location() -> impl Strategy<Value = Location> {
    (
        -Location::MAX_LAT_E6..=Location::MAX_LAT_E6,
        -Location::MAX_LON_E6..=Location::MAX_LON_E6,
        any::<u16>(),
    )
        .prop_map(|(lat_e6, lon_e6, accuracy_m)| Location {
            lat_e6,
            lon_e6,
            accuracy_m,
        })
}

fn percent() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(0u8..=100)
}

fn ack() -> impl Strategy<Value = Ack> {
    let status_reason = prop_oneof![
        Just((AckStatus::Stored, RejectReason::None)),
        Just((AckStatus::Duplicate, RejectReason::None)),
        pick(RejectReason::ALL)
            .prop_filter("rejected needs a reason", |r| *r != RejectReason::None)
            .prop_map(|r| (AckStatus::Rejected, r)),
    ];
    (any::<u32>(), status_reason, any::<u32>()).prop_map(
        |(acked_seq, (status, reason), server_time)| Ack {
            acked_seq,
            status,
            reason,
            server_time,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), any::<u16>(), 1u32..).prop_map(|(firmware_version, model, interval)| {
            Message::Hello(Hello {
                firmware_version,
                model,
                heartbeat_interval_s: interval,
            })
        }),
        (
            percent(),
            any::<bool>(),
            percent(),
            proptest::option::of(location())
        )
            .prop_map(|(battery_percent, mains_power, signal_percent, location)| {
                Message::Heartbeat(Heartbeat {
                    battery_percent,
                    mains_power,
                    signal_percent,
                    location,
                })
            }),
        (pick(AlarmKind::ALL), proptest::option::of(location()))
            .prop_map(|(kind, location)| Message::Alarm(Alarm { kind, location })),
        any::<u32>().prop_map(|alarm_seq| Message::Cancel(Cancel { alarm_seq })),
        Just(Message::CheckIn),
        pick(ServiceKind::ALL).prop_map(|kind| Message::ServiceRequest(ServiceRequest { kind })),
        (any::<u32>(), pick(CommandOutcome::ALL)).prop_map(|(command_id, outcome)| {
            Message::CommandResult(CommandResult {
                command_id,
                outcome,
            })
        }),
        ack().prop_map(Message::Ack),
        (any::<u32>(), pick(CommandKind::ALL), any::<u32>()).prop_map(
            |(command_id, kind, argument)| Message::Command(Command {
                command_id,
                kind,
                argument,
            })
        ),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(device_id, seq, timestamp)| Header {
        device_id,
        seq,
        timestamp,
    })
}

fn encoded(header: &Header, message: &Message, key: &Key) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(header, message, key, &mut buf).expect("valid messages encode");
    buf[..n].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn valid_frames_round_trip(
        header in header(),
        message in message(),
        key in any::<[u8; 32]>(),
        trailing in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = encoded(&header, &message, &key);
        let len = bytes.len();
        prop_assert!(len <= MAX_FRAME_LEN);
        prop_assert_eq!(len, encoded_len(&message));
        prop_assert_eq!(frame_len(&bytes), Ok(len));
        bytes.extend_from_slice(&trailing); // the next frame's bytes must not matter
        let (unverified, used) = decode(&bytes).unwrap();
        prop_assert_eq!(used, len);
        prop_assert_eq!(unverified.device_id(), header.device_id);
        let frame = unverified.verify(&key).unwrap();
        prop_assert_eq!(frame, Frame { header, message });
    }

    #[test]
    fn a_different_key_never_verifies(
        header in header(),
        message in message(),
        key in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
    ) {
        prop_assume!(key != other);
        let bytes = encoded(&header, &message, &key);
        let (unverified, _) = decode(&bytes).unwrap();
        prop_assert_eq!(unverified.verify(&other), Err(AuthError::BadTag));
    }

    #[test]
    fn truncated_valid_frames_are_incomplete(
        header in header(),
        message in message(),
        cut in any::<proptest::sample::Index>(),
    ) {
        let bytes = encoded(&header, &message, &[9; 32]);
        let cut = cut.index(bytes.len()); // 0 ..= len - 1
        match decode(&bytes[..cut]) {
            Err(DecodeError::Incomplete { needed }) => {
                prop_assert!(needed >= 1);
                prop_assert!(cut + needed <= bytes.len());
            }
            other => prop_assert!(false, "cut {} gave {:?}", cut, other.map(|(_, n)| n)),
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_error_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        check_arbitrary(&bytes)?;
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_prefix_never_panic(
        ty in pick(MessageType::ALL),
        rest in proptest::collection::vec(any::<u8>(), 16..140),
    ) {
        // Most random bytes fail at the magic; this reaches the body parsers.
        let body_len = rest.len().saturating_sub(16 + TAG_LEN).min(MAX_BODY_LEN);
        let mut bytes = vec![b'O', b'K', VERSION, ty.code()];
        bytes.extend_from_slice(&(body_len as u16).to_be_bytes());
        bytes.extend_from_slice(&rest);
        check_arbitrary(&bytes)?;
    }
}

/// Whatever happens, it is consistent: a frame length agrees with `decode`, `Incomplete` asks for
/// bytes that exist beyond the input, and verification with a wrong key fails.
fn check_arbitrary(bytes: &[u8]) -> Result<(), TestCaseError> {
    let len = frame_len(bytes);
    match decode(bytes) {
        Ok((unverified, used)) => {
            prop_assert_eq!(len, Ok(used));
            prop_assert!(used <= bytes.len() && used <= MAX_FRAME_LEN);
            // A random tag is right with probability 2^-64.
            prop_assert_eq!(unverified.verify(&[0x42; 32]), Err(AuthError::BadTag));
        }
        Err(DecodeError::Incomplete { needed }) => {
            prop_assert!(needed >= 1);
            if let Ok(total) = len {
                prop_assert_eq!(bytes.len() + needed, total);
            }
        }
        Err(e) => {
            prop_assert!(!e.as_str().is_empty());
            if let Err(prefix_error) = len {
                prop_assert_eq!(prefix_error, e, "frame_len and decode disagree");
            }
        }
    }
    Ok(())
}
