//! Table-driven tests of the dispatch state machine, one row per (category, inputs) scenario.

use std::collections::BTreeSet;

use super::engine::*;
use super::matcher::CandidateSource;
use super::policy::{DispatchPolicy, SlaClock, SlotSpec};
use crate::domain::{Category, GeoPoint, Millis, Outcome, ResponderKind};

/// Responders on a line east of the elder: id = metres away / 100, kind by id.
struct Line(Vec<(i64, f64, ResponderKind)>);

impl CandidateSource for Line {
    fn nearby(
        &self,
        _at: GeoPoint,
        radius_m: f64,
        slot: &SlotSpec,
        exclude: &BTreeSet<i64>,
        limit: usize,
    ) -> Vec<i64> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .filter(|(id, d, k)| {
                *d <= radius_m
                    && !exclude.contains(id)
                    && (slot.kinds.is_empty() || slot.kinds.contains(k))
            })
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v.into_iter().take(limit).map(|(id, _, _)| *id).collect()
    }
}

/// Volunteers 1–6 at 80..480 m, 7–10 at 1000..1300 m, 11 at 2500 m.
fn district() -> Line {
    let mut v: Vec<(i64, f64, ResponderKind)> = (1..=6)
        .map(|i| (i, i as f64 * 80.0, ResponderKind::Volunteer))
        .collect();
    v.extend((7..=10).map(|i| (i, 1000.0 + (i - 7) as f64 * 100.0, ResponderKind::Volunteer)));
    v.push((11, 2500.0, ResponderKind::Volunteer));
    Line(v)
}

const GW: i64 = 900;
const KEY: i64 = 800;
const T0: Millis = 1_000_000;
const S: Millis = 1000;

fn facts(category: Category, kind: &str) -> IncidentFacts {
    IncidentFacts {
        incident_id: 1,
        category,
        kind: kind.into(),
        location: Some(GeoPoint {
            lat: 27.11,
            lon: 114.98,
            accuracy_m: None,
        }),
        elder_id: Some(5),
        grid_worker: Some(GW),
        key_holders: vec![KEY],
        contacts: 2,
        opened_at: T0,
        address: None,
        elder_name: None,
    }
}

fn run(
    engine: &Engine,
    cands: &Line,
    facts: IncidentFacts,
    inputs: &[(Millis, Input)],
) -> (DispatchState, Vec<Vec<Effect>>) {
    let mut st = engine.init(facts);
    let mut all = Vec::new();
    for (at, input) in inputs {
        let (next, fx) = engine.step(st, input, *at, cands);
        st = next;
        all.push(fx);
    }
    (st, all)
}

fn offered(fx: &[Effect]) -> Vec<i64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Push {
                responder_id,
                push: Push::Offer { .. },
            } => Some(*responder_id),
            _ => None,
        })
        .collect()
}

fn stood_down(fx: &[Effect], why: StandDownReason) -> Vec<i64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Push {
                responder_id,
                push: Push::StandDown { reason },
            } if *reason == why => Some(*responder_id),
            _ => None,
        })
        .collect()
}

fn escalations(fx: &[Effect]) -> Vec<(EscalationTarget, EscalationReason)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Escalate { to, reason } => Some((*to, *reason)),
            _ => None,
        })
        .collect()
}

fn round_timer(r: u32) -> Input {
    Input::TimerFired(Timer::OfferRound { round: r })
}

fn sla_timer(clock: SlaClock) -> Input {
    Input::TimerFired(Timer::Sla { clock })
}

fn op_offer(r: i64) -> Input {
    Input::OperatorOffer {
        responder_id: r,
        by: "王芳".into(),
    }
}

fn op_escalate() -> Input {
    Input::OperatorEscalate {
        note: "电话无人接听".into(),
        by: "王芳".into(),
    }
}

