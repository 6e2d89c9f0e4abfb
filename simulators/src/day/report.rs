//! What a day proved, read back from the server's API (never from the simulation's own memory):
//! every alarm a device had ACKed is in the device log exactly once; every emergency reached a
//! person within policy; every service order was done, or escalated, within 24 hours; the welfare
//! visits and silent devices the plan implied were raised. Written as JSON (`--report`), a table,
//! and the failures a CI run stops on.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::clock::Ms;
use crate::plan::{Action, DevicePlan, Link, Sent};
use crate::world::{HOUR, World};

/// Policy targets the report measures against (the server's defaults).
pub const ACK_TARGET_MS: Ms = 60_000;
/// A responder accepted an emergency.
pub const ACCEPT_TARGET_MS: Ms = 120_000;
/// A responder is with the elder.
pub const ON_SCENE_TARGET_MS: Ms = 30 * 60_000;
/// A service order is done.
pub const SERVICE_TARGET_MS: Ms = 24 * HOUR;
/// The least wall-clock time one step through the machine (a write committed, a message
/// relayed) is taken to need when the day judges its promises on a compressed clock.
pub const MACHINE_STEP_FLOOR_US: u64 = 20_000;

/// Steps through the machine between an alarm and a person's answer to it: the alarm's event
/// reaching the console's feed, the console reading the incident, the click committed.
pub const STEPS_TO_AN_ANSWER: u64 = 3;

/// How much of the compressed day the machine's part of an answer can take: on a clock `scale`
/// times faster than the wall, a commit that takes `d` of wall time takes `scale × d` of the
/// day, though it would take only `d` at real speed. A step is taken as the slowest frame→ACK the
/// devices measured on any link (an operator's click and a volunteer's answer are commits to the
/// same store, and a stall of the machine delays them all alike), never less than
/// [`MACHINE_STEP_FLOOR_US`], and an answer as [`STEPS_TO_AN_ANSWER`] of them; on a real-time
/// clock there is nothing to allow.
pub fn clock_resolution_ms(scale: f64, slowest_ack_us: impl IntoIterator<Item = u64>) -> Ms {
    if scale <= 1.0 {
        return 0;
    }
    let step_us = slowest_ack_us
        .into_iter()
        .fold(MACHINE_STEP_FLOOR_US, u64::max);
    ((STEPS_TO_AN_ANSWER * step_us) as f64 / 1000.0 * scale) as Ms
}

/// p50/p90/p99/max of one clock, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    /// How many incidents ran this clock to its end.
    pub n: usize,
    /// Median.
    pub p50_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
    /// Slowest.
    pub max_s: f64,
}

impl Spread {
    fn of(mut ms: Vec<Ms>) -> Spread {
        ms.sort_unstable();
        let at = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms[i.min(ms.len() - 1)] as f64 / 1000.0
        };
        Spread {
            n: ms.len(),
            p50_s: at(0.5),
            p90_s: at(0.9),
            p99_s: at(0.99),
            max_s: ms.last().map_or(0.0, |v| *v as f64 / 1000.0),
        }
    }
}

/// One link's frame→ACK latency (wall clock), microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkFigures {
    /// Messages sent (alarms, cancels, check-ins, service requests).
    pub sent: u64,
    /// ACKed.
    pub acked: u64,
    /// Copies resent before the ACK.
    pub retries: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
}

