//! Candidate search: an R-tree (rstar) over the responders available now, searched nearest first and
//! filtered by role, skill and load, within a ring radius.
//!
//! Positions are projected once to a local plane in metres around a reference latitude
//! (equirectangular); over a city the error is well under 1 %, far below GPS noise.

use std::collections::{BTreeSet, HashMap};

use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};

use super::policy::{SlotSpec, TeamTemplate};
pub use crate::domain::Shift;
use crate::domain::{GeoPoint, ResponderKind};

const M_PER_DEG_LAT: f64 = 110_574.0;
const M_PER_DEG_LON_EQUATOR: f64 = 111_320.0;

/// A responder who can take tasks now: on duty (or on shift), at a known position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Available {
    /// Responder id.
    pub id: i64,
    /// Role.
    pub kind: ResponderKind,
    /// Skills.
    pub skills: Vec<String>,
    /// Live position, or home when no live one is known.
    pub lat: f64,
    /// Live position, or home when no live one is known.
    pub lon: f64,
    /// Tasks in hand now.
    pub load: u32,
    /// Most tasks at once.
    pub max_tasks: u32,
}

/// A candidate found by the matcher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Responder id.
    pub id: i64,
    /// Straight-line distance in metres.
    pub distance_m: f64,
}

/// Finds candidates for a slot; implemented by [`Matcher`], and by fakes in tests.
pub trait CandidateSource {
    /// Up to `limit` responders within `radius_m` of `at` who fit `slot`, nearest first, none of
    /// them in `exclude`.
    fn nearby(
        &self,
        at: GeoPoint,
        radius_m: f64,
        slot: &SlotSpec,
        exclude: &BTreeSet<i64>,
        limit: usize,
    ) -> Vec<i64>;
}

type Point = GeomWithData<[f64; 2], i64>;

/// Spatial index over available responders.
pub struct Matcher {
    cos_lat0: f64,
    tree: RTree<Point>,
    people: HashMap<i64, Available>,
}

impl Matcher {
    /// An index projected around `reference_lat` (the city's latitude), holding `responders`.
    pub fn new(reference_lat: f64, responders: impl IntoIterator<Item = Available>) -> Matcher {
        let cos_lat0 = reference_lat.to_radians().cos().max(0.01);
        let people: HashMap<i64, Available> = responders.into_iter().map(|a| (a.id, a)).collect();
        let points = people
            .values()
            .map(|a| Point::new(project(cos_lat0, a.lat, a.lon), a.id))
            .collect();
        Matcher {
            cos_lat0,
            tree: RTree::bulk_load(points),
            people,
        }
    }

    /// Responders in the index.
    pub fn len(&self) -> usize {
        self.people.len()
    }

    /// True when nobody is available.
    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// One responder, if available.
    pub fn get(&self, id: i64) -> Option<&Available> {
        self.people.get(&id)
    }

    /// Adds a responder who came on duty, or moves / updates one already in.
    pub fn upsert(&mut self, a: Available) {
        self.remove(a.id);
        self.tree
            .insert(Point::new(project(self.cos_lat0, a.lat, a.lon), a.id));
        self.people.insert(a.id, a);
    }

    /// Removes a responder who went off duty; false when they were not in.
    pub fn remove(&mut self, id: i64) -> bool {
        let Some(a) = self.people.remove(&id) else {
            return false;
        };
        self.tree
            .remove(&Point::new(project(self.cos_lat0, a.lat, a.lon), id));
        true
    }

    /// Changes a responder's number of tasks in hand by `delta` (never below 0).
    pub fn adjust_load(&mut self, id: i64, delta: i32) {
        if let Some(a) = self.people.get_mut(&id) {
            a.load = a.load.saturating_add_signed(delta);
        }
    }

    /// Up to `limit` fitting responders within `radius_m` of `at`, nearest first.
    pub fn nearest(
        &self,
        at: GeoPoint,
        radius_m: f64,
        slot: &SlotSpec,
        exclude: &BTreeSet<i64>,
        limit: usize,
    ) -> Vec<Candidate> {
        if limit == 0 {
            return Vec::new();
        }
        let origin = project(self.cos_lat0, at.lat, at.lon);
        let r2 = radius_m * radius_m;
        let mut found = Vec::with_capacity(limit);
        for (p, d2) in self.tree.nearest_neighbor_iter_with_distance_2(origin) {
            if d2 > r2 {
                break;
            }
            let id = p.data;
            if exclude.contains(&id) {
                continue;
            }
            let Some(a) = self.people.get(&id) else {
                continue;
            };
            if fits(a, slot) {
                found.push(Candidate {
                    id,
                    distance_m: d2.sqrt(),
                });
                if found.len() == limit {
                    break;
                }
            }
        }
        found
    }

