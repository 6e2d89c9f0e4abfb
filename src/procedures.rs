//! What an operator does for each kind of alarm: a checklist per procedure, configured under
//! `[console.procedures.<name>]` (defaults below), and the lookup from an incident's kind and
//! category to its procedure. Pure: no I/O. The console ticks steps into the incident's log
//! (`procedure_step` events); this module only says which steps there are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One checklist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Procedure {
    /// Incident kinds it applies to (`sos`, `fall`, `smoke`, `missed_check_in`…).
    pub kinds: Vec<String>,
    /// Categories it applies to when no procedure names the incident's kind.
    pub categories: Vec<String>,
    /// The steps, in the order the operator should take them.
    pub steps: Vec<Step>,
}

/// One step of a checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// Stable id, logged when the step is ticked; the console translates the built-in ones
    /// (`call_elder`, `call_119`…).
    pub id: String,
    /// The text per language (`zh-CN`, `en`), for steps the console has no translation for.
    #[serde(default)]
    pub label: BTreeMap<String, String>,
    /// Who the step calls, for a call button next to it: `elder`, `key_holder`, `contacts`,
    /// `responder`, or a number (`120`, `119`, `110`).
    #[serde(default)]
    pub call: Option<String>,
}

fn step(id: &str, call: Option<&str>) -> Step {
    Step {
        id: id.into(),
        label: BTreeMap::new(),
        call: call.map(Into::into),
    }
}

fn procedure(kinds: &[&str], categories: &[&str], steps: Vec<Step>) -> Procedure {
    Procedure {
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        steps,
    }
}

/// The built-in procedures: SOS and panic, fall, fire (smoke, gas, fire: 119 first), medical
/// (120 first), water leak, inactivity and missed check-ins, wandering, technical faults and
/// service orders. A deployment replaces any of them, or adds its own, in `onekey.toml`.
pub fn defaults() -> BTreeMap<String, Procedure> {
    let call_elder = || step("call_elder", Some("elder"));
    let key_holder = || step("call_key_holder", Some("key_holder"));
    let contacts = || step("call_contacts", Some("contacts"));
    let dispatch = || step("dispatch_responder", None);
    let on_scene = || step("confirm_on_scene", None);
    [
        (
            "sos",
            procedure(
                &["sos", "panic"],
                &["emergency"],
                vec![
                    call_elder(),
                    step("help_coming", None),
                    key_holder(),
                    dispatch(),
                    step("call_120_if_needed", Some("120")),
                    on_scene(),
                ],
            ),
        ),
        (
            "fall",
            procedure(
                &["fall"],
                &[],
                vec![
                    call_elder(),
                    dispatch(),
                    key_holder(),
                    step("call_120_if_needed", Some("120")),
                    on_scene(),
                ],
            ),
        ),
        (
            "fire",
            procedure(
                &["smoke", "gas", "fire"],
                &[],
                vec![
                    step("call_119", Some("119")),
                    step("tell_elder_to_leave", Some("elder")),
                    key_holder(),
                    dispatch(),
                    on_scene(),
                ],
            ),
        ),
        (
            "medical",
            procedure(
                &["medical"],
                &[],
                vec![
                    step("call_120", Some("120")),
                    call_elder(),
                    contacts(),
                    dispatch(),
                    on_scene(),
                ],
            ),
        ),
        (
            "water_leak",
            procedure(
                &["water_leak"],
                &[],
                vec![call_elder(), key_holder(), dispatch(), on_scene()],
            ),
        ),
        (
            "inactivity",
            procedure(
                &["inactivity", "missed_check_in"],
                &["welfare"],
                vec![call_elder(), contacts(), step("visit", None), on_scene()],
            ),
        ),
        (
            "wandering",
            procedure(
                &["wandering"],
                &[],
                vec![
                    call_elder(),
                    contacts(),
                    step("locate_device", None),
                    step("call_110", Some("110")),
                ],
            ),
        ),
        (
            "technical",
            procedure(
                &[
                    "low_battery",
                    "power_loss",
                    "tamper",
                    "device_fault",
                    "silent",
                ],
                &["technical"],
                vec![
                    call_elder(),
                    step("locate_device", None),
                    step("arrange_repair", None),
                ],
            ),
        ),
        (
            "service",
            procedure(
                &[],
                &["service"],
                vec![call_elder(), step("arrange_service", None)],
            ),
        ),
    ]
    .into_iter()
    .map(|(name, p)| (name.to_string(), p))
    .collect()
}

/// The procedure for an incident: the first (by name) that lists its kind, else the first that
/// lists its category. `None` when neither matches.
pub fn resolve<'a>(
    procedures: &'a BTreeMap<String, Procedure>,
    kind: &str,
    category: &str,
) -> Option<(&'a str, &'a Procedure)> {
    procedures
        .iter()
        .find(|(_, p)| p.kinds.iter().any(|k| k == kind))
        .or_else(|| {
            procedures
                .iter()
                .find(|(_, p)| p.categories.iter().any(|c| c == category))
        })
        .map(|(name, p)| (name.as_str(), p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_calls_119_first_and_medical_120_and_unknown_kinds_fall_back_to_their_category() {
        let all = defaults();
        let (name, fire) = resolve(&all, "smoke", "emergency").expect("smoke");
        assert_eq!(name, "fire");
        assert_eq!(fire.steps[0].call.as_deref(), Some("119"));
        let (_, medical) = resolve(&all, "medical", "emergency").expect("medical");
        assert_eq!(medical.steps[0].call.as_deref(), Some("120"));
        assert_eq!(resolve(&all, "sos", "emergency").map(|p| p.0), Some("sos"));
        assert_eq!(
            resolve(&all, "something_new", "emergency").map(|p| p.0),
            Some("sos")
        );
        assert_eq!(
            resolve(&all, "daily_care", "service").map(|p| p.0),
            Some("service")
        );
        assert!(resolve(&BTreeMap::new(), "sos", "emergency").is_none());
    }
}
