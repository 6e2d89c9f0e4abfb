//! Dispatch persistence on SQLite and PostgreSQL: exactly-once seats under concurrent accepts,
//! timers claimed exactly once by several instances and kept across a restart, claim leases that
//! let another instance fire a timer whose claimer died, versioned state.

mod common;

use std::collections::BTreeSet;

use common::Db;
use onekey::store::{AcceptOutcome, Store, timer_key, welfare_elder, welfare_key};

const LEASE: i64 = 30_000;

async fn open(db: &Db) -> Store {
    let store = Store::connect(&db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn concurrent_accepts_win_each_seat_once(db: Db) {
    let a = open(&db).await;
    let b = open(&db).await; // a second instance sharing the database
    for r in 1..=8 {
        let slot = if r <= 4 { 0 } else { 1 };
        a.record_offer(7, r, slot, "responder", 1000, 31_000)
            .await
            .expect("offer");
    }
    // Slot 0 has one seat, slot 1 two; all eight accept in the same millisecond.
    let tasks: Vec<_> = (1..=8)
        .map(|r| {
            let s = if r % 2 == 0 { a.clone() } else { b.clone() };
            let seats = if r <= 4 { 1 } else { 2 };
            tokio::spawn(async move { (r, s.accept_offer(7, r, seats, 5000).await) })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let (r, outcome) = t.await.expect("join");
        match outcome.expect("accept") {
            AcceptOutcome::Won { slot, seat } => won.push((slot, seat, r)),
            AcceptOutcome::Taken => {}
            AcceptOutcome::NotOffered => panic!("{r} was offered"),
        }
    }
    won.sort();
    let seats: Vec<(i64, i64)> = won.iter().map(|w| (w.0, w.1)).collect();
    assert_eq!(seats, vec![(0, 0), (1, 0), (1, 1)], "{won:?}");
    assert_eq!(
        a.accept_offer(7, 99, 1, 6000).await.expect("accept"),
        AcceptOutcome::NotOffered
    );
    // A retried accept by a winner is idempotent.
    let (slot, seat, r) = won[0];
    assert_eq!(
        a.accept_offer(7, r, 1, 7000).await.expect("retry"),
        AcceptOutcome::Won { slot, seat }
    );
    // Decline works only on an open offer.
    let loser = (1..=4).find(|x| *x != r).expect("a loser");
    assert!(
        a.set_offer_status(7, loser, &["pending"], "declined", 8000)
            .await
            .expect("decline")
    );
    assert!(
        !a.set_offer_status(7, loser, &["pending"], "declined", 8000)
            .await
            .expect("again")
    );
    let mine = a.responder_offers(r).await.expect("list");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].status, "accepted");
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

async fn dispatch_state_is_versioned(db: Db) {
    let s = open(&db).await;
    assert!(s.load_dispatch_state(4).await.expect("load").is_none());
    assert!(
        s.save_dispatch_state(4, None, "{\"a\":1}", 1)
            .await
            .expect("insert")
    );
    assert!(
        !s.save_dispatch_state(4, None, "{}", 2)
            .await
            .expect("second insert loses")
    );
    assert!(
        s.save_dispatch_state(4, Some(1), "{\"a\":2}", 3)
            .await
            .expect("update")
    );
    assert!(
        !s.save_dispatch_state(4, Some(1), "{}", 4)
            .await
            .expect("stale update loses")
    );
    let (v, json) = s.load_dispatch_state(4).await.expect("load").expect("row");
    assert_eq!((v, json.as_str()), (2, "{\"a\":2}"));
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
async fn concurrent_accepts_win_each_seat_once_sqlite() {
    concurrent_accepts_win_each_seat_once(Db::sqlite()).await;
}

#[tokio::test]
async fn concurrent_accepts_win_each_seat_once_postgres() {
    concurrent_accepts_win_each_seat_once(Db::postgres().await).await;
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
async fn dispatch_state_is_versioned_sqlite() {
    dispatch_state_is_versioned(Db::sqlite()).await;
}

#[tokio::test]
async fn dispatch_state_is_versioned_postgres() {
    dispatch_state_is_versioned(Db::postgres().await).await;
}
