//! One engine step's output, made ready for the store: everything the step decided becomes one
//! [`StepWrite`] (state, offers, timers, events, attention, outgoing notifications) that the runner
//! commits in one transaction; only what is volatile (metrics) is left for after the commit.
//!
//! This is raft-rs's `Ready` applied to dispatch: persist everything the step decided, then send.
//! Nothing here does I/O; the recipients' phones and the elder's contacts are looked up by the
//! runner and handed in.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::engine::{DispatchState, Effect, EscalationTarget, OfferStatus, Push};
use crate::domain::{Contact, IncidentStatus, Millis, normalize_phone};
pub use crate::notify::DeliveryPolicy;
use crate::store::{
    Channel, EventWrite, Fallback, NewNotification, OfferWrite, StepWrite, TimerWrite,
};

/// How a responder is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// Phone number, for SMS.
    pub phone: Option<String>,
    /// True when the responder has no app: offers go by SMS at once.
    pub sms_only: bool,
}

/// What the step needs to know besides the states and effects.
pub struct ReadyInput<'a> {
    /// The incident.
    pub incident_id: i64,
    /// The state version the step started from (`None`: a new dispatch).
    pub version: Option<i64>,
    /// The state before the step.
    pub before: Option<&'a DispatchState>,
    /// The state after it.
    pub after: &'a DispatchState,
    /// The step's effects.
    pub effects: Vec<Effect>,
    /// How each pushed responder is reached.
    pub reach: &'a HashMap<i64, Reach>,
    /// The elder's name and contacts, when the step notifies them.
    pub elder: Option<(&'a str, &'a [Contact])>,
    /// Delivery deadlines.
    pub delivery: DeliveryPolicy,
    /// When.
    pub now: Millis,
}

/// The step made ready: the write, and the effects that only feed metrics after the commit.
pub struct Ready {
    /// Everything to commit (without the state and trigger, which the runner adds).
    pub write: StepWrite,
    /// SLA met/breached and escalations, for metrics once committed.
    pub after_commit: Vec<Effect>,
}

/// Turns one step into its write.
pub fn ready(input: ReadyInput<'_>) -> Ready {
    let ReadyInput {
        incident_id,
        version,
        before,
        after,
        effects,
        reach,
        elder,
        delivery,
        now,
    } = input;
    let mut w = StepWrite {
        incident_id,
        at: now,
        ..Default::default()
    };
    let mut after_commit = Vec::new();
    let step_tag = format!("incident:{incident_id}/v{}", version.unwrap_or(0) + 1);
    let mut pushes = 0usize;
    for effect in effects {
        match effect {
            Effect::Push { responder_id, push } => {
                pushes += 1;
                let key = format!("{step_tag}/push:{responder_id}:{pushes}");
                let r = reach.get(&responder_id);
                w.notifications.extend(push_notifications(
                    key,
                    after,
                    responder_id,
                    &push,
                    r,
                    delivery,
                    now,
                ));
            }
            Effect::NotifyContacts { .. } => {
                if let Some((name, contacts)) = elder {
                    w.notifications
                        .extend(family_alerts(after, name, contacts, delivery, now));
                }
            }
            Effect::StartTimer { timer, due } => w.timers.push(TimerWrite::Schedule {
                name: timer.name(),
                due,
            }),
            Effect::CancelTimer { timer } => {
                w.timers.push(TimerWrite::Cancel { name: timer.name() })
            }
            Effect::ConsoleEvent {
                kind,
                actor,
                detail,
            } => w.events.push(EventWrite {
                kind: kind.to_string(),
                actor,
                detail,
            }),
            Effect::Escalate { to, reason } => {
                if to == EscalationTarget::Operator && reason.needs_operator() {
                    w.attention.push(reason.as_str().to_string());
                }
                after_commit.push(effect);
            }
            Effect::SlaMet { .. } | Effect::SlaBreached { .. } => after_commit.push(effect),
        }
    }
    w.offers = offer_writes(before, after);
    w.progress = progress(before, after);
    Ready {
        write: w,
        after_commit,
    }
}

/// Whether a saved state implies a pending timer: a running clock, or offers waiting in a round.
pub fn needs_timer(st: &DispatchState) -> bool {
    !st.closed
        && (st.clocks.values().any(|c| c.running())
            || st.offers.iter().any(|o| o.status == OfferStatus::Pending))
}

fn status_name(s: OfferStatus) -> &'static str {
    match s {
        OfferStatus::Pending => "pending",
        OfferStatus::Declined => "declined",
        OfferStatus::Expired => "expired",
        OfferStatus::Withdrawn => "withdrawn",
        OfferStatus::Accepted => "accepted",
        OfferStatus::Arrived => "arrived",
        OfferStatus::Completed => "completed",
    }
}

