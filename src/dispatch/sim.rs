//! A simulated day in a small district on a virtual clock, using only the pure core: hundreds of
//! elders and responders, volunteers who answer 17–47 % of the offers they get, device cancels,
//! slow operators. Asserts the policy holds for every incident.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::engine::*;
use super::matcher::{Available, Matcher};
use super::policy::{DispatchPolicy, SlaClock};
use super::welfare;
use crate::domain::{Category, GeoPoint, Millis, Outcome, ResponderKind};

const S: Millis = 1000;
const MIN: Millis = 60 * S;
const H: Millis = 60 * MIN;
const LAT: f64 = 27.11;
const LON: f64 = 114.98;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Open(i64),
    Engine(i64, EvInput),
    Timer(i64, Timer, Millis),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum EvInput {
    Ack,
    Accept(i64),
    Decline(i64),
    Arrive(i64),
    Complete(i64),
    Cancel,
    Close(u8),
}

struct Case {
    facts: IncidentFacts,
    state: Option<DispatchState>,
    cancelled_by_device: bool,
    first_accept: Option<Millis>,
    escalated_at: Option<Millis>,
    done_at: Option<Millis>,
    done_breach_escalated_at: Option<Millis>,
    closed: bool,
}

struct World {
    rng: StdRng,
    engine: Engine,
    matcher: Matcher,
    answer_rate: BTreeMap<i64, f64>,
    queue: BinaryHeap<Reverse<(Millis, u64, Ev)>>,
    seq: u64,
    timers: BTreeMap<(i64, Timer), Millis>,
    cases: BTreeMap<i64, Case>,
    alerted: u64,
    answered: u64,
}

