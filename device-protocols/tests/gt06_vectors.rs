//! GT06 against the real-device vectors in `tests/vectors` (gt06*.tsv) and the byte-exact replies
//! of REFERENCE.md §1.2.

mod gt06_h02_support;

use std::collections::BTreeMap;

use bytes::BytesMut;
use gt06_h02_support::{alarm_kinds, check_position, expected_kind, location, rows};
use onekey_device_protocols::gt06::{self, CrcStatus, Gt06Codec, ParseError, Session};
use onekey_device_protocols::{Report, ServerCommand};
use tokio_util::codec::Decoder;

/// 2025-01-02 03:04:05 UTC, the time of the reference's time-request example.
const NOW: i64 = 1_735_787_045;

fn logged_in() -> Session {
    let mut s = Session::new();
    gt06::parse_at(
        &hex::decode("78780d01086471700328358100093f040d0a").unwrap(),
        &mut s,
        NOW,
    )
    .unwrap();
    s
}

/// A well-formed short frame with a correct CRC.
fn frame(proto: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let mut f = vec![0x78, 0x78, (content.len() + 5) as u8, proto];
    f.extend_from_slice(content);
    f.extend_from_slice(&serial.to_be_bytes());
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC).checksum(&f[2..]);
    f.extend_from_slice(&crc.to_be_bytes());
    f.extend_from_slice(&[0x0D, 0x0A]);
    f
}

#[derive(Debug, Default)]
struct Count {
    rows: u32,
    ok: u32,
    located: u32,
}

#[test]
fn every_gt06_row_decodes_as_the_reference_says() {
    let mut session = Session::new();
    let mut per_kind: BTreeMap<String, Count> = BTreeMap::new();
    let (mut alarms, mut batteries, mut results, mut fixes) = (0, 0, 0, 0);
    for row in rows("gt06.tsv") {
        if row.get("ctx.test").is_some() {
            session = Session::new();
        }
        session.set_model(row.get("ctx.model").map(str::to_owned));
        let result = gt06::parse_at(&row.payload, &mut session, NOW);
        let count = per_kind.entry(row.kind.clone()).or_default();
        count.rows += 1;
        let reports = match (row.kind.as_str(), result) {
            ("null", Ok(parsed)) => {
                count.ok += 1;
                let r = parsed.decoded.reports;
                assert!(
                    location(&r).is_none() && alarm_kinds(&r).is_empty(),
                    "null row {} produced {r:?}",
                    row.index
                );
                r
            }
            ("null", Err(_)) => continue,
            (_, Ok(parsed)) => {
                count.ok += 1;
                assert!(
                    !parsed.decoded.reports.is_empty(),
                    "row {} decoded to nothing",
                    row.index
                );
                parsed.decoded.reports
            }
            (_, Err(e)) => panic!("row {} ({}) failed: {e}", row.index, row.kind),
        };
        if row.kind == "position" {
            if let Some(loc) = location(&reports) {
                count.located += 1;
                check_position(&row, &loc);
                fixes += u32::from(row.get("lat").is_some());
            } else {
                assert!(
                    row.get("lat").is_none(),
                    "row {}: expected a position",
                    row.index
                );
            }
        }
        if let Some(alarm) = row.get("alarm") {
            assert_eq!(
                alarm_kinds(&reports),
                vec![expected_kind(alarm)],
                "row {} alarm={alarm}: {reports:?}",
                row.index
            );
            alarms += 1;
        }
        if let Some(expected) = row.get("batteryLevel") {
            let battery = reports.iter().find_map(|r| match r {
                Report::Heartbeat {
                    battery_pct: Some(b),
                    ..
                } => Some(*b),
                _ => None,
            });
            if let Some(b) = battery {
                assert_eq!(b.to_string(), expected, "row {} batteryLevel", row.index);
                batteries += 1;
            }
        }
        if let Some(expected) = row.get("result") {
            let text = reports.iter().find_map(|r| match r {
                Report::CommandResult { text } => Some(text.as_str()),
                _ => None,
            });
            assert_eq!(text, Some(expected), "row {} result", row.index);
            results += 1;
        }
    }
    println!("gt06.tsv per kind (rows / decoded Ok / with location): {per_kind:?}");
    println!(
        "gt06.tsv asserted: {alarms} alarms, {batteries} battery levels, {results} command results, {fixes} fixes"
    );
    assert_eq!(alarms, 19, "every alarm row asserted");
    assert_eq!(results, 4);
    assert_eq!(batteries, 2);
    assert_eq!(fixes, 1);
}

