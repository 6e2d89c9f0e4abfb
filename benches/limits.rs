//! This machine's own limits, measured in one run, to set beside OneKey's figures (issue #16):
//!
//!   cargo bench --bench limits
//!   scripts/bench.sh [other benches…]     (limits first, then each bench named)
//!
//! Each measurement runs `ONEKEY_BENCH_SECS` seconds (default 5), over loopback or on local files:
//! 1. **bare TCP**: a tokio server in this process that cuts GT06 frames with the server's own
//!    `Gt06Codec` and answers each with the protocol's short ACK, storing nothing. 1,000 loopback
//!    connections each log in, then send SOS alarms (`0x16`) back to back, each waiting for its
//!    ACK (closed loop). Alarms/s and send→ACK latency.
//! 2. **TCP + group commit**: the same, but one writer task appends every frame queued so far to a
//!    file, calls `fdatasync` (`sync_data`), and only then are that batch's ACKs written.
//! 3. **SQLite**: a temp-file database (WAL, `synchronous=FULL`) with a table shaped like
//!    `device_events` (its columns and `UNIQUE (device_id, dedup_key)`, no foreign key: there is no
//!    `devices` table here), transactions of 1,000 rows as (a) one prepared single-row INSERT per
//!    row and (b) one `INSERT … SELECT … FROM json_each(?)`. Rows/s, and the time of one
//!    transaction.
//! 4. **PostgreSQL**: a fresh database (`support::TempPostgres`, `ONEKEY_TEST_PG`; skipped when
//!    unreachable) with `synchronous_commit` on, the same table, as (a) `INSERT … SELECT FROM
//!    unnest(…)` of 1,000 rows, (b) `COPY … FROM STDIN` (text) of 1,000 rows, (c) unnest of 100
//!    rows, each one transaction. Rows/s, and the time of one transaction.
//! 5. **fdatasync**: `pg_test_fsync -s 2` (its `fdatasync` line for one 8 kB write; it ships with
//!    the postgresql package at `/usr/lib/postgresql/*/bin/pg_test_fsync`, and the bench fails
//!    without it), then this process's own loop of 8 KiB write + `sync_data` on a temp file:
//!    rewriting one block (as pg_test_fsync does) and appending (as the file of 2 does). Ops/s.
//! 6. **broker**: the Mosquitto on 127.0.0.1:1883 (`ONEKEY_BENCH_BROKER=host:port` for another;
//!    skipped when unreachable): one subscriber, one publisher sending QoS 1 messages one at a time,
//!    each waiting until the subscriber has it. Msg/s and publish→receive latency.
//!
//! Clients and servers of 1 and 2 share this machine's cores, and both are closed loops of 1,000
//! connections: their latency is mostly queueing (about 1,000 / rate), not the cost of one alarm.
//! The database inserts are plain (no `ON CONFLICT`), so that COPY compares with them.
//!
//! Writes a table to stdout, `target/bench-results/limits.json` (one key per measurement, plus
//! `machine`) and `target/bench-results/limits_latency.png` (latency percentiles of 1, 2, 5 and 6),
//! whose text needs `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf` (Debian's
//! `fonts-dejavu-core`). Temp files go to `TMPDIR` (default `/tmp`).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(dead_code)]
mod support;

use anyhow::Context;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use onekey_device_protocols::gt06::Gt06Codec;
use onekey_sim::deployed::{self as sim, RawDevice};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, Row, SqliteConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// Loopback connections of phases 1 and 2.
const CONNECTIONS: usize = 1_000;
/// How long one reply may take before the measurement fails.
const WAIT: Duration = Duration::from_secs(10);
/// The font the plot's text is drawn with.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Where the postgresql package puts pg_test_fsync.
const PG_TEST_FSYNC: &str = "/usr/lib/postgresql/*/bin/pg_test_fsync";
/// The columns written, in the order of every statement below.
const COLUMNS: &str =
    "device_id, dedup_key, kind, raw_code, detail, device_time, received_at, stored_at";

/// The percentiles of the plot.
const PLOT_QS: [(f64, &str); 6] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (1.0, "max"),
];

/// One line of the table, and its key and numbers in the JSON.
struct Measured {
    key: &'static str,
    label: String,
    rate: Option<f64>,
    unit: &'static str,
    latency: Option<Histogram<u64>>,
    note: String,
    json: Value,
}

