//! Event code tables: SIA DC-03 codes and Contact ID event codes onto the shared vocabulary.

use crate::report::AlarmKind;

/// What an event code means to the dispatch server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Raise this alarm.
    Alarm(AlarmKind),
    /// A condition cleared.
    Restore,
    /// The user cancelled the alarm at the panel (Contact ID 406, SIA `OC`).
    Cancel,
    /// A periodic or manual test: the link works.
    LinkTest,
    /// Known, acknowledged, but nothing to dispatch (arming, disarming…).
    Info,
}

use AlarmKind as K;
use Mapping::{Alarm, Cancel, Info, LinkTest, Restore};

/// SIA-DCS two-letter codes. A code missing here is unknown and answered with `DUH`.
pub const SIA_TABLE: &[(&str, Mapping)] = &[
    ("QA", Alarm(K::Sos)),         // emergency (personal emergency, CID 101)
    ("MA", Alarm(K::Medical)),     // medical alarm
    ("PA", Alarm(K::Panic)),       // panic alarm
    ("HA", Alarm(K::Panic)),       // holdup / duress alarm
    ("FA", Alarm(K::Fire)),        // fire alarm
    ("KA", Alarm(K::Fire)),        // heat alarm
    ("GA", Alarm(K::Gas)),         // gas alarm
    ("WA", Alarm(K::WaterLeak)),   // water alarm
    ("NA", Alarm(K::Inactivity)),  // no activity
    ("TA", Alarm(K::Tamper)),      // tamper alarm
    ("JA", Alarm(K::Tamper)),      // user code tamper
    ("AT", Alarm(K::PowerLoss)),   // AC trouble
    ("YT", Alarm(K::LowBattery)),  // system battery trouble
    ("XT", Alarm(K::LowBattery)),  // transmitter battery trouble
    ("FT", Alarm(K::DeviceFault)), // fire trouble
    ("UT", Alarm(K::DeviceFault)), // untyped zone trouble
    ("QH", Restore),
    ("QR", Restore),
    ("MH", Restore),
    ("MR", Restore),
    ("PH", Restore),
    ("PR", Restore),
    ("HH", Restore),
    ("HR", Restore),
    ("FH", Restore),
    ("FR", Restore),
    ("FJ", Restore),
    ("KH", Restore),
    ("KR", Restore),
    ("GH", Restore),
    ("GR", Restore),
    ("WH", Restore),
    ("WR", Restore),
    ("TR", Restore),
    ("JC", Restore), // user code tamper cancelled
    ("AR", Restore),
    ("YR", Restore),
    ("XR", Restore),
    ("UJ", Restore),
    ("OC", Cancel),   // cancel report: the user cancelled the alarm
    ("RP", LinkTest), // automatic test
    ("RX", LinkTest), // manual test
    ("CL", Info),     // closing (armed)
    ("OP", Info),     // opening (disarmed)
    ("CA", Info),
    ("OA", Info),
    ("CG", Info),
    ("OG", Info),
];

/// Contact ID event codes: what a new event (qualifier 1, or 6 = still present) means, and the SIA
/// codes of the new event and of its restoral (qualifier 3). A restoral of an alarm is a
/// [`Mapping::Restore`]; of a test or info code, the same mapping. Missing codes get `DUH`.
pub const CID_TABLE: &[(u16, Mapping, &str, &str)] = &[
    (100, Alarm(K::Medical), "MA", "MH"),
    (101, Alarm(K::Sos), "QA", "QH"), // personal emergency
    (110, Alarm(K::Fire), "FA", "FH"),
    (111, Alarm(K::Smoke), "FA", "FH"),
    (112, Alarm(K::Fire), "FA", "FH"), // combustion
    (114, Alarm(K::Fire), "KA", "KH"), // heat
    (115, Alarm(K::Fire), "FA", "FH"), // pull station
    (117, Alarm(K::Fire), "FA", "FH"), // flame
    (120, Alarm(K::Panic), "PA", "PH"),
    (121, Alarm(K::Panic), "HA", "HH"), // duress
    (122, Alarm(K::Panic), "HA", "HH"), // silent panic
    (123, Alarm(K::Panic), "PA", "PH"), // audible panic
    (137, Alarm(K::Tamper), "TA", "TR"),
    (144, Alarm(K::Tamper), "TA", "TR"),
    (145, Alarm(K::Tamper), "TA", "TR"),
    (151, Alarm(K::Gas), "GA", "GH"),
    (154, Alarm(K::WaterLeak), "WA", "WH"),
    (162, Alarm(K::Gas), "GA", "GH"), // carbon monoxide
    (301, Alarm(K::PowerLoss), "AT", "AR"),
    (302, Alarm(K::LowBattery), "YT", "YR"),
    (383, Alarm(K::Tamper), "TA", "TR"),
    (384, Alarm(K::LowBattery), "XT", "XR"),
    (401, Info, "OP", "CL"),   // open / close by user
    (402, Info, "OG", "CG"),   // group open / close
    (403, Info, "OA", "CA"),   // automatic open / close
    (406, Cancel, "OC", "OC"), // cancel: the user called off the alarm
    (407, Info, "OP", "CL"),   // remote arm / disarm
    (601, LinkTest, "RX", "RX"),
    (602, LinkTest, "RP", "RP"),
];

/// The mapping of a SIA-DCS code, `None` when unknown.
pub fn sia_mapping(code: &str) -> Option<Mapping> {
    SIA_TABLE.iter().find(|(c, _)| *c == code).map(|&(_, m)| m)
}

/// The mapping of a Contact ID event with its qualifier (1 new, 3 restore, 6 still present).
pub fn cid_mapping(qualifier: u8, event: u16) -> Option<Mapping> {
    let &(_, on_new, _, _) = CID_TABLE.iter().find(|(e, ..)| *e == event)?;
    Some(match (qualifier, on_new) {
        (3, Alarm(_)) => Restore,
        (1 | 3 | 6, m) => m,
        _ => return None,
    })
}

/// The SIA code equivalent to a Contact ID event, `None` when the table has none.
pub fn cid_to_sia(qualifier: u8, event: u16) -> Option<&'static str> {
    let &(_, _, new, restore) = CID_TABLE.iter().find(|(e, ..)| *e == event)?;
    Some(if qualifier == 3 { restore } else { new })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_cancel_is_a_cancel_in_both_code_sets() {
        assert_eq!(cid_mapping(1, 406), Some(Mapping::Cancel));
        assert_eq!(sia_mapping("OC"), Some(Mapping::Cancel));
        // A restoral of an alarm is still only a restore.
        assert_eq!(cid_mapping(3, 101), Some(Mapping::Restore));
    }
}