#[test]
fn crc_is_verified_and_bad_frames_are_still_decoded() {
    let gt06: BTreeMap<u32, Vec<u8>> = rows("gt06.tsv")
        .into_iter()
        .map(|r| (r.index, r.payload))
        .collect();
    let text = gt06_h02_support::read_vectors("gt06_crc_check.tsv");
    let (mut valid, mut bad, mut absent) = (0, 0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let index: u32 = cols[0].parse().unwrap();
        if !seen.insert(index) {
            continue; // a second line for the same frame describes a following fragment
        }
        let (len_ok, crc_ok) = (cols[5] == "yes", cols[10] == "yes");
        let mut session = logged_in();
        let before = session.crc_mismatches();
        // As in production, the codec cuts the frame (row 152 holds three frames back to back).
        let payload = &gt06[&index];
        let mut buf = BytesMut::from(&payload[..]);
        let cut = Gt06Codec::default()
            .decode(&mut buf)
            .unwrap()
            .map_or_else(|| payload.clone(), |f| f.to_vec());
        let parsed =
            gt06::parse_at(&cut, &mut session, NOW).unwrap_or_else(|e| panic!("row {index}: {e}"));
        match parsed.crc {
            CrcStatus::Valid => {
                // Row 71 only lacks its final 0A: the check file did not look at its CRC, which is good.
                assert!(
                    crc_ok || (!len_ok && index == 71),
                    "row {index}: CRC accepted but the check file says otherwise"
                );
                valid += 1;
            }
            CrcStatus::Mismatch { received, computed } => {
                assert!(
                    len_ok && !crc_ok,
                    "row {index}: CRC rejected but the check file says it is good"
                );
                assert_eq!(format!("{received:04x}"), cols[8]);
                assert_eq!(format!("{computed:04x}"), cols[9]);
                assert_eq!(session.crc_mismatches(), before + 1);
                assert!(
                    !parsed.decoded.reports.is_empty(),
                    "row {index}: bad CRC dropped the frame"
                );
                bad += 1;
            }
            CrcStatus::Absent => {
                assert!(
                    !crc_ok,
                    "row {index}: CRC not checked but the check file says it is good: {}",
                    hex::encode(&cut)
                );
                absent += 1;
            }
        }
    }
    println!(
        "gt06_crc_check.tsv: {valid} valid, {bad} mismatched (decoded anyway), {absent} without a CRC"
    );
    assert_eq!(
        bad, 12,
        "the 13 known-bad frames minus the 6-byte 787801080d0a, which has no CRC at all"
    );
    assert_eq!(
        valid,
        159 + 1,
        "159 good frames in the check file, plus row 71 (only its final 0A is missing)"
    );
}

#[test]
fn alarms_with_a_bad_crc_are_reported_and_acknowledged() {
    // Rows 36, 37, 38, 168 of gt06.tsv: wrong CRC, real alarms.
    for (hex, kind) in [
        (
            "78781219012ed042cc00954d00040419000056fe290d0a",
            "lowBattery",
        ),
        (
            "78782da4150817073b10cf032eea9c0b6ce0800015141001cc0100009a00000000000a6f24014605041900ff01908a640d0a",
            "lowBattery",
        ),
        (
            "78782627100419092d07c5027ac91c0c4658000005370900000000000000008002001900ff00004df60d0a",
            "lowBattery",
        ),
    ] {
        let mut s = logged_in();
        let parsed = gt06::parse_at(&hex::decode(hex).unwrap(), &mut s, NOW).unwrap();
        assert!(matches!(parsed.crc, CrcStatus::Mismatch { .. }));
        assert_eq!(
            alarm_kinds(&parsed.decoded.reports),
            vec![expected_kind(kind)]
        );
        assert!(
            parsed.decoded.reply.is_some(),
            "a bad-CRC alarm is still acknowledged"
        );
    }
}

