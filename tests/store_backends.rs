//! The store layer against both backends: SQLite in a temp dir and PostgreSQL with a fresh database.

mod common;

use common::Db;
use onekey::domain::{AlarmKind, DeviceEvent, EventBody, now_millis};
use onekey::store::{DeviceInput, ElderInput, LogPosition, Store, StoreOutcome};

async fn open(db: &Db) -> Store {
    let store = Store::connect(&db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating twice is a no-op");
    store
}

async fn seed(store: &Store) -> (i64, i64) {
    let elder = store
        .save_elder(None, &serde_json::from_value::<ElderInput>(serde_json::json!({
            "name": "李爷爷", "address": "习溪桥街道 太平桥社区", "lat": 27.1, "lon": 114.97, "living": "three_no"
        })).unwrap())
        .await
        .unwrap();
    let device = store
        .save_device(
            None,
            &DeviceInput {
                protocol: "native".into(),
                ident: format!("{}", rand::random::<u32>()),
                secret_hex: Some(hex::encode([7u8; 32])),
                model: "OK-1".into(),
                elder_id: Some(elder.id),
                enabled: true,
                heartbeat_s: 300,
            },
        )
        .await
        .unwrap();
    (elder.id, device.id)
}

fn alarm(device: i64, elder: i64, seq: i64, kind: AlarmKind) -> DeviceEvent {
    DeviceEvent {
        device_id: device,
        elder_id: Some(elder),
        dedup_key: format!("seq:{seq}"),
        seq: Some(seq),
        device_time: None,
        received_at: now_millis(),
        raw_code: format!("native:{kind}"),
        raw: None,
        body: EventBody::Alarm {
            kind,
            location: None,
        },
    }
}

async fn batch_dedups_opens_and_joins(db: Db) {
    let store = open(&db).await;
    let (elder, device) = seed(&store).await;
    let batch = vec![
        alarm(device, elder, 1, AlarmKind::Sos),
        alarm(device, elder, 1, AlarmKind::Sos), // a retry inside the same batch
        alarm(device, elder, 2, AlarmKind::Sos), // a second press
        alarm(device, elder, 3, AlarmKind::PowerLoss),
    ];
    let (stored, events) = store.commit_events(&batch, now_millis()).await.unwrap();
    let outcomes: Vec<_> = stored.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            StoreOutcome::Stored,
            StoreOutcome::Duplicate,
            StoreOutcome::Stored,
            StoreOutcome::Stored
        ]
    );
    assert!(stored[0].opened && !stored[2].opened && stored[3].opened);
    assert_eq!(
        stored[0].incident_id, stored[2].incident_id,
        "the second press joins"
    );
    assert_ne!(
        stored[0].incident_id, stored[3].incident_id,
        "a technical alarm is its own incident"
    );
    assert_eq!(
        stored[1].incident_id, stored[0].incident_id,
        "a duplicate points at the original's incident"
    );
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "alarm_joined", "opened"]);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));

    // A later retry of seq 2 is still a duplicate.
    let (again, none) = store
        .commit_events(&[alarm(device, elder, 2, AlarmKind::Sos)], now_millis())
        .await
        .unwrap();
    assert_eq!(again[0].outcome, StoreOutcome::Duplicate);
    assert!(none.is_empty());

    let incident = store
        .get_incident(stored[0].incident_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.alarm_count, 2);
    assert_eq!(
        store
            .incident_events_after(LogPosition::START, 100)
            .await
            .unwrap()
            .rows
            .len(),
        3
    );
    let creds = store
        .device_credentials(
            "native",
            &store.get_device(device).await.unwrap().unwrap().ident,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        creds.last_seq, 3,
        "the replay window's high-water mark is persisted with the alarm"
    );
}