fn logged<'a>(fx: &'a [Effect], kind: &str) -> Vec<&'a serde_json::Value> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::ConsoleEvent {
                kind: k, detail, ..
            } if *k == kind => Some(detail),
            _ => None,
        })
        .collect()
}

#[test]
fn emergency_opening_starts_clocks_notifies_contacts_and_offers_ring_one() {
    let e = Engine::new(DispatchPolicy::default());
    let (st, fx) = run(
        &e,
        &district(),
        facts(Category::Emergency, "sos"),
        &[(T0 + 200, Input::Opened)],
    );
    let fx = &fx[0];
    assert_eq!(
        offered(fx),
        vec![1, 2, 3, 4, 5, KEY],
        "5 nearest in 500 m + the key holder"
    );
    assert!(fx.contains(&Effect::NotifyContacts { elder_id: 5 }));
    for (clock, due) in [
        (SlaClock::Ack, T0 + 60 * S),
        (SlaClock::Accept, T0 + 120 * S),
        (SlaClock::OnScene, T0 + 1800 * S),
    ] {
        assert!(
            fx.contains(&Effect::StartTimer {
                timer: Timer::Sla { clock },
                due
            }),
            "{clock:?}"
        );
    }
    assert!(fx.contains(&Effect::StartTimer {
        timer: Timer::OfferRound { round: 1 },
        due: T0 + 200 + 30 * S
    }));
    assert_eq!(st.phase(), Phase::Dispatching);
    let (_, again) = e.step(st, &Input::Opened, T0 + 300, &district());
    assert!(again.is_empty(), "opening twice changes nothing");
}

/// One row: category, kind, inputs after opening, expected phase, offers in the last step,
/// escalations in the last step.
type Row = (
    &'static str,
    Category,
    &'static str,
    Vec<(Millis, Input)>,
    Phase,
    Vec<i64>,
    Vec<(EscalationTarget, EscalationReason)>,
);