#[test]
fn framing_rows_cut_exactly_the_expected_frame() {
    let mut n = 0;
    for row in rows("gt06_framing.tsv") {
        let expected = hex::decode(row.get("frame").unwrap()).unwrap();
        // Whole payload in one read.
        let mut codec = Gt06Codec::default();
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
        // The same payload split in two reads at every position.
        for cut in 1..row.payload.len() {
            let mut codec = Gt06Codec::default();
            let mut buf = BytesMut::from(&row.payload[..cut]);
            let mut frame = codec.decode(&mut buf).unwrap();
            if frame.is_none() {
                buf.extend_from_slice(&row.payload[cut..]);
                frame = codec
                    .decode(&mut buf)
                    .unwrap()
                    .or_else(|| codec.decode_eof(&mut buf).unwrap());
            }
            assert_eq!(
                frame.as_deref(),
                Some(&expected[..]),
                "framing row {} split at {cut}",
                row.index
            );
        }
        n += 1;
    }
    assert_eq!(n, 9);
}

#[test]
fn stream_with_garbage_and_several_frames() {
    let login = hex::decode("78780d01086471700328358100093f040d0a").unwrap();
    let status = hex::decode("78780a130604ea04000006bc8a0d0a").unwrap();
    let wifi = hex::decode("787800691710231108500200cc080c4e2fa5640c4e2fa66e0d0a").unwrap();
    let mut stream = b"\x00GET / HTTP\r\n\x78".to_vec();
    let garbage = stream.len() as u64;
    for f in [&login, &status, &wifi, &status] {
        stream.extend_from_slice(f);
    }
    let mut codec = Gt06Codec::new(512);
    let mut buf = BytesMut::from(&stream[..]);
    let mut frames = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        frames.push(f.to_vec());
    }
    assert_eq!(frames, vec![login, status.clone(), wifi, status]);
    assert_eq!(codec.skipped_bytes(), garbage);
    assert!(buf.is_empty());
}

