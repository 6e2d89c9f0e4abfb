//! Group commit: concurrent alarms share transactions, each is answered only after its batch commits,
//! and one event that cannot be stored does not keep the others of its batch from being stored.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Db;
use onekey::domain::{AlarmKind, DeviceEvent, EventBody, now_millis};
use onekey::intake::{Intake, IntakeConfig, IntakeError};
use onekey::store::{DeviceInput, Store, StoreOutcome};

async fn store_with_devices(db: &Db, n: usize) -> (Store, Vec<i64>) {
    let store = Store::connect(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let d = DeviceInput {
            protocol: "native".into(),
            ident: format!("{}", 90_000 + i),
            secret_hex: Some(hex::encode([1u8; 32])),
            model: String::new(),
            elder_id: None,
            enabled: true,
            heartbeat_s: 60,
        };
        ids.push(store.save_device(None, &d).await.unwrap().id);
    }
    (store, ids)
}

fn sos(device_id: i64, seq: i64) -> DeviceEvent {
    DeviceEvent {
        device_id,
        elder_id: None,
        dedup_key: format!("seq:{seq}"),
        seq: Some(seq),
        device_time: None,
        received_at: now_millis(),
        raw_code: "native:sos".into(),
        raw: None,
        body: EventBody::Alarm {
            kind: AlarmKind::Sos,
            location: None,
        },
    }
}

async fn concurrent_alarms_share_commits(db: Db) {
    let (store, devices) = store_with_devices(&db, 200).await;
    let commits = Arc::new(AtomicUsize::new(0));
    let counter = commits.clone();
    let config = IntakeConfig {
        linger: Duration::from_millis(5),
        ..IntakeConfig::default()
    };
    let (intake, writer) = Intake::start(store.clone(), config, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tasks: Vec<_> = devices
        .iter()
        .map(|d| {
            let intake = intake.clone();
            let event = sos(*d, 1);
            tokio::spawn(async move { intake.submit(event).await })
        })
        .collect();
    for t in tasks {
        let stored = t.await.unwrap().unwrap();
        assert_eq!(stored.outcome, StoreOutcome::Stored);
        assert!(stored.opened);
        // Answered means committed: the incident is readable by anyone now.
        assert!(
            store
                .get_incident(stored.incident_id.unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
    let batches = commits.load(Ordering::SeqCst);
    assert!(
        (1..200 / 4).contains(&batches),
        "200 concurrent alarms took {batches} commits"
    );
    drop(intake);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn concurrent_alarms_share_commits_sqlite() {
    concurrent_alarms_share_commits(Db::sqlite()).await;
}

#[tokio::test]
async fn concurrent_alarms_share_commits_postgres() {
    concurrent_alarms_share_commits(Db::postgres().await).await;
}

#[tokio::test]
async fn a_bad_event_fails_alone() {
    let db = Db::sqlite();
    let (store, devices) = store_with_devices(&db, 20).await;
    let config = IntakeConfig {
        linger: Duration::from_millis(20),
        ..IntakeConfig::default()
    };
    let (intake, _writer) = Intake::start(store.clone(), config, |_| {});
    let mut tasks = Vec::new();
    for d in &devices {
        let intake = intake.clone();
        let event = sos(*d, 1);
        tasks.push(tokio::spawn(async move { intake.submit(event).await }));
    }
    // A device id that does not exist breaks the foreign key: its batch fails, then it fails alone.
    let poison = {
        let intake = intake.clone();
        tokio::spawn(async move { intake.submit(sos(9_999_999, 1)).await })
    };
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().outcome, StoreOutcome::Stored);
    }
    assert!(matches!(poison.await.unwrap(), Err(IntakeError::Store(_))));
}