/// The day's figures (the keys CI and the closing note read).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayReport {
    /// Preset and seed.
    pub preset: String,
    /// Seed.
    pub seed: u64,
    /// Elders (one device each).
    pub elders: usize,
    /// Responders of every kind.
    pub responders: usize,
    /// Clock compression.
    pub scale: f64,
    /// Wall-clock seconds the day took.
    pub wall_s: f64,
    /// Alarms the devices sent (SOS, fall, smoke, gas, inactivity, low battery, power loss,
    /// tamper).
    pub alarms_sent: u64,
    /// Of those, ACKed by the server.
    pub alarms_acked: u64,
    /// Alarms in the server's device log.
    pub alarms_stored: u64,
    /// ACKed messages (alarms, cancels, check-ins, service requests) missing from the log.
    pub lost: u64,
    /// Messages stored more often than the devices sent them.
    pub duplicated: u64,
    /// Other messages: cancels, check-ins, service requests sent and ACKed.
    pub messages_sent: u64,
    /// Of those, ACKed.
    pub messages_acked: u64,
    /// Emergency incidents.
    pub emergencies: u64,
    /// Accepted by a responder within 2 min, or acknowledged (or closed) by an operator within
    /// 60 s, each allowing the clock's resolution ([`clock_resolution_ms`]).
    pub emergencies_reached_person: u64,
    /// What one step through the machine takes of the compressed day, seconds: the allowance
    /// the promise "reached a person within policy" is judged with (0 at real speed).
    pub clock_resolution_s: f64,
    /// Accepted by a responder at all.
    pub emergencies_accepted: u64,
    /// Of the emergencies the elder did not cancel, the share whose first responder accepted
    /// within 2 minutes.
    pub accepted_within_2min_pct: f64,
    /// Share of emergencies acknowledged by an operator within 60 s.
    pub acked_within_60s_pct: f64,
    /// Of the emergencies with a responder on the way, the share on scene within 30 minutes.
    pub on_scene_within_30min_pct: f64,
    /// Service orders (green key).
    pub service_orders: u64,
    /// Done within 24 hours.
    pub service_done_within_24h_pct: f64,
    /// Neither done nor escalated within 24 hours.
    pub service_neither_done_nor_escalated: u64,
    /// Elders with no sign of life for their check-in period.
    pub welfare_expected: u64,
    /// Of those, with a welfare visit raised.
    pub welfare_raised: u64,
    /// Welfare visits raised in all.
    pub welfare_incidents: u64,
    /// Devices that went silent long enough to be flagged.
    pub silent_devices_expected: u64,
    /// Of those, flagged (a technical incident for the grid worker, its own or one already open
    /// for the elder when the silence came due).
    pub silent_devices_raised: u64,
    /// Of those flagged, covered by another open technical incident of the elder.
    pub silent_devices_covered: u64,
    /// Incidents of every category.
    pub incidents: u64,
    /// Still open at the end.
    pub open_at_end: u64,
    /// Operator acknowledgement, emergencies.
    pub ack: Spread,
    /// First acceptance, emergencies not cancelled.
    pub accept: Spread,
    /// On scene, emergencies.
    pub on_scene: Spread,
    /// Service orders: request to done.
    pub service_done: Spread,
    /// Per link.
    pub links: BTreeMap<String, LinkFigures>,
    /// Texts the SMS centre received.
    pub sms: u64,
    /// What the simulated people did.
    pub people: BTreeMap<String, u64>,
    /// Why the day failed, if it did.
    pub failures: Vec<String>,
}

/// Reads of the server the report is made from.
pub struct ServerView {
    /// Every incident, as `{"incident": …}` rows.
    pub incidents: Vec<Value>,
    /// ident → (device id, elder id).
    pub devices: HashMap<String, (i64, Option<i64>)>,
    /// The device log: ident → kind → count.
    pub log: HashMap<String, HashMap<String, u64>>,
    /// Unfinished service orders that were escalated to an operator.
    pub escalated: HashSet<i64>,
}

fn server_kind(a: &Action) -> Option<&'static str> {
    match a {
        Action::Alarm { .. } => Some("alarm"),
        Action::Cancel => Some("cancel"),
        Action::CheckIn => Some("check_in"),
        Action::Service { .. } => Some("service_request"),
        Action::GoSilent => None,
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// What the device log holds against what the devices sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExactlyOnce {
    /// Alarms in the log.
    pub alarms_stored: u64,
    /// ACKed messages missing from the log.
    pub lost: u64,
    /// Messages stored more often than they were sent.
    pub duplicated: u64,
}