/// A storm from many homes is one round of set-based statements: a batch of 300 alarms from 300
/// elders sends the database as many statements as a batch of one, and every alarm opens its own
/// incident. A mixed batch (an alarm, its cancel, a check-in with nothing open) keeps the order of
/// each elder's events.
async fn a_batch_costs_the_statements_of_one_event(db: Db) {
    let store = open(&db).await;
    let mut homes = Vec::new();
    for _ in 0..301 {
        homes.push(seed(&store).await);
    }
    let before = store.intake_statements();
    let (elder, device) = homes[0];
    let (one, _) = store
        .commit_events(&[alarm(device, elder, 1, AlarmKind::Sos)], now_millis())
        .await
        .unwrap();
    assert!(one[0].opened);
    let for_one = store.intake_statements() - before;

    let storm: Vec<_> = homes[1..]
        .iter()
        .map(|&(elder, device)| alarm(device, elder, 1, AlarmKind::Sos))
        .collect();
    let before = store.intake_statements();
    let (stored, appended) = store.commit_events(&storm, now_millis()).await.unwrap();
    let for_storm = store.intake_statements() - before;
    assert_eq!(
        for_storm, for_one,
        "300 alarms cost {for_storm} statements, one alarm {for_one}"
    );
    assert!(
        stored
            .iter()
            .all(|s| s.outcome == StoreOutcome::Stored && s.opened)
    );
    let mut incidents: Vec<_> = stored.iter().filter_map(|s| s.incident_id).collect();
    incidents.sort_unstable();
    incidents.dedup();
    assert_eq!(incidents.len(), 300, "one incident per home");
    assert_eq!(appended.len(), 300);
    for (s, e) in stored.iter().zip(&appended) {
        assert_eq!(
            Some(e.incident_id),
            s.incident_id,
            "log entries come in batch order"
        );
        assert_eq!(e.kind, "opened");
        assert_eq!(e.detail["device_event_id"], s.event_id);
    }

    // An alarm and its cancel in one batch, and a check-in of an elder with nothing open.
    let (elder, device) = homes[1];
    let (other_elder, other_device) = homes[2];
    let mut cancel = alarm(device, elder, 5, AlarmKind::Sos);
    cancel.body = EventBody::Cancel;
    let mut checkin = alarm(other_device, other_elder, 5, AlarmKind::Sos);
    checkin.body = EventBody::CheckIn;
    let (mixed, appended) = store
        .commit_events(
            &[alarm(device, elder, 4, AlarmKind::Sos), cancel, checkin],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        mixed[0].incident_id, stored[0].incident_id,
        "joins the open one"
    );
    assert_eq!(
        mixed[1].incident_id, stored[0].incident_id,
        "the cancel is noted on it"
    );
    assert_eq!(
        mixed[2].incident_id, None,
        "nothing open to note a check-in on"
    );
    let kinds: Vec<_> = appended.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["alarm_joined", "device_cancelled"]);
    let incident = store
        .get_incident(stored[0].incident_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.alarm_count, 2);
    assert!(incident.probable_false_alarm);
}

#[tokio::test]
async fn a_batch_costs_the_statements_of_one_event_sqlite() {
    a_batch_costs_the_statements_of_one_event(Db::sqlite()).await;
}

#[tokio::test]
async fn a_batch_costs_the_statements_of_one_event_postgres() {
    a_batch_costs_the_statements_of_one_event(Db::postgres().await).await;
}

#[tokio::test]
async fn batch_dedups_opens_and_joins_sqlite() {
    batch_dedups_opens_and_joins(Db::sqlite()).await;
}

#[tokio::test]
async fn batch_dedups_opens_and_joins_postgres() {
    batch_dedups_opens_and_joins(Db::postgres().await).await;
}

async fn the_event_log_is_append_only(db: Db) {
    let store = open(&db).await;
    let (elder, device) = seed(&store).await;
    store
        .commit_events(&[alarm(device, elder, 1, AlarmKind::Fall)], now_millis())
        .await
        .unwrap();
    let update = sqlx::query("UPDATE incident_events SET kind = 'tampered'")
        .execute(store.pool())
        .await;
    assert!(update.is_err(), "UPDATE must be refused");
    let delete = sqlx::query("DELETE FROM incident_events")
        .execute(store.pool())
        .await;
    assert!(delete.is_err(), "DELETE must be refused");
    assert_eq!(
        store
            .incident_events_after(LogPosition::START, 10)
            .await
            .unwrap()
            .rows[0]
            .1
            .kind,
        "opened"
    );
}

#[tokio::test]
async fn the_event_log_is_append_only_sqlite() {
    the_event_log_is_append_only(Db::sqlite()).await;
}

#[tokio::test]
async fn the_event_log_is_append_only_postgres() {
    the_event_log_is_append_only(Db::postgres().await).await;
}

async fn operator_actions_are_logged_and_guarded(db: Db) {
    let store = open(&db).await;
    let (elder, device) = seed(&store).await;
    let (stored, _) = store
        .commit_events(&[alarm(device, elder, 1, AlarmKind::Sos)], now_millis())
        .await
        .unwrap();
    let id = stored[0].incident_id.unwrap();
    let (acked, _) = store
        .acknowledge(id, "alice", now_millis())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acked.acked_by.as_deref(), Some("alice"));
    assert!(
        store
            .acknowledge(id, "bob", now_millis())
            .await
            .unwrap()
            .is_none(),
        "second ack changes nothing"
    );
    let (closed, _) = store
        .close_incident(
            id,
            "alice",
            onekey::domain::Outcome::FalseAlarm,
            Some("pressed by mistake"),
            now_millis(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(closed.probable_false_alarm);
    assert!(
        store
            .close_incident(
                id,
                "alice",
                onekey::domain::Outcome::Resolved,
                None,
                now_millis()
            )
            .await
            .is_err()
    );
    // Closed frees the open slot: the next alarm opens a new incident.
    let (next, _) = store
        .commit_events(&[alarm(device, elder, 2, AlarmKind::Sos)], now_millis())
        .await
        .unwrap();
    assert!(next[0].opened);
    assert_ne!(next[0].incident_id, Some(id));
    let kinds: Vec<_> = store
        .incident_events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "acknowledged", "closed"]);
}