/// The offer rows that changed: releases first, so a seat given up in this step is free before
/// the step's new holder takes it.
fn offer_writes(before: Option<&DispatchState>, after: &DispatchState) -> Vec<OfferWrite> {
    let mut seats: HashMap<usize, i64> = HashMap::new();
    let mut holders = Vec::new();
    let mut releases = Vec::new();
    for o in &after.offers {
        let seat = o.status.holds_task().then(|| {
            let next = seats.entry(o.slot).or_insert(0);
            *next += 1;
            *next - 1
        });
        let unchanged = before
            .and_then(|b| b.offer(o.responder_id))
            .is_some_and(|b| b.status == o.status && b.sent_at == o.sent_at && b.slot == o.slot);
        if unchanged {
            continue;
        }
        let write = OfferWrite {
            responder_id: o.responder_id,
            slot: o.slot as i64,
            role: after
                .team
                .slots
                .get(o.slot)
                .map(|s| s.role.clone())
                .unwrap_or_default(),
            status: status_name(o.status),
            seat,
            sent_at: o.sent_at,
            expires_at: o.expires_at,
        };
        if seat.is_some() {
            holders.push(write);
        } else {
            releases.push(write);
        }
    }
    releases.extend(holders);
    releases
}

/// Lifecycle steps the incident reached in this step.
fn progress(before: Option<&DispatchState>, after: &DispatchState) -> Vec<IncidentStatus> {
    let had = |s: &dyn Fn(OfferStatus) -> bool| {
        before.is_some_and(|b| b.offers.iter().any(|o| s(o.status)))
    };
    let has = |s: &dyn Fn(OfferStatus) -> bool| after.offers.iter().any(|o| s(o.status));
    let mut steps = Vec::new();
    if !after.offers.is_empty() && before.is_none_or(|b| b.offers.is_empty()) {
        steps.push(IncidentStatus::Dispatching);
    }
    let holds = |s: OfferStatus| s.holds_task();
    if has(&holds) && !had(&holds) {
        steps.push(IncidentStatus::Accepted);
    }
    let on_scene = |s: OfferStatus| matches!(s, OfferStatus::Arrived | OfferStatus::Completed);
    if has(&on_scene) && !had(&on_scene) {
        steps.push(IncidentStatus::OnScene);
    }
    steps
}

/// The push payload's fields besides `id` and `at` (added when it is delivered).
pub fn push_payload(st: &DispatchState, push: &Push) -> Value {
    let facts = &st.facts;
    let mut v = serde_json::to_value(push).unwrap_or_else(|_| json!({}));
    if let Some(map) = v.as_object_mut() {
        map.insert("incident_id".into(), facts.incident_id.into());
        map.insert("category".into(), json!(facts.category));
        map.insert("kind".into(), facts.kind.clone().into());
        if matches!(push, Push::Offer { .. } | Push::Assigned { .. }) {
            map.insert("address".into(), json!(facts.address));
            map.insert("elder".into(), json!(facts.elder_name));
            if let Some(at) = facts.location {
                map.insert("lat".into(), at.lat.into());
                map.insert("lon".into(), at.lon.into());
            }
        }
    }
    v
}

fn push_notifications(
    key: String,
    st: &DispatchState,
    responder_id: i64,
    push: &Push,
    reach: Option<&Reach>,
    delivery: DeliveryPolicy,
    now: Millis,
) -> Option<NewNotification> {
    let purpose = match push {
        Push::Offer { .. } => "offer",
        Push::Assigned { .. } => "assigned",
        Push::StandDown { .. } => "stand_down",
        Push::Escalation { .. } => "escalation",
        Push::CancelNotice => "cancel_notice",
    };
    let incident_id = st.facts.incident_id;
    let phone = reach.and_then(|r| r.phone.as_deref());
    if let (Some(phone), true) = (phone, reach.is_some_and(|r| r.sms_only)) {
        // A responder without the app gets every message as text.
        return match push {
            Push::Offer { expires_at, .. } => Some(offer_sms(
                format!("{key}/sms"),
                st,
                responder_id,
                phone,
                *expires_at,
                delivery,
                now,
            )),
            other => texts::update(st, other).map(|text| NewNotification {
                idem_key: format!("{key}/sms"),
                incident_id: Some(incident_id),
                channel: Channel::Sms,
                recipient: normalize_phone(phone),
                responder_id: Some(responder_id),
                purpose: format!("{purpose}_sms"),
                payload: json!({ "text": text }),
                due_at: now,
                confirm_by: None,
                fallback: None,
            }),
        };
    }
    let (confirm_by, fallback) = match push {
        Push::Offer { expires_at, .. } => (
            Some(now + DeliveryPolicy::ms(delivery.receipt_timeout_s)),
            Some(match phone {
                Some(_) => Fallback::SmsToResponder {
                    text: texts::offer(st, *expires_at),
                },
                None => Fallback::Attention {
                    reason: "delivery_failed".into(),
                    unless_purpose: None,
                },
            }),
        ),
        _ => (None, None),
    };
    Some(NewNotification {
        idem_key: key,
        incident_id: Some(incident_id),
        channel: Channel::Push,
        recipient: responder_id.to_string(),
        responder_id: Some(responder_id),
        purpose: purpose.into(),
        payload: push_payload(st, push),
        due_at: now,
        confirm_by,
        fallback,
    })
}