impl Measured {
    fn skipped(key: &'static str, label: &str, unit: &'static str, why: &str) -> Measured {
        Measured {
            key,
            label: label.to_string(),
            rate: None,
            unit,
            latency: None,
            note: format!("skipped: {why}"),
            json: json!({ "skipped": why }),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: constant bounds that are always valid.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn latency_json(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let secs = support::env_u64("ONEKEY_BENCH_SECS", 5).max(1);
    // Both are needed at the end: fail before measuring anything rather than after.
    let font = std::fs::read(FONT).with_context(|| {
        format!("the plot's font {FONT} is missing: apt-get install -y fonts-dejavu-core")
    })?;
    let pg_test_fsync = find_pg_test_fsync()?;
    let tmp = tempfile::tempdir()?;
    let mut out: Vec<Measured> = Vec::new();

    eprintln!("[limits] 1: bare tokio TCP server, {CONNECTIONS} connections");
    out.push(tcp_phase(secs, None).await?);
    eprintln!("[limits] 2: TCP server + group commit with fdatasync");
    out.push(tcp_phase(secs, Some(&tmp.path().join("journal"))).await?);
    eprintln!("[limits] 3: SQLite batched inserts");
    out.extend(sqlite_phase(&tmp.path().join("limits.db"), secs).await?);
    eprintln!("[limits] 4: PostgreSQL batched inserts");
    out.extend(postgres_phase(secs).await?);
    eprintln!("[limits] 5: fdatasync (pg_test_fsync -s 2, then {secs} s loops of our own)");
    out.push(pg_test_fsync_phase(&pg_test_fsync, tmp.path()).await?);
    out.push(fdatasync_phase(&tmp.path().join("sync-overwrite"), secs, false).await?);
    out.push(fdatasync_phase(&tmp.path().join("sync-append"), secs, true).await?);
    let broker =
        std::env::var("ONEKEY_BENCH_BROKER").unwrap_or_else(|_| "127.0.0.1:1883".to_string());
    eprintln!("[limits] 6: broker publish→subscribe at {broker}");
    out.push(broker_phase(&broker, secs).await?);

    let machine = machine(secs, tmp.path());
    print_table(&out, &machine, secs);

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir)?;
    let mut report = serde_json::Map::new();
    for m in &out {
        report.insert(m.key.to_string(), m.json.clone());
    }
    report.insert("machine".to_string(), machine.clone());
    let json_path = dir.join("limits.json");
    std::fs::write(
        &json_path,
        serde_json::to_vec_pretty(&Value::Object(report))?,
    )?;
    let png_path = dir.join("limits_latency.png");
    plot(&png_path, font, &out, &machine, secs)?;
    println!("wrote {} and {}", json_path.display(), png_path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: a GT06 server that stores nothing, or appends to a file with group commit.

/// A frame waiting in the group-commit queue, and where to say that it is on disk.
type Pending = (BytesMut, oneshot::Sender<()>);

#[derive(Default)]
struct JournalStats {
    fsyncs: AtomicU64,
    frames: AtomicU64,
}

/// Shared by the client tasks of one phase.
struct Clients {
    ready: AtomicU64,
    measuring: AtomicBool,
    acked: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    stop: CancellationToken,
}

async fn tcp_phase(secs: u64, journal: Option<&Path>) -> anyhow::Result<Measured> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let stats = Arc::new(JournalStats::default());
    let (queue, writer) = match journal {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let (tx, rx) = mpsc::unbounded_channel();
            (
                Some(tx),
                Some(tokio::spawn(write_journal(file, rx, stats.clone()))),
            )
        }
        None => (None, None),
    };
    let server_errors = Arc::new(AtomicU64::new(0));
    let accept = {
        let errors = server_errors.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (queue, errors) = (queue.clone(), errors.clone());
                tokio::spawn(async move {
                    if serve(stream, queue).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
    };

    let shared = Arc::new(Clients {
        ready: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        acked: AtomicU64::new(0),
        latency: Mutex::new(new_histogram()),
        stop: CancellationToken::new(),
    });
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (addr, shared) = (addr.clone(), shared.clone());
            tokio::spawn(async move { device(i, &addr, &shared).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared.ready.load(Ordering::Relaxed) < CONNECTIONS as u64 {
        if Instant::now() > deadline || clients.iter().any(|c| c.is_finished()) {
            shared.stop.cancel();
            accept.abort();
            let mut first = None;
            for c in clients {
                if let Ok(Err(e)) = c.await {
                    first.get_or_insert(e);
                }
            }
            anyhow::bail!(
                "only {} of {CONNECTIONS} connections logged in ({})",
                shared.ready.load(Ordering::Relaxed),
                first
                    .map(|e| format!("{e:#}"))
                    .unwrap_or("timed out".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 1 s of warm-up, then the measurement.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fsyncs0, frames0) = (
        stats.fsyncs.load(Ordering::Relaxed),
        stats.frames.load(Ordering::Relaxed),
    );
    shared.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let fsyncs = stats.fsyncs.load(Ordering::Relaxed) - fsyncs0;
    let frames = stats.frames.load(Ordering::Relaxed) - frames0;
    shared.stop.cancel();
    let mut client_errors = Vec::new();
    for c in clients {
        match c.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => client_errors.push(format!("{e:#}")),
            Err(e) => client_errors.push(e.to_string()),
        }
    }
    accept.abort();
    let _ = accept.await;
    if let Some(writer) = writer {
        // It ends once the last connection task has let go of the queue.
        tokio::time::timeout(WAIT, writer)
            .await
            .context("the journal writer did not stop")???;
    }
    if let Some(e) = client_errors.first() {
        eprintln!(
            "{} client connections failed, first: {e}",
            client_errors.len()
        );
    }

    let acked = shared.acked.load(Ordering::Relaxed);
    let latency = shared
        .latency
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?
        .clone();
    let rate = acked as f64 / elapsed;
    let mut numbers = json!({
        "connections": CONNECTIONS,
        "secs": elapsed,
        "alarms_per_s": rate,
        "acked": acked,
        "latency": latency_json(&latency),
        "client_errors": client_errors.len(),
        "server_errors": server_errors.load(Ordering::Relaxed),
    });
    let (key, label, note) = if journal.is_some() {
        let per_sync = if fsyncs > 0 {
            frames as f64 / fsyncs as f64
        } else {
            0.0
        };
        numbers["fdatasyncs_per_s"] = json!(fsyncs as f64 / elapsed);
        numbers["frames_per_fdatasync"] = json!(per_sync);
        (
            "tcp_group_commit",
            format!("2  TCP + group commit, fdatasync, {CONNECTIONS} conns"),
            format!(
                "{:.0} fdatasync/s, {per_sync:.0} frames each",
                fsyncs as f64 / elapsed
            ),
        )
    } else {
        (
            "bare_tcp",
            format!("1  bare tokio TCP, {CONNECTIONS} conns"),
            "stores nothing".to_string(),
        )
    };
    let errors = client_errors.len() as u64 + server_errors.load(Ordering::Relaxed);
    Ok(Measured {
        key,
        label,
        rate: Some(rate),
        unit: "alarms/s",
        latency: Some(latency),
        note: if errors > 0 {
            format!("{note}; {errors} connection errors")
        } else {
            note
        },
        json: numbers,
    })
}

/// One connection of the server of phases 1 and 2: every frame is answered with the short ACK,
/// after the journal writer has it on disk when there is one.
async fn serve(
    stream: TcpStream,
    journal: Option<mpsc::UnboundedSender<Pending>>,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, Gt06Codec::default());
    while let Some(frame) = framed.next().await {
        let frame = frame?;
        let (proto, serial) = sim::gt06_proto_and_serial(&frame).context("frame too short")?;
        if let Some(queue) = &journal {
            let (done, stored) = oneshot::channel();
            queue
                .send((frame, done))
                .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?;
            stored.await?;
        }
        framed.send(sim::gt06_ack(proto, serial)).await?;
    }
    Ok(())
}

/// Group commit: takes whatever is queued, appends it, `fdatasync`s, then releases those ACKs.
async fn write_journal(
    file: std::fs::File,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    stats: Arc<JournalStats>,
) -> anyhow::Result<()> {
    let file = Arc::new(file);
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 100_000).await > 0 {
        let bytes: Vec<u8> = batch.iter().flat_map(|(f, _)| f.iter().copied()).collect();
        let file = file.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f: &std::fs::File = &file;
            f.write_all(&bytes)?;
            f.sync_data()
        })
        .await??;
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        stats
            .frames
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for (_, done) in batch.drain(..) {
            let _ = done.send(());
        }
    }
    Ok(())
}

/// One tracker: logs in, then sends SOS alarms one after another, each waiting for its ACK.
async fn device(i: usize, addr: &str, shared: &Clients) -> anyhow::Result<()> {
    let mut d = RawDevice::connect(addr).await?;
    d.send(&sim::gt06_login(&format!("86{:013}", 1_000_000 + i), 1))
        .await?;
    let ack = d.read_until(b"\r\n", WAIT).await.context("no login ACK")?;
    anyhow::ensure!(ack == sim::gt06_ack(0x01, 1), "login ACK {ack:02x?}");
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let mut serial = 1;
    while !shared.stop.is_cancelled() {
        serial = next_serial(serial);
        let frame = sim::gt06_sos(serial);
        let sent = Instant::now();
        d.send(&frame).await?;
        let ack = d.read_until(b"\r\n", WAIT).await.context("no alarm ACK")?;
        let us = sent.elapsed().as_micros() as u64;
        anyhow::ensure!(ack == sim::gt06_ack(0x16, serial), "alarm ACK {ack:02x?}");
        if shared.measuring.load(Ordering::Relaxed) {
            shared.acked.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut h) = shared.latency.lock() {
                let _ = h.record(us.max(1));
            }
        }
    }
    Ok(())
}

/// The serial after `serial` whose ACK has no `0D 0A` before its own end, so that reading up to the
/// first `0D 0A` reads the whole ACK.
fn next_serial(serial: u16) -> u16 {
    let mut s = serial;
    loop {
        s = s.wrapping_add(1);
        let ack = sim::gt06_ack(0x16, s);
        if s != 0 && ack.windows(2).position(|w| w == b"\r\n") == Some(ack.len() - 2) {
            return s;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3 and 4: batched inserts into a table shaped like device_events.

/// One row of the table.
struct EventRow {
    device_id: i64,
    dedup_key: String,
    kind: &'static str,
    raw_code: &'static str,
    detail: String,
    device_time: i64,
    received_at: i64,
    stored_at: i64,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Rows `from..from + n`: alarms of 1,000 devices, each with its own dedup key.
fn event_rows(from: u64, n: usize) -> Vec<EventRow> {
    let now = unix_ms();
    (from..from + n as u64)
        .map(|k| EventRow {
            device_id: (k % 1_000) as i64 + 1,
            dedup_key: format!("gt06:16:{k}"),
            kind: "alarm",
            raw_code: "gt06:0x01",
            detail: format!(
                r#"{{"alarm":"sos","location":{{"lat":{:.5},"lon":{:.5},"accuracy_m":12.0}}}}"#,
                31.2 + (k % 997) as f64 * 1e-4,
                121.4 + (k % 991) as f64 * 1e-4
            ),
            device_time: now - 800,
            received_at: now - 5,
            stored_at: now,
        })
        .collect()
}

/// One way of writing a batch of rows as one transaction.
trait Inserter {
    async fn insert(&mut self, rows: &[EventRow]) -> anyhow::Result<()>;
    async fn count(&mut self) -> anyhow::Result<i64>;
}

/// Batches of `batch` rows for `secs` seconds: rows/s and the time of one transaction.
async fn insert_rate(
    ins: &mut impl Inserter,
    batch: usize,
    secs: u64,
) -> anyhow::Result<(f64, u64, Histogram<u64>)> {
    let mut latency = new_histogram();
    let mut rows = 0u64;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    while Instant::now() < end {
        let started = Instant::now();
        let batch_rows = event_rows(rows, batch);
        ins.insert(&batch_rows).await?;
        let _ = latency.record((started.elapsed().as_micros() as u64).max(1));
        rows += batch as u64;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let stored = ins.count().await?;
    anyhow::ensure!(
        stored == rows as i64,
        "{rows} rows inserted, {stored} in the table"
    );
    Ok((rows as f64 / elapsed, rows, latency))
}

fn rows_measured(
    key: &'static str,
    label: String,
    batch: usize,
    (rate, rows, latency): (f64, u64, Histogram<u64>),
    settings: &Value,
) -> Measured {
    Measured {
        key,
        label,
        rate: Some(rate),
        unit: "rows/s",
        note: format!(
            "{:.0} tx/s; latency of one {batch}-row transaction",
            rate / batch as f64
        ),
        json: json!({
            "rows_per_s": rate,
            "rows": rows,
            "rows_per_transaction": batch,
            "transactions_per_s": rate / batch as f64,
            "transaction_latency": latency_json(&latency),
            "settings": settings,
        }),
        latency: Some(latency),
    }
}

struct SqliteSingleRow<'a>(&'a mut SqliteConnection);
struct SqliteJsonEach<'a>(&'a mut SqliteConnection);

async fn sqlite_count(c: &mut SqliteConnection) -> anyhow::Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM device_events")
        .fetch_one(c)
        .await?
        .try_get(0)?)
}

impl Inserter for SqliteSingleRow<'_> {
    async fn insert(&mut self, rows: &[EventRow]) -> anyhow::Result<()> {
        let sql = format!("INSERT INTO device_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        let mut tx = self.0.begin().await?;
        for r in rows {
            // sqlx prepares the statement once per connection and reuses it.
            sqlx::query(&sql)
                .bind(r.device_id)
                .bind(r.dedup_key.as_str())
                .bind(r.kind)
                .bind(r.raw_code)
                .bind(r.detail.as_str())
                .bind(r.device_time)
                .bind(r.received_at)
                .bind(r.stored_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
    async fn count(&mut self) -> anyhow::Result<i64> {
        sqlite_count(self.0).await
    }
}

impl Inserter for SqliteJsonEach<'_> {
    async fn insert(&mut self, rows: &[EventRow]) -> anyhow::Result<()> {
        let array: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!([
                    r.device_id,
                    r.dedup_key,
                    r.kind,
                    r.raw_code,
                    r.detail,
                    r.device_time,
                    r.received_at,
                    r.stored_at
                ])
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO device_events ({COLUMNS}) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
             value ->> 6, value ->> 7 FROM json_each(?)"
        ))
        .bind(Value::Array(array).to_string())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
    async fn count(&mut self) -> anyhow::Result<i64> {
        sqlite_count(self.0).await
    }
}

const SQLITE_TABLE: &str = "CREATE TABLE device_events (
    id           INTEGER PRIMARY KEY,
    device_id    INTEGER NOT NULL,
    dedup_key    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    device_time  INTEGER,
    received_at  INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL,
    incident_id  INTEGER,
    UNIQUE (device_id, dedup_key)
)";

async fn sqlite_phase(path: &Path, secs: u64) -> anyhow::Result<Vec<Measured>> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    let journal_mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    let version: String = sqlx::query("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    anyhow::ensure!(
        journal_mode == "wal" && synchronous == 2,
        "SQLite runs with journal_mode={journal_mode}, synchronous={synchronous}"
    );
    let settings =
        json!({ "journal_mode": journal_mode, "synchronous": "FULL", "version": version });

    sqlx::query(SQLITE_TABLE).execute(&mut conn).await?;
    let single = insert_rate(&mut SqliteSingleRow(&mut conn), 1_000, secs).await?;
    sqlx::query("DROP TABLE device_events")
        .execute(&mut conn)
        .await?;
    sqlx::query(SQLITE_TABLE).execute(&mut conn).await?;
    let each = insert_rate(&mut SqliteJsonEach(&mut conn), 1_000, secs).await?;
    conn.close().await?;
    Ok(vec![
        rows_measured(
            "sqlite_single_row_1000",
            "3a SQLite WAL FULL, 1000 single-row INSERTs/tx".into(),
            1_000,
            single,
            &settings,
        ),
        rows_measured(
            "sqlite_json_each_1000",
            "3b SQLite WAL FULL, INSERT…json_each 1000/tx".into(),
            1_000,
            each,
            &settings,
        ),
    ])
}

struct PgUnnest<'a>(&'a mut PgConnection);
struct PgCopy<'a>(&'a mut PgConnection);

async fn pg_count(c: &mut PgConnection) -> anyhow::Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM device_events")
        .fetch_one(c)
        .await?
        .try_get(0)?)
}