#[test]
fn transitions_table() {
    use EscalationReason::*;
    use EscalationTarget::*;
    let rows: Vec<Row> = vec![
        (
            "first accept wins the seat",
            Category::Emergency,
            "fall",
            vec![(T0 + 20 * S, Input::Accepted(2))],
            Phase::Assigned,
            vec![],
            vec![],
        ),
        (
            "decline refills from ring one",
            Category::Emergency,
            "sos",
            vec![(T0 + 5 * S, Input::Declined(1))],
            Phase::Dispatching,
            vec![6],
            vec![],
        ),
        (
            "round timeout widens to 1.5 km",
            Category::Emergency,
            "sos",
            vec![(T0 + 30 * S, round_timer(1))],
            Phase::Dispatching,
            vec![6, 7, 8, 9, 10],
            vec![],
        ),
        (
            "stale round timer is ignored",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 5 * S, Input::Declined(1)),
                (T0 + 30 * S, round_timer(1)),
            ],
            Phase::Dispatching,
            vec![],
            vec![],
        ),
        (
            "rings exhausted: grid worker, then operator",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 30 * S, round_timer(1)),
                (T0 + 60 * S, round_timer(2)),
                (T0 + 90 * S, round_timer(3)),
                (T0 + 120 * S, round_timer(4)),
            ],
            Phase::Escalated,
            vec![],
            vec![(Operator, NoResponder)],
        ),
        (
            "third ring then grid worker",
            Category::Emergency,
            "sos",
            vec![(T0 + 30 * S, round_timer(1)), (T0 + 60 * S, round_timer(2))],
            Phase::Dispatching,
            vec![11],
            vec![],
        ),
        (
            "accept SLA breach escalates to operator",
            Category::Emergency,
            "sos",
            vec![(T0 + 120 * S, sla_timer(SlaClock::Accept))],
            Phase::Escalated,
            vec![],
            vec![(Operator, AcceptOverdue)],
        ),
        (
            "ack SLA breach alerts the console",
            Category::Emergency,
            "sos",
            vec![(T0 + 60 * S, sla_timer(SlaClock::Ack))],
            Phase::Dispatching,
            vec![],
            vec![(Operator, AckOverdue)],
        ),
        (
            "acked clock does not breach",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::OperatorAck),
                (T0 + 60 * S, sla_timer(SlaClock::Ack)),
            ],
            Phase::Dispatching,
            vec![],
            vec![],
        ),
        (
            "arrival puts someone on scene",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 20 * S, Input::Accepted(3)),
                (T0 + 600 * S, Input::Arrived(3)),
            ],
            Phase::OnScene,
            vec![],
            vec![],
        ),
        (
            "not on scene in 30 min escalates",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 20 * S, Input::Accepted(3)),
                (T0 + 1800 * S, sla_timer(SlaClock::OnScene)),
            ],
            Phase::Assigned,
            vec![],
            vec![(Operator, NotOnScene)],
        ),
        (
            "arrival before the on-scene deadline stops it",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 20 * S, Input::Accepted(3)),
                (T0 + 900 * S, Input::Arrived(3)),
                (T0 + 1800 * S, sla_timer(SlaClock::OnScene)),
            ],
            Phase::OnScene,
            vec![],
            vec![],
        ),
        (
            "late accept after escalation still assigns",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 120 * S, sla_timer(SlaClock::Accept)),
                (T0 + 125 * S, Input::Accepted(4)),
            ],
            Phase::Assigned,
            vec![],
            vec![],
        ),
        (
            "cancel within 30 s: probable false alarm",
            Category::Emergency,
            "sos",
            vec![(T0 + 25 * S, Input::DeviceCancel)],
            Phase::Cancelled,
            vec![],
            vec![],
        ),
        (
            "cancel after the window is ignored",
            Category::Emergency,
            "sos",
            vec![(T0 + 45 * S, Input::DeviceCancel)],
            Phase::Dispatching,
            vec![],
            vec![],
        ),
        (
            "alarm after cancel asks the nearest again",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::DeviceCancel),
                (T0 + 40 * S, Input::AlarmJoined),
            ],
            Phase::Dispatching,
            vec![1, 2, 3, 4, 5, KEY],
            vec![(
                EscalationTarget::Operator,
                EscalationReason::AlarmAfterCancel,
            )],
        ),
        (
            "accept after cancel is refused",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::DeviceCancel),
                (T0 + 11 * S, Input::Accepted(1)),
            ],
            Phase::Cancelled,
            vec![],
            vec![],
        ),
        (
            "close ends everything",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::Accepted(1)),
                (T0 + 50 * S, Input::Closed(Outcome::Resolved)),
            ],
            Phase::Closed,
            vec![],
            vec![],
        ),
        (
            "timer after close does nothing",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::Closed(Outcome::FalseAlarm)),
                (T0 + 60 * S, sla_timer(SlaClock::Ack)),
            ],
            Phase::Closed,
            vec![],
            vec![],
        ),
        (
            "service: 1+2+5 visit fills",
            Category::Service,
            "emotional_care",
            vec![],
            Phase::Dispatching,
            vec![],
            vec![],
        ),
        (
            "service: completed in time",
            Category::Service,
            "housekeeping",
            vec![
                (T0 + 60 * S, Input::Accepted(1)),
                (T0 + 7200 * S, Input::Completed(1, "ok".into())),
                (T0 + 86_400 * S, sla_timer(SlaClock::Done)),
            ],
            Phase::Completed,
            vec![],
            vec![],
        ),
        (
            "service: 24 h breach escalates to grid worker and console",
            Category::Service,
            "housekeeping",
            vec![
                (T0 + 60 * S, Input::Accepted(1)),
                (T0 + 86_400 * S, sla_timer(SlaClock::Done)),
            ],
            Phase::Assigned,
            vec![],
            vec![(Operator, Overdue), (GridWorker(GW), Overdue)],
        ),
        (
            "technical: grid worker declines, console decides",
            Category::Technical,
            "low_battery",
            vec![(T0 + 60 * S, Input::Declined(GW))],
            Phase::Escalated,
            vec![],
            vec![(Operator, NoResponder)],
        ),
        (
            "technical: grid worker done",
            Category::Technical,
            "power_loss",
            vec![
                (T0 + 60 * S, Input::Accepted(GW)),
                (T0 + 3600 * S, Input::Completed(GW, "charged".into())),
            ],
            Phase::Completed,
            vec![],
            vec![],
        ),
        (
            "operator offer goes out at once, outside the rings",
            Category::Emergency,
            "sos",
            vec![(T0 + 5 * S, op_offer(11))],
            Phase::Dispatching,
            vec![11],
            vec![],
        ),
        (
            "operator offer takes the seat from its holder",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 10 * S, Input::Accepted(2)),
                (T0 + 20 * S, op_offer(7)),
            ],
            Phase::Dispatching,
            vec![7],
            vec![],
        ),
        (
            "operator offer re-asks one who declined",
            Category::Emergency,
            "sos",
            vec![(T0 + 5 * S, Input::Declined(1)), (T0 + 9 * S, op_offer(1))],
            Phase::Dispatching,
            vec![1],
            vec![],
        ),
        (
            "operator offer after escalation dispatches again",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 120 * S, sla_timer(SlaClock::Accept)),
                (T0 + 130 * S, op_offer(11)),
            ],
            Phase::Dispatching,
            vec![11],
            vec![],
        ),
        (
            "operator escalation goes to the grid worker first",
            Category::Emergency,
            "sos",
            vec![(T0 + 5 * S, op_escalate())],
            Phase::Dispatching,
            vec![GW],
            vec![(GridWorker(GW), OperatorRequest)],
        ),
        (
            "second operator escalation hands it to an operator decision",
            Category::Emergency,
            "sos",
            vec![(T0 + 5 * S, op_escalate()), (T0 + 6 * S, op_escalate())],
            Phase::Escalated,
            vec![],
            vec![(Operator, OperatorRequest)],
        ),
        (
            "operator escalation of an assigned task alerts the grid worker",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 5 * S, Input::Accepted(2)),
                (T0 + 6 * S, op_escalate()),
            ],
            Phase::Assigned,
            vec![],
            vec![(GridWorker(GW), OperatorRequest)],
        ),
        (
            "operator escalation after the grid worker fallback goes to the operator",
            Category::Technical,
            "low_battery",
            vec![(T0 + 60 * S, op_escalate())],
            Phase::Escalated,
            vec![],
            vec![(Operator, OperatorRequest)],
        ),
        (
            "operator actions after close do nothing",
            Category::Emergency,
            "sos",
            vec![
                (T0 + 5 * S, Input::Closed(Outcome::Resolved)),
                (T0 + 6 * S, op_offer(11)),
                (T0 + 7 * S, op_escalate()),
            ],
            Phase::Closed,
            vec![],
            vec![],
        ),
        (
            "welfare: unanswered grid worker times out to console",
            Category::Welfare,
            "missed_check_in",
            vec![(T0 + 7200 * S, round_timer(1))],
            Phase::Escalated,
            vec![],
            vec![(Operator, NoResponder)],
        ),
    ];
    let e = Engine::new(DispatchPolicy::default());
    let cands = district();
    for (name, category, kind, inputs, phase, last_offers, last_escalations) in rows {
        let mut all = vec![(T0, Input::Opened)];
        all.extend(inputs);
        let (st, fx) = run(&e, &cands, facts(category, kind), &all);
        let last = fx.last().expect("a step");
        assert_eq!(st.phase(), phase, "{name}");
        if all.len() > 1 {
            assert_eq!(offered(last), last_offers, "{name}: offers");
        }
        assert_eq!(escalations(last), last_escalations, "{name}: escalations");
        // Invariant: never more task holders per slot than seats.
        for (i, slot) in st.team.slots.iter().enumerate() {
            let n = st
                .offers
                .iter()
                .filter(|o| o.slot == i && o.status.holds_task())
                .count();
            assert!(n <= slot.count as usize, "{name}: slot {i} over-filled");
        }
    }
}

