//! The simulated district's day, decided in advance from a seed: the dataset (areas, elders,
//! devices, responders with their shifts), what every device will send and when, how every person
//! behaves, and what the day is expected to raise (silent devices, a power cut).
//!
//! The day's shape: morning check-ins (7:00–9:30), service requests in the daytime, SOS presses
//! spread over the day with more in the morning and evening and a realistic share of false alarms
//! (cancelled within seconds), falls, smoke and gas, low batteries, tamper, a power cut in one
//! community in the afternoon (every device there reports mains loss at once), devices going
//! silent, and elders who give no sign of life at all.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::clock::Ms;
use crate::dataset::{self, Dataset, Rng, ShiftRec};
use crate::plan::{Action, DevicePlan, Link};

/// Minutes and hours on the clock.
pub const MINUTE: Ms = 60_000;
/// An hour.
pub const HOUR: Ms = 60 * MINUTE;
/// The day simulated: Wednesday 2 December 2026, 00:00 China Standard Time.
pub const DAY_START: Ms = 1_796_140_800_000;
/// The password every simulated responder's app signs in with.
pub const APP_PASSWORD: &str = "volunteer-pass";

/// How big a day, and how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Name (`small`, `jizhou`).
    pub name: String,
    /// Elders, one device each.
    pub elders: usize,
    /// Responders besides the grid workers.
    pub responders: usize,
    /// Grids per community (15 communities); `None`: the dataset's own scaling.
    pub grids_per_community: Option<usize>,
    /// How many times faster than the wall clock the day runs.
    pub scale: f64,
    /// Devices' heartbeat period, minutes.
    pub heartbeat_min: i64,
}

impl Preset {
    /// A preset by name.
    pub fn named(name: &str) -> Option<Preset> {
        match name {
            // A few hundred elders in about two minutes: what CI runs.
            "small" => Some(Preset {
                name: "small".into(),
                elders: 300,
                responders: 300,
                grids_per_community: None,
                scale: 720.0,
                heartbeat_min: 30,
            }),
            // The README's demo: a district a newcomer can watch, an hour in two minutes.
            "demo" => Some(Preset {
                name: "demo".into(),
                elders: 1000,
                responders: 1000,
                grids_per_community: None,
                scale: 30.0,
                heartbeat_min: 30,
            }),
            // Jizhou: 10,000 elders, about 10,000 volunteers and others, 300 grids, in about
            // 18 minutes.
            "jizhou" => Some(Preset {
                name: "jizhou".into(),
                elders: 10_000,
                responders: 10_000,
                grids_per_community: Some(20),
                scale: 80.0,
                heartbeat_min: 30,
            }),
            _ => None,
        }
    }
}

/// How a simulated responder behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Reference in the dataset.
    pub reference: String,
    /// Name (signs in with the phone).
    pub name: String,
    /// Phone (unique in the world).
    pub phone: String,
    /// Kind (`volunteer`, `grid_worker`…).
    pub kind: String,
    /// Home.
    pub home: (f64, f64),
    /// Shift today: (start, end) on the clock.
    pub shift: (Ms, Ms),
    /// Chance of accepting an offer of each category (`emergency`, `service`, `technical`,
    /// `welfare`).
    pub accept: BTreeMap<String, f64>,
    /// Chance of declining explicitly when not accepting (the rest let the offer lapse).
    pub decline: f64,
    /// Metres per second on the way.
    pub speed_mps: f64,
    /// A seed for this person's choices.
    pub seed: u64,
}

/// What a family member does with an alarm text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FamilyHabit {
    /// Replies `1` ("I'm going") after `delay` clock-ms.
    Goes(Ms),
    /// Replies `2` after `delay`.
    Cannot(Ms),
    /// Reads it and does not answer.
    Silent,
    /// The phone is off: the text is not delivered.
    Unreachable,
}

/// What the day is expected to raise, known from the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Devices that go silent early enough to be flagged (idents).
    pub silent: Vec<String>,
    /// The community whose power is cut, and when.
    pub power_cut: Option<(String, Ms)>,
}