impl Inserter for PgUnnest<'_> {
    async fn insert(&mut self, rows: &[EventRow]) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO device_events ({COLUMNS}) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::bigint[], $7::bigint[], $8::bigint[])"
        ))
        .bind(rows.iter().map(|r| r.device_id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.dedup_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.raw_code).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.detail.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.device_time).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored_at).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
    async fn count(&mut self) -> anyhow::Result<i64> {
        pg_count(self.0).await
    }
}

/// A field of COPY's text format.
fn copy_field(out: &mut String, field: &str) {
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

impl Inserter for PgCopy<'_> {
    async fn insert(&mut self, rows: &[EventRow]) -> anyhow::Result<()> {
        let mut text = String::with_capacity(rows.len() * 160);
        for r in rows {
            text.push_str(&format!("{}\t", r.device_id));
            for field in [r.dedup_key.as_str(), r.kind, r.raw_code, r.detail.as_str()] {
                copy_field(&mut text, field);
                text.push('\t');
            }
            text.push_str(&format!(
                "{}\t{}\t{}\n",
                r.device_time, r.received_at, r.stored_at
            ));
        }
        let mut copy = self
            .0
            .copy_in_raw(&format!("COPY device_events ({COLUMNS}) FROM STDIN"))
            .await?;
        copy.send(text.as_bytes()).await?;
        let copied = copy.finish().await?;
        anyhow::ensure!(copied == rows.len() as u64, "COPY wrote {copied} rows");
        Ok(())
    }
    async fn count(&mut self) -> anyhow::Result<i64> {
        pg_count(self.0).await
    }
}

