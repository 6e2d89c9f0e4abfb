//! How writers of the incident log order themselves on PostgreSQL, measured both ways: one global
//! advisory lock (the design before `store/log_order.rs`: every writer queues on it, so ids commit
//! in order and followers read `id > last`), against per-elder locks and the transaction-id
//! horizon (writers of different elders run side by side; followers read in `(tx_id, id)` order
//! below the horizon).
//!
//! `W` writers, each on its own elder's incident, commit transactions of `BATCH` events for
//! `SECONDS` each; one follower reads the log the way that design reads it. Reported per design
//! and writer count: transactions and events committed per second, and how long after its commit
//! the follower saw each event (p50/p99). Both designs run the same statements as the store (the
//! old one's lock as it was); a third row runs the store's own `commit_events` (real alarms, one
//! incident per elder) with the new design.
//!
//! `cargo bench --bench log_order` (PostgreSQL on `ONEKEY_TEST_PG`, default 127.0.0.1:5432);
//! `SECONDS`, `BATCH`. Writes `target/bench-results/log_order.json`.

// Only the temporary database is used here.
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onekey::domain::{AlarmKind, DeviceEvent, EventBody, now_millis};
use onekey::store::{DeviceInput, ElderInput, Store};
use sqlx::Row;
use support::{TempPostgres, env_u64};

#[derive(Clone, Copy, PartialEq)]
enum Design {
    GlobalLock,
    Horizon,
    /// The store's own intake (`commit_events`), horizon design.
    StoreIntake,
}

impl Design {
    fn name(self) -> &'static str {
        match self {
            Design::GlobalLock => "global advisory lock, follow by id",
            Design::Horizon => "per-elder locks, follow below the horizon",
            Design::StoreIntake => "store intake (commit_events), horizon",
        }
    }
}

struct Run {
    design: Design,
    writers: usize,
    tx_per_s: f64,
    events_per_s: f64,
    seen_p50_ms: f64,
    seen_p99_ms: f64,
    unseen: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = env_u64("SECONDS", 3);
    let batch = env_u64("BATCH", 10) as usize;
    let mut runs = Vec::new();
    for design in [Design::GlobalLock, Design::Horizon, Design::StoreIntake] {
        for writers in [1usize, 4, 16] {
            let Some(pg) = TempPostgres::create().await? else {
                anyhow::bail!("PostgreSQL is needed");
            };
            let run = measure(&pg.url, design, writers, batch, seconds).await?;
            eprintln!(
                "{:<44} W={:>2}: {:>7.0} tx/s {:>8.0} events/s, seen after p50 {:>6.2} ms p99 {:>7.2} ms, unseen {}",
                design.name(),
                writers,
                run.tx_per_s,
                run.events_per_s,
                run.seen_p50_ms,
                run.seen_p99_ms,
                run.unseen
            );
            runs.push(run);
            pg.drop().await;
        }
    }
    println!(
        "\n| design | writers | transactions/s | events/s | follower sees it after, p50 / p99 |"
    );
    println!("|---|---:|---:|---:|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} / {:.2} ms |",
            r.design.name(),
            r.writers,
            r.tx_per_s,
            r.events_per_s,
            r.seen_p50_ms,
            r.seen_p99_ms
        );
    }
    let json: Vec<_> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "design": r.design.name(), "writers": r.writers, "tx_per_s": r.tx_per_s,
                "events_per_s": r.events_per_s, "seen_p50_ms": r.seen_p50_ms,
                "seen_p99_ms": r.seen_p99_ms, "unseen": r.unseen,
            })
        })
        .collect();
    std::fs::create_dir_all("target/bench-results")?;
    std::fs::write(
        "target/bench-results/log_order.json",
        serde_json::to_string_pretty(&serde_json::json!({
            "seconds": seconds, "batch": batch, "runs": json
        }))?,
    )?;
    Ok(())
}

/// Commit times by event id, shared by the writers and the follower.
type Committed = Arc<Mutex<HashMap<i64, Instant>>>;

async fn measure(
    url: &str,
    design: Design,
    writers: usize,
    batch: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let mut owners = Vec::new();
    for w in 0..writers {
        owners.push(seed(&store, w).await?);
    }
    let committed: Committed = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Where the follower starts, read before any writer runs.
    let start = store.incident_log_end().await?;
    let follower = {
        let (store, committed, done) = (store.clone(), committed.clone(), done.clone());
        tokio::spawn(async move { follow(&store, design, start, committed, done).await })
    };
    let mut tasks = Vec::new();
    for (w, (elder, device, incident)) in owners.into_iter().enumerate() {
        let (store, committed) = (store.clone(), committed.clone());
        tasks.push(tokio::spawn(async move {
            let mut txs = 0u64;
            let mut seq = 1i64;
            while Instant::now() < stop_at {
                let ids = match design {
                    Design::StoreIntake => {
                        let events: Vec<DeviceEvent> = (0..batch)
                            .map(|_| {
                                seq += 1;
                                sos(device, elder, seq)
                            })
                            .collect();
                        let (_, appended) = store.commit_events(&events, now_millis()).await?;
                        appended.iter().map(|e| e.id).collect()
                    }
                    _ => append(&store, design, elder, incident, batch, w).await?,
                };
                let at = Instant::now();
                let mut map = committed.lock().expect("commit map");
                for id in ids {
                    map.insert(id, at);
                }
                txs += 1;
            }
            anyhow::Ok(txs)
        }));
    }
    let started = Instant::now();
    let mut txs = 0;
    for t in tasks {
        txs += t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, unseen) = follower.await??;
    let events = committed.lock().expect("commit map").len();
    store.close().await;
    Ok(Run {
        design,
        writers,
        tx_per_s: txs as f64 / elapsed,
        events_per_s: events as f64 / elapsed,
        seen_p50_ms: seen.value_at_quantile(0.5) as f64 / 1000.0,
        seen_p99_ms: seen.value_at_quantile(0.99) as f64 / 1000.0,
        unseen,
    })
}

