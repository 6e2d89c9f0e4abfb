//! Every row of the watch vector files, plus hand-derived replies and commands.

mod ws_support;

use onekey_device_protocols::report::AlarmKind;
use onekey_device_protocols::watch::{self, Session, WatchCodec};
use onekey_device_protocols::{Decoded, Location, Report, ServerCommand};
use ws_support::{Row, load, run_codec, unix};

/// The reference decoder's alarm names → the kind we must produce (reference §2.3).
const ALARM_NAMES: &[(&str, AlarmKind)] = &[
    ("sos", AlarmKind::Sos),
    ("fallDown", AlarmKind::Fall),
    ("removing", AlarmKind::Tamper),
    ("powerCut", AlarmKind::PowerLoss),
    ("lowBattery", AlarmKind::LowBattery),
    ("geofenceExit", AlarmKind::Wandering),
    // An AL without a mapped bit: treated as the SOS key (module doc).
    ("general", AlarmKind::Sos),
];

/// Alarms the reference derives by applying the status chain to rows it does not assert (§2.3).
const DERIVED_ALARMS: &[(usize, &str)] = &[
    (4, "general"),
    (14, "removing"),
    (16, "sos"),
    (18, "removing"),
    (22, "fallDown"),
    (26, "general"),
    (42, "lowBattery"),
];

fn kind_for(name: &str) -> AlarmKind {
    ALARM_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, k)| k)
        .unwrap_or_else(|| panic!("no mapping for alarm name {name}"))
}