#[test]
fn two_accepts_for_one_seat_give_exactly_one_task() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [
        (T0, Input::Opened),
        (T0 + 9 * S, Input::Accepted(4)),
        (T0 + 9 * S, Input::Accepted(2)),
    ];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    assert_eq!(st.assignees(), vec![4]);
    assert_eq!(stood_down(&fx[1], StandDownReason::Taken), vec![1, 2, 3, 5]);
    assert_eq!(stood_down(&fx[2], StandDownReason::NotOpen), vec![2]);
    assert!(fx[1].iter().any(|e| matches!(e, Effect::SlaMet { clock: SlaClock::Accept, elapsed_ms } if *elapsed_ms == 9 * S)));
    // The key slot is separate: the key holder can still accept.
    let (st, _) = e.step(st, &Input::Accepted(KEY), T0 + 10 * S, &district());
    assert_eq!(st.assignees(), vec![4, KEY]);
}

fn timers_cancelled(fx: &[Effect]) -> Vec<Timer> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::CancelTimer { timer } => Some(*timer),
            _ => None,
        })
        .collect()
}

fn timers_started(fx: &[Effect]) -> Vec<(Timer, Millis)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartTimer { timer, due } => Some((*timer, *due)),
            _ => None,
        })
        .collect()
}

#[test]
fn cancel_within_window_stops_open_offers_but_whoever_is_on_the_way_keeps_the_task() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [
        (T0, Input::Opened),
        (T0 + S, Input::Accepted(1)),
        (T0 + 20 * S, Input::DeviceCancel),
    ];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    let down = stood_down(&fx[2], StandDownReason::Cancelled);
    assert!(
        down.contains(&KEY),
        "the key holder's open offer stops: {down:?}"
    );
    assert!(
        !down.contains(&1),
        "the volunteer on the way is not stood down"
    );
    assert!(fx[2].contains(&Effect::Push {
        responder_id: 1,
        push: Push::CancelNotice
    }));
    assert_eq!(st.assignees(), vec![1]);
    assert_eq!(st.phase(), Phase::Assigned);
    let cancelled = timers_cancelled(&fx[2]);
    assert!(
        !cancelled.contains(&Timer::Sla {
            clock: SlaClock::OnScene
        }),
        "the on-scene clock keeps running while someone is on the way"
    );
    assert!(!cancelled.contains(&Timer::Sla {
        clock: SlaClock::Ack
    }));
    assert!(!logged(&fx[2], "probable_false_alarm").is_empty());
    // The operator confirms the false alarm: the volunteer stands down, the clocks stop.
    let (st, fx) = e.step(
        st,
        &Input::ConfirmFalseAlarm {
            by: "王芳".into()
        },
        T0 + 40 * S,
        &district(),
    );
    assert_eq!(stood_down(&fx, StandDownReason::Cancelled), vec![1]);
    assert!(st.assignees().is_empty());
    assert!(timers_cancelled(&fx).contains(&Timer::Sla {
        clock: SlaClock::OnScene
    }));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::ConsoleEvent { kind: "false_alarm_confirmed", actor, .. } if actor == "operator:王芳"
    )));
}