/// Per device (of `planned`) and kind: what it had ACKed against what the log (ident → kind →
/// count) holds.
pub fn exactly_once(
    sent: &[Sent],
    log: &HashMap<String, HashMap<String, u64>>,
    planned: &HashSet<&str>,
) -> ExactlyOnce {
    let mut acked_by: HashMap<(&str, &str), u64> = HashMap::new();
    let mut sent_by: HashMap<(&str, &str), u64> = HashMap::new();
    for s in sent {
        let Some(kind) = server_kind(&s.action) else {
            continue;
        };
        *sent_by.entry((&s.ident, kind)).or_default() += 1;
        if s.acked_at.is_some() {
            *acked_by.entry((&s.ident, kind)).or_default() += 1;
        }
    }
    let mut out = ExactlyOnce::default();
    for (ident, kinds) in log {
        if !planned.contains(ident.as_str()) {
            continue;
        }
        for (kind, n) in kinds {
            if kind == "alarm" {
                out.alarms_stored += n;
            }
            let sent_n = sent_by
                .get(&(ident.as_str(), kind.as_str()))
                .copied()
                .unwrap_or(0);
            let counted = matches!(
                kind.as_str(),
                "alarm" | "cancel" | "check_in" | "service_request"
            );
            if counted && *n > sent_n {
                out.duplicated += n - sent_n;
            }
        }
    }
    for ((ident, kind), acked) in &acked_by {
        let stored = log
            .get(*ident)
            .and_then(|k| k.get(*kind))
            .copied()
            .unwrap_or(0);
        out.lost += acked.saturating_sub(stored);
    }
    out
}