/// An offer sent as SMS (responders without the app, or the app did not confirm in time).
pub fn offer_sms(
    idem_key: String,
    st: &DispatchState,
    responder_id: i64,
    phone: &str,
    expires_at: Millis,
    delivery: DeliveryPolicy,
    now: Millis,
) -> NewNotification {
    NewNotification {
        idem_key,
        incident_id: Some(st.facts.incident_id),
        channel: Channel::Sms,
        recipient: normalize_phone(phone),
        responder_id: Some(responder_id),
        purpose: "offer_sms".into(),
        payload: json!({ "text": texts::offer(st, expires_at) }),
        due_at: now,
        confirm_by: Some(now + DeliveryPolicy::ms(delivery.sms_delivery_timeout_s)),
        fallback: Some(Fallback::Attention {
            reason: "delivery_failed".into(),
            unless_purpose: None,
        }),
    }
}

/// One SMS per family contact, key holders first; the first carries the deadline after which an
/// operator is called unless some contact was reached.
fn family_alerts(
    st: &DispatchState,
    elder_name: &str,
    contacts: &[Contact],
    delivery: DeliveryPolicy,
    now: Millis,
) -> Vec<NewNotification> {
    let mut ordered: Vec<&Contact> = contacts.iter().filter(|c| !c.phone.is_empty()).collect();
    ordered.sort_by_key(|c| !c.key_holder);
    let text = texts::family(st, elder_name);
    ordered
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let phone = normalize_phone(&c.phone);
            NewNotification {
                idem_key: format!("incident:{}/family:{phone}", st.facts.incident_id),
                incident_id: Some(st.facts.incident_id),
                channel: Channel::Sms,
                recipient: phone,
                responder_id: None,
                purpose: "family_alert".into(),
                payload: json!({ "text": text, "contact": c.name, "relation": c.relation,
                                 "key_holder": c.key_holder }),
                due_at: now,
                confirm_by: (i == 0)
                    .then(|| now + DeliveryPolicy::ms(delivery.family_reach_timeout_s)),
                fallback: (i == 0).then(|| Fallback::Attention {
                    reason: "family_unreachable".into(),
                    unless_purpose: Some("family_alert".into()),
                }),
            }
        })
        .collect()
}

/// The words of the text messages (zh-CN: the people reached are the centre's own).
pub mod texts {
    use super::super::engine::{DispatchState, Push, StandDownReason};
    use crate::domain::Millis;