const PG_TABLE: &str = "CREATE TABLE device_events (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BIGINT NOT NULL,
    dedup_key    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    device_time  BIGINT,
    received_at  BIGINT NOT NULL,
    stored_at    BIGINT NOT NULL,
    incident_id  BIGINT,
    UNIQUE (device_id, dedup_key)
)";

async fn postgres_phase(secs: u64) -> anyhow::Result<Vec<Measured>> {
    const LABELS: [(&str, &str); 3] = [
        (
            "postgres_unnest_1000",
            "4a PostgreSQL INSERT…unnest 1000/tx",
        ),
        (
            "postgres_copy_1000",
            "4b PostgreSQL COPY FROM STDIN 1000/tx",
        ),
        ("postgres_unnest_100", "4c PostgreSQL INSERT…unnest 100/tx"),
    ];
    let Some(pg) = support::TempPostgres::create().await? else {
        return Ok(LABELS
            .iter()
            .map(|(k, l)| Measured::skipped(k, l, "rows/s", "PostgreSQL not reachable"))
            .collect());
    };
    let result = async {
        let mut conn = PgConnection::connect(&pg.url).await?;
        let mut settings = serde_json::Map::new();
        for name in [
            "server_version",
            "fsync",
            "synchronous_commit",
            "wal_sync_method",
            "full_page_writes",
            "commit_delay",
        ] {
            let v: String = sqlx::query(&format!("SHOW {name}"))
                .fetch_one(&mut conn)
                .await?
                .try_get(0)?;
            settings.insert(name.to_string(), json!(v));
        }
        anyhow::ensure!(
            settings["fsync"] == "on" && settings["synchronous_commit"] == "on",
            "PostgreSQL runs with fsync={} synchronous_commit={}",
            settings["fsync"],
            settings["synchronous_commit"]
        );
        let settings = Value::Object(settings);
        let mut out = Vec::new();
        for (i, (key, label)) in LABELS.iter().enumerate() {
            sqlx::query("DROP TABLE IF EXISTS device_events")
                .execute(&mut conn)
                .await?;
            sqlx::query(PG_TABLE).execute(&mut conn).await?;
            let (batch, r) = match i {
                0 => (
                    1_000,
                    insert_rate(&mut PgUnnest(&mut conn), 1_000, secs).await?,
                ),
                1 => (
                    1_000,
                    insert_rate(&mut PgCopy(&mut conn), 1_000, secs).await?,
                ),
                _ => (100, insert_rate(&mut PgUnnest(&mut conn), 100, secs).await?),
            };
            out.push(rows_measured(key, label.to_string(), batch, r, &settings));
        }
        conn.close().await?;
        Ok(out)
    }
    .await;
    pg.drop().await;
    result
}