/// Builds the report from what the devices saw and what the server holds; `welfare_horizon` is
/// the clock time the server's welfare timers were read at (the end of the drain).
pub fn build(
    world: &World,
    seed: u64,
    welfare_horizon: Ms,
    sent: &[Sent],
    latency_us: &BTreeMap<Link, hdrhistogram::Histogram<u64>>,
    view: &ServerView,
) -> DayReport {
    let mut r = DayReport {
        preset: world.preset.name.clone(),
        seed,
        elders: world.dataset.elders.len(),
        responders: world.dataset.responders.len(),
        scale: world.preset.scale,
        ..Default::default()
    };

    for s in sent {
        let Some(kind) = server_kind(&s.action) else {
            continue;
        };
        let is_alarm = kind == "alarm";
        let acked = s.acked_at.is_some();
        if is_alarm {
            r.alarms_sent += 1;
            r.alarms_acked += u64::from(acked);
        } else {
            r.messages_sent += 1;
            r.messages_acked += u64::from(acked);
        }
        let link = r.links.entry(s.link.as_str().to_string()).or_default();
        link.sent += 1;
        link.acked += u64::from(acked);
        link.retries += u64::from(s.sends.saturating_sub(1));
    }
    for (link, h) in latency_us {
        let f = r.links.entry(link.as_str().to_string()).or_default();
        f.p50_us = h.value_at_quantile(0.5);
        f.p99_us = h.value_at_quantile(0.99);
        f.max_us = h.max();
    }
    let resolution = clock_resolution_ms(r.scale, r.links.values().map(|l| l.max_us));
    r.clock_resolution_s = resolution as f64 / 1000.0;
    let planned: HashSet<&str> = world.devices.iter().map(|d| d.ident.as_str()).collect();
    let once = exactly_once(sent, &view.log, &planned);
    r.alarms_stored = once.alarms_stored;
    r.lost = once.lost;
    r.duplicated = once.duplicated;

    // The SLA clocks, from the incidents' own timestamps.
    let t = |row: &Value, key: &str| row["incident"][key].as_i64();
    let (mut acks, mut accepts, mut scenes, mut services) = (vec![], vec![], vec![], vec![]);
    let (mut acked_60, mut accepted_2, mut not_cancelled, mut on_way, mut scene_30) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let elder_device: HashMap<i64, &str> = view
        .devices
        .iter()
        .filter_map(|(ident, (_, elder))| elder.map(|e| (e, ident.as_str())))
        .collect();
    let mut unreached: Vec<String> = Vec::new();
    let mut welfare_elders = HashSet::new();
    let mut silent_elders = HashSet::new();
    // Elder → (opened, closed) of their technical incidents.
    let mut technical: HashMap<i64, Vec<(Ms, Option<Ms>)>> = HashMap::new();
    for row in &view.incidents {
        let inc = &row["incident"];
        r.incidents += 1;
        if inc["status"].as_str() != Some("closed") {
            r.open_at_end += 1;
        }
        let received = t(row, "received_at").unwrap_or(0);
        let elder = inc["elder_id"].as_i64();
        match inc["category"].as_str().unwrap_or("") {
            "emergency" => {
                r.emergencies += 1;
                let ack = t(row, "acked_at").map(|a| a - received);
                // An operator who closed the incident (after calling the elder back, say)
                // handled it, acknowledged or not.
                let closed_by_operator = inc["closed_by"]
                    .as_str()
                    .is_some_and(|by| by != "system")
                    .then(|| t(row, "closed_at").map(|c| c - received))
                    .flatten();
                let accept = t(row, "accepted_at").map(|a| a - received);
                let scene = t(row, "on_scene_at").map(|a| a - received);
                let cancelled = inc["probable_false_alarm"].as_bool() == Some(true);
                if let Some(a) = ack {
                    acks.push(a);
                }
                let ack_ok = ack.is_some_and(|a| a <= ACK_TARGET_MS);
                let accept_ok = accept.is_some_and(|a| a <= ACCEPT_TARGET_MS);
                acked_60 += u64::from(ack_ok);
                let handled = match (ack, closed_by_operator) {
                    (Some(a), Some(c)) => Some(a.min(c)),
                    (a, c) => a.or(c),
                };
                let ack_in_policy = handled.is_some_and(|a| a <= ACK_TARGET_MS + resolution);
                let accept_in_policy = accept.is_some_and(|a| a <= ACCEPT_TARGET_MS + resolution);
                if ack_in_policy || accept_in_policy {
                    r.emergencies_reached_person += 1;
                } else {
                    let secs =
                        |v: Option<Ms>| v.map_or("never".into(), |v| format!("{} s", v / 1000));
                    unreached.push(format!(
                        "#{} {} (ack {}, closed by an operator {}, accepted {})",
                        inc["id"],
                        inc["kind"].as_str().unwrap_or("?"),
                        secs(ack),
                        secs(closed_by_operator),
                        secs(accept)
                    ));
                }
                if let Some(a) = accept {
                    r.emergencies_accepted += 1;
                    accepts.push(a);
                    on_way += 1;
                    if let Some(s) = scene {
                        scenes.push(s);
                        scene_30 += u64::from(s <= ON_SCENE_TARGET_MS);
                    }
                }
                if !cancelled {
                    not_cancelled += 1;
                    accepted_2 += u64::from(accept_ok);
                }
            }
            "service" => {
                r.service_orders += 1;
                let done = inc["status"].as_str() == Some("closed") || row["stage"] == "done";
                let done_at = t(row, "closed_at").or(done.then_some(received + SERVICE_TARGET_MS));
                let done_in_time =
                    done && done_at.is_some_and(|d| d - received <= SERVICE_TARGET_MS);
                if let Some(d) = t(row, "closed_at") {
                    services.push(d - received);
                }
                let id = inc["id"].as_i64().unwrap_or(0);
                if done_in_time {
                    r.service_done_within_24h_pct += 1.0;
                } else if !view.escalated.contains(&id) {
                    r.service_neither_done_nor_escalated += 1;
                }
            }
            "welfare" => {
                r.welfare_incidents += 1;
                if let Some(e) = elder {
                    welfare_elders.insert(e);
                }
            }
            "technical" => {
                if let Some(e) = elder {
                    technical
                        .entry(e)
                        .or_default()
                        .push((received, t(row, "closed_at")));
                }
                if inc["kind"].as_str() == Some("silent_device")
                    && let Some(ident) = elder.and_then(|e| elder_device.get(&e))
                {
                    silent_elders.insert(ident.to_string());
                }
            }
            _ => {}
        }
    }
    r.acked_within_60s_pct = pct(acked_60, r.emergencies);
    r.accepted_within_2min_pct = pct(accepted_2, not_cancelled);
    r.on_scene_within_30min_pct = pct(scene_30, on_way);
    r.service_done_within_24h_pct = pct(r.service_done_within_24h_pct as u64, r.service_orders);
    r.ack = Spread::of(acks);
    r.accept = Spread::of(accepts);
    r.on_scene = Spread::of(scenes);
    r.service_done = Spread::of(services);

    // What the plan implied should be raised.
    let ident_of: HashMap<&str, &DevicePlan> = world
        .devices
        .iter()
        .map(|d| (d.elder.as_str(), d))
        .collect();
    // Welfare: elders living alone (a 24 h check-in period) whose device sent no sign of life
    // (alarm, cancel, check-in, service request; a protocol without a check-in key sends none)
    // early enough for the period to run out before the end.
    let last_sign: HashMap<&str, Ms> = sent
        .iter()
        .filter(|s| s.acked_at.is_some() && server_kind(&s.action).is_some())
        .fold(HashMap::new(), |mut m, s| {
            let e = m.entry(s.ident.as_str()).or_insert(s.sent_at);
            *e = (*e).max(s.sent_at);
            m
        });
    let welfare_due: Vec<&str> = world
        .dataset
        .elders
        .iter()
        .filter(|e| e.checkin_hours <= 24)
        .filter_map(|e| ident_of.get(e.reference.as_str()))
        .filter(|d| {
            last_sign
                .get(d.ident.as_str())
                .is_none_or(|t| *t + 24 * HOUR + HOUR <= welfare_horizon)
        })
        .map(|d| d.ident.as_str())
        .collect();
    r.welfare_expected = welfare_due.len() as u64;
    r.welfare_raised = welfare_due
        .iter()
        .filter_map(|ident| view.devices.get(*ident).and_then(|(_, e)| *e))
        .filter(|e| welfare_elders.contains(e))
        .count() as u64;
    // A silent device is flagged by its own incident, or is already in the hands of the grid
    // worker: its elder had a technical incident open when the silence became due (one at a
    // time per elder), e.g. the power cut's.
    r.silent_devices_expected = world.expected.silent.len() as u64;
    let plan_of: HashMap<&str, &DevicePlan> = world
        .devices
        .iter()
        .map(|d| (d.ident.as_str(), d))
        .collect();
    for ident in &world.expected.silent {
        if silent_elders.contains(ident.as_str()) {
            r.silent_devices_raised += 1;
            continue;
        }
        let Some(plan) = plan_of.get(ident.as_str()) else {
            continue;
        };
        let silent_from = plan
            .actions
            .iter()
            .find(|(_, a)| *a == Action::GoSilent)
            .map(|(t, _)| *t)
            .unwrap_or(world.start);
        let due = silent_from + 3 * plan.heartbeat_ms;
        let elder = view.devices.get(ident).and_then(|(_, e)| *e);
        let covered = elder.and_then(|e| technical.get(&e)).is_some_and(|spans| {
            spans
                .iter()
                .any(|(opened, closed)| *opened <= due && closed.is_none_or(|c| c >= due))
        });
        if covered {
            r.silent_devices_raised += 1;
            r.silent_devices_covered += 1;
        }
    }

    if r.lost > 0 {
        r.failures.push(format!(
            "{} ACKed messages are not in the device log",
            r.lost
        ));
    }
    if r.duplicated > 0 {
        r.failures
            .push(format!("{} messages were stored twice", r.duplicated));
    }
    if r.alarms_acked < r.alarms_sent {
        r.failures.push(format!(
            "{} alarms were never ACKed",
            r.alarms_sent - r.alarms_acked
        ));
    }
    if r.emergencies_reached_person < r.emergencies {
        r.failures.push(format!(
            "{} of {} emergencies reached nobody within policy: {}",
            r.emergencies - r.emergencies_reached_person,
            r.emergencies,
            unreached.join(", ")
        ));
    }
    if r.service_neither_done_nor_escalated > 0 {
        r.failures.push(format!(
            "{} service orders were neither done nor escalated within 24 h",
            r.service_neither_done_nor_escalated
        ));
    }
    r
}