fn alarm_kinds(d: &Decoded) -> Vec<AlarmKind> {
    d.reports
        .iter()
        .filter_map(|r| match r {
            Report::Alarm { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

fn location(d: &Decoded) -> Option<Location> {
    d.reports.iter().find_map(|r| match r {
        Report::Position(l) => Some(*l),
        Report::Alarm { location, .. } => *location,
        _ => None,
    })
}

/// The frames of a row: text rows are one already-unescaped frame (as the reference decoder test
/// sees it); hex rows are raw wire bytes, cut by the codec.
fn frames(row: &Row) -> Vec<Vec<u8>> {
    if row.col("encoding") == "hex" {
        let mut codec = WatchCodec::default();
        run_codec(&mut codec, &row.payload, 4096)
            .into_iter()
            .map(|f| f.expect("hex row frames cleanly"))
            .collect()
    } else {
        vec![row.payload.clone()]
    }
}

/// Latitude and longitude fields of a position body as sent (for the "no fix" check).
fn raw_coordinates(frame: &[u8]) -> Option<(f64, f64)> {
    let text = String::from_utf8_lossy(frame);
    let body: Vec<&str> = text.split(',').collect();
    Some((
        body.get(4)?.trim().parse().ok()?,
        body.get(6)?.trim().parse().ok()?,
    ))
}

fn check_position(row: &Row, frame: &[u8], d: &Decoded) -> bool {
    let kind = String::from_utf8_lossy(frame);
    let is_alarm = kind.split('*').any(|f| f.starts_with("AL"));
    if is_alarm {
        assert!(
            !alarm_kinds(d).is_empty(),
            "row {}: AL frame without alarm",
            row.index()
        );
        assert!(
            d.reply
                .as_deref()
                .is_some_and(|r| r.ends_with(b"*0002*AL]"))
        );
    } else {
        assert_eq!(d.reply, None, "row {}: positions get no reply", row.index());
    }
    let no_fix = raw_coordinates(frame).is_some_and(|(a, b)| a == 0.0 && b == 0.0);
    assert_eq!(
        location(d).is_none(),
        no_fix,
        "row {}: location presence",
        row.index()
    );
    let Some(lat) = row.expect("lat") else {
        return false;
    };
    let loc = location(d).expect("expected a location");
    let close = |a: f64, b: &str| (a - b.parse::<f64>().unwrap()).abs() < 0.5e-5;
    assert!(
        close(loc.lat, lat),
        "row {}: lat {} vs {lat}",
        row.index(),
        loc.lat
    );
    assert!(
        close(loc.lon, row.expect("lon").unwrap()),
        "row {}: lon {}",
        row.index(),
        loc.lon
    );
    assert_eq!(
        loc.time,
        Some(unix(row.expect("time").unwrap())),
        "row {}",
        row.index()
    );
    assert_eq!(loc.valid.to_string(), row.expect("valid").unwrap());
    true
}

#[derive(Debug, Default)]
struct Counts {
    rows: usize,
    frames: usize,
    decoded: usize,
    positions_checked: usize,
    alarms_asserted: usize,
}

#[test]
fn watch_tsv_every_row() {
    let rows = load("watch.tsv");
    let mut session = Session::new();
    let mut n = Counts::default();
    for row in &rows {
        n.rows += 1;
        if row.expect("ctx.test").is_some() {
            session = Session::new();
        }
        for frame in frames(row) {
            n.frames += 1;
            let d = watch::parse(&frame, &mut session)
                .unwrap_or_else(|e| panic!("row {} does not decode: {e}", row.index()));
            n.decoded += 1;
            assert!(d.identity.is_some());
            if row.kind() == "position" && check_position(row, &frame, &d) {
                n.positions_checked += 1;
            }
            let alarm = row.expect("alarm").or_else(|| {
                DERIVED_ALARMS
                    .iter()
                    .find(|(i, _)| *i == row.index())
                    .map(|(_, a)| *a)
            });
            if let Some(name) = alarm {
                assert_eq!(alarm_kinds(&d), vec![kind_for(name)], "row {}", row.index());
                n.alarms_asserted += 1;
            }
        }
    }
    eprintln!("watch.tsv: {n:?}");
    assert_eq!(n.rows, 50);
    assert_eq!(n.frames, 55, "row 8 is six JXTK frames");
    assert_eq!(n.decoded, 55);
    assert_eq!(n.positions_checked, 2);
    assert_eq!(n.alarms_asserted, 9);
}

#[test]
fn watch_tsv_null_rows_behave() {
    let rows = load("watch.tsv");
    let by_index = |i: usize| rows.iter().find(|r| r.index() == i).unwrap();
    let parse = |i: usize| watch::parse(&by_index(i).payload, &mut Session::new()).unwrap();
    // LK with fewer than three values: a heartbeat without battery; with three: battery 100.
    let short = parse(32);
    assert_eq!(short.reports, vec![heartbeat(None)]);
    assert_eq!(
        short.reply.as_deref(),
        Some(&b"[SG*9081000548*0002*LK]"[..])
    );
    assert_eq!(parse(38).reports, vec![heartbeat(Some(100))]);
    assert_eq!(
        parse(35).reply.as_deref(),
        Some(&b"[3G*8800000015*0003*TKQ]"[..])
    );
    // Row 8: six voice chunks, each acknowledged with JXTKR,1 and its index.
    let chunks = frames(by_index(8));
    let mut session = Session::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let d = watch::parse(chunk, &mut session).unwrap();
        let expected = format!("[ZJ*789468050042692*{:04x}*0007*JXTKR,1]", 0x34 + i);
        assert_eq!(d.reply.as_deref(), Some(expected.as_bytes()), "chunk {i}");
        assert_eq!(d.serial, Some(0x34 + i as u32));
    }
}

fn heartbeat(battery_pct: Option<u8>) -> Report {
    Report::Heartbeat {
        battery_pct,
        mains: None,
        signal_pct: None,
    }
}

#[test]
fn watch_framing_tsv_every_row() {
    let rows = load("watch_framing.tsv");
    for row in &rows {
        let expected = hex::decode(row.expect("frame").unwrap()).unwrap();
        for chunk in [usize::MAX, 1, 2, 3, 7, 64] {
            let mut codec = WatchCodec::default();
            let out = run_codec(&mut codec, &row.payload, chunk);
            let first = out.first().cloned().expect("a frame").expect("no error");
            assert_eq!(first, expected, "row {} chunk {chunk}", row.index());
            assert!(out.iter().all(Result::is_ok));
            assert_eq!(codec.skipped_total(), 0);
        }
    }
    eprintln!(
        "watch_framing.tsv: {} rows exercised, all cut exactly",
        rows.len()
    );
    assert_eq!(rows.len(), 7);
}

/// The first frame of a watch.tsv row as sent on the wire (row 8's first JXTK chunk).
fn wire_frame(row: &Row) -> Vec<u8> {
    let end = row.payload.iter().position(|&b| b == b']').unwrap();
    row.payload[..=end].to_vec()
}

#[test]
fn watch_len_check_tsv_wrong_lengths_are_accepted() {
    let checks = load("watch_len_check.tsv");
    let frames = load("watch.tsv");
    let (mut ok, mut wrong) = (0, 0);
    for check in &checks {
        let row = frames.iter().find(|r| r.index() == check.index()).unwrap();
        let wire = if row.col("encoding") == "hex" {
            wire_frame(row)
        } else {
            row.payload.clone()
        };
        let matches = watch::declared_len_matches(&wire).expect("a watch frame");
        assert_eq!(
            matches,
            check.col("len_ok") == "yes",
            "row {}",
            check.index()
        );
        if matches {
            ok += 1;
        } else {
            wrong += 1;
            let d = watch::parse(&wire, &mut Session::new()).expect("not rejected on length");
            assert_eq!(d.identity.as_deref(), Some(check.col("id")));
        }
    }
    assert_eq!((ok, wrong), (36, 14));
    // Through the codec, all wire-valid frames (row 50 is pre-unescaped) come out intact.
    let stream: Vec<u8> = frames
        .iter()
        .filter(|r| r.index() != 50)
        .flat_map(|r| r.payload.clone())
        .collect();
    let mut codec = WatchCodec::default();
    let out = run_codec(&mut codec, &stream, 97);
    assert_eq!(out.len(), 48 + 6);
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(
        codec.length_mismatches(),
        14,
        "row 50 (not on the stream) has a correct length"
    );
    assert_eq!(codec.skipped_total(), 0);
    eprintln!(
        "watch_len_check.tsv: {} rows, {ok} correct, {wrong} wrong and accepted",
        checks.len()
    );
}

fn reply_of(frame: &[u8]) -> Option<Vec<u8>> {
    watch::parse(frame, &mut Session::new()).unwrap().reply
}

#[test]
fn replies_are_byte_exact() {
    let cases: &[(&[u8], Option<&[u8]>)] = &[
        (b"[3G*4700186508*000B*LK,0,10,100]", Some(b"[3G*4700186508*0002*LK]")),
        (b"[SG*8800000015*0002*LK]", Some(b"[SG*8800000015*0002*LK]")),
        (
            b"[ZJ*014111001350304*0034*0009*LK,0,0,19]",
            Some(b"[ZJ*014111001350304*0034*0002*LK]"),
        ),
        (
            b"[ZJ*689466020014198*0003*0113*AL,221121,085515,V,00.000000,N,000.000000,E,0,0,0,0,0,44,0,0,00100000,1]",
            Some(b"[ZJ*689466020014198*0003*0002*AL]"),
        ),
        (
            b"[3G*6907919734*003e*AL_LTE,170525,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]",
            Some(b"[3G*6907919734*0002*AL]"),
        ),
        (b"[3G*1234567890*0013*INIT,13800138000,1]", Some(b"[3G*1234567890*0006*INIT,1]")),
        (b"[3G*8800000015*0003*TKQ]", Some(b"[3G*8800000015*0003*TKQ]")),
        (b"[3G*8800000015*0004*TKQ2]", Some(b"[3G*8800000015*0004*TKQ2]")),
        (b"[3G*8800000015*0009*UD2,1,2,3]", None),
        (b"[3G*9705141740*000B*oxygen,0,98]", None),
    ];
    for (request, reply) in cases {
        assert_eq!(
            reply_of(request).as_deref(),
            *reply,
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn init_is_a_login_and_alarm_carries_location_and_raw_code() {
    let d = watch::parse(b"[3G*1234567890*0004*INIT]", &mut Session::new()).unwrap();
    assert_eq!(d.reports, vec![Report::Login]);
    let frame = b"[3G*8308373902*0080*AL,230817,095346,A,47.083950,N,15.4821850,E,7.60,273.8,0.0,4,15,44,0,0,00200001,2]";
    let d = watch::parse(frame, &mut Session::new()).unwrap();
    let loc = location(&d).unwrap();
    assert!((loc.lat - 47.08395).abs() < 1e-9 && (loc.lon - 15.482185).abs() < 1e-9 && loc.valid);
    assert_eq!(loc.time, Some(unix("2017-08-23 09:53:46")));
    let raw: Vec<_> = d
        .reports
        .iter()
        .filter_map(|r| match r {
            Report::Alarm { kind, raw_code, .. } => Some((*kind, raw_code.as_str())),
            _ => None,
        })
        .collect();
    // Every mapped bit, most urgent first: fall (bit 21), then low battery (bit 0).
    assert_eq!(
        raw,
        [
            (AlarmKind::Fall, "watch:AL:00200001"),
            (AlarmKind::LowBattery, "watch:AL:00200001")
        ]
    );
    assert_eq!(
        d.reports.last(),
        Some(&Report::Heartbeat {
            battery_pct: Some(44),
            mains: None,
            signal_pct: Some(15)
        })
    );
    // Geofence enter only: a restore, no alarm.
    let enter = b"[3G*1*0000*AL,230817,095346,A,47.0,N,15.4,E,7.60,273.8,0.0,4,15,44,0,0,00080000]";
    let d = watch::parse(enter, &mut Session::new()).unwrap();
    assert!(alarm_kinds(&d).is_empty());
    assert!(d.reports.contains(&Report::Restore {
        raw_code: "watch:AL:00080000".into()
    }));
    // A garbage body still raises the alarm.
    let d = watch::parse(b"[3G*1234567890*0005*AL,xx]", &mut Session::new()).unwrap();
    assert_eq!(alarm_kinds(&d), [AlarmKind::Sos]);
    assert_eq!(d.reply.as_deref(), Some(&b"[3G*1234567890*0002*AL]"[..]));
}

#[test]
fn commands_are_byte_exact() {
    let fresh = Session::new();
    let cmd = |c: &ServerCommand, id: &str, s: &Session| watch::encode_command(c, id, s);
    let id = "123456789012345";
    assert_eq!(
        cmd(&ServerCommand::Reset, id, &fresh).unwrap(),
        b"[CS*123456789012345*0005*RESET]"
    );
    let one = ServerCommand::SetSosNumbers(vec!["123456789".into()]);
    assert_eq!(
        cmd(&one, id, &fresh).unwrap(),
        b"[CS*123456789012345*000e*SOS1,123456789]"
    );
    let mut three_g = Session::new();
    watch::parse(b"[3G*4700186508*0002*LK]", &mut three_g).unwrap();
    assert_eq!(
        cmd(&ServerCommand::Locate, "4700186508", &three_g).unwrap(),
        b"[SG*4700186508*0002*CR]"
    );
    let mut zj = Session::new();
    watch::parse(b"[ZJ*014111001350304*0034*0002*LK]", &mut zj).unwrap();
    assert_eq!(
        cmd(&ServerCommand::Locate, "014111001350304", &zj).unwrap(),
        b"[ZJ*014111001350304*0001*0002*CR]"
    );
    let all = ServerCommand::SetSosNumbers(vec!["111".into(), "+222".into(), "".into()]);
    assert_eq!(
        cmd(&all, "4700186508", &three_g).unwrap(),
        b"[SG*4700186508*0008*SOS1,111][SG*4700186508*0009*SOS2,+222][SG*4700186508*0005*SOS3,]"
    );
    let text = ServerCommand::Text("UPLOAD,60".into());
    assert_eq!(
        cmd(&text, "4700186508", &three_g).unwrap(),
        b"[SG*4700186508*0009*UPLOAD,60]"
    );
    for bad in [
        ServerCommand::SetSosNumbers(vec![]),
        ServerCommand::SetSosNumbers(vec!["1".into(); 4]),
        ServerCommand::SetSosNumbers(vec!["12a".into()]),
        ServerCommand::Text("A]B".into()),
        ServerCommand::Text(String::new()),
    ] {
        assert_eq!(cmd(&bad, id, &fresh), None, "{bad:?}");
    }
    assert_eq!(cmd(&ServerCommand::Reset, "12*34", &fresh), None);
}

#[test]
fn command_echoes_are_command_results() {
    for (frame, text) in [
        (&b"[SG*4700186508*0002*CR]"[..], "CR"),
        (b"[3G*4700186508*0005*RESET]", "RESET"),
        (b"[3G*4700186508*0004*SOS1]", "SOS1"),
        (b"[3G*4700186508*0009*UPLOAD,60]", "UPLOAD,60"),
    ] {
        let d = watch::parse(frame, &mut Session::new()).unwrap();
        assert_eq!(d.reports, vec![Report::CommandResult { text: text.into() }]);
        assert_eq!(d.reply, None);
    }
}