#[test]
fn partial_frame_waits_and_oversized_frame_errors() {
    let mut codec = Gt06Codec::new(64);
    let mut buf = BytesMut::from(&hex::decode("78780d0108647170").unwrap()[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(buf.len(), 8, "nothing consumed while waiting");
    // A login whose LEN overstates it (no serial, no CRC) is cut at once: the device waits for its ACK.
    let mut codec = Gt06Codec::new(64);
    let mut buf = BytesMut::from(&hex::decode("78780d0103563140414198583c0d0a").unwrap()[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().map(|f| f.len()), Some(15));
    let mut s = Session::new();
    let parsed = gt06::parse_at(
        &hex::decode("78780d0103563140414198583c0d0a").unwrap(),
        &mut s,
        NOW,
    )
    .unwrap();
    assert_eq!(parsed.crc, CrcStatus::Absent);
    assert_eq!(s.imei(), Some("356314041419858"));
    assert_eq!(
        parsed.decoded.reply.map(hex::encode).as_deref(),
        Some("787805010000c8550d0a")
    );
    let mut buf = BytesMut::from(&[0x79, 0x79, 0x01, 0x00, 0x70][..]);
    buf.extend_from_slice(&[0x55; 80]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(gt06::FrameError::TooLarge { limit: 64 })
    ));
}

fn reply_hex(frame: &[u8], session: &mut Session) -> String {
    hex::encode(
        gt06::parse_at(frame, session, NOW)
            .unwrap()
            .decoded
            .reply
            .expect("a reply"),
    )
}

#[test]
fn replies_are_byte_exact() {
    let mut s = Session::new();
    // Login (row 2) → serial 9 echoed.
    assert_eq!(
        reply_hex(
            &hex::decode("78780D01086471700328358100093F040D0A").unwrap(),
            &mut s
        ),
        "78780501000955940d0a"
    );
    assert_eq!(s.imei(), Some("864717003283581"));
    // Login serial 1 → the well-known ACK.
    assert_eq!(
        reply_hex(
            &frame(0x01, &hex::decode("0864717003283581").unwrap(), 1),
            &mut s
        ),
        "787805010001d9dc0d0a"
    );
    // Status 0x13 serial 6, alarm packet 0x16 serial 2 (row 76), heartbeat 0x23 serial 1, 0x26 serial 7.
    assert_eq!(
        reply_hex(&frame(0x13, &[0x06, 0x04, 0xea, 0x04, 0x00], 6), &mut s),
        "7878051300069d4e0d0a"
    );
    let row76 = hex::decode(
        "7878251613020c12141ac5027951430c2a16f60014000900000000001a00007c550300020002f1e70d0a",
    )
    .unwrap();
    assert_eq!(reply_hex(&row76, &mut s), "787805160002e2d70d0a");
    assert_eq!(
        reply_hex(
            &frame(0x23, &[0xc0, 0x01, 0x22, 0x04, 0x00, 0x01], 1),
            &mut s
        ),
        "7878052300016f5f0d0a"
    );
    let mut content26 =
        hex::decode("12030c063816c3026c10540c38c9700144030901cc002866000eee").unwrap();
    content26.extend_from_slice(&[0x0c, 0x06, 0x04, 0x03, 0x02]);
    assert_eq!(
        reply_hex(&frame(0x26, &content26, 7), &mut s),
        "78780526000733d40d0a"
    );
    // Time request (row 164) answered at 2025-01-02 03:04:05 UTC.
    assert_eq!(
        reply_hex(&hex::decode("7878058a000688290d0a").unwrap(), &mut s),
        "78780b8a190102030405000068ba0d0a"
    );
    // Wi-Fi (row 77): 78 78 00 69 + the request's time + 0D 0A.
    assert_eq!(
        reply_hex(
            &hex::decode("7878006919012105090303028f01007549e05a00bc9c5c5a007a8d1a5a0d0a").unwrap(),
            &mut s
        ),
        "78780069190121050903".to_owned() + "0d0a"
    );
    // Address request (row 163): the "no address" answer, extended 0x97.
    let address = reply_hex(&hex::decode("78782e2a0f0c1d071139ca027ac8000c4658000014d83132353230313335333231373730373900000000000001002a6ece0d0a").unwrap(), &mut s);
    assert!(
        address.starts_with("7979001597".to_owned().as_str())
            && address.contains(&hex::encode("NA&&NA&&0##")),
        "{address}"
    );
}

#[test]
fn frames_that_get_no_reply() {
    let mut s = logged_in();
    for hex in [
        "79790008940b02e3048614200d0a",                 // 0x94 info
        "797900109b0344373532304136320d0a000f87f00d0a", // 0x9B serial data
        "797900262100000000020043006f006d006d0061006e00640020006500720072006f0072002100236e850d0a", // 0x21
    ] {
        let parsed = gt06::parse_at(&hex::decode(hex).unwrap(), &mut s, NOW).unwrap();
        assert_eq!(parsed.decoded.reply, None, "{hex}");
    }
}

#[test]
fn nothing_but_login_is_accepted_before_login() {
    let mut s = Session::new();
    let status = frame(0x13, &[0x06, 0x04, 0x04, 0x01, 0x02], 3);
    assert_eq!(
        gt06::parse_at(&status, &mut s, NOW),
        Err(ParseError::NotLoggedIn)
    );
    let mut s = logged_in();
    let parsed = gt06::parse_at(&status, &mut s, NOW).unwrap();
    assert_eq!(
        alarm_kinds(&parsed.decoded.reports),
        vec![expected_kind("sos")]
    );
    assert_eq!(parsed.decoded.serial, Some(3));
}

#[test]
fn fall_and_power_cut_codes_map() {
    // No reference frame asserts these; the mapping comes from the decoder code (REFERENCE §1.6).
    let mut s = logged_in();
    for (alarm, terminal, kind) in [
        (0x23, 0x00, "fallDown"),
        (0x02, 0x00, "powerCut"),
        (0x00, 0x10, "powerCut"),
        (0x05, 0x00, "geofenceExit"),
    ] {
        let parsed = gt06::parse_at(
            &frame(0x13, &[terminal, 0x06, 0x04, alarm, 0x02], 1),
            &mut s,
            NOW,
        )
        .unwrap();
        assert_eq!(
            alarm_kinds(&parsed.decoded.reports),
            vec![expected_kind(kind)],
            "alarm {alarm:#x} ti {terminal:#x}"
        );
    }
    // 12-bit code in 0x27: alarm 0x07 | (language 0x12 >> 4) << 8 = 0x0107 (jamming).
    let mut c =
        hex::decode("10041909 2d07c5027ac91c0c46580000053709000000000000000080".replace(' ', ""))
            .unwrap();
    c.extend_from_slice(&[0x02, 0x00, 0x07, 0x12, 0xff]);
    let parsed = gt06::parse_at(&frame(0x27, &c, 1), &mut s, NOW).unwrap();
    match &parsed.decoded.reports[0] {
        Report::Alarm { raw_code, .. } => assert_eq!(raw_code, "gt06:0x0107"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_encoding_and_answers() {
    let s = logged_in();
    let relay = gt06::encode_command(&ServerCommand::Text("Relay,1#".into()), &s, 0).unwrap();
    assert_eq!(
        hex::encode(relay),
        "787812800c0000000052656c61792c312300009dee0d0a"
    );
    let locate = gt06::encode_command(&ServerCommand::Locate, &s, 0x0102).unwrap();
    assert!(hex::encode(&locate).contains(&hex::encode("WHERE#")));
    let reset = gt06::encode_command(&ServerCommand::Reset, &s, 1).unwrap();
    assert!(hex::encode(&reset).contains(&hex::encode("RESET#")));
    let sos = gt06::encode_command(
        &ServerCommand::SetSosNumbers(vec!["+8613800000000".into(), "110".into()]),
        &s,
        1,
    )
    .unwrap();
    assert!(hex::encode(&sos).contains(&hex::encode("SOS,A,+8613800000000,110#")));
    assert_eq!(
        gt06::encode_command(
            &ServerCommand::SetSosNumbers(vec!["12;RESET".into()]),
            &s,
            1
        ),
        None
    );
    assert_eq!(
        gt06::encode_command(&ServerCommand::Text("x".repeat(300)), &s, 1),
        None
    );
    // Our own command frames parse back (as an unknown-to-the-server 0x80) without panicking, and
    // the device's 0x15 / 0x21 answers become CommandResult.
    let mut s = logged_in();
    for (hex, text) in [
        (
            "78782d152500000000437574206f666620746865206675656c20737570706c793a2053756363657373210002013b898a0d0a",
            "Cut off the fuel supply: Success!",
        ),
        (
            "7878661500000000004459443d537563636573732100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010009e82b0d0a",
            "DYD=Success!",
        ),
        (
            "797900262100000000020043006f006d006d0061006e00640020006500720072006f0072002100236e850d0a",
            "Command error!",
        ),
    ] {
        let parsed = gt06::parse_at(&hex::decode(hex).unwrap(), &mut s, NOW).unwrap();
        assert!(
            parsed
                .decoded
                .reports
                .contains(&Report::CommandResult { text: text.into() }),
            "{:?}",
            parsed.decoded.reports
        );
    }
}