    /// Candidates for every slot of a team at once, `per_seat` per open seat, each person in at
    /// most one slot (slots are filled in template order, so the first role gets the nearest).
    pub fn fill_team(
        &self,
        team: &TeamTemplate,
        at: GeoPoint,
        radius_m: f64,
        per_seat: usize,
    ) -> Vec<Vec<Candidate>> {
        let mut taken = BTreeSet::new();
        team.slots
            .iter()
            .map(|slot| {
                let want = per_seat.saturating_mul(slot.count as usize);
                let c = self.nearest(at, radius_m, slot, &taken, want);
                taken.extend(c.iter().map(|c| c.id));
                c
            })
            .collect()
    }
}

impl CandidateSource for Matcher {
    fn nearby(
        &self,
        at: GeoPoint,
        radius_m: f64,
        slot: &SlotSpec,
        exclude: &BTreeSet<i64>,
        limit: usize,
    ) -> Vec<i64> {
        self.nearest(at, radius_m, slot, exclude, limit)
            .into_iter()
            .map(|c| c.id)
            .collect()
    }
}

/// Whether `a` may fill `slot`: right kind, every skill, spare capacity.
pub fn fits(a: &Available, slot: &SlotSpec) -> bool {
    a.load < a.max_tasks
        && (slot.kinds.is_empty() || slot.kinds.contains(&a.kind))
        && slot.skills.iter().all(|s| a.skills.contains(s))
}

fn project(cos_lat0: f64, lat: f64, lon: f64) -> [f64; 2] {
    [lon * M_PER_DEG_LON_EQUATOR * cos_lat0, lat * M_PER_DEG_LAT]
}

/// Great-circle distance in metres (for checks and display).
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dla = la2 - la1;
    let dlo = (b.lon - a.lon).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