// ---------------------------------------------------------------------------------------------
// 5: the disk's fdatasync rate.

/// The newest `/usr/lib/postgresql/<version>/bin/pg_test_fsync`.
fn find_pg_test_fsync() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let path = e.path().join("bin/pg_test_fsync");
            path.is_file().then_some((version, path))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| {
        format!(
            "pg_test_fsync not found at {PG_TEST_FSYNC}: it ships with the postgresql package \
             (scripts/test.sh installs it)"
        )
    })
}

/// `(method, ops/s)` of pg_test_fsync's "Compare file sync methods using one 8kB write" section.
fn parse_one_8kb_write(output: &str) -> Vec<(String, f64)> {
    let Some(section) = output
        .split("Compare file sync methods using one 8kB write")
        .nth(1)
    else {
        return Vec::new();
    };
    section
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [method, ops, "ops/sec", ..] => Some((method.to_string(), ops.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

async fn pg_test_fsync_phase(program: &Path, dir: &Path) -> anyhow::Result<Measured> {
    let output = tokio::process::Command::new(program)
        .args(["-s", "2", "-f"])
        .arg(dir.join("pg_test_fsync.out"))
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}{}",
        program.display(),
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let methods = parse_one_8kb_write(&text);
    let fdatasync = methods
        .iter()
        .find(|(m, _)| m == "fdatasync")
        .map(|(_, ops)| *ops)
        .with_context(|| format!("no fdatasync ops/sec line for one 8kB write in:\n{text}"))?;
    Ok(Measured {
        key: "pg_test_fsync",
        label: "5a pg_test_fsync: fdatasync, one 8 kB write".into(),
        rate: Some(fdatasync),
        unit: "ops/s",
        latency: None,
        note: format!("{:.0} µs/op", 1e6 / fdatasync),
        json: json!({
            "program": program.display().to_string(),
            "fdatasync_ops_per_s": fdatasync,
            "one_8kb_write_ops_per_s": methods.into_iter().map(|(m, ops)| (m, json!(ops))).collect::<serde_json::Map<_, _>>(),
        }),
    })
}

/// 8 KiB write + `sync_data` for `secs` seconds: rewriting one block, or appending.
async fn fdatasync_phase(path: &Path, secs: u64, append: bool) -> anyhow::Result<Measured> {
    let path = path.to_path_buf();
    let (ops, elapsed, latency) =
        tokio::task::spawn_blocking(move || -> std::io::Result<(u64, f64, Histogram<u64>)> {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)?;
            let block = [0xA5u8; 8192];
            if !append {
                file.write_all(&block)?;
                file.sync_all()?;
            }
            let mut latency = new_histogram();
            let mut ops = 0u64;
            let t0 = Instant::now();
            let end = t0 + Duration::from_secs(secs);
            while Instant::now() < end {
                let started = Instant::now();
                if append {
                    file.write_all(&block)?;
                } else {
                    file.write_all_at(&block, 0)?;
                }
                file.sync_data()?;
                let _ = latency.record((started.elapsed().as_micros() as u64).max(1));
                ops += 1;
            }
            Ok((ops, t0.elapsed().as_secs_f64(), latency))
        })
        .await??;
    let rate = ops as f64 / elapsed;
    let (key, label, note) = if append {
        (
            "fdatasync_append",
            "5c 8 KiB append + fdatasync",
            "the file grows: size metadata each time",
        )
    } else {
        (
            "fdatasync_overwrite",
            "5b 8 KiB rewrite of one block + fdatasync",
            "as pg_test_fsync does",
        )
    };
    Ok(Measured {
        key,
        label: label.into(),
        rate: Some(rate),
        unit: "ops/s",
        note: note.into(),
        json: json!({ "ops_per_s": rate, "ops": ops, "latency": latency_json(&latency) }),
        latency: Some(latency),
    })
}

// ---------------------------------------------------------------------------------------------
// 6: the broker.

/// A client id and topic prefix no other client uses.
fn unique(stem: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{stem}-{}-{nanos}", std::process::id())
}

/// Polls `eventloop` until `until` says it saw the packet it waits for; an error if the
/// connection fails first.
async fn poll_until(
    eventloop: &mut rumqttc::EventLoop,
    until: impl Fn(&Packet) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(p) = eventloop.poll().await? {
                if until(&p) {
                    return Ok(());
                }
            }
        }
    })
    .await
    .context("timed out")?
}

