//! Dispatch policy: for each [`Category`], who is asked, in which rings, how long they have to answer,
//! which team is sent and which SLA clocks run. Serde-configurable under `[dispatch]`; every field has
//! a documented default, so a TOML file only names what it changes (figment merges it over
//! [`DispatchPolicy::default`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Category, Millis, ResponderKind};

/// The whole dispatch policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DispatchPolicy {
    /// A device cancel ("I'm OK") this many seconds after opening stops the offers (default 30).
    pub cancel_window_s: u64,
    /// Seconds an operator's hand-picked offer waits for an answer before automatic dispatch
    /// resumes (default 120; the console shows the time left).
    pub manual_offer_timeout_s: u64,
    /// Emergencies: SOS, fall, smoke, gas, inactivity…
    pub emergency: CategoryPolicy,
    /// Service orders: daily care, housekeeping, emotional care, health advice.
    pub service: CategoryPolicy,
    /// Device problems: low battery, power loss, silent, tamper.
    pub technical: CategoryPolicy,
    /// No sign of life: missed check-in, no activity.
    pub welfare: CategoryPolicy,
    /// Team templates by name, referred to by [`CategoryPolicy::template`].
    pub templates: BTreeMap<String, TeamTemplate>,
}

/// How one category is dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CategoryPolicy {
    /// Search radii in metres, widened one after another (default 500, 1500, 3000).
    pub rings_m: Vec<f64>,
    /// Offers sent per open seat in a round: with 17–47 % of those alerted answering, several are
    /// asked at once and the first to accept gets the task.
    pub offers_per_seat: u32,
    /// Seconds an offer round waits for an acceptance before the next ring is tried.
    pub offer_timeout_s: u64,
    /// The team template sent (a key of [`DispatchPolicy::templates`]).
    pub template: String,
    /// Template per incident kind (e.g. `emotional_care` → `visit_1_2_5`), overriding `template`.
    pub templates_by_kind: BTreeMap<String, String>,
    /// Family contacts and key holders are notified at once.
    pub notify_contacts: bool,
    /// When the rings are exhausted, the elder's grid worker is offered the task.
    pub grid_worker_fallback: bool,
    /// SLA targets; each is a durable clock.
    pub sla: SlaTargets,
}

/// SLA targets in seconds; `None` means the clock does not run for the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SlaTargets {
    /// An operator acknowledged it.
    pub ack_s: Option<u64>,
    /// A first responder accepted.
    pub accept_s: Option<u64>,
    /// A responder is with the elder.
    pub on_scene_s: Option<u64>,
    /// The task is done.
    pub done_s: Option<u64>,
}

/// The SLA clocks an incident can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaClock {
    /// Operator acknowledgement.
    Ack,
    /// First responder accepted.
    Accept,
    /// Someone with the elder.
    OnScene,
    /// Task completed.
    Done,
}

