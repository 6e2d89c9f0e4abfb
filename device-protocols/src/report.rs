//! The protocol-neutral output of every codec in this crate.

pub use onekey_protocol::AlarmKind;

/// A position fix as the device reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// Degrees north (negative south), WGS-84 as sent by the device.
    pub lat: f64,
    /// Degrees east (negative west).
    pub lon: f64,
    /// Estimated accuracy in metres, when the protocol carries one.
    pub accuracy_m: Option<f32>,
    /// Whether the device flagged the fix as valid (GPS "A"); cell/Wi-Fi fixes are `false`.
    pub valid: bool,
    /// The fix's own time (Unix seconds, UTC), when the frame carries one.
    pub time: Option<i64>,
}

/// One thing a frame says about the device or its wearer.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// The device announced itself (GT06 login, watch `INIT`, DC-09 first message on a link…).
    Login,
    /// A keep-alive with whatever state the frame carries.
    Heartbeat {
        /// Battery charge in percent (0–100), when known.
        battery_pct: Option<u8>,
        /// True when on mains power / charging, when known.
        mains: Option<bool>,
        /// Signal strength normalised to 0–100, when known.
        signal_pct: Option<u8>,
    },
    /// A position without an alarm.
    Position(Location),
    /// An alarm: the reason a device exists.
    Alarm {
        /// What happened, mapped onto the shared vocabulary.
        kind: AlarmKind,
        /// Where, when the frame says.
        location: Option<Location>,
        /// The protocol's own code for the alarm, for the event log (e.g. `gt06:0x01`, `sia:FA`,
        /// `cid:1101`).
        raw_code: String,
    },
    /// The device reports that a condition cleared (DC-09 restorals, a cancel key).
    Restore {
        /// The protocol's own code (e.g. `sia:KR`).
        raw_code: String,
    },
    /// The user called the alarm off at the device ("I'm OK": DC-09 Contact ID 406, SIA `OC`).
    Cancel {
        /// The protocol's own code (e.g. `cid:1406`).
        raw_code: String,
    },
    /// A supervision / periodic test message (DC-09 `NULL`, Contact ID 602).
    LinkTest,
    /// The device's answer to a server command.
    CommandResult {
        /// The text or code the device returned.
        text: String,
    },
}

/// The decoded content of one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The identity the frame claims (IMEI, watch id, DC-09 account), when it carries one. Frames
    /// that do not (GT06 after login) belong to the identity the connection logged in with.
    pub identity: Option<String>,
    /// The protocol's message serial / sequence number, when it has one; a retry repeats it.
    pub serial: Option<u32>,
    /// What the frame reports, in order.
    pub reports: Vec<Report>,
    /// The bytes the protocol expects back for this frame, if any. For a frame carrying an alarm the
    /// server sends them only after the alarm is committed.
    pub reply: Option<Vec<u8>>,
}

/// A command the server can send to a device, where its protocol has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCommand {
    /// Ask for a position report now.
    Locate,
    /// Set the SOS call numbers (watch `SOS1`/`SOS2`/`SOS3`).
    SetSosNumbers(Vec<String>),
    /// Restart the device.
    Reset,
    /// A free-form protocol text command (GT06 `0x80`, H02 commands).
    Text(String),
}