async fn broker_phase(broker: &str, secs: u64) -> anyhow::Result<Measured> {
    const KEY: &str = "broker";
    const LABEL: &str = "6  Mosquitto QoS 1 publish→receive, 1 at a time";
    let Some((host, port)) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
    else {
        anyhow::bail!("ONEKEY_BENCH_BROKER={broker} is not host:port");
    };
    let prefix = unique("onekey-limits");
    let topic = format!("{prefix}/echo");
    let connect = |id: String| {
        let mut o = MqttOptions::new(id, host.clone(), port);
        o.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        eventloop.set_network_options(onekey::mqtt::network_options());
        (client, eventloop)
    };

    let (subscriber, mut sub_loop) = connect(format!("{prefix}-sub"));
    subscriber.subscribe(&topic, QoS::AtLeastOnce).await?;
    if let Err(e) = poll_until(&mut sub_loop, |p| matches!(p, Packet::SubAck(_))).await {
        eprintln!("broker at {broker} not reachable ({e:#}); skipping it");
        return Ok(Measured::skipped(
            KEY,
            LABEL,
            "msg/s",
            "broker not reachable",
        ));
    }
    let (publisher, mut pub_loop) = connect(format!("{prefix}-pub"));
    poll_until(&mut pub_loop, |p| matches!(p, Packet::ConnAck(_)))
        .await
        .context("publisher connection")?;

    let (received_tx, mut received) = mpsc::unbounded_channel::<(u64, Instant)>();
    let sub_task = tokio::spawn(async move {
        while let Ok(event) = sub_loop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                if let Ok(n) = <[u8; 8]>::try_from(&p.payload[..]) {
                    let _ = received_tx.send((u64::from_be_bytes(n), Instant::now()));
                }
            }
        }
    });
    let pub_task = tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });

    let mut latency = new_histogram();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(secs);
    let mut n = 0u64;
    let result: anyhow::Result<()> = async {
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            if now < warm_until {
                latency.reset();
            }
            n += 1;
            let sent = Instant::now();
            publisher
                .publish(&topic, QoS::AtLeastOnce, false, n.to_be_bytes().to_vec())
                .await?;
            loop {
                let (got, at) = tokio::time::timeout(WAIT, received.recv())
                    .await
                    .context("message not received")?
                    .context("subscriber stopped")?;
                if got == n {
                    let _ = latency.record(((at - sent).as_micros() as u64).max(1));
                    break;
                }
            }
        }
    }
    .await;
    let _ = publisher.disconnect().await;
    let _ = subscriber.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pub_task.abort();
    sub_task.abort();
    result?;
    let rate = latency.len() as f64 / secs as f64;
    Ok(Measured {
        key: KEY,
        label: LABEL.into(),
        rate: Some(rate),
        unit: "msg/s",
        note: format!("{broker}, TCP_NODELAY"),
        json: json!({
            "broker": broker,
            "msgs_per_s": rate,
            "latency": latency_json(&latency),
        }),
        latency: Some(latency),
    })
}

