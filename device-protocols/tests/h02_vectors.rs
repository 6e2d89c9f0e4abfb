//! H02 against the real-device vectors in `tests/vectors` (h02*.tsv) and the replies of
//! REFERENCE.md §3.5.

mod gt06_h02_support;

use std::collections::BTreeMap;

use bytes::BytesMut;
use gt06_h02_support::{alarm_kinds, check_position, expected_kind, location, rows};
use onekey_device_protocols::h02::{self, H02Codec, ParseError, Session};
use onekey_device_protocols::{Report, ServerCommand};
use tokio_util::codec::Decoder;

/// 2025-01-02 03:04:05 UTC.
const NOW: i64 = 1_735_787_045;

#[derive(Debug, Default)]
struct Count {
    rows: u32,
    ok: u32,
    located: u32,
}

/// The status word a row's frame carries, found independently of the decoder: the 8-hex field after
/// the date in text frames, bytes 25..29 in binary frames (28..32 with the long id).
fn derived_status(payload: &[u8]) -> Option<u32> {
    if payload.first() == Some(&b'$') {
        let at = if payload.len() == 42 { 28 } else { 25 }; // 42 bytes: 8-byte id
        return payload
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()));
    }
    let text = String::from_utf8_lossy(payload);
    let fields: Vec<&str> = text
        .trim_end_matches(['#', '\r', '\n'])
        .split(',')
        .collect();
    fields.windows(2).find_map(|w| {
        let date = w[0].len() == 6 && w[0].bytes().all(|b| b.is_ascii_digit());
        let status = w[1].len() == 8 && w[1].bytes().all(|b| b.is_ascii_hexdigit());
        (date && status).then(|| u32::from_str_radix(w[1], 16).unwrap())
    })
}

/// The reference's processStatus names, in this codec's documented order.
fn expected_status_alarm(status: u32) -> Option<&'static str> {
    let clear = |bit: u32| status & (1 << bit) == 0;
    [
        (clear(1) || clear(18), "sos"),
        (clear(19), "powerCut"),
        (clear(0), "vibration"),
        (clear(2), "overspeed"),
    ]
    .into_iter()
    .find_map(|(hit, name)| hit.then_some(name))
}

#[test]
fn every_h02_row_decodes_as_the_reference_says() {
    let mut session = Session::new();
    let mut per_kind: BTreeMap<String, Count> = BTreeMap::new();
    let (mut status_alarms, mut batteries, mut results, mut fixes, mut statuses) = (0, 0, 0, 0, 0);
    for row in rows("h02.tsv") {
        if row.get("ctx.test").is_some() {
            session = Session::new();
        }
        let result = h02::parse_at(&row.payload, &mut session, NOW);
        let count = per_kind.entry(row.kind.clone()).or_default();
        count.rows += 1;
        let reports = match (row.kind.as_str(), result) {
            ("null", Ok(decoded)) => {
                count.ok += 1;
                let r = decoded.reports;
                assert!(
                    location(&r).is_none() && alarm_kinds(&r).is_empty(),
                    "null row {} produced {r:?}",
                    row.index
                );
                r
            }
            ("null", Err(_)) => continue,
            (_, Ok(decoded)) => {
                count.ok += 1;
                assert!(
                    !decoded.reports.is_empty(),
                    "row {} decoded to nothing",
                    row.index
                );
                decoded.reports
            }
            (_, Err(e)) => panic!("row {} ({}) failed: {e}", row.index, row.kind),
        };
        if row.kind == "position" {
            let loc = location(&reports)
                .unwrap_or_else(|| panic!("row {}: no position in {reports:?}", row.index));
            count.located += 1;
            check_position(&row, &loc);
            fixes += u32::from(row.get("lat").is_some());
        }
        // No H02 row asserts an alarm; the status word must give exactly the alarm the documented
        // active-low rule gives (REFERENCE §3.4, derived: powerCut rows 2/13/32/36/58, sos 41/71/73-75…).
        if let Some(status) = derived_status(&row.payload).filter(|_| row.kind != "null") {
            let expected: Vec<_> = expected_status_alarm(status)
                .map(expected_kind)
                .into_iter()
                .collect();
            assert_eq!(
                alarm_kinds(&reports),
                expected,
                "row {} status {status:08X}",
                row.index
            );
            status_alarms += u32::from(!expected.is_empty());
        }
        if let Some(status) = row.get("status") {
            let value: u32 = status
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap() as u32;
            assert_eq!(
                derived_status(&row.payload),
                Some(value),
                "row {} status",
                row.index
            );
            statuses += 1;
        }
        if let Some(expected) = row.get("batteryLevel") {
            let battery = reports.iter().find_map(|r| match r {
                Report::Heartbeat {
                    battery_pct: Some(b),
                    ..
                } => Some(*b),
                _ => None,
            });
            assert_eq!(
                battery.map(|b| b.to_string()).as_deref(),
                Some(expected),
                "row {} batteryLevel",
                row.index
            );
            batteries += 1;
        }
        if let Some(expected) = row.get("result") {
            assert!(
                reports.contains(&Report::CommandResult {
                    text: expected.to_owned()
                }),
                "row {} result: {reports:?}",
                row.index
            );
            results += 1;
        }
    }
    println!("h02.tsv per kind (rows / decoded Ok / with location): {per_kind:?}");
    println!(
        "h02.tsv asserted: {status_alarms} status alarms, {statuses} status words, {batteries} battery, {results} results, {fixes} fixes"
    );
    assert_eq!(
        per_kind["position"].located, per_kind["position"].rows,
        "every position row has a location"
    );
    assert_eq!(fixes, 5);
    assert_eq!(statuses, 3);
    assert_eq!((batteries, results), (1, 1));
    assert!(status_alarms >= 11, "the derived powerCut/sos rows");
}