impl World {
    fn at(&mut self, t: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    fn jitter(&mut self, lo: Millis, hi: Millis) -> Millis {
        self.rng.random_range(lo..=hi)
    }

    fn input(&mut self, id: i64, input: Input, now: Millis) {
        let Some(case) = self.cases.get_mut(&id) else {
            return;
        };
        let Some(st) = case.state.take() else { return };
        let (st, fx) = self.engine.step(st, &input, now, &self.matcher);
        let category = st.facts.category;
        let closed = st.closed;
        case.state = Some(st);
        case.closed = closed;
        for e in fx {
            self.effect(id, category, e, now);
        }
    }

    fn effect(&mut self, id: i64, category: Category, e: Effect, now: Millis) {
        let emergency = category == Category::Emergency;
        match e {
            Effect::StartTimer { timer, due } => {
                self.timers.insert((id, timer), due);
                self.at(due, Ev::Timer(id, timer, due));
            }
            Effect::CancelTimer { timer } => {
                self.timers.remove(&(id, timer));
            }
            Effect::Push {
                responder_id,
                push: Push::Offer { .. },
            } => {
                self.alerted += 1;
                let rate = self.answer_rate.get(&responder_id).copied().unwrap_or(0.9);
                if self.rng.random_bool(rate) {
                    self.answered += 1;
                    let delay = if emergency {
                        self.jitter(5 * S, 40 * S)
                    } else {
                        self.jitter(MIN, 40 * MIN)
                    };
                    let answer = if self.rng.random_bool(0.8) {
                        EvInput::Accept(responder_id)
                    } else {
                        EvInput::Decline(responder_id)
                    };
                    self.at(now + delay, Ev::Engine(id, answer));
                }
            }
            Effect::Push {
                responder_id,
                push: Push::Assigned { .. },
            } => {
                self.matcher.adjust_load(responder_id, 1);
                let case = &mut self.cases.get_mut(&id).expect("case");
                case.first_accept.get_or_insert(now);
                let travel = self.jitter(5 * MIN, 25 * MIN);
                let work = if emergency {
                    self.jitter(20 * MIN, 60 * MIN)
                } else {
                    self.jitter(H, 3 * H)
                };
                self.at(now + travel, Ev::Engine(id, EvInput::Arrive(responder_id)));
                self.at(
                    now + travel + work,
                    Ev::Engine(id, EvInput::Complete(responder_id)),
                );
            }
            Effect::Push {
                responder_id,
                push: Push::StandDown { reason },
            } => {
                let held = self.cases[&id]
                    .state
                    .as_ref()
                    .and_then(|s| s.offer(responder_id))
                    .is_some_and(|o| o.status == OfferStatus::Withdrawn)
                    && matches!(reason, StandDownReason::Cancelled | StandDownReason::Closed);
                if held {
                    self.matcher.adjust_load(responder_id, -1);
                }
            }
            Effect::Escalate {
                to: EscalationTarget::Operator,
                reason,
            } => {
                let case = self.cases.get_mut(&id).expect("case");
                case.escalated_at.get_or_insert(now);
                if reason == EscalationReason::Overdue {
                    case.done_breach_escalated_at.get_or_insert(now);
                }
                if matches!(
                    reason,
                    EscalationReason::NoResponder | EscalationReason::AcceptOverdue
                ) && emergency
                {
                    // The operator calls 120 and closes it a quarter of an hour later, unless a
                    // volunteer got there first.
                    self.at(now + 15 * MIN, Ev::Engine(id, EvInput::Close(1)));
                }
            }
            Effect::ConsoleEvent {
                kind: "task_completed",
                ..
            } => {
                self.cases.get_mut(&id).expect("case").done_at = Some(now);
                self.at(now + MIN, Ev::Engine(id, EvInput::Close(0)));
            }
            Effect::ConsoleEvent {
                kind: "completed",
                actor,
                ..
            } => {
                if let Some(r) = actor
                    .strip_prefix("responder:")
                    .and_then(|r| r.parse().ok())
                {
                    self.matcher.adjust_load(r, -1);
                }
            }
            _ => {}
        }
    }

    fn run(&mut self, until: Millis) {
        while let Some(Reverse((t, _, ev))) = self.queue.pop() {
            if t > until {
                break;
            }
            match ev {
                Ev::Open(id) => {
                    let facts = self.cases[&id].facts.clone();
                    let st = self.engine.init(facts);
                    self.cases.get_mut(&id).expect("case").state = Some(st);
                    self.input(id, Input::Opened, t);
                    let ack = self.jitter(5 * S, 75 * S);
                    self.at(t + ack, Ev::Engine(id, EvInput::Ack));
                    if self.cases[&id].cancelled_by_device {
                        let c = self.jitter(8 * S, 25 * S);
                        self.at(t + c, Ev::Engine(id, EvInput::Cancel));
                        self.at(t + c + 3 * MIN, Ev::Engine(id, EvInput::Close(2)));
                    }
                }
                Ev::Timer(id, timer, due) => {
                    // Fires once, and only if still pending with this due time.
                    if self.timers.get(&(id, timer)) == Some(&due) {
                        self.timers.remove(&(id, timer));
                        self.input(id, Input::TimerFired(timer), t);
                    }
                }
                Ev::Engine(id, e) => {
                    let input = match e {
                        EvInput::Ack => Input::OperatorAck,
                        EvInput::Accept(r) => Input::Accepted(r),
                        EvInput::Decline(r) => Input::Declined(r),
                        EvInput::Arrive(r) => Input::Arrived(r),
                        EvInput::Complete(r) => Input::Completed(r, "done".into()),
                        EvInput::Cancel => Input::DeviceCancel,
                        EvInput::Close(0) => Input::Closed(Outcome::Resolved),
                        EvInput::Close(1) => Input::Closed(Outcome::EmergencyServices),
                        EvInput::Close(_) => Input::Closed(Outcome::FalseAlarm),
                    };
                    self.input(id, input, t);
                }
            }
        }
    }
}

fn point(rng: &mut StdRng, spread: f64) -> (f64, f64) {
    (
        LAT + rng.random_range(-spread..spread),
        LON + rng.random_range(-spread..spread),
    )
}

fn district(seed: u64) -> World {
    use ResponderKind::*;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut people = Vec::new();
    let mut answer_rate = BTreeMap::new();
    let roles = [
        (Volunteer, 260, vec![]),
        (NursingStudent, 50, vec!["health"]),
        (SocialWorker, 20, vec![]),
        (Provider, 30, vec!["housekeeping", "daily_care"]),
        (Carer, 30, vec!["daily_care", "health"]),
    ];
    let mut id = 1;
    for (kind, n, skills) in roles {
        for _ in 0..n {
            let (lat, lon) = point(&mut rng, 0.02);
            people.push(Available {
                id,
                kind,
                skills: skills.iter().map(|s| s.to_string()).collect(),
                lat,
                lon,
                load: 0,
                max_tasks: 2,
            });
            answer_rate.insert(id, rng.random_range(0.17..0.47));
            id += 1;
        }
    }
    World {
        rng,
        engine: Engine::new(DispatchPolicy::default()),
        matcher: Matcher::new(LAT, people),
        answer_rate,
        queue: BinaryHeap::new(),
        seq: 0,
        timers: BTreeMap::new(),
        cases: BTreeMap::new(),
        alerted: 0,
        answered: 0,
    }
}

/// Grid workers 5001–5030 (one per 6×5 cell), family key holders 6001… (answer 90 %).
fn add_incidents(w: &mut World, elders: usize) {
    let kinds: [(Category, &[&str], usize); 4] = [
        (
            Category::Emergency,
            &["sos", "fall", "smoke", "gas", "inactivity"],
            40,
        ),
        (
            Category::Service,
            &[
                "housekeeping",
                "daily_care",
                "emotional_care",
                "health_consultation",
            ],
            60,
        ),
        (
            Category::Technical,
            &["low_battery", "power_loss", "tamper"],
            20,
        ),
        (Category::Welfare, &[], 0),
    ];
    let elder_homes: Vec<(f64, f64)> = (0..elders).map(|_| point(&mut w.rng, 0.02)).collect();
    let mut next_id = 1;
    for (category, names, n) in kinds {
        for _ in 0..n {
            let elder = w.rng.random_range(0..elders);
            let kind = names[w.rng.random_range(0..names.len())];
            let opened = w.jitter(0, 20 * H);
            let cancelled = category == Category::Emergency && w.rng.random_bool(0.1);
            open_case(
                w,
                next_id,
                elder,
                elder_homes[elder],
                category,
                kind,
                opened,
                cancelled,
            );
            next_id += 1;
        }
    }
    // Welfare: elders whose last sign of life is older than their check-in period.
    for (elder, &home) in elder_homes.iter().enumerate() {
        let checkin_hours = 24;
        let now = w.jitter(0, 20 * H);
        let last = now - w.jitter(0, 25 * H);
        if welfare::visit_needed(
            last,
            welfare::period_ms(checkin_hours, welfare::HOUR_MS),
            now,
        ) {
            open_case(
                w,
                next_id,
                elder,
                home,
                Category::Welfare,
                "missed_check_in",
                now,
                false,
            );
            next_id += 1;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn open_case(
    w: &mut World,
    id: i64,
    elder: usize,
    (lat, lon): (f64, f64),
    category: Category,
    kind: &str,
    opened: Millis,
    cancelled_by_device: bool,
) {
    let cell_x = (((lon - LON + 0.02) / 0.04 * 6.0) as i64).clamp(0, 5);
    let cell_y = (((lat - LAT + 0.02) / 0.04 * 5.0) as i64).clamp(0, 4);
    let grid_worker = 5001 + cell_y * 6 + cell_x;
    let key_holders = if elder % 2 == 0 {
        vec![6001 + elder as i64]
    } else {
        vec![]
    };
    let facts = IncidentFacts {
        incident_id: id,
        category,
        kind: kind.into(),
        location: Some(GeoPoint {
            lat,
            lon,
            accuracy_m: None,
        }),
        elder_id: Some(elder as i64),
        grid_worker: Some(grid_worker),
        key_holders,
        contacts: 1,
        opened_at: opened,
        address: None,
        elder_name: None,
    };
    w.cases.insert(
        id,
        Case {
            facts,
            state: None,
            cancelled_by_device,
            first_accept: None,
            escalated_at: None,
            done_at: None,
            done_breach_escalated_at: None,
            closed: false,
        },
    );
    w.at(opened, Ev::Open(id));
}

#[test]
fn a_day_in_a_district_keeps_every_sla_or_escalates_in_time() {
    let started = std::time::Instant::now();
    let mut w = district(2026);
    add_incidents(&mut w, 400);
    w.run(48 * H);
    let policy = DispatchPolicy::default();
    let accept_ms = policy
        .emergency
        .sla
        .target_ms(SlaClock::Accept)
        .expect("accept sla");
    let done_ms = policy
        .service
        .sla
        .target_ms(SlaClock::Done)
        .expect("done sla");
    let (mut emergencies, mut reached_responder, mut services, mut services_done) = (0, 0, 0, 0);
    let mut welfare_cases = 0;
    for (id, case) in &w.cases {
        let st = case.state.as_ref().expect("opened");
        let opened = case.facts.opened_at;
        for (i, slot) in st.team.slots.iter().enumerate() {
            let n = st
                .offers
                .iter()
                .filter(|o| o.slot == i && o.status.holds_task())
                .count();
            assert!(
                n <= slot.count as usize,
                "incident {id}: slot {i} has {n} holders"
            );
        }
        if case.closed {
            assert!(
                !w.timers.keys().any(|(i, _)| i == id),
                "incident {id} closed with timers pending"
            );
            assert!(st.offers.iter().all(|o| o.status != OfferStatus::Pending));
        }
        match case.facts.category {
            Category::Emergency if case.cancelled_by_device => {
                assert_eq!(
                    st.phase(),
                    Phase::Closed,
                    "incident {id}: operator closed the false alarm"
                );
            }
            Category::Emergency => {
                emergencies += 1;
                let accepted_in_time = case.first_accept.is_some_and(|t| t - opened <= accept_ms);
                let escalated_in_time = case.escalated_at.is_some_and(|t| t - opened <= accept_ms);
                assert!(
                    accepted_in_time || escalated_in_time,
                    "emergency {id}: accept {:?} escalated {:?} opened {opened}",
                    case.first_accept,
                    case.escalated_at
                );
                reached_responder += usize::from(accepted_in_time);
            }
            Category::Service => {
                services += 1;
                let done = case.done_at.is_some_and(|t| t - opened <= done_ms);
                let escalated = case
                    .done_breach_escalated_at
                    .is_some_and(|t| t - opened <= done_ms)
                    || case.escalated_at.is_some_and(|t| t - opened <= done_ms);
                assert!(
                    done || escalated,
                    "service {id}: done {:?} escalated {:?}",
                    case.done_at,
                    case.escalated_at
                );
                services_done += usize::from(done);
            }
            Category::Technical | Category::Welfare => {
                welfare_cases += usize::from(case.facts.category == Category::Welfare);
                assert!(
                    case.done_at.is_some() || case.escalated_at.is_some(),
                    "task {id} neither done nor escalated"
                );
            }
        }
    }
    let rate = w.answered as f64 / w.alerted as f64;
    eprintln!(
        "virtual day: {emergencies} emergencies ({reached_responder} reached a responder within 2 min), \
         {services} service orders ({services_done} done within 24 h), {welfare_cases} welfare visits, \
         {} offers, answer rate {rate:.2}, {:?} wall time",
        w.alerted,
        started.elapsed()
    );
    assert!(emergencies >= 30 && services >= 50 && welfare_cases > 0);
    assert!((0.17..=0.6).contains(&rate), "answer rate {rate}");
    assert!(
        reached_responder * 2 > emergencies,
        "most emergencies reach a volunteer"
    );
    assert!(started.elapsed().as_secs() < 30);
}