    /// The alarm kind as family and volunteers say it.
    pub fn kind_name(kind: &str) -> &'static str {
        match kind {
            "sos" | "panic" => "紧急呼叫",
            "fall" => "跌倒",
            "smoke" | "fire" => "烟雾/火警",
            "gas" => "燃气泄漏",
            "water_leak" => "漏水",
            "inactivity" | "missed_check_in" => "长时间无活动",
            "medical" => "身体不适",
            "wandering" => "走失",
            "low_battery" => "设备电量低",
            "power_loss" => "设备断电",
            "tamper" | "device_fault" | "silent_device" => "设备故障",
            "daily_care" => "生活照料",
            "housekeeping" => "家政服务",
            "emotional_care" => "精神慰藉",
            "health_consultation" => "健康咨询",
            _ => "求助",
        }
    }

    fn address(st: &DispatchState) -> &str {
        st.facts.address.as_deref().unwrap_or("登记地址")
    }

    fn clock(at: Millis) -> String {
        // Local time of day in China Standard Time (the centre's own).
        let secs = at.div_euclid(1000) + 8 * 3600;
        let day = secs.rem_euclid(86_400);
        format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
    }

    /// To a family contact: who, what, where, and the reply codes.
    pub fn family(st: &DispatchState, elder_name: &str) -> String {
        format!(
            "【12349养老服务】{elder_name}（{}）的一键通发出{}报警，中心正在派人。回复1：我马上过去；回复2：我去不了。",
            address(st),
            kind_name(&st.facts.kind)
        )
    }

    /// An offer to a responder by SMS, with the reply codes.
    pub fn offer(st: &DispatchState, expires_at: Millis) -> String {
        format!(
            "【12349任务】{}：{}。回复1接受，回复2拒绝（{}前有效）。",
            kind_name(&st.facts.kind),
            address(st),
            clock(expires_at)
        )
    }

    /// Other task updates for a responder without the app.
    pub fn update(st: &DispatchState, push: &Push) -> Option<String> {
        let what = kind_name(&st.facts.kind);
        Some(match push {
            Push::Assigned { .. } => format!("【12349任务】{what}任务已派给您：{}。", address(st)),
            Push::StandDown { reason } => match reason {
                StandDownReason::Taken | StandDownReason::NotOpen => {
                    format!("【12349任务】{what}任务已由他人接单，谢谢。")
                }
                StandDownReason::Expired => return None,
                _ => format!("【12349任务】{what}任务已取消，无需前往。"),
            },
            Push::CancelNotice => {
                "【12349任务】老人按了取消键，请继续前往确认，等待中心通知。".to_string()
            }
            Push::Escalation { .. } => format!("【12349任务】{what}任务已超时，请尽快处理。"),
            Push::Offer { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::engine::{DispatchState, IncidentFacts, Offer};
    use super::*;
    use crate::dispatch::DispatchPolicy;
    use crate::domain::Category;

    fn state() -> DispatchState {
        let facts = IncidentFacts {
            incident_id: 7,
            category: Category::Emergency,
            kind: "fall".into(),
            location: None,
            elder_id: Some(1),
            grid_worker: None,
            key_holders: vec![],
            contacts: 2,
            opened_at: 0,
            address: Some("文山街道 1 号".into()),
            elder_name: Some("王奶奶".into()),
        };
        DispatchState::new(facts, &DispatchPolicy::default())
    }

    fn offer(r: i64, status: OfferStatus) -> Offer {
        Offer {
            responder_id: r,
            slot: 0,
            round: 1,
            sent_at: 10,
            expires_at: 40,
            status,
        }
    }

    #[test]
    fn a_released_seat_is_written_before_its_new_holder() {
        let mut before = state();
        before.offers = vec![
            offer(1, OfferStatus::Accepted),
            offer(2, OfferStatus::Pending),
        ];
        let mut after = before.clone();
        after.offers[0].status = OfferStatus::Withdrawn;
        after.offers[1].status = OfferStatus::Accepted;
        let w = offer_writes(Some(&before), &after);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].responder_id, w[0].seat), (1, None));
        assert_eq!((w[1].responder_id, w[1].seat), (2, Some(0)));
    }

    #[test]
    fn family_sms_names_the_elder_the_kind_and_the_reply_codes_key_holders_first() {
        let st = state();
        let contacts = vec![
            Contact {
                name: "张三".into(),
                relation: "儿子".into(),
                phone: "138 0000 0001".into(),
                key_holder: false,
            },
            Contact {
                name: "李四".into(),
                relation: "邻居".into(),
                phone: "+86 13800000002".into(),
                key_holder: true,
            },
        ];
        let n = family_alerts(&st, "王奶奶", &contacts, DeliveryPolicy::default(), 1000);
        assert_eq!(n.len(), 2);
        assert_eq!(
            n[0].recipient, "13800000002",
            "key holder first, number normalised"
        );
        assert!(n[0].fallback.is_some() && n[1].fallback.is_none());
        let text = n[0].payload["text"].as_str().unwrap_or_default();
        for part in ["王奶奶", "文山街道 1 号", "跌倒", "回复1", "回复2"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn an_unconfirmed_app_offer_falls_back_to_sms_when_a_phone_is_known() {
        let st = state();
        let push = Push::Offer {
            slot: 0,
            role: "first".into(),
            expires_at: 31_000,
        };
        let reach = Reach {
            phone: Some("13800000003".into()),
            sms_only: false,
        };
        let n = push_notifications(
            "k".into(),
            &st,
            3,
            &push,
            Some(&reach),
            DeliveryPolicy::default(),
            1000,
        )
        .expect("a push");
        assert_eq!(n.channel, Channel::Push);
        assert_eq!(n.confirm_by, Some(16_000));
        assert!(matches!(n.fallback, Some(Fallback::SmsToResponder { .. })));
        assert_eq!(n.payload["type"], "offer");
        assert_eq!(n.payload["elder"], "王奶奶");
        let sms_only = Reach {
            phone: Some("13800000003".into()),
            sms_only: true,
        };
        let n = push_notifications(
            "k".into(),
            &st,
            3,
            &push,
            Some(&sms_only),
            DeliveryPolicy::default(),
            1000,
        )
        .expect("an SMS");
        assert_eq!(n.channel, Channel::Sms);
        assert_eq!(n.purpose, "offer_sms");
    }
}