#[test]
fn framing_rows_cut_exactly_the_expected_frame() {
    let mut n = 0;
    for row in rows("h02_framing.tsv") {
        let expected = hex::decode(row.get("frame").unwrap()).unwrap();
        let mut codec = H02Codec::default();
        let mut buf = BytesMut::from(&row.payload[..]);
        let frame = codec
            .decode(&mut buf)
            .unwrap()
            .or_else(|| codec.decode_eof(&mut buf).unwrap());
        assert_eq!(
            frame.as_deref(),
            Some(&expected[..]),
            "framing row {}",
            row.index
        );
        // Byte by byte, with the binary length the device uses configured.
        let mut codec = H02Codec::with_binary_len(2048, if expected.len() == 45 { 45 } else { 32 });
        let mut buf = BytesMut::new();
        let mut first = None;
        for &b in &row.payload {
            buf.extend_from_slice(&[b]);
            if let Some(f) = codec.decode(&mut buf).unwrap() {
                first.get_or_insert(f);
            }
        }
        let first = first.or_else(|| codec.decode_eof(&mut buf).unwrap());
        assert_eq!(
            first.as_deref(),
            Some(&expected[..]),
            "framing row {} byte by byte",
            row.index
        );
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn stream_with_garbage_text_and_binary() {
    let text = b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#".to_vec();
    let binary =
        hex::decode("2441060116601245431311165035313006004318210e000000fffffbffff0024").unwrap();
    let mut stream = b"garbage".to_vec();
    stream.extend_from_slice(&text);
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(&binary);
    stream.extend_from_slice(&binary);
    stream.extend_from_slice(&text);
    let mut codec = H02Codec::new(256);
    let mut buf = BytesMut::from(&stream[..]);
    let mut frames = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        frames.push(f.to_vec());
    }
    assert_eq!(frames, vec![text.clone(), binary.clone(), binary, text]);
    assert_eq!(codec.skipped_bytes(), 7);
    assert_eq!(codec.binary_len(), Some(32));
    let mut codec = H02Codec::new(16);
    let mut buf = BytesMut::from(&b"*HQ,1234567890,V1,never ends"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(h02::FrameError::TooLarge { limit: 16 })
    ));
}

#[test]
fn replies_are_byte_exact() {
    let mut s = Session::new();
    let reply = |frame: &[u8], s: &mut Session| {
        h02::parse_at(frame, s, NOW)
            .unwrap()
            .reply
            .map(|r| String::from_utf8(r).unwrap())
    };
    assert_eq!(
        reply(b"*HQ,135790246811220,HTBT,100#", &mut s).as_deref(),
        Some("*HQ,135790246811220,HTBT#")
    );
    assert_eq!(
        reply(b"*HQ,135790246811220,V0#", &mut s).as_deref(),
        Some("*HQ,135790246811220,V0#")
    );
    let v1 = b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#";
    assert_eq!(
        reply(v1, &mut s).as_deref(),
        Some("*HQ,4210051415,V4,V1,20250102030405#")
    );
    let nbr = b"*HQ,1600068812,NBR,141335,262,02,255,6,431,17003,26,431,11101,13,151216,FFFFFBFF#";
    assert_eq!(
        reply(nbr, &mut s).as_deref(),
        Some("*HQ,1600068812,V4,NBR,20250102030405#")
    );
    // Ordinary frames get R12 only with acknowledgements on.
    let link = b"*HQ,1700086468,LINK,180902,15,0,84,0,0,240517,FFFFFBFF#";
    assert_eq!(reply(link, &mut s), None);
    s.set_ack(true);
    assert_eq!(
        reply(link, &mut s).as_deref(),
        Some("*HQ,1700086468,R12,030405#")
    );
    let binary =
        hex::decode("2441060116601245431311165035313006004318210e000000fffffbffff0024").unwrap();
    assert_eq!(
        reply(&binary, &mut s).as_deref(),
        Some("*HQ,4106011660,R12,030405#")
    );
    // An id-less sentence is answered with the id seen last.
    assert_eq!(
        reply(
            b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0.00,0,290418,FFFFFBFF#",
            &mut s
        )
        .as_deref(),
        Some("*HQ,4106011660,V4,V1,20250102030405#")
    );
}