/// The whole simulated world.
#[derive(Debug, Clone)]
pub struct World {
    /// The preset.
    pub preset: Preset,
    /// The directory to import.
    pub dataset: Dataset,
    /// Every device's day.
    pub devices: Vec<DevicePlan>,
    /// Every responder.
    pub people: Vec<Person>,
    /// Family phones and what their owners do.
    pub families: HashMap<String, FamilyHabit>,
    /// What should be raised.
    pub expected: Expected,
    /// The first moment of the day.
    pub start: Ms,
    /// 24 hours later.
    pub end: Ms,
}

fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    // Box–Muller from two uniforms.
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * z).exp()
}

/// A time of day weighted like a day's SOS calls: more in the morning and the evening.
fn sos_time(rng: &mut Rng) -> Ms {
    let hour = loop {
        let h = rng.below(24) as i64;
        let weight = match h {
            0..=5 => 0.35,
            6..=9 => 1.0,
            10..=16 => 0.7,
            17..=21 => 0.9,
            _ => 0.5,
        };
        if rng.unit() < weight {
            break h;
        }
    };
    hour * HOUR + rng.below(HOUR as u64) as Ms
}

fn minutes(m: i64) -> Ms {
    m * MINUTE
}

/// Builds the world of `preset` from `seed`.
pub fn build(preset: &Preset, seed: u64) -> World {
    let mut data = dataset::generate_shaped(
        preset.elders,
        preset.responders,
        seed,
        preset.grids_per_community,
    );
    let mut rng = Rng::new(seed ^ 0x5151_d4e1);
    let start = DAY_START;

    // Every phone unique in the world: replies and key holders are matched by number.
    let mut serial = 0u64;
    let mut phone = |prefix: &str| {
        serial += 1;
        format!("{prefix}{serial:08}")
    };
    let mut families = HashMap::new();
    for e in &mut data.elders {
        for c in &mut e.contacts {
            c.phone = phone("136");
            let habit = match rng.unit() {
                u if u < 0.55 => FamilyHabit::Goes(lognormal(&mut rng, 120_000.0, 0.8) as Ms),
                u if u < 0.70 => FamilyHabit::Cannot(lognormal(&mut rng, 90_000.0, 0.8) as Ms),
                u if u < 0.95 => FamilyHabit::Silent,
                _ => FamilyHabit::Unreachable,
            };
            families.insert(c.phone.clone(), habit);
        }
    }

    // Shifts (Wednesday is bit 2) and how each kind of responder answers.
    let wed = 1u8 << 2;
    let mut people = Vec::with_capacity(data.responders.len());
    for r in &mut data.responders {
        r.phone = phone("139");
        r.password = Some(APP_PASSWORD.into());
        let (from_h, hours) = match r.kind.as_str() {
            "grid_worker" => (0, 24),
            "social_worker" | "carer" => (8, 10),
            "nursing_student" => (9, 8),
            "provider" => (7, 12),
            "family" => (17, 6),
            _ => *rng.pick(&[(7, 6), (12, 6), (17, 6), (22, 9), (9, 8), (19, 5)]),
        };
        let shift_start = from_h * 60;
        let shift_end = (from_h + hours) * 60;
        r.shifts = vec![ShiftRec {
            weekdays: wed,
            start_min: shift_start as u32,
            end_min: (shift_end.min(24 * 60)) as u32,
        }];
        if shift_end > 24 * 60 {
            // The part after midnight is Thursday's.
            r.shifts.push(ShiftRec {
                weekdays: wed << 1,
                start_min: 0,
                end_min: (shift_end - 24 * 60) as u32,
            });
        }
        let p = |e: f64, s: f64, t: f64, w: f64| {
            BTreeMap::from([
                ("emergency".to_string(), e),
                ("service".to_string(), s),
                ("technical".to_string(), t),
                ("welfare".to_string(), w),
            ])
        };
        // Volunteer apps see 17–47 % of those alerted respond; professionals more.
        let accept = match r.kind.as_str() {
            "grid_worker" => p(0.6, 0.6, 0.95, 0.95),
            "social_worker" => p(0.45, 0.6, 0.3, 0.6),
            "nursing_student" => p(0.35, 0.5, 0.1, 0.3),
            "provider" => p(0.1, 0.85, 0.1, 0.1),
            "carer" => p(0.5, 0.75, 0.2, 0.5),
            "family" => p(0.5, 0.3, 0.2, 0.3),
            _ => p(0.17 + 0.3 * rng.unit(), 0.3, 0.1, 0.2),
        };
        people.push(Person {
            reference: r.reference.clone(),
            name: r.name.clone(),
            phone: r.phone.clone(),
            kind: r.kind.clone(),
            home: (r.home_lat, r.home_lon),
            shift: (
                start + minutes(shift_start as i64),
                start + minutes(shift_end as i64),
            ),
            accept,
            decline: 0.3,
            speed_mps: if rng.chance(0.6) { 1.3 } else { 4.2 },
            seed: rng.next_u64(),
        });
    }

    // Links: the dataset's protocols, with some native devices moved onto MQTT and half of the
    // DC-09 panels without encryption.
    let elder_of: HashMap<String, usize> = data
        .elders
        .iter()
        .enumerate()
        .map(|(i, e)| (e.reference.clone(), i))
        .collect();
    let community_of = |e: &dataset::ElderRec| -> String {
        e.grid
            .as_deref()
            .and_then(|g| g.rsplit_once('-').map(|(c, _)| c.to_string()))
            .unwrap_or_default()
    };
    let communities: Vec<String> = {
        let mut c: Vec<String> = data.elders.iter().map(community_of).collect();
        c.sort();
        c.dedup();
        c
    };
    let cut_community = communities
        .get(rng.below(communities.len().max(1) as u64) as usize)
        .cloned();
    let cut_at = start + 14 * HOUR + minutes(rng.below(30) as i64);
    let mut expected = Expected {
        power_cut: cut_community.clone().map(|c| (c, cut_at)),
        ..Default::default()
    };
    let heartbeat = minutes(preset.heartbeat_min.max(1));
    let mut devices = Vec::with_capacity(data.devices.len());
    for (i, d) in data.devices.iter_mut().enumerate() {
        d.heartbeat_s = heartbeat / 1000;
        let link = match d.protocol.as_str() {
            "native" => match i % 20 {
                0 => Link::NativeMqtt,
                1 => {
                    d.protocol = "mqtt".into();
                    d.ident = format!("btn-{:06}", i);
                    Link::MqttJson
                }
                _ => Link::NativeTcp,
            },
            "gt06" => Link::Gt06,
            "watch" => Link::Watch,
            "h02" => Link::H02,
            "sia" if i % 2 == 0 => {
                d.secret_hex = None;
                Link::Sia
            }
            "sia" => Link::SiaAes,
            _ => continue,
        };
        let Some(elder) = d.elder.clone() else {
            continue;
        };
        // A tracker, watch or alarm panel has no check-in key: the centre expects no daily press
        // from its elder and calls every three days instead.
        if !matches!(link, Link::NativeTcp | Link::NativeMqtt | Link::MqttJson) {
            let i = elder_of[&elder];
            data.elders[i].checkin_hours = data.elders[i].checkin_hours.max(72);
        }
        let e = &data.elders[elder_of[&elder]];
        let mut actions: Vec<(Ms, Action)> = Vec::new();
        let silent_all_day = rng.chance(0.01);
        if !silent_all_day {
            // Morning check-in for most of those whose device has the key.
            if rng.chance(0.9) {
                let at = start + 7 * HOUR + rng.below((150 * MINUTE) as u64) as Ms;
                actions.push((at, Action::CheckIn));
            }
            // SOS presses, 60 % of them false alarms cancelled within seconds.
            if rng.chance(0.02) {
                let at = start + sos_time(&mut rng);
                actions.push((at, Action::Alarm { kind: "sos".into() }));
                if rng.chance(0.6) {
                    let after = 5_000 + rng.below(15_000) as Ms;
                    actions.push((at + after, Action::Cancel));
                }
            }
            for (kind, p) in [
                ("fall", 0.004),
                ("smoke", 0.0008),
                ("gas", 0.0005),
                ("inactivity", 0.002),
                ("low_battery", 0.005),
                ("tamper", 0.001),
            ] {
                if rng.chance(p) {
                    let at = start + rng.below((24 * HOUR) as u64) as Ms;
                    actions.push((at, Action::Alarm { kind: kind.into() }));
                }
            }
            // The green key: daily care, housekeeping, emotional care, health consultation.
            if rng.chance(0.06) {
                let at = start + 8 * HOUR + rng.below((10 * HOUR) as u64) as Ms;
                let kind = *rng.pick(&[
                    "daily_care",
                    "housekeeping",
                    "emotional_care",
                    "health_consultation",
                ]);
                actions.push((
                    at,
                    Action::Service {
                        kind: kind.to_string(),
                    },
                ));
            }
            if let Some((c, at)) = &expected.power_cut
                && community_of(e) == *c
            {
                actions.push((
                    *at + rng.below(60_000) as Ms,
                    Action::Alarm {
                        kind: "power_loss".into(),
                    },
                ));
            }
            // A few devices die and stay silent; flagged when silent long enough before the end.
            if rng.chance(0.005) {
                let at = start + rng.below((18 * HOUR) as u64) as Ms;
                actions.push((at, Action::GoSilent));
                expected.silent.push(d.ident.clone());
            }
        }
        actions.sort_by_key(|(t, _)| *t);
        devices.push(DevicePlan {
            elder,
            link,
            ident: d.ident.clone(),
            key_hex: d.secret_hex.clone(),
            heartbeat_ms: heartbeat,
            battery_start: 60 + rng.below(40) as u8,
            actions: if silent_all_day {
                // Connects once in the night, then nothing: unplugged, broken.
                vec![(start + 5 * MINUTE, Action::GoSilent)]
            } else {
                actions
            },
        });
    }
    // A device silent all day is also a silent device.
    for d in &devices {
        if d.actions
            .first()
            .is_some_and(|(_, a)| *a == Action::GoSilent)
            && d.actions.len() == 1
        {
            expected.silent.push(d.ident.clone());
        }
    }
    World {
        preset: preset.clone(),
        dataset: data,
        devices,
        people,
        families,
        expected,
        start,
        end: start + 24 * HOUR,
    }
}

