//! Dispatch persistence on SQLite and PostgreSQL: one step per state version written whole or not
//! at all (the seat index as the last word), triggers consumed once, timers claimed exactly once by
//! several instances and kept across a restart, claim leases that let another instance fire a
//! timer whose claimer died.

mod common;

use std::collections::BTreeSet;

use common::Db;
use onekey::store::{
    Channel, Consume, EventWrite, NewNotification, OfferWrite, StepCommit, StepWrite, Store,
    timer_key, welfare_elder, welfare_key,
};

const LEASE: i64 = 30_000;

async fn open(db: &Db) -> Store {
    let store = Store::connect(&db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn offer(r: i64, slot: i64, status: &'static str, seat: Option<i64>) -> OfferWrite {
    OfferWrite {
        responder_id: r,
        slot,
        role: "responder".into(),
        status,
        seat,
        sent_at: 1000,
        expires_at: 31_000,
    }
}

fn step(version: Option<i64>, offers: Vec<OfferWrite>) -> StepWrite {
    StepWrite {
        incident_id: 7,
        state: Some((version, format!("{{\"v\":{version:?}}}"), true)),
        offers,
        at: 5000,
        ..Default::default()
    }
}

/// Eight steps written at once from the same state version, on two instances: exactly one
/// commits, whose offers, events and notifications all land; the others change nothing.
async fn one_step_per_version_wins_and_writes_everything_or_nothing(db: Db) {
    let a = open(&db).await;
    sqlx::query(
        "INSERT INTO incidents (id, category, kind, priority, status, received_at, stored_at) \
         VALUES (7, 'emergency', 'sos', 1, 'new', 1000, 1000)",
    )
    .execute(a.pool())
    .await
    .expect("incident");
    let b = open(&db).await; // a second instance sharing the database
    let first = step(
        None,
        (1..=8).map(|r| offer(r, 0, "pending", None)).collect(),
    );
    assert!(matches!(
        a.write_step(&first).await.expect("first"),
        StepCommit::Committed { .. }
    ));
    let tasks: Vec<_> = (1..=8)
        .map(|r| {
            let s = if r % 2 == 0 { a.clone() } else { b.clone() };
            let mut w = step(Some(1), vec![offer(r, 0, "accepted", Some(0))]);
            w.events.push(EventWrite {
                kind: "offer_accepted".into(),
                actor: format!("responder:{r}"),
                detail: serde_json::json!({ "responder_id": r }),
            });
            w.notifications.push(NewNotification {
                idem_key: format!("incident:7/v2/push:{r}:1"),
                incident_id: Some(7),
                channel: Channel::Push,
                recipient: r.to_string(),
                responder_id: Some(r),
                purpose: "assigned".into(),
                payload: serde_json::json!({ "type": "assigned" }),
                due_at: 5000,
                confirm_by: None,
                fallback: None,
            });
            tokio::spawn(async move { (r, s.write_step(&w).await) })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let (r, outcome) = t.await.expect("join");
        match outcome.expect("write") {
            StepCommit::Committed {
                events,
                notifications,
            } => {
                assert_eq!((events.len(), notifications.len()), (1, 1));
                won.push(r);
            }
            StepCommit::Raced => {}
            StepCommit::AlreadyConsumed => panic!("nothing to consume"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one step per version: {won:?}");
    let winner = won[0];
    let mine = a.responder_offers(winner).await.expect("list");
    assert_eq!(mine[0].status, "accepted");
    assert_eq!(mine[0].seat, Some(0));
    for r in (1..=8).filter(|r| *r != winner) {
        assert_eq!(
            a.responder_offers(r).await.expect("list")[0].status,
            "pending"
        );
    }
    let queued = a.incident_notifications(7).await.expect("notifications");
    assert_eq!(queued.len(), 1, "the losers queued nothing");
    assert_eq!(queued[0].responder_id, Some(winner));
    // The seat index is the last word: a second holder of seat 0 fails the whole step.
    let loser = (1..=8).find(|r| *r != winner).expect("a loser");
    let mut double = step(Some(2), vec![offer(loser, 0, "accepted", Some(0))]);
    double.events.push(EventWrite {
        kind: "offer_accepted".into(),
        actor: "system".into(),
        detail: serde_json::json!({}),
    });
    assert!(a.write_step(&double).await.is_err());
    assert_eq!(
        a.load_dispatch_state(7)
            .await
            .expect("load")
            .expect("row")
            .0,
        2
    );
    assert_eq!(
        a.responder_offers(loser).await.expect("list")[0].status,
        "pending",
        "nothing of the failed step is visible"
    );
}

/// A step consumes its trigger in its own transaction: an inbox entry or a claimed timer takes
/// effect once, however many instances step it.
async fn a_trigger_is_consumed_once(db: Db) {
    let a = open(&db).await;
    let name = "event:41";
    a.schedule_timer(&timer_key(7, name), Some(7), name, 1000)
        .await
        .expect("inbox");
    let consume = |v| StepWrite {
        consume: Some(Consume::Inbox(timer_key(7, name))),
        ..step(v, vec![])
    };
    assert!(matches!(
        a.write_step(&consume(None)).await.expect("first"),
        StepCommit::Committed { .. }
    ));
    assert_eq!(
        a.write_step(&consume(Some(1))).await.expect("again"),
        StepCommit::AlreadyConsumed
    );
    assert_eq!(
        a.load_dispatch_state(7)
            .await
            .expect("load")
            .expect("row")
            .0,
        1
    );
    // A claimed timer: consumed by its claimer at the due time it was claimed at, once.
    a.schedule_timer(&timer_key(7, "sla:ack"), Some(7), "sla:ack", 2000)
        .await
        .expect("arm");
    let claimed = a
        .claim_due_timers(3000, "a", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let fire = |me: &str| StepWrite {
        consume: Some(Consume::Timer {
            key: claimed[0].key.clone(),
            me: me.into(),
            due_at: claimed[0].due_at,
        }),
        ..step(Some(1), vec![])
    };
    assert_eq!(
        a.write_step(&fire("b")).await.expect("not b's claim"),
        StepCommit::AlreadyConsumed
    );
    assert!(matches!(
        a.write_step(&fire("a")).await.expect("fire"),
        StepCommit::Committed { .. }
    ));
    assert_eq!(
        a.write_step(&fire("a")).await.expect("twice"),
        StepCommit::AlreadyConsumed
    );
    assert!(a.pending_timers().await.expect("pending").is_empty());
}

async fn timers_fire_once_across_instances_and_restarts(db: Db) {
    let a = open(&db).await;
    for i in 0..60 {
        let name = format!("round:{i}");
        a.schedule_timer(&timer_key(i, &name), Some(i), &name, 1000 + i)
            .await
            .expect("schedule");
    }
    a.schedule_timer(&timer_key(1, "sla:ack"), Some(1), "sla:ack", 500)
        .await
        .expect("schedule");
    assert!(
        a.cancel_timer(&timer_key(1, "sla:ack"))
            .await
            .expect("cancel")
    );
    assert!(
        !a.cancel_timer(&timer_key(1, "sla:ack"))
            .await
            .expect("cancel twice")
    );
    a.schedule_timer("elder:3/welfare", None, "welfare", 10_000_000)
        .await
        .expect("later");
    // "Restart": close the pool and open the database again; pending timers are still there.
    a.close().await;
    let a = open(&db).await;
    let b = open(&db).await;
    assert_eq!(a.pending_timers().await.expect("pending").len(), 61);
    let claim = |s: Store, me: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s.claim_due_timers(5000, me, 7, LEASE).await.expect("claim");
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|t| t.key));
            }
        })
    };
    let (x, y) = (claim(a.clone(), "a"), claim(b.clone(), "b"));
    let (x, y) = (x.await.expect("a"), y.await.expect("b"));
    let all: BTreeSet<&String> = x.iter().chain(&y).collect();
    assert_eq!(all.len(), x.len() + y.len(), "a timer fired twice");
    assert_eq!(all.len(), 60, "every due timer fired");
    assert!(!all.contains(&"elder:3/welfare".to_string()), "not due yet");
    assert!(
        a.claim_due_timers(5000, "a", 100, LEASE)
            .await
            .expect("again")
            .is_empty()
    );
    // Re-arming a fired timer makes it pending again.
    a.schedule_timer(&timer_key(0, "round:0"), Some(0), "round:0", 6000)
        .await
        .expect("re-arm");
    let again = b
        .claim_due_timers(6000, "b", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].incident_id, Some(0));
}

