//! A real power cut: the store's files live on LazyFs (`lazyfs/`), a filesystem that loses every
//! write not yet synced. Devices send alarms, the power is cut in the middle, the server and the
//! database die, the disk is mounted again and the server restarted: every alarm that was ACKed is
//! there. The same run with the store's syncing switched off (SQLite `synchronous=OFF`, PostgreSQL
//! `fsync=off`) loses ACKed alarms, which proves the test can see a missing fsync.
//!
//! Each run first registers the devices on a safe store and shuts it down cleanly, so the
//! directory survives any later cut, then runs the load under the setting being tested.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pg::PrivatePostgres;
use common::{Db, TestServer};
use onekey_lazyfs::{Counts, LazyFs, Mounted};
use onekey_protocol::{AckStatus, AlarmKind, Message};
use onekey_sim::native::{NativeDevice, demo_key};

const DEVICES: u64 = 200;
/// Alarms are spread over this long; the power is cut half-way.
const SPREAD: Duration = Duration::from_millis(2000);
const ACK_WAIT: Duration = Duration::from_secs(5);
const UNSAFE: (&str, &str) = ("ONEKEY_ALLOW_UNSAFE_DURABILITY", "true");

/// A backing directory and the lazy mount over it (unmounted before the directory is removed:
/// fields drop in order).
struct Disk {
    fs: Option<Mounted>,
    root: tempfile::TempDir,
}

impl Disk {
    fn new(tag: &str) -> Disk {
        let root = tempfile::Builder::new()
            .prefix(&format!("onekey-power-{tag}-"))
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(root.path().join("backing")).expect("backing dir");
        std::fs::create_dir_all(root.path().join("mnt")).expect("mountpoint");
        Disk { fs: None, root }
    }

    fn backing(&self) -> PathBuf {
        self.root.path().join("backing")
    }

    fn mnt(&self) -> PathBuf {
        self.root.path().join("mnt")
    }

    /// Mounts (again); what it shows is what was synced before any earlier cut.
    fn mount(&mut self) {
        self.fs = Some(
            LazyFs::mount(&self.backing(), &self.mnt())
                .expect("mount LazyFs (needs /dev/fuse and CAP_SYS_ADMIN)"),
        );
    }

    fn cut_power(&self) -> Counts {
        self.fs.as_ref().expect("mounted").cut_power()
    }

    fn unmount(&mut self) {
        self.fs = None;
    }
}

/// What one load-and-cut did.
#[derive(Debug)]
struct Cut {
    sent: usize,
    /// Elders whose device got a `Stored` ACK.
    acked: HashSet<i64>,
    disk: Counts,
}

/// Registers `DEVICES` native devices, one elder each; returns device id → elder id.
async fn register(server: &TestServer) -> HashMap<u64, i64> {
    let mut elders = HashMap::new();
    for i in 0..DEVICES {
        let id = 70_000 + i;
        let (elder, _) = server.register_native_device(id, &demo_key(id)).await;
        elders.insert(id, elder);
    }
    elders
}

/// Connects every device, then sends one SOS each, spread over [`SPREAD`], and cuts the power
/// half-way (then runs `after_cut`, which kills what dies with the power).
async fn load_and_cut(
    server: &TestServer,
    elders: &HashMap<u64, i64>,
    disk: &Disk,
    after_cut: impl FnOnce(),
) -> Cut {
    let mut devices = Vec::new();
    for (&id, &elder) in elders {
        let mut device = NativeDevice::connect(&server.addr("device_tcp"), id, demo_key(id))
            .await
            .expect("connect");
        device.hello(ACK_WAIT).await.expect("hello");
        devices.push((device, elder));
    }
    let n = devices.len() as u32;
    let mut tasks = Vec::new();
    for (i, (mut device, elder)) in devices.into_iter().enumerate() {
        let delay = SPREAD * i as u32 / n;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match device.alarm(AlarmKind::Sos, None, ACK_WAIT).await {
                Ok((_, frame)) => match frame.message {
                    Message::Ack(ack) if ack.status == AckStatus::Stored => Some(elder),
                    other => panic!("a first alarm is stored or not ACKed, got {other:?}"),
                },
                Err(_) => None,
            }
        }));
    }
    tokio::time::sleep(SPREAD / 2).await;
    let disk = disk.cut_power();
    after_cut();
    let mut acked = HashSet::new();
    for t in tasks {
        if let Some(elder) = t.await.expect("device task") {
            acked.insert(elder);
        }
    }
    Cut {
        sent: elders.len(),
        acked,
        disk,
    }
}

/// Elders with an incident, and how many incidents each.
async fn stored(server: &TestServer) -> HashMap<i64, usize> {
    let mut by_elder = HashMap::new();
    for incident in server.incidents().await {
        if let Some(elder) = incident["elder_id"].as_i64() {
            *by_elder.entry(elder).or_insert(0) += 1;
        }
    }
    by_elder
}