impl Person {
    /// Whether this person is on shift at `t`.
    pub fn on_shift(&self, t: Ms) -> bool {
        (self.shift.0..self.shift.1).contains(&t)
    }

    /// A turnout delay (clock-ms) before they accept: median 1 min 45 s, a long tail.
    pub fn turnout(&self, rng: &mut Rng) -> Ms {
        lognormal(rng, 105_000.0, 0.7).clamp(10_000.0, 20.0 * 60_000.0) as Ms
    }
}

/// The metres between two points (haversine).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0;
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// A random number generator for a person's or a device's own choices.
pub fn rng(seed: u64) -> Rng {
    Rng::new(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_day() {
        let p = Preset::named("small").expect("preset");
        let a = build(&p, 7);
        let b = build(&p, 7);
        assert_eq!(a.devices, b.devices);
        assert_eq!(a.people, b.people);
        assert_ne!(build(&p, 8).devices, a.devices);
    }

    #[test]
    fn a_small_day_has_every_link_and_the_day_shape() {
        let w = build(&Preset::named("small").expect("preset"), 42);
        let links: std::collections::BTreeSet<Link> = w.devices.iter().map(|d| d.link).collect();
        for l in [
            Link::NativeTcp,
            Link::NativeMqtt,
            Link::MqttJson,
            Link::Gt06,
        ] {
            assert!(links.contains(&l), "{l:?} missing: {links:?}");
        }
        let phones: std::collections::HashSet<&str> = w
            .people
            .iter()
            .map(|p| p.phone.as_str())
            .chain(w.families.keys().map(String::as_str))
            .collect();
        assert_eq!(
            phones.len(),
            w.people.len() + w.families.len(),
            "phones unique"
        );
        assert!(w.expected.power_cut.is_some());
        let check_ins = w
            .devices
            .iter()
            .flat_map(|d| &d.actions)
            .filter(|(_, a)| *a == Action::CheckIn)
            .count();
        assert!(check_ins > w.devices.len() / 2, "{check_ins}");
        for d in &w.devices {
            assert!(
                d.actions.windows(2).all(|p| p[0].0 <= p[1].0),
                "in time order"
            );
            assert!(d.actions.iter().all(|(t, _)| (w.start..w.end).contains(t)));
        }
    }
}