async fn a_claim_is_a_lease(db: Db) {
    let a = open(&db).await;
    let b = open(&db).await;
    a.schedule_timer(&timer_key(1, "round:1"), Some(1), "round:1", 1000)
        .await
        .expect("schedule");
    a.schedule_timer(&timer_key(2, "round:1"), Some(2), "round:1", 1000)
        .await
        .expect("schedule");
    let mine = a
        .claim_due_timers(2000, "a", 10, 5000)
        .await
        .expect("claim");
    assert_eq!(mine.len(), 2);
    // "a" fires the first and completes it, then dies before completing the second.
    assert!(
        a.complete_timer(&mine[0], "a", 2100)
            .await
            .expect("complete")
    );
    assert!(
        !a.complete_timer(&mine[0], "a", 2200).await.expect("again"),
        "completing twice"
    );
    assert!(
        b.claim_due_timers(6999, "b", 10, 5000)
            .await
            .expect("within the lease")
            .is_empty(),
        "a live lease is not claimed"
    );
    let retaken = b
        .claim_due_timers(7000, "b", 10, 5000)
        .await
        .expect("claim");
    assert_eq!(retaken.len(), 1, "only the unfinished timer comes back");
    assert_eq!(retaken[0].key, mine[1].key);
    assert!(
        !a.complete_timer(&mine[1], "a", 7100).await.expect("stale"),
        "a claimer whose lease ran out cannot complete"
    );
    assert!(
        b.complete_timer(&retaken[0], "b", 7200)
            .await
            .expect("complete")
    );
    assert!(
        b.claim_due_timers(1_000_000, "b", 10, 5000)
            .await
            .expect("later")
            .is_empty(),
        "a completed timer never fires again"
    );
    assert!(a.pending_timers().await.expect("pending").is_empty());
    // Re-arming a claimed timer mid-fire keeps it pending at the new time.
    let key = welfare_key(3);
    assert_eq!(welfare_elder(&key), Some(3));
    a.schedule_timer(&key, None, "welfare", 8000)
        .await
        .expect("arm");
    let claimed = a
        .claim_due_timers(8000, "a", 10, 5000)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    a.schedule_timer(&key, None, "welfare", 50_000)
        .await
        .expect("re-arm");
    assert!(
        !a.complete_timer(&claimed[0], "a", 8100)
            .await
            .expect("moved")
    );
    let pending = a.pending_timers().await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].due_at, 50_000);
}