#[test]
fn sos_and_power_cut_status_bits() {
    let mut s = Session::new();
    let sos = h02::parse_at(
        b"*HQ,353588020068342,V1,084436,A,3257.01525,N,00655.03865,W,57.78,40,011216,FFFBFFFF#",
        &mut s,
        NOW,
    )
    .unwrap();
    match &sos.reports[0] {
        Report::Alarm {
            kind,
            location,
            raw_code,
        } => {
            assert_eq!(*kind, expected_kind("sos"));
            assert_eq!(raw_code, "h02:status:FFFBFFFF");
            assert!(location.is_some());
        }
        other => panic!("{other:?}"),
    }
    let binary = hex::decode("24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f").unwrap();
    let d = h02::parse_at(&binary, &mut s, NOW).unwrap();
    assert_eq!(alarm_kinds(&d.reports), vec![expected_kind("sos")]);
    assert_eq!(d.identity.as_deref(), Some("4106000826"));
    let cut = h02::parse_at(b"*HQ,4210209006,V1,201812,A,2608.9437,N,08016.2521,W,000.80,000,150317,EFE7F9FF,310,260,0,0,6#", &mut s, NOW).unwrap();
    assert_eq!(alarm_kinds(&cut.reports), vec![expected_kind("powerCut")]);
}

#[test]
fn commands_and_receipts() {
    let mut s = Session::new();
    assert_eq!(
        h02::encode_command(&ServerCommand::Reset, &s, 1),
        None,
        "no device id yet"
    );
    h02::parse_at(b"*HQ,123456789012345,HTBT#", &mut s, NOW).unwrap();
    assert!(h02::encode_command(&ServerCommand::Reset, &s, 1).is_some());
    let at = |cmd: &ServerCommand| {
        h02::encode_command_at(cmd, "123456789012345", 3_723).map(|b| String::from_utf8(b).unwrap())
    };
    assert_eq!(
        at(&ServerCommand::Text("S20,1,1".into())).as_deref(),
        Some("*HQ,123456789012345,S20,010203,1,1#")
    );
    assert_eq!(
        at(&ServerCommand::Text("SCF,0,0".into())).as_deref(),
        Some("*HQ,123456789012345,SCF,010203,0,0#")
    );
    assert_eq!(
        at(&ServerCommand::Text("S71,22,10".into())).as_deref(),
        Some("*HQ,123456789012345,S71,010203,22,10#")
    );
    assert_eq!(
        at(&ServerCommand::Reset).as_deref(),
        Some("*HQ,123456789012345,R1,010203#")
    );
    assert_eq!(at(&ServerCommand::Locate), None);
    assert_eq!(at(&ServerCommand::Text("S20#,1".into())), None);
    // V4 receipts become CommandResult (and carry the position).
    for (frame, text) in [
        (
            "*TH,2020916012,V4,S20,DONE,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,F7FFFBFF#",
            "S20,DONE",
        ),
        (
            "*TH,2020916012,V4,S14,100,10,1,3,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#",
            "S14,100,10,1,3",
        ),
        (
            "*TH,2020916012,V4,S1,OK,pass_word,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFD#",
            "S1,OK,pass_word",
        ),
        ("*HQ,2020916012,V4,R1,OK,130305#", "R1,OK"),
    ] {
        let d = h02::parse_at(frame.as_bytes(), &mut s, NOW).unwrap();
        assert!(
            d.reports
                .contains(&Report::CommandResult { text: text.into() }),
            "{frame}: {:?}",
            d.reports
        );
    }
}

#[test]
fn unsupported_and_short_frames_are_errors() {
    let mut s = Session::new();
    assert_eq!(
        h02::parse_at(b"X\x00\x00", &mut s, NOW),
        Err(ParseError::Unsupported)
    );
    assert_eq!(
        h02::parse_at(b"$\x41\x06", &mut s, NOW),
        Err(ParseError::TooShort)
    );
    assert_eq!(h02::parse_at(b"", &mut s, NOW), Err(ParseError::TooShort));
}