#[test]
fn cancel_with_nobody_on_the_way_stops_the_clocks_but_not_the_ack_clock() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [(T0, Input::Opened), (T0 + 20 * S, Input::DeviceCancel)];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    assert_eq!(st.phase(), Phase::Cancelled);
    let cancelled = timers_cancelled(&fx[1]);
    assert!(cancelled.contains(&Timer::Sla {
        clock: SlaClock::OnScene
    }));
    assert!(
        !cancelled.contains(&Timer::Sla {
            clock: SlaClock::Ack
        }),
        "the operator must still confirm"
    );
    let (_, fx) = e.step(st, &sla_timer(SlaClock::Ack), T0 + 60 * S, &district());
    assert_eq!(
        escalations(&fx),
        vec![(EscalationTarget::Operator, EscalationReason::AckOverdue)]
    );
}

#[test]
fn an_alarm_after_a_cancel_restarts_every_stopped_clock_from_now_and_calls_the_operator() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [
        (T0, Input::Opened),
        (T0 + 10 * S, Input::DeviceCancel),
        (T0 + 200 * S, Input::AlarmJoined),
    ];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    let started = timers_started(&fx[2]);
    let again = T0 + 200 * S;
    for (clock, target) in [(SlaClock::Accept, 120 * S), (SlaClock::OnScene, 1800 * S)] {
        assert!(
            started.contains(&(Timer::Sla { clock }, again + target)),
            "{clock:?} restarts from the new alarm: {started:?}"
        );
    }
    assert_eq!(
        escalations(&fx[2]),
        vec![(
            EscalationTarget::Operator,
            EscalationReason::AlarmAfterCancel
        )]
    );
    assert!(!offered(&fx[2]).is_empty(), "offers go out again");
    // Meeting a restarted clock is measured from its restart.
    let (_, fx) = e.step(st, &Input::Accepted(1), again + 5 * S, &district());
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::SlaMet { clock: SlaClock::Accept, elapsed_ms } if *elapsed_ms == 5 * S
    )));
}