/// `(kept, lost)` of the ACKed alarms; panics on a duplicate.
fn tally(cut: &Cut, stored: &HashMap<i64, usize>, label: &str) -> (usize, usize) {
    for (elder, n) in stored {
        assert_eq!(
            *n, 1,
            "{label}: elder {elder} has {n} incidents for one alarm"
        );
    }
    let kept = cut.acked.iter().filter(|e| stored.contains_key(e)).count();
    let lost = cut.acked.len() - kept;
    eprintln!(
        "{label}: sent {}, ACKed {}, stored after the cut {}, ACKed and lost {lost}; \
         pages synced {}, pages lost {}",
        cut.sent,
        cut.acked.len(),
        stored.len(),
        cut.disk.synced_pages,
        cut.disk.lost_pages
    );
    assert!(
        !cut.acked.is_empty() && cut.acked.len() < cut.sent,
        "{label}: the cut must fall in the middle of the load: {cut:?}"
    );
    assert!(
        cut.disk.lost_pages > 0,
        "{label}: the cut lost nothing: {cut:?}"
    );
    (kept, lost)
}

/// SQLite on the lazy disk: register safely, load with `query` appended to the URL, cut, restart.
async fn sqlite_power_cut(
    tag: &str,
    query: &str,
    env: &[(&str, &str)],
) -> (Cut, HashMap<i64, usize>) {
    let mut disk = Disk::new(tag);
    disk.mount();
    let url = format!("sqlite://{}", disk.mnt().join("onekey.db").display());
    let server = TestServer::start(&Db::Url(url.clone()), &[]).await;
    let elders = register(&server).await;
    assert_eq!(server.stop().await, 0);

    let server = TestServer::start(&Db::Url(format!("{url}{query}")), env).await;
    let cut = load_and_cut(&server, &elders, &disk, || {}).await;
    server.kill().await;
    disk.unmount();

    disk.mount();
    let server = TestServer::start(&Db::Url(url), &[]).await;
    let found = stored(&server).await;
    assert_eq!(server.stop().await, 0);
    (cut, found)
}

#[tokio::test]
async fn sqlite_keeps_every_acked_alarm_through_a_power_cut() {
    let (cut, found) = sqlite_power_cut("sqlite-full", "", &[]).await;
    let (kept, lost) = tally(&cut, &found, "SQLite synchronous=FULL");
    assert_eq!(lost, 0, "every ACKed alarm survives the power cut");
    assert_eq!(kept, cut.acked.len());
}

#[tokio::test]
async fn sqlite_without_fsync_loses_acked_alarms_in_a_power_cut() {
    let (cut, found) = sqlite_power_cut("sqlite-off", "?synchronous=off", &[UNSAFE]).await;
    let (_, lost) = tally(&cut, &found, "SQLite synchronous=OFF");
    assert!(lost > 0, "without fsync a power cut loses ACKed alarms");
}

/// The pid of the PostgreSQL server running on `data`.
fn postmaster(data: &Path) -> u32 {
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
    pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("postmaster pid")
}

/// Kills a PostgreSQL server and its backends at once, as a power cut does.
fn kill_postgres(postmaster: u32) {
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            if let Ok(pid) = entry.file_name().to_string_lossy().parse() {
                pids.push(pid);
            }
        }
    }
    for pid in pids {
        // A backend may already have gone with its postmaster.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// A private PostgreSQL whose data directory is on the lazy disk: register safely, load with
/// `settings`, cut, restart with `fsync=on`.
async fn postgres_power_cut(
    tag: &str,
    settings: &str,
    env: &[(&str, &str)],
) -> (Cut, HashMap<i64, usize>) {
    let mut disk = Disk::new(tag);
    let backing_data = disk.backing().join("data");
    let mut pg = tokio::task::spawn_blocking(move || PrivatePostgres::init_at(backing_data))
        .await
        .expect("initdb");
    disk.mount();
    let data = disk.mnt().join("data");
    pg.run_from(data.clone());
    pg.resume();
    let db = Db::Url(pg.url());
    let server = TestServer::start(&db, &[]).await;
    let elders = register(&server).await;
    assert_eq!(server.stop().await, 0);
    pg.shut_down();

    pg.set(settings);
    pg.resume();
    let pid = postmaster(&data);
    let server = TestServer::start(&db, env).await;
    let cut = load_and_cut(&server, &elders, &disk, || kill_postgres(pid)).await;
    server.kill().await;
    disk.unmount();

    disk.mount();
    // No server survives a power cut, so its pid file is stale (and, unsynced, may be empty,
    // which `pg_ctl` refuses): remove it as the machine's start-up would.
    let _ = std::fs::remove_file(data.join("postmaster.pid"));
    pg.set("-c fsync=on");
    pg.resume();
    let server = TestServer::start(&db, &[]).await;
    let found = stored(&server).await;
    assert_eq!(server.stop().await, 0);
    pg.shut_down();
    drop(pg);
    (cut, found)
}

#[tokio::test]
async fn postgres_keeps_every_acked_alarm_through_a_power_cut() {
    let (cut, found) = postgres_power_cut("pg-fsync", "-c fsync=on", &[]).await;
    let (kept, lost) = tally(&cut, &found, "PostgreSQL fsync=on");
    assert_eq!(lost, 0, "every ACKed alarm survives the power cut");
    assert_eq!(kept, cut.acked.len());
}

#[tokio::test]
async fn postgres_without_fsync_loses_acked_alarms_in_a_power_cut() {
    let (cut, found) = postgres_power_cut("pg-nofsync", "-c fsync=off", &[UNSAFE]).await;
    let (_, lost) = tally(&cut, &found, "PostgreSQL fsync=off");
    assert!(lost > 0, "without fsync a power cut loses ACKed alarms");
}
