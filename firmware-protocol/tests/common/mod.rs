//! The example frames of `PROTOCOL.md`: one story of a device's day, covering every message type.
#![allow(dead_code)] // each test crate uses a different part

use onekey_protocol::*;

/// The example key: bytes 0x00, 0x01, …, 0x1f.
pub const KEY: Key = {
    let mut k = [0u8; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// The example device id: a 15-digit IMEI.
pub const DEVICE_ID: u64 = 860_123_456_789_012;

/// The server's clock in the examples: 2024-06-10 06:13:20 UTC.
pub const NOW: u32 = 1_718_000_000;

/// Near 太平桥 community, Jizhou.
pub const HOME: Location = Location {
    lat_e6: 27_113_450,
    lon_e6: 114_979_870,
    accuracy_m: 25,
};

fn device(seq: u32, timestamp: u32) -> Header {
    Header {
        device_id: DEVICE_ID,
        seq,
        timestamp,
    }
}

fn server(seq: u32, timestamp: u32) -> Header {
    device(seq, timestamp)
}

fn ack(acked_seq: u32, status: AckStatus, reason: RejectReason, server_time: u32) -> Message {
    Message::Ack(Ack {
        acked_seq,
        status,
        reason,
        server_time,
    })
}

/// `(name, header, message)` of every example, in the order of `PROTOCOL.md`.
pub fn examples() -> Vec<(&'static str, Header, Message)> {
    use AckStatus::*;
    vec![
        (
            "hello",
            device(1025, 0),
            Message::Hello(Hello {
                firmware_version: 0x01_02_03,
                model: 0x0A01,
                heartbeat_interval_s: 600,
            }),
        ),
        (
            "ack_hello",
            server(5001, NOW),
            ack(1025, Stored, RejectReason::None, NOW),
        ),
        (
            "heartbeat",
            device(1026, NOW + 60),
            Message::Heartbeat(Heartbeat {
                battery_percent: Some(87),
                mains_power: false,
                signal_percent: Some(64),
                location: Some(HOME),
            }),
        ),
        (
            "heartbeat_no_location",
            device(1027, NOW + 660),
            Message::Heartbeat(Heartbeat {
                battery_percent: None,
                mains_power: true,
                signal_percent: None,
                location: None,
            }),
        ),
        (
            "alarm_sos",
            device(1028, NOW + 900),
            Message::Alarm(Alarm {
                kind: AlarmKind::Sos,
                location: None,
            }),
        ),
        (
            "ack_stored",
            server(5002, NOW + 901),
            ack(1028, Stored, RejectReason::None, NOW + 901),
        ),
        (
            "ack_duplicate",
            server(5003, NOW + 911),
            ack(1028, Duplicate, RejectReason::None, NOW + 911),
        ),
        (
            "command_help_coming",
            server(5004, NOW + 960),
            Message::Command(Command {
                command_id: 9001,
                kind: CommandKind::HelpComing,
                argument: 0,
            }),
        ),
        (
            "command_result",
            device(1029, NOW + 961),
            Message::CommandResult(CommandResult {
                command_id: 9001,
                outcome: CommandOutcome::Ok,
            }),
        ),
        (
            "cancel",
            device(1030, NOW + 1000),
            Message::Cancel(Cancel { alarm_seq: 1028 }),
        ),
        (
            "alarm_fall_located",
            device(1031, NOW + 3600),
            Message::Alarm(Alarm {
                kind: AlarmKind::Fall,
                location: Some(HOME),
            }),
        ),
        (
            "ack_rejected_replay",
            server(5005, NOW + 3700),
            ack(17, Rejected, RejectReason::Replay, NOW + 3700),
        ),
        ("check_in", device(1032, NOW + 7200), Message::CheckIn),
        (
            "service_request",
            device(1033, NOW + 7300),
            Message::ServiceRequest(ServiceRequest {
                kind: ServiceKind::Housekeeping,
            }),
        ),
        (
            "command_set_heartbeat",
            server(5006, NOW + 7400),
            Message::Command(Command {
                command_id: 9002,
                kind: CommandKind::SetHeartbeat,
                argument: 300,
            }),
        ),
    ]
}

/// Encodes with the example key.
pub fn encode_example(header: &Header, message: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(header, message, &KEY, &mut buf).expect("example encodes");
    buf[..n].to_vec()
}