/// Whether a responder takes tasks at local time `local_ms` (milliseconds since the Unix epoch,
/// already shifted to local time): on duty, or inside one of their recurring shifts.
pub fn available_at(on_duty: bool, shifts: &[Shift], local_ms: i64) -> bool {
    on_duty || shifts.iter().any(|s| s.covers(local_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::policy::SlotSource;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn at(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint {
            lat,
            lon,
            accuracy_m: None,
        }
    }

    fn any_slot() -> SlotSpec {
        SlotSpec {
            role: "r".into(),
            source: SlotSource::Nearby,
            kinds: vec![],
            skills: vec![],
            count: 1,
        }
    }

    fn person(id: i64, kind: ResponderKind, lat: f64, lon: f64) -> Available {
        Available {
            id,
            kind,
            skills: vec![],
            lat,
            lon,
            load: 0,
            max_tasks: 1,
        }
    }

    fn city(n: usize, seed: u64) -> Vec<Available> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n as i64)
            .map(|id| {
                let kind = match id % 4 {
                    0 => ResponderKind::Volunteer,
                    1 => ResponderKind::NursingStudent,
                    2 => ResponderKind::SocialWorker,
                    _ => ResponderKind::Provider,
                };
                let mut a = person(
                    id,
                    kind,
                    27.11 + rng.random_range(-0.03..0.03),
                    114.98 + rng.random_range(-0.03..0.03),
                );
                if id % 3 == 0 {
                    a.skills.push("housekeeping".into());
                }
                a.load = rng.random_range(0..3);
                a.max_tasks = 2;
                a
            })
            .collect()
    }

    #[test]
    fn nearest_first_matches_brute_force_with_filters() {
        let people = city(3000, 7);
        let m = Matcher::new(27.11, people.clone());
        let origin = at(27.112, 114.975);
        let mut slot = any_slot();
        slot.kinds = vec![ResponderKind::Volunteer, ResponderKind::Provider];
        slot.skills = vec!["housekeeping".into()];
        let exclude: BTreeSet<i64> = [0, 3, 6].into();
        let got = m.nearest(origin, 1500.0, &slot, &exclude, 10);
        let mut want: Vec<(f64, i64)> = people
            .iter()
            .filter(|a| fits(a, &slot) && !exclude.contains(&a.id))
            .map(|a| (haversine_m(origin, at(a.lat, a.lon)), a.id))
            .filter(|(d, _)| *d <= 1500.0)
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0));
        want.truncate(10);
        assert!(!want.is_empty());
        let got_ids: Vec<i64> = got.iter().map(|c| c.id).collect();
        let want_ids: Vec<i64> = want.iter().map(|w| w.1).collect();
        assert_eq!(got_ids, want_ids);
        for (c, w) in got.iter().zip(&want) {
            assert!(
                (c.distance_m - w.0).abs() < w.0 * 0.005 + 0.5,
                "{c:?} vs {w:?}"
            );
        }
    }

    #[test]
    fn radius_load_and_duty_are_respected() {
        let mut m = Matcher::new(
            27.11,
            [
                person(1, ResponderKind::Volunteer, 27.11, 114.98),
                person(2, ResponderKind::Volunteer, 27.12, 114.98), // ~1.1 km north
            ],
        );
        let o = at(27.11, 114.98);
        let none = BTreeSet::new();
        assert_eq!(m.nearby(o, 500.0, &any_slot(), &none, 5), vec![1]);
        assert_eq!(m.nearby(o, 1500.0, &any_slot(), &none, 5), vec![1, 2]);
        m.adjust_load(1, 1);
        assert_eq!(m.nearby(o, 1500.0, &any_slot(), &none, 5), vec![2], "full");
        m.adjust_load(1, -1);
        assert!(m.remove(2));
        assert!(!m.remove(2));
        assert_eq!(m.nearby(o, 1500.0, &any_slot(), &none, 5), vec![1]);
        m.upsert(person(1, ResponderKind::Volunteer, 27.2, 114.98));
        assert!(
            m.nearby(o, 1500.0, &any_slot(), &none, 5).is_empty(),
            "moved away"
        );
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn team_slots_get_distinct_people_of_their_role() {
        let m = Matcher::new(27.11, city(2000, 3));
        let team = crate::dispatch::policy::DispatchPolicy::default()
            .team(crate::domain::Category::Service, "emotional_care");
        let got = m.fill_team(&team, at(27.11, 114.98), 3000.0, 2);
        assert_eq!(got.len(), 3);
        let mut all = BTreeSet::new();
        for (slot, cands) in team.slots.iter().zip(&got) {
            assert_eq!(cands.len(), 2 * slot.count as usize, "{}", slot.role);
            for c in cands {
                assert!(slot.kinds.contains(&m.get(c.id).expect("indexed").kind));
                assert!(all.insert(c.id), "{} in two slots", c.id);
            }
        }
    }

    #[test]
    fn shifts_cover_their_hours_and_wrap_midnight() {
        // 1970-01-05 was a Monday.
        let monday = 4 * 86_400_000i64;
        let day = Shift {
            weekdays: 0b1,
            start_min: 8 * 60,
            end_min: 17 * 60,
        };
        assert!(day.covers(monday + 9 * 3_600_000));
        assert!(!day.covers(monday + 18 * 3_600_000));
        assert!(!day.covers(monday + 86_400_000 + 9 * 3_600_000), "Tuesday");
        let night = Shift {
            weekdays: 0b1,
            start_min: 22 * 60,
            end_min: 6 * 60,
        };
        assert!(night.covers(monday + 23 * 3_600_000));
        assert!(
            night.covers(monday + 86_400_000 + 5 * 3_600_000),
            "Tuesday 05:00"
        );
        assert!(
            !night.covers(monday + 5 * 3_600_000),
            "Monday 05:00 belongs to Sunday"
        );
        assert!(
            !night.covers(monday + 86_400_000 + 6 * 3_600_000),
            "ends at 06:00"
        );
        assert!(!night.covers(monday + 21 * 3_600_000), "starts at 22:00");
        assert!(
            !night.covers(monday + 2 * 86_400_000 + 3_600_000),
            "Wednesday 01:00: no Tuesday shift"
        );
        // Sunday (bit 6) 22:00 → Monday 06:00 wraps the week too.
        let sunday_night = Shift {
            weekdays: 1 << 6,
            ..night
        };
        assert!(sunday_night.covers(monday + 5 * 3_600_000));
        assert!(!sunday_night.covers(monday + 23 * 3_600_000));
    }

    #[test]
    fn duty_or_a_shift_makes_a_responder_available() {
        let monday = 4 * 86_400_000i64;
        let weekdays_day = Shift {
            weekdays: 0b1_1111,
            start_min: 8 * 60,
            end_min: 17 * 60,
        };
        let at_10 = monday + 10 * 3_600_000;
        let at_20 = monday + 20 * 3_600_000;
        let saturday_10 = monday + 5 * 86_400_000 + 10 * 3_600_000;
        assert!(available_at(false, &[weekdays_day], at_10));
        assert!(!available_at(false, &[weekdays_day], at_20));
        assert!(!available_at(false, &[weekdays_day], saturday_10));
        assert!(available_at(true, &[weekdays_day], at_20), "on duty");
        assert!(!available_at(false, &[], at_10), "no shift, off duty");
    }
}
