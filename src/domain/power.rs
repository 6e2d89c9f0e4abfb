//! Low battery and mains loss from heartbeat state.
//!
//! Many devices never send a "low battery" or "power lost" alarm: they only report their battery
//! and mains in every heartbeat. [`PowerWatch`] turns those reports into the same technical alarms a
//! device's own frame would raise, once per episode: a battery at or below [`LOW_BATTERY_PCT`]
//! raises `low_battery` once, and again only after it was charged to [`RECHARGED_PCT`]; mains off
//! raises `power_loss` once, and again only after mains came back. Mains is watched only where it
//! means mains: a home unit's flag (native protocol), not a wearable's "charging" bit (GT06, H02,
//! 3G watch), which is off whenever the watch is off its charger. An alarm is raised until it is
//! stored ([`PowerWatch::settle`]), so a store outage delays it without losing it.

use std::collections::HashMap;

use onekey_protocol::AlarmKind;

use super::{DeviceEvent, DeviceStatus, EventBody, Millis};

/// A battery at or below this share is low.
pub const LOW_BATTERY_PCT: u8 = 20;
/// A low battery counts as charged again at this share.
pub const RECHARGED_PCT: u8 = 30;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Raised {
    #[default]
    No,
    /// Handed to the store, not yet committed.
    Pending,
    Yes,
}

#[derive(Debug, Default)]
struct Flags {
    low_battery: Raised,
    power_loss: Raised,
}

impl Flags {
    fn of(&mut self, kind: AlarmKind) -> Option<&mut Raised> {
        match kind {
            AlarmKind::LowBattery => Some(&mut self.low_battery),
            AlarmKind::PowerLoss => Some(&mut self.power_loss),
            _ => None,
        }
    }
}

/// Per device: which power alarms its heartbeats have raised.
#[derive(Debug, Default)]
pub struct PowerWatch {
    devices: HashMap<i64, Flags>,
}

impl PowerWatch {
    /// The power alarms `status` raises for `device` now (each marked pending until settled);
    /// `mains_powered`: the device's mains flag means mains power.
    pub fn observe(
        &mut self,
        device: i64,
        status: &DeviceStatus,
        mains_powered: bool,
    ) -> Vec<AlarmKind> {
        let mains = status.mains.filter(|_| mains_powered);
        if status.battery_pct.is_none() && mains.is_none() {
            return Vec::new();
        }
        let flags = self.devices.entry(device).or_default();
        let mut raised = Vec::new();
        match status.battery_pct {
            Some(b) if b <= LOW_BATTERY_PCT && flags.low_battery == Raised::No => {
                flags.low_battery = Raised::Pending;
                raised.push(AlarmKind::LowBattery);
            }
            Some(b) if b >= RECHARGED_PCT => flags.low_battery = Raised::No,
            _ => {}
        }
        match mains {
            Some(false) if flags.power_loss == Raised::No => {
                flags.power_loss = Raised::Pending;
                raised.push(AlarmKind::PowerLoss);
            }
            Some(true) => flags.power_loss = Raised::No,
            _ => {}
        }
        raised
    }

    /// Records whether the alarm `observe` raised was stored; when it was not, the next
    /// heartbeat raises it again.
    pub fn settle(&mut self, device: i64, kind: AlarmKind, stored: bool) {
        if let Some(flag) = self.devices.get_mut(&device).and_then(|f| f.of(kind))
            && *flag == Raised::Pending
        {
            *flag = if stored { Raised::Yes } else { Raised::No };
        }
    }
}

/// The event of a power alarm raised from heartbeat state. Its dedup key names the day, so a
/// restart (which forgets the flags) does not store the same episode twice on one day.
pub fn power_event(
    device_id: i64,
    elder_id: Option<i64>,
    kind: AlarmKind,
    status: &DeviceStatus,
    now: Millis,
) -> DeviceEvent {
    let day = now.div_euclid(86_400_000);
    let state = match kind {
        AlarmKind::LowBattery => format!("battery={}", status.battery_pct.unwrap_or(0)),
        _ => "mains=off".to_string(),
    };
    DeviceEvent {
        device_id,
        elder_id,
        dedup_key: format!("state:{}:{day}", kind.as_str()),
        seq: None,
        device_time: None,
        received_at: now,
        raw_code: format!("state:{state}"),
        raw: None,
        body: EventBody::Alarm {
            kind,
            location: status.location,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battery(b: u8) -> DeviceStatus {
        DeviceStatus {
            battery_pct: Some(b),
            ..DeviceStatus::default()
        }
    }

    fn mains(on: bool) -> DeviceStatus {
        DeviceStatus {
            mains: Some(on),
            ..DeviceStatus::default()
        }
    }

    #[test]
    fn a_draining_battery_raises_low_battery_once_per_charge() {
        let mut w = PowerWatch::default();
        assert!(w.observe(1, &battery(60), true).is_empty());
        assert_eq!(
            w.observe(1, &battery(20), true),
            vec![AlarmKind::LowBattery]
        );
        w.settle(1, AlarmKind::LowBattery, true);
        assert!(w.observe(1, &battery(15), true).is_empty());
        assert!(
            w.observe(1, &battery(25), true).is_empty(),
            "not yet recharged"
        );
        assert!(w.observe(1, &battery(18), true).is_empty());
        assert!(w.observe(1, &battery(80), true).is_empty());
        assert_eq!(
            w.observe(1, &battery(10), true),
            vec![AlarmKind::LowBattery]
        );
        assert!(w.observe(2, &battery(50), true).is_empty(), "per device");
    }

    #[test]
    fn mains_loss_is_raised_once_until_mains_returns() {
        let mut w = PowerWatch::default();
        assert!(w.observe(1, &mains(true), true).is_empty());
        assert_eq!(
            w.observe(1, &mains(false), true),
            vec![AlarmKind::PowerLoss]
        );
        w.settle(1, AlarmKind::PowerLoss, true);
        assert!(w.observe(1, &mains(false), true).is_empty());
        assert!(w.observe(1, &DeviceStatus::default(), true).is_empty());
        assert!(w.observe(1, &mains(true), true).is_empty());
        assert_eq!(
            w.observe(1, &mains(false), true),
            vec![AlarmKind::PowerLoss]
        );
    }

    #[test]
    fn a_wearables_charging_bit_is_not_mains() {
        let mut w = PowerWatch::default();
        assert!(w.observe(1, &mains(false), false).is_empty());
        let low = DeviceStatus {
            mains: Some(false),
            ..battery(10)
        };
        assert_eq!(w.observe(1, &low, false), vec![AlarmKind::LowBattery]);
    }

    #[test]
    fn an_alarm_not_stored_is_raised_again_by_the_next_heartbeat() {
        let mut w = PowerWatch::default();
        assert_eq!(w.observe(1, &battery(5), true), vec![AlarmKind::LowBattery]);
        assert!(w.observe(1, &battery(5), true).is_empty(), "pending");
        w.settle(1, AlarmKind::LowBattery, false);
        assert_eq!(w.observe(1, &battery(5), true), vec![AlarmKind::LowBattery]);
    }

    #[test]
    fn the_event_names_the_state_and_the_day() {
        let e = power_event(
            7,
            Some(3),
            AlarmKind::LowBattery,
            &battery(12),
            86_400_000 * 3 + 5,
        );
        assert_eq!(e.dedup_key, "state:low_battery:3");
        assert_eq!(e.raw_code, "state:battery=12");
        assert!(matches!(
            e.body,
            EventBody::Alarm {
                kind: AlarmKind::LowBattery,
                ..
            }
        ));
    }
}