#[test]
fn reconcile_re_emits_the_timers_the_state_implies() {
    let e = Engine::new(DispatchPolicy::default());
    let (st, fx) = run(
        &e,
        &district(),
        facts(Category::Emergency, "sos"),
        &[(T0, Input::Opened)],
    );
    let (st2, again) = e.step(st.clone(), &Input::Reconcile, T0 + 5 * S, &district());
    let mut first = timers_started(&fx[0]);
    let mut repaired = timers_started(&again);
    first.sort();
    repaired.sort();
    assert_eq!(first, repaired, "the same timers at the same due times");
    assert_eq!(st2, st, "nothing else changes");
    assert!(offered(&again).is_empty());
}

#[test]
fn close_cancels_every_running_timer_and_stands_down_holders() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [
        (T0, Input::Opened),
        (T0 + S, Input::Accepted(1)),
        (T0 + 2 * S, Input::Closed(Outcome::EmergencyServices)),
    ];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    let started: BTreeSet<Timer> = fx
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Effect::StartTimer { timer, .. } => Some(*timer),
            _ => None,
        })
        .collect();
    let cancelled: BTreeSet<Timer> = fx
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Effect::CancelTimer { timer } => Some(*timer),
            _ => None,
        })
        .collect();
    assert_eq!(started, cancelled, "no timer left running");
    assert_eq!(stood_down(&fx[2], StandDownReason::Closed), vec![1, KEY]);
    assert_eq!(st.phase(), Phase::Closed);
}

#[test]
fn a_team_visit_needs_every_seat_before_it_is_done() {
    let mut cands = district();
    for i in 20..40 {
        let kind = if i < 25 {
            ResponderKind::SocialWorker
        } else {
            ResponderKind::NursingStudent
        };
        cands.0.push((i, 200.0 + i as f64, kind));
    }
    let e = Engine::new(DispatchPolicy::default());
    let (mut st, fx) = run(
        &e,
        &cands,
        facts(Category::Service, "emotional_care"),
        &[(T0, Input::Opened)],
    );
    let sent = offered(&fx[0]);
    assert_eq!(sent.len(), 3 + 2 * 3 + 5 * 3, "3 per seat for 1+2+5");
    let mut t = T0;
    for &r in &sent {
        t += S;
        st = e.step(st, &Input::Accepted(r), t, &cands).0;
    }
    assert_eq!(st.assignees().len(), 8, "exactly 1+2+5 hold the task");
    let holders = st.assignees();
    for (i, &r) in holders.iter().enumerate() {
        t += S;
        st = e.step(st, &Input::Completed(r, String::new()), t, &cands).0;
        assert_eq!(st.phase() == Phase::Completed, i + 1 == holders.len());
    }
}