// ---------------------------------------------------------------------------------------------
// The machine, the table and the plot.

fn machine(secs: u64, tmp: &Path) -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = onekey_sim::devices::wire::civil(unix);
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_total_kib": mem_kib,
        "memory_total_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "cpu_model": cpu,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "timestamp": format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        "unix_time": unix,
        "secs_per_phase": secs,
        "temp_dir": tmp.parent().unwrap_or(tmp).display().to_string(),
    })
}

fn print_table(out: &[Measured], machine: &Value, secs: u64) {
    println!();
    println!(
        "limits: {} cores, {:.1} GiB, {}, kernel {}, {secs} s per measurement",
        machine["cores"],
        machine["memory_total_gib"].as_f64().unwrap_or(0.0),
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
    );
    println!(
        "{:<50} {:>10} {:<9} {:>9} {:>9} {:>9}  note",
        "measurement", "rate", "unit", "p50 ms", "p99 ms", "p99.9 ms"
    );
    for m in out {
        let q = |q: f64| {
            m.latency
                .as_ref()
                .map(|h| format!("{:.2}", ms(h.value_at_quantile(q))))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<50} {:>10} {:<9} {:>9} {:>9} {:>9}  {}",
            m.label,
            m.rate.map(|r| format!("{r:.0}")).unwrap_or("-".into()),
            m.unit,
            q(0.5),
            q(0.99),
            q(0.999),
            m.note
        );
    }
}

