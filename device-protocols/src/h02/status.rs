//! The H02 32-bit status word: alarms are active-LOW bits.

use crate::report::{AlarmKind, Location, Report};

/// The reference name of the alarm a status word carries, at most one.
///
/// The bits are active-low: bit 1 or bit 18 clear → `sos`, bit 19 → `powerCut`, bit 0 →
/// `vibration`, bit 2 → `overspeed`. Only the first match is reported, as in the reference, but
/// checked in this order rather than the reference's (vibration, sos, overspeed, powerCut), so a
/// vibration or overspeed bit can never hide an SOS or a power cut.
pub fn status_alarm_name(status: u32) -> Option<&'static str> {
    let clear = |bit: u32| status & (1 << bit) == 0;
    if clear(1) || clear(18) {
        Some("sos")
    } else if clear(19) {
        Some("powerCut")
    } else if clear(0) {
        Some("vibration")
    } else if clear(2) {
        Some("overspeed")
    } else {
        None
    }
}

/// The [`AlarmKind`] a status word carries (see [`status_alarm_name`] and [`crate::gt06::alarm_kind`]).
pub fn status_alarm(status: u32) -> Option<AlarmKind> {
    status_alarm_name(status).map(crate::gt06::alarm_kind)
}

/// The alarm report of a status word, `raw_code` `h02:status:XXXXXXXX`.
pub(crate) fn alarm_report(status: u32, location: Option<Location>) -> Option<Report> {
    status_alarm(status).map(|kind| Report::Alarm {
        kind,
        location,
        raw_code: format!("h02:status:{status:08X}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_low_bits() {
        assert_eq!(status_alarm_name(0xFFFF_FFFF), None);
        assert_eq!(status_alarm_name(0xFFFF_FBFF), None);
        assert_eq!(status_alarm_name(0xFFFF_FBFD), Some("sos"));
        assert_eq!(status_alarm_name(0xFFFB_FFFF), Some("sos"));
        assert_eq!(status_alarm_name(0xFFF7_FBFF), Some("powerCut"));
        assert_eq!(status_alarm_name(0xFFFF_FFFE), Some("vibration"));
        assert_eq!(
            status_alarm_name(0xFFFF_FFFC),
            Some("sos"),
            "SOS wins over vibration"
        );
        assert_eq!(status_alarm_name(0xFFFF_FFFB), Some("overspeed"));
    }
}