/// One elder with a device and an open incident.
async fn seed(store: &Store, n: usize) -> anyhow::Result<(i64, i64, i64)> {
    let elder = store
        .save_elder(
            None,
            &serde_json::from_value::<ElderInput>(serde_json::json!({
                "name": format!("长者{n}"), "address": "习溪桥街道", "lat": 27.1, "lon": 114.97, "living": "alone"
            }))?,
        )
        .await?;
    let device = store
        .save_device(
            None,
            &DeviceInput {
                protocol: "native".into(),
                ident: format!("bench{n}"),
                secret_hex: Some(hex::encode([7u8; 32])),
                model: "OK-1".into(),
                elder_id: Some(elder.id),
                enabled: true,
                heartbeat_s: 300,
            },
        )
        .await?;
    let (stored, _) = store
        .commit_events(&[sos(device.id, elder.id, 1)], now_millis())
        .await?;
    let incident = stored[0]
        .incident_id
        .ok_or_else(|| anyhow::anyhow!("no incident"))?;
    Ok((elder.id, device.id, incident))
}

fn sos(device: i64, elder: i64, seq: i64) -> DeviceEvent {
    DeviceEvent {
        device_id: device,
        elder_id: Some(elder),
        dedup_key: format!("seq:{seq}"),
        seq: None,
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

/// One transaction of `batch` events on `incident`, ordered the way `design` orders writers.
async fn append(
    store: &Store,
    design: Design,
    elder: i64,
    incident: i64,
    batch: usize,
    writer: usize,
) -> anyhow::Result<Vec<i64>> {
    let mut tx = store.pool().begin().await?;
    let lock = match design {
        Design::GlobalLock => {
            "SELECT pg_advisory_xact_lock(1249), pg_notify('onekey_commits', '')".to_string()
        }
        _ => format!(
            "SELECT count(pg_advisory_xact_lock(1249, (k % 2147483647)::int)), \
             pg_notify('onekey_commits', '') FROM unnest(string_to_array('{elder}', ',')::bigint[]) AS k"
        ),
    };
    sqlx::query(&lock).execute(&mut *tx).await?;
    let mut ids = Vec::with_capacity(batch);
    for _ in 0..batch {
        let row = sqlx::query(
            "INSERT INTO incident_events (incident_id, at, kind, actor, detail) \
             VALUES ($1, $2, 'note', $3, '{}') RETURNING id",
        )
        .bind(incident)
        .bind(now_millis())
        .bind(format!("bench:{writer}"))
        .fetch_one(&mut *tx)
        .await?;
        ids.push(row.try_get(0)?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Follows the log the way `design` does, from `start`, until every writer is done and it has seen every
/// committed event (or 5 s more have passed); returns when each event was seen after its commit
/// (µs) and how many committed events it never saw.
async fn follow(
    store: &Store,
    design: Design,
    start: onekey::store::LogPosition,
    committed: Committed,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Histogram<u64>, usize)> {
    let mut seen = Histogram::<u64>::new(3)?;
    let mut position = start;
    let mut last_id = position.id;
    let mut got = std::collections::HashSet::new();
    let mut until = None;
    loop {
        if done.load(std::sync::atomic::Ordering::SeqCst) {
            let until = *until.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
            let all = committed.lock().expect("commit map").len() <= got.len();
            if all || Instant::now() > until {
                break;
            }
        }
        let ids: Vec<i64> = match design {
            Design::GlobalLock => {
                let rows = sqlx::query(
                    "SELECT id FROM incident_events WHERE id > $1 ORDER BY id LIMIT 500",
                )
                .bind(last_id)
                .fetch_all(store.pool())
                .await?;
                let ids: Vec<i64> = rows
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                last_id = ids.last().copied().unwrap_or(last_id);
                ids
            }
            _ => {
                let page = store.incident_events_after(position, 500).await?;
                position = page.rows.last().map_or(position, |(p, _)| *p);
                page.rows.iter().map(|(_, e)| e.id).collect()
            }
        };
        let now = Instant::now();
        if ids.is_empty() {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        let map = committed.lock().expect("commit map");
        for id in ids {
            // The writer records its commit just after it returns; an event seen before that
            // counts as seen at once.
            let at = map.get(&id).copied().unwrap_or(now);
            seen.record(now.saturating_duration_since(at).as_micros() as u64)?;
            got.insert(id);
        }
    }
    let unseen = committed
        .lock()
        .expect("commit map")
        .keys()
        .filter(|id| !got.contains(id))
        .count();
    Ok((seen, unseen))
}
