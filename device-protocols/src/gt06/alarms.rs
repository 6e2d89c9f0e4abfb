//! GT06 alarm codes → the reference's alarm names → [`AlarmKind`].

use crate::report::{AlarmKind, Location, Report};

use super::Model;

/// Maps an alarm name as the reference (traccar `Position.ALARM_*`) spells it onto [`AlarmKind`].
///
/// | reference name | `AlarmKind` |
/// |---|---|
/// | `sos` | `Sos` |
/// | `fallDown` | `Fall` |
/// | `powerCut` | `PowerLoss` |
/// | `lowBattery`, `lowPower` | `LowBattery` |
/// | `removing`, `tampering` | `Tamper` |
/// | `geofenceExit`, `geofence` (direction unknown) | `Wandering` |
/// | anything else (`vibration`, `overspeed`, `geofenceEnter`, `powerOff`, `door`, `general`, `accident`, `hardBraking`, `hardAcceleration`, `hardCornering`, `jamming`, …) and codes without a name | `DeviceFault` |
///
/// `DeviceFault` doubles as "a non-emergency device alarm the shared vocabulary has no word for":
/// such alarms are reported, never dropped, with the protocol's code in `raw_code`.
pub fn alarm_kind(reference_name: &str) -> AlarmKind {
    match reference_name {
        "sos" => AlarmKind::Sos,
        "fallDown" => AlarmKind::Fall,
        "powerCut" => AlarmKind::PowerLoss,
        "lowBattery" | "lowPower" => AlarmKind::LowBattery,
        "removing" | "tampering" => AlarmKind::Tamper,
        "geofenceExit" | "geofence" => AlarmKind::Wandering,
        _ => AlarmKind::DeviceFault,
    }
}

/// The reference name of an alarm-byte code (12-bit for 0x27/0xA4), `None` for codes it does not
/// name. `model` changes a few meanings (`LW*` devices).
pub(crate) fn alarm_byte_name(code: u16, model: Model) -> Option<&'static str> {
    Some(match code {
        0x01 => "sos",
        0x02 => "powerCut",
        0x03 | 0x09 => "vibration",
        0x04 => "geofenceEnter",
        0x05 => "geofenceExit",
        0x06 => "overspeed",
        0x0C | 0x13 | 0x25 | 0x32 => "tampering",
        0x0E | 0x0F => "lowBattery",
        0x11 => "powerOff",
        0x14 => "door",
        0x18 if model == Model::Lw => "accident",
        0x18 => "removing",
        0x19 if model == Model::Lw => "hardAcceleration",
        0x19 => "lowBattery",
        0x1A | 0x27 | 0xF1 => "hardBraking",
        0x1B | 0x2A | 0x2B | 0x2E => "hardCornering",
        0x23 => "fallDown",
        0x26 | 0xF0 => "hardAcceleration",
        0x28 => "hardBraking",
        0x29 => "hardAcceleration",
        0x2C | 0xF2 => "accident",
        0x30 => "jamming",
        0x33 => "lock",
        0x34 => "unlock",
        0x53 => "fuelLeak",
        0x5B | 0x5C => "temperature",
        0xC9 => "idle",
        0x0107 | 0x010B => "jamming",
        _ => return None,
    })
}

/// The reference name of terminal-information bits 3–5 (value 1–7).
pub(crate) fn terminal_alarm_name(value: u8, vxt01: bool) -> Option<&'static str> {
    match value {
        1 => Some("vibration"),
        2 => Some("powerCut"),
        3 => Some("lowBattery"),
        4 => Some("sos"),
        6 => Some("geofence"),
        7 if vxt01 => Some("overspeed"),
        7 => Some("removing"),
        _ => None,
    }
}

/// The reference name of a 0x95 (JC100/JC400) event.
pub(crate) fn event_name(event: u8, extended: bool) -> &'static str {
    match event {
        0x01 if extended => "sos",
        0x0E => "lowPower",
        0x76 => "temperature",
        0x80 => "vibration",
        0x87 => "overspeed",
        0x88 => "powerCut",
        0x90 => "hardAcceleration",
        0x91 => "hardBraking",
        0x92 => "hardCornering",
        0x93 => "accident",
        _ => "general",
    }
}

/// The reference name of a modular (0x70) event, `None` for events that are not alarms.
pub(crate) fn module_event_name(event: u8) -> Option<&'static str> {
    match event {
        0x1A => Some("lowBattery"),
        0x21 => Some("powerCut"),
        0x1D => Some("powerOff"),
        0x12 => Some("removing"),
        _ => None,
    }
}

/// Collects the alarms of one frame: one per [`AlarmKind`], codes of the same kind joined by `,`.
#[derive(Debug, Default)]
pub(crate) struct Alarms(Vec<(AlarmKind, String)>);

impl Alarms {
    /// Adds an alarm of `kind` with the protocol code `raw`.
    pub fn push(&mut self, kind: AlarmKind, raw: String) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, codes)) => {
                codes.push(',');
                codes.push_str(&raw);
            }
            None => self.0.push((kind, raw)),
        }
    }

    /// Adds an alarm-byte code (0 means none).
    pub fn alarm_byte(&mut self, code: u16, model: Model) {
        if code != 0 {
            let kind = alarm_byte_name(code, model).map_or(AlarmKind::DeviceFault, alarm_kind);
            let raw = if code > 0xFF {
                format!("gt06:0x{code:04X}")
            } else {
                format!("gt06:0x{code:02X}")
            };
            self.push(kind, raw);
        }
    }

    /// Adds the alarm in terminal-information bits 3–5, if any. Value 5 has no meaning in any source
    /// and is ignored, like 0 (normal).
    pub fn terminal(&mut self, terminal_info: u8, vxt01: bool) {
        let value = (terminal_info >> 3) & 0x07;
        if let Some(name) = terminal_alarm_name(value, vxt01) {
            self.push(alarm_kind(name), format!("gt06:ti:{value}"));
        }
    }

    /// True when no alarm was collected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The alarms as reports, each carrying `location`.
    pub fn into_reports(self, location: Option<Location>) -> impl Iterator<Item = Report> {
        self.0
            .into_iter()
            .map(move |(kind, raw_code)| Report::Alarm {
                kind,
                location,
                raw_code,
            })
    }
}