async fn responders_are_found_by_phone_and_go_on_duty(db: Db) {
    let s = open(&db).await;
    // Key holders are found by phone; duty and position are stored.
    let input: onekey::store::ResponderInput = serde_json::from_value(serde_json::json!({
        "name": "女儿", "phone": "13900000001", "kind": "family", "home_lat": 27.1, "home_lon": 114.9
    }))
    .expect("input");
    let r = s.save_responder(None, &input).await.expect("responder");
    assert_eq!(
        s.responder_id_by_phone("13900000001")
            .await
            .expect("by phone"),
        Some(r.id)
    );
    assert_eq!(
        s.responder_id_by_phone("000").await.expect("by phone"),
        None
    );
    assert!(
        s.set_duty(r.id, true, Some((27.2, 114.8)), 9)
            .await
            .expect("duty")
    );
    let back = s.get_responder(r.id).await.expect("get").expect("row");
    assert!(back.on_duty);
    assert_eq!((back.lat, back.lon), (Some(27.2), Some(114.8)));
}

#[tokio::test]
async fn one_step_per_version_wins_and_writes_everything_or_nothing_sqlite() {
    one_step_per_version_wins_and_writes_everything_or_nothing(Db::sqlite()).await;
}

#[tokio::test]
async fn one_step_per_version_wins_and_writes_everything_or_nothing_postgres() {
    one_step_per_version_wins_and_writes_everything_or_nothing(Db::postgres().await).await;
}

#[tokio::test]
async fn timers_fire_once_across_instances_and_restarts_sqlite() {
    timers_fire_once_across_instances_and_restarts(Db::sqlite()).await;
}

#[tokio::test]
async fn timers_fire_once_across_instances_and_restarts_postgres() {
    timers_fire_once_across_instances_and_restarts(Db::postgres().await).await;
}

#[tokio::test]
async fn a_claim_is_a_lease_sqlite() {
    a_claim_is_a_lease(Db::sqlite()).await;
}

#[tokio::test]
async fn a_claim_is_a_lease_postgres() {
    a_claim_is_a_lease(Db::postgres().await).await;
}

#[tokio::test]
async fn responders_are_found_by_phone_and_go_on_duty_sqlite() {
    responders_are_found_by_phone_and_go_on_duty(Db::sqlite()).await;
}

#[tokio::test]
async fn responders_are_found_by_phone_and_go_on_duty_postgres() {
    responders_are_found_by_phone_and_go_on_duty(Db::postgres().await).await;
}

#[tokio::test]
async fn a_trigger_is_consumed_once_sqlite() {
    a_trigger_is_consumed_once(Db::sqlite()).await;
}

#[tokio::test]
async fn a_trigger_is_consumed_once_postgres() {
    a_trigger_is_consumed_once(Db::postgres().await).await;
}