impl SlaClock {
    /// Every clock, in lifecycle order.
    pub const ALL: [SlaClock; 4] = [
        SlaClock::Ack,
        SlaClock::Accept,
        SlaClock::OnScene,
        SlaClock::Done,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaClock::Ack => "ack",
            SlaClock::Accept => "accept",
            SlaClock::OnScene => "on_scene",
            SlaClock::Done => "done",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<SlaClock> {
        SlaClock::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl SlaTargets {
    /// The target of `clock` in milliseconds, when it runs.
    pub fn target_ms(&self, clock: SlaClock) -> Option<Millis> {
        let s = match clock {
            SlaClock::Ack => self.ack_s,
            SlaClock::Accept => self.accept_s,
            SlaClock::OnScene => self.on_scene_s,
            SlaClock::Done => self.done_s,
        }?;
        Some(secs_to_ms(s))
    }
}

/// A team sent to one incident: several roles filled at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamTemplate {
    /// The roles, in order; the first is the primary responder.
    pub slots: Vec<SlotSpec>,
}

/// One role of a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotSpec {
    /// Display name of the role (`first_responder`, `key`, `social_worker`…).
    pub role: String,
    /// Where candidates come from.
    #[serde(default)]
    pub source: SlotSource,
    /// Responder kinds that may fill it (empty: any kind).
    #[serde(default)]
    pub kinds: Vec<ResponderKind>,
    /// Skills a candidate must all have.
    #[serde(default)]
    pub skills: Vec<String>,
    /// How many people (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Where a slot's candidates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotSource {
    /// The spatial index: nearest available first, ring by ring.
    #[default]
    Nearby,
    /// The elder's key holders (family, neighbours): policy, not geometry.
    KeyHolders,
    /// The grid worker responsible for the elder's grid.
    GridWorker,
}

/// Seconds to milliseconds, saturating.
pub fn secs_to_ms(s: u64) -> Millis {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl DispatchPolicy {
    /// The policy of a category.
    pub fn category(&self, c: Category) -> &CategoryPolicy {
        match c {
            Category::Emergency => &self.emergency,
            Category::Service => &self.service,
            Category::Technical => &self.technical,
            Category::Welfare => &self.welfare,
        }
    }

    /// The team for an incident of category `c` raised by `kind`; an unknown template name gives
    /// a single nearby responder of any kind, so a typo never leaves an elder without an offer.
    pub fn team(&self, c: Category, kind: &str) -> TeamTemplate {
        let p = self.category(c);
        let name = p.templates_by_kind.get(kind).unwrap_or(&p.template);
        self.templates
            .get(name)
            .cloned()
            .unwrap_or_else(|| TeamTemplate {
                slots: vec![slot("responder", SlotSource::Nearby, &[], &[], 1)],
            })
    }

    /// Names of templates referred to but not defined; empty when the policy is consistent.
    pub fn missing_templates(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for p in [
            &self.emergency,
            &self.service,
            &self.technical,
            &self.welfare,
        ] {
            for name in std::iter::once(&p.template).chain(p.templates_by_kind.values()) {
                if !self.templates.contains_key(name) && !missing.contains(name) {
                    missing.push(name.clone());
                }
            }
        }
        missing
    }
}

fn slot(
    role: &str,
    source: SlotSource,
    kinds: &[ResponderKind],
    skills: &[&str],
    count: u32,
) -> SlotSpec {
    SlotSpec {
        role: role.into(),
        source,
        kinds: kinds.to_vec(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        count,
    }
}

impl Default for CategoryPolicy {
    fn default() -> Self {
        CategoryPolicy {
            rings_m: vec![500.0, 1500.0, 3000.0],
            offers_per_seat: 3,
            offer_timeout_s: 60,
            template: "single".into(),
            templates_by_kind: BTreeMap::new(),
            notify_contacts: false,
            grid_worker_fallback: true,
            sla: SlaTargets::default(),
        }
    }
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        use ResponderKind::*;
        let first = [Volunteer, Carer, SocialWorker, NursingStudent, Staff];
        let templates = BTreeMap::from([
            (
                "single".to_string(),
                TeamTemplate {
                    slots: vec![slot("responder", SlotSource::Nearby, &[], &[], 1)],
                },
            ),
            (
                "emergency".to_string(),
                TeamTemplate {
                    slots: vec![
                        slot("first_responder", SlotSource::Nearby, &first, &[], 1),
                        slot("key", SlotSource::KeyHolders, &[], &[], 1),
                    ],
                },
            ),
            (
                "visit_1_2_5".to_string(),
                TeamTemplate {
                    slots: vec![
                        slot("social_worker", SlotSource::Nearby, &[SocialWorker], &[], 1),
                        slot("volunteer", SlotSource::Nearby, &[Volunteer], &[], 2),
                        slot(
                            "nursing_student",
                            SlotSource::Nearby,
                            &[NursingStudent],
                            &[],
                            5,
                        ),
                    ],
                },
            ),
            (
                "housekeeping".to_string(),
                TeamTemplate {
                    slots: vec![slot(
                        "housekeeper",
                        SlotSource::Nearby,
                        &[Provider, Volunteer],
                        &["housekeeping"],
                        1,
                    )],
                },
            ),
            (
                "daily_care".to_string(),
                TeamTemplate {
                    slots: vec![slot(
                        "carer",
                        SlotSource::Nearby,
                        &[Carer, Provider, Volunteer],
                        &["daily_care"],
                        1,
                    )],
                },
            ),
            (
                "health".to_string(),
                TeamTemplate {
                    slots: vec![slot(
                        "health_adviser",
                        SlotSource::Nearby,
                        &[NursingStudent, Carer, Staff],
                        &["health"],
                        1,
                    )],
                },
            ),
            (
                "grid_worker".to_string(),
                TeamTemplate {
                    slots: vec![slot("grid_worker", SlotSource::GridWorker, &[], &[], 1)],
                },
            ),
        ]);
        DispatchPolicy {
            cancel_window_s: 30,
            manual_offer_timeout_s: 120,
            emergency: CategoryPolicy {
                rings_m: vec![500.0, 1500.0, 3000.0],
                offers_per_seat: 5,
                offer_timeout_s: 30,
                template: "emergency".into(),
                notify_contacts: true,
                grid_worker_fallback: true,
                sla: SlaTargets {
                    ack_s: Some(60),
                    accept_s: Some(120),
                    on_scene_s: Some(30 * 60),
                    done_s: None,
                },
                ..CategoryPolicy::default()
            },
            service: CategoryPolicy {
                rings_m: vec![1500.0, 3000.0, 6000.0],
                offers_per_seat: 3,
                offer_timeout_s: 20 * 60,
                template: "daily_care".into(),
                templates_by_kind: BTreeMap::from([
                    ("housekeeping".into(), "housekeeping".into()),
                    ("daily_care".into(), "daily_care".into()),
                    ("emotional_care".into(), "visit_1_2_5".into()),
                    ("health_consultation".into(), "health".into()),
                ]),
                sla: SlaTargets {
                    done_s: Some(24 * 3600),
                    ..SlaTargets::default()
                },
                ..CategoryPolicy::default()
            },
            technical: CategoryPolicy {
                offer_timeout_s: 30 * 60,
                template: "grid_worker".into(),
                grid_worker_fallback: false,
                sla: SlaTargets {
                    done_s: Some(2 * 3600),
                    ..SlaTargets::default()
                },
                ..CategoryPolicy::default()
            },
            welfare: CategoryPolicy {
                offer_timeout_s: 2 * 3600,
                template: "grid_worker".into(),
                grid_worker_fallback: false,
                sla: SlaTargets {
                    done_s: Some(24 * 3600),
                    ..SlaTargets::default()
                },
                ..CategoryPolicy::default()
            },
            templates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    #[test]
    fn defaults_are_consistent() {
        let p = DispatchPolicy::default();
        assert!(p.missing_templates().is_empty());
        assert_eq!(p.emergency.sla.target_ms(SlaClock::Ack), Some(60_000));
        assert_eq!(p.emergency.sla.target_ms(SlaClock::Accept), Some(120_000));
        assert_eq!(
            p.emergency.sla.target_ms(SlaClock::OnScene),
            Some(1_800_000)
        );
        assert_eq!(p.service.sla.target_ms(SlaClock::Done), Some(86_400_000));
        assert_eq!(p.technical.sla.target_ms(SlaClock::Done), Some(7_200_000));
        let visit = p.team(Category::Service, "emotional_care");
        let counts: Vec<u32> = visit.slots.iter().map(|s| s.count).collect();
        assert_eq!(counts, vec![1, 2, 5]);
    }

    #[test]
    fn toml_overrides_merge_over_defaults() {
        let toml = "[emergency]\noffers_per_seat = 8\n[emergency.sla]\naccept_s = 90\n\
                    [service]\nrings_m = [1000.0]\n";
        let p: DispatchPolicy = Figment::from(Serialized::defaults(DispatchPolicy::default()))
            .merge(Toml::string(toml))
            .extract()
            .expect("valid policy");
        assert_eq!(p.emergency.offers_per_seat, 8);
        assert_eq!(p.emergency.sla.accept_s, Some(90));
        assert_eq!(
            p.emergency.sla.ack_s,
            Some(60),
            "untouched keys keep defaults"
        );
        assert_eq!(p.service.rings_m, vec![1000.0]);
        assert_eq!(p.emergency.template, "emergency");
    }

    #[test]
    fn an_unknown_template_falls_back_to_one_responder() {
        let mut p = DispatchPolicy::default();
        p.service
            .templates_by_kind
            .insert("x".into(), "nope".into());
        assert_eq!(p.missing_templates(), vec!["nope".to_string()]);
        assert_eq!(p.team(Category::Service, "x").slots.len(), 1);
    }
}