/// The report as the terminal shows it.
pub fn table(r: &DayReport) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<44} {v}\n"));
    line(
        "day",
        format!(
            "{} (seed {}), ×{} clock, {:.0} s wall",
            r.preset, r.seed, r.scale, r.wall_s
        ),
    );
    line(
        "elders / responders",
        format!("{} / {}", r.elders, r.responders),
    );
    line(
        "alarms sent / ACKed / stored",
        format!(
            "{} / {} / {}",
            r.alarms_sent, r.alarms_acked, r.alarms_stored
        ),
    );
    line(
        "other messages sent / ACKed",
        format!("{} / {}", r.messages_sent, r.messages_acked),
    );
    line(
        "lost / duplicated",
        format!("{} / {}", r.lost, r.duplicated),
    );
    line(
        "emergencies / reached a person in policy",
        format!(
            "{} / {}  (allowing {:.0} s of clock resolution)",
            r.emergencies, r.emergencies_reached_person, r.clock_resolution_s
        ),
    );
    line(
        "acked by an operator within 60 s",
        format!(
            "{:.1} %  (p50 {:.0} s, p90 {:.0} s, p99 {:.0} s)",
            r.acked_within_60s_pct, r.ack.p50_s, r.ack.p90_s, r.ack.p99_s
        ),
    );
    line(
        "accepted by a responder within 2 min",
        format!(
            "{:.1} %  (p50 {:.0} s, p90 {:.0} s, p99 {:.0} s)",
            r.accepted_within_2min_pct, r.accept.p50_s, r.accept.p90_s, r.accept.p99_s
        ),
    );
    line(
        "on scene within 30 min",
        format!(
            "{:.1} %  (p50 {:.0} s, p90 {:.0} s, p99 {:.0} s)",
            r.on_scene_within_30min_pct, r.on_scene.p50_s, r.on_scene.p90_s, r.on_scene.p99_s
        ),
    );
    line(
        "service orders / done within 24 h",
        format!(
            "{} / {:.1} %",
            r.service_orders, r.service_done_within_24h_pct
        ),
    );
    line(
        "welfare visits expected / raised",
        format!(
            "{} / {} ({} in all)",
            r.welfare_expected, r.welfare_raised, r.welfare_incidents
        ),
    );
    line(
        "silent devices expected / raised",
        format!(
            "{} / {}",
            r.silent_devices_expected, r.silent_devices_raised
        ),
    );
    line(
        "incidents / open at the end",
        format!("{} / {}", r.incidents, r.open_at_end),
    );
    line("texts at the SMS centre", r.sms.to_string());
    out.push_str("  link          sent  acked retries  p50 ms  p99 ms  max ms\n");
    for (name, l) in &r.links {
        out.push_str(&format!(
            "  {name:<12} {:>5} {:>6} {:>7} {:>7.1} {:>7.1} {:>7.1}\n",
            l.sent,
            l.acked,
            l.retries,
            l.p50_us as f64 / 1000.0,
            l.p99_us as f64 / 1000.0,
            l.max_us as f64 / 1000.0
        ));
    }
    for f in &r.failures {
        out.push_str(&format!("  FAILED: {f}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(ident: &str, action: Action, acked: bool) -> Sent {
        Sent {
            ident: ident.into(),
            link: Link::NativeTcp,
            action,
            planned_at: 0,
            sent_at: 0,
            acked_at: acked.then_some(1),
            sends: 1,
            ack_us: None,
        }
    }

    #[test]
    fn the_clock_resolution_is_the_slowest_measured_step_on_the_compressed_clock() {
        // Real speed: nothing to allow, however slow the machine.
        assert_eq!(clock_resolution_ms(1.0, [900_000]), 0);
        // ×720: a 100 ms commit is 72 s of the day, and an answer three of them.
        assert_eq!(
            clock_resolution_ms(720.0, [3_000, 100_000, 40_000]),
            216_000
        );
        // Never less than the floor (20 ms → 14.4 s a step at ×720), even with no samples.
        assert_eq!(clock_resolution_ms(720.0, []), 43_200);
        assert_eq!(clock_resolution_ms(30.0, [5_000]), 1_800);
    }

    #[test]
    fn a_lost_and_a_doubled_message_are_both_counted() {
        let sos = || Action::Alarm { kind: "sos".into() };
        let sent = vec![
            sent("a", sos(), true),
            sent("a", Action::CheckIn, true),
            sent("b", sos(), true),
            sent("c", sos(), false),
        ];
        let log: HashMap<String, HashMap<String, u64>> = [
            // a: both stored once; b: its alarm is missing; c: stored twice though never ACKed.
            ("a", vec![("alarm", 1), ("check_in", 1)]),
            ("c", vec![("alarm", 2)]),
            // Not one of ours.
            ("z", vec![("alarm", 5)]),
        ]
        .into_iter()
        .map(|(i, k)| {
            (
                i.to_string(),
                k.into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
            )
        })
        .collect();
        let planned: HashSet<&str> = ["a", "b", "c"].into();
        assert_eq!(
            exactly_once(&sent, &log, &planned),
            ExactlyOnce {
                alarms_stored: 3,
                lost: 1,
                duplicated: 1
            }
        );
    }
}