/// Latency percentiles (log scale) of the two TCP servers, the fdatasync loop and the broker.
fn plot(
    path: &Path,
    font: Vec<u8>,
    out: &[Measured],
    machine: &Value,
    secs: u64,
) -> anyhow::Result<()> {
    use plotters::prelude::{
        BLACK, BitMapBackend, ChartBuilder, Circle, Color, IntoDrawingArea, IntoLogRange,
        LineSeries, PathElement, RGBColor, SeriesLabelPosition, WHITE,
    };
    use plotters::style::{FontStyle, register_font};

    const COLOURS: [RGBColor; 4] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    let (w, h) = (960u32, 600u32);
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    let series: Vec<(String, Vec<(usize, f64)>)> = [
        "bare_tcp",
        "tcp_group_commit",
        "fdatasync_overwrite",
        "broker",
    ]
    .iter()
    .filter_map(|key| out.iter().find(|m| m.key == *key))
    .filter_map(|m| {
        let h = m.latency.as_ref()?;
        let points = PLOT_QS
            .iter()
            .enumerate()
            .map(|(i, (q, _))| (i, ms(h.value_at_quantile(*q)).max(0.001)))
            .collect();
        let name = m.label.get(3..).unwrap_or(&m.label).trim().to_string();
        Some((
            format!("{name} ({:.0} {})", m.rate.unwrap_or(0.0), m.unit),
            points,
        ))
    })
    .collect();
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let lo = values.clone().fold(f64::MAX, f64::min).min(1.0) / 2.0;
    let hi = values.fold(0.0f64, f64::max).max(1.0) * 2.0;

    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Latency, {} cores, {secs} s each (closed loops: {CONNECTIONS} TCP conns, 1 MQTT)",
                    machine["cores"]
                ),
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0usize..PLOT_QS.len() - 1, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(PLOT_QS.len())
            .x_label_formatter(&|i| PLOT_QS.get(*i).map(|q| q.1).unwrap_or("").to_string())
            .y_label_formatter(&|v| {
                // As many decimals as the order of magnitude needs: 100, 10, 1, 0.1, 0.01.
                let decimals = (-v.log10().floor()).max(0.0) as usize;
                format!("{v:.decimals$}")
            })
            .x_desc("percentile")
            .y_desc("ms (log scale)")
            .label_style(("sans-serif", 15))
            .draw()?;
        for (n, (name, points)) in series.iter().enumerate() {
            let colour = COLOURS[n % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut png = png::Encoder::new(file, w, h);
    png.set_color(png::ColorType::Rgb);
    png.set_depth(png::BitDepth::Eight);
    let mut writer = png.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(())
}