#[test]
fn no_location_goes_straight_to_the_grid_worker() {
    let e = Engine::new(DispatchPolicy::default());
    let mut f = facts(Category::Emergency, "sos");
    f.location = None;
    f.key_holders.clear();
    let (_, fx) = run(&e, &district(), f, &[(T0, Input::Opened)]);
    assert_eq!(offered(&fx[0]), vec![GW]);
}

#[test]
fn timer_names_round_trip() {
    for t in [
        Timer::OfferRound { round: 7 },
        Timer::Sla {
            clock: SlaClock::OnScene,
        },
    ] {
        assert_eq!(Timer::parse(&t.name()), Some(t));
    }
    assert_eq!(Timer::parse("nope:1"), None);
}

#[test]
fn operator_reassignment_stands_the_holder_down_and_the_new_one_can_accept() {
    let e = Engine::new(DispatchPolicy::default());
    let inputs = [
        (T0, Input::Opened),
        (T0 + 10 * S, Input::Accepted(2)),
        (T0 + 20 * S, op_offer(7)),
        (T0 + 30 * S, Input::Accepted(2)),
        (T0 + 40 * S, Input::Accepted(7)),
    ];
    let (st, fx) = run(&e, &district(), facts(Category::Emergency, "sos"), &inputs);
    assert_eq!(stood_down(&fx[2], StandDownReason::Reassigned), vec![2]);
    let op = logged(&fx[2], "operator_offer");
    assert_eq!(op.len(), 1);
    assert_eq!(op[0]["responder_id"], 7);
    assert_eq!(op[0]["replaced"], 2);
    assert!(fx[2].iter().any(|e| matches!(
        e,
        Effect::ConsoleEvent { kind: "operator_offer", actor, .. } if actor == "operator:王芳"
    )));
    assert!(
        fx[2].contains(&Effect::StartTimer {
            timer: Timer::OfferRound { round: 2 },
            due: T0 + 20 * S + 120 * S
        }),
        "the operator's offer runs for the manual-offer timeout"
    );
    assert_eq!(
        stood_down(&fx[3], StandDownReason::NotOpen),
        vec![2],
        "the old holder cannot take it back"
    );
    assert_eq!(st.assignees(), vec![7]);
    // Offering to the one who holds it changes nothing but the log.
    let (st2, again) = e.step(st.clone(), &op_offer(7), T0 + 50 * S, &district());
    assert_eq!(st2.assignees(), vec![7]);
    assert!(
        offered(&again).is_empty() && stood_down(&again, StandDownReason::Reassigned).is_empty()
    );
    assert_eq!(logged(&again, "operator_offer")[0]["already_holds"], true);
}

#[test]
fn operator_escalation_is_logged_with_the_note() {
    let e = Engine::new(DispatchPolicy::default());
    let (st, fx) = run(
        &e,
        &district(),
        facts(Category::Emergency, "sos"),
        &[
            (T0, Input::Opened),
            (T0 + S, op_escalate()),
            (T0 + 2 * S, op_escalate()),
        ],
    );
    let first = logged(&fx[1], "escalated");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["to"], "grid_worker");
    assert_eq!(first[0]["note"], "电话无人接听");
    assert_eq!(logged(&fx[2], "escalated")[0]["to"], "operator");
    assert!(st.grid_worker_asked && st.escalated);
    // The grid worker can still accept the offer the escalation made.
    let (st, _) = e.step(st, &Input::Accepted(GW), T0 + 3 * S, &district());
    assert_eq!(st.assignees(), vec![GW]);
    assert_eq!(st.phase(), Phase::Assigned);
}