#[tokio::test]
async fn operator_actions_are_logged_and_guarded_sqlite() {
    operator_actions_are_logged_and_guarded(Db::sqlite()).await;
}

#[tokio::test]
async fn operator_actions_are_logged_and_guarded_postgres() {
    operator_actions_are_logged_and_guarded(Db::postgres().await).await;
}

#[tokio::test]
async fn two_instances_sharing_postgres_open_one_incident_per_elder() {
    let db = Db::postgres().await;
    let a = open(&db).await;
    let b = Store::connect(&db.url()).await.unwrap();
    let (elder, device) = seed(&a).await;
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            store
                .commit_events(
                    &[alarm(device, elder, 10 + i as i64, AlarmKind::Sos)],
                    now_millis(),
                )
                .await
                .unwrap()
                .0[0]
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(
        results.iter().filter(|s| s.opened).count(),
        1,
        "exactly one opened: {results:?}"
    );
    let first = results[0].incident_id;
    assert!(results.iter().all(|s| s.incident_id == first));
}

/// The log followers read (`store/log_order.rs`): a transaction that wrote first but commits last
/// holds back what later transactions committed, so no follower's position passes it; once it
/// commits, its row comes first. A transaction running in another database holds nothing back.
#[tokio::test]
async fn a_late_commit_is_never_skipped_and_other_databases_hold_nothing_back() {
    let db = Db::postgres().await;
    let store = open(&db).await;
    let (elder, device) = seed(&store).await;
    let (other_elder, other_device) = seed(&store).await;
    let stored = store
        .commit_events(&[alarm(device, elder, 1, AlarmKind::Sos)], now_millis())
        .await
        .unwrap();
    let incident = stored.0[0].incident_id.unwrap();
    let start = store.incident_log_end().await.unwrap();
    assert_eq!(start.id, stored.1[0].id, "the log ends at the opening");

    // Another database's writer, running throughout (its transaction id is the oldest).
    let elsewhere_db = Db::postgres().await;
    let elsewhere = open(&elsewhere_db).await;
    let mut elsewhere_tx = elsewhere.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()::text")
        .execute(&mut *elsewhere_tx)
        .await
        .unwrap();

    // A slow writer here: it appends an event and stays open.
    let mut slow = store.pool().begin().await.unwrap();
    let slow_id: i64 = sqlx::query_scalar(
        "INSERT INTO incident_events (incident_id, at, kind, actor, detail) \
         VALUES ($1, 0, 'note', 'operator:slow', '{}') RETURNING id",
    )
    .bind(incident)
    .fetch_one(&mut *slow)
    .await
    .unwrap();

    // A later writer commits at once, with higher ids.
    let later = store
        .commit_events(
            &[alarm(other_device, other_elder, 1, AlarmKind::Fall)],
            now_millis(),
        )
        .await
        .unwrap();
    let later_ids: Vec<i64> = later.1.iter().map(|e| e.id).collect();
    assert!(later_ids.iter().all(|&id| id > slow_id));

    let page = store.incident_events_after(start, 100).await.unwrap();
    assert!(
        page.rows.is_empty(),
        "nothing is final while the slow writer runs: {:?}",
        page.rows
    );
    assert!(page.held_back, "the later commit is held back, not lost");

    slow.commit().await.unwrap();
    let page = store.incident_events_after(start, 100).await.unwrap();
    let ids: Vec<i64> = page.rows.iter().map(|(_, e)| e.id).collect();
    let mut expected = vec![slow_id];
    expected.extend(&later_ids);
    assert_eq!(
        ids, expected,
        "the slow writer's event first, then the later ones"
    );
    assert!(
        !page.held_back,
        "the other database's open transaction holds nothing back"
    );
    assert!(page.rows.windows(2).all(|w| w[0].0 < w[1].0));
    // A follower that resumes after the slow event (its Last-Event-ID) gets exactly the rest.
    let resumed = store.incident_event_position(slow_id).await.unwrap();
    let rest: Vec<i64> = store
        .incident_events_after(resumed, 100)
        .await
        .unwrap()
        .rows
        .iter()
        .map(|(_, e)| e.id)
        .collect();
    assert_eq!(rest, later_ids);
    elsewhere_tx.rollback().await.unwrap();
}
