//! The shared vocabulary of device events. Each enum has a stable one-byte wire code and a stable
//! snake_case name used in JSON, the database and metrics labels.

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($(#[$vmeta])* $variant = $code,)+ }

        impl $name {
            /// Every value, in wire-code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The one-byte wire code.
            pub const fn code(self) -> u8 { self as u8 }

            /// The value for a wire code, or `None` for an unknown code.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// Stable snake_case name (JSON, database, metrics labels).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label,)+ }
            }

            /// The value for a stable name, or `None`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($label => Some($name::$variant),)+ _ => None }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

// Lets the other modules of this crate declare their own wire enums the same way.
pub(crate) use wire_enum;

wire_enum! {
    /// What raised an alarm.
    AlarmKind {
        /// The elder pressed the call button (pendant, wall button, watch SOS key).
        Sos = 0x01, "sos";
        /// A fall detector fired.
        Fall = 0x02, "fall";
        /// Smoke detector.
        Smoke = 0x03, "smoke";
        /// Gas (natural gas, LPG, CO) detector.
        Gas = 0x04, "gas";
        /// Water leak / flood sensor.
        WaterLeak = 0x05, "water_leak";
        /// No movement seen for longer than the configured period.
        Inactivity = 0x06, "inactivity";
        /// The wearer left a geofence (wandering).
        Wandering = 0x07, "wandering";
        /// Battery below the device's threshold.
        LowBattery = 0x08, "low_battery";
        /// Mains power lost.
        PowerLoss = 0x09, "power_loss";
        /// Case opened or device taken off / removed from the wall.
        Tamper = 0x0A, "tamper";
        /// The device reports an internal fault.
        DeviceFault = 0x0B, "device_fault";
        /// A medical alarm from a panel (Contact ID 100).
        Medical = 0x0C, "medical";
        /// Fire alarm from a panel (Contact ID 110).
        Fire = 0x0D, "fire";
        /// Panic / duress from a panel (Contact ID 120).
        Panic = 0x0E, "panic";
    }
}

impl AlarmKind {
    /// True for alarms that mean a person may be in danger now (as opposed to a technical fault).
    pub const fn is_emergency(self) -> bool {
        matches!(
            self,
            AlarmKind::Sos
                | AlarmKind::Fall
                | AlarmKind::Smoke
                | AlarmKind::Gas
                | AlarmKind::WaterLeak
                | AlarmKind::Inactivity
                | AlarmKind::Wandering
                | AlarmKind::Medical
                | AlarmKind::Fire
                | AlarmKind::Panic
        )
    }
}

wire_enum! {
    /// Non-emergency services an elder can ask for with the service key.
    ServiceKind {
        /// 生活照料: help with daily living.
        DailyCare = 0x01, "daily_care";
        /// 家政服务: cleaning, cooking, repairs.
        Housekeeping = 0x02, "housekeeping";
        /// 精神关怀: someone to talk to, a visit.
        EmotionalCare = 0x03, "emotional_care";
        /// 健康咨询: a question for a nurse.
        HealthConsultation = 0x04, "health_consultation";
    }
}

wire_enum! {
    /// The outcome the server reports in an ACK.
    AckStatus {
        /// Committed to durable storage now.
        Stored = 0x00, "stored";
        /// Already committed earlier (a retry); nothing new was created.
        Duplicate = 0x01, "duplicate";
        /// Refused; the reason says why. The device must not retry the same frame unchanged.
        Rejected = 0x02, "rejected";
    }
}

wire_enum! {
    /// Why the server rejected a frame.
    RejectReason {
        /// No reason (used with `Stored` and `Duplicate`).
        None = 0x00, "none";
        /// The sequence number is older than the replay window.
        Replay = 0x01, "replay";
        /// The device's clock is too far from the server's.
        ClockSkew = 0x02, "clock_skew";
        /// The message is well-formed but not acceptable (unknown kind, bad field).
        Invalid = 0x03, "invalid";
        /// The device is registered but disabled.
        Disabled = 0x04, "disabled";
    }
}

wire_enum! {
    /// Commands the server sends to a device.
    CommandKind {
        /// Light/voice "help is coming" so the elder knows someone answered.
        HelpComing = 0x01, "help_coming";
        /// Ask the device to call the centre back (voice call over the module).
        CallBack = 0x02, "call_back";
        /// Change the heartbeat interval (argument: seconds).
        SetHeartbeat = 0x03, "set_heartbeat";
        /// Report a location now.
        Locate = 0x04, "locate";
        /// Ring the device so that a responder on scene can find it.
        Ring = 0x05, "ring";
    }
}

wire_enum! {
    /// How a device answers a command (in a `CommandResult`).
    CommandOutcome {
        /// Carried out.
        Ok = 0x00, "ok";
        /// This device cannot do that command.
        Unsupported = 0x01, "unsupported";
        /// The argument is out of the range the device accepts.
        InvalidArgument = 0x02, "invalid_argument";
        /// The device tried and failed (e.g. the voice call did not connect).
        Failed = 0x03, "failed";
        /// The device is busy (e.g. in a call) and did not start the command.
        Busy = 0x04, "busy";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for k in AlarmKind::ALL {
            assert_eq!(AlarmKind::from_code(k.code()), Some(*k));
            assert_eq!(AlarmKind::from_name(k.as_str()), Some(*k));
        }
        for k in ServiceKind::ALL {
            assert_eq!(ServiceKind::from_code(k.code()), Some(*k));
        }
        for k in CommandKind::ALL {
            assert_eq!(CommandKind::from_name(k.as_str()), Some(*k));
        }
        for k in CommandOutcome::ALL {
            assert_eq!(CommandOutcome::from_code(k.code()), Some(*k));
            assert_eq!(CommandOutcome::from_name(k.as_str()), Some(*k));
        }
        assert_eq!(AlarmKind::from_code(0xEE), None);
    }

    #[test]
    fn technical_alarms_are_not_emergencies() {
        assert!(AlarmKind::Sos.is_emergency());
        assert!(!AlarmKind::LowBattery.is_emergency());
        assert!(!AlarmKind::Tamper.is_emergency());
    }
}
