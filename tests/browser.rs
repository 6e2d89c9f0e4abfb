//! The console and the responder app in a real browser (Chromium driven by Playwright): the specs in
//! `tests/browser/*.mjs` run against the real binary, one server each, one spec at a time.
//!
//! A spec asks for device alarms by printing `RAISE <kind> <device>` (`RAISE sos 1`); this side
//! raises that alarm from simulated native device `<device>` over TCP (device 1 belongs to the
//! elder the specs follow, 2–8 to other elders of the same grid) and answers `RAISED <kind>
//! <device>` on the spec's standard input once the device has the server's ACK. The map spec runs
//! against a tile server this test starts on a local port; every tile it serves is counted.
//! Screenshots land in `target/screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/browser/node_modules` (`tests/browser/setup.sh`,
//! which `scripts/test.sh` runs); a missing one fails the test with what to install.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AlarmKind, Location};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);
const RUN_LIMIT: Duration = Duration::from_secs(240);
const OPERATOR: &str = "夜班调度员";
const OPERATOR_PASSWORD: &str = "night-shift-12349";
const OPERATOR2: &str = "白班调度员";
const OPERATOR2_PASSWORD: &str = "day-shift-12349";
const VOLUNTEER: &str = "志愿者小李";
const VOLUNTEER_PHONE: &str = "13907960003";
const VOLUNTEER_PASSWORD: &str = "volunteer-pass";
const FAR_VOLUNTEER: &str = "志愿者老张";
const OFF_DUTY: &str = "志愿者小王";
const ELDER: &str = "王秀英";
const ELDER_PHONE: &str = "13907960001";
const KEY_HOLDER: &str = "李梅";
const KEY_HOLDER_PHONE: &str = "13907960002";
const ADDRESS: &str = "吉州区 文山街道 思源社区 3 栋 2 单元 101";
const KEY_SAFE: &str = "4827";
const HEALTH: &str = "高血压，2019 年中风，行动不便";
const ELDER_AT: (f64, f64) = (27.1100, 114.9800);
const VOLUNTEER_AT: (f64, f64) = (27.1108, 114.9812);
const DEVICE_BASE: u64 = 860_000_000_000_600;
/// Elders registered at home in the second grid, without devices: the city map clusters them.
const HOMES: usize = 40;

/// One browser spec at a time: two Chromiums and a server each would starve a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with what is missing; the browser tests never skip themselves.
fn require_tools() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(node, "node is not installed (run tests/browser/setup.sh)");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is not installed (run tests/browser/setup.sh)"
    );
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "tests/browser/node_modules is missing (run tests/browser/setup.sh)"
    );
}

/// What `seed` made, for the specs' environment.
struct Seeded {
    volunteer: i64,
    far_volunteer: i64,
    off_duty: i64,
    elder: i64,
}

async fn created(server: &TestServer, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, v) = server.post(path, body).await;
    assert_eq!(status, 201, "{path}: {v}");
    v
}

/// Two operators; a district down to two grids with outlines; the followed elder with a device,
/// a key holder and a volunteer next door; seven more elders with devices; a farther volunteer
/// and an off-duty one; and forty elders at home without devices in the second grid.
async fn seed(server: &TestServer) -> Seeded {
    for (name, password) in [
        (OPERATOR, OPERATOR_PASSWORD),
        (OPERATOR2, OPERATOR2_PASSWORD),
    ] {
        created(
            server,
            "/api/v1/operators",
            json!({ "name": name, "password": password, "role": "operator" }),
        )
        .await;
    }
    let (lat, lon) = ELDER_AT;
    let mut parent = None;
    for (level, code, name) in [
        ("district", "JZ", "吉州区"),
        ("street", "JZ-WS", "文山街道"),
        ("community", "JZ-WS-SY", "思源社区"),
    ] {
        let area = created(
            server,
            "/api/v1/areas",
            json!({ "level": level, "code": code, "name": name, "parent_id": parent }),
        )
        .await;
        parent = area["id"].as_i64();
    }
    let grid = created(
        server,
        "/api/v1/areas",
        json!({ "level": "grid", "code": "JZ-WS-SY-01", "name": "思源社区第一网格", "parent_id": parent,
                "boundary": [[lat - 0.004, lon - 0.005], [lat - 0.004, lon + 0.005],
                             [lat + 0.004, lon + 0.006], [lat + 0.005, lon - 0.004]] }),
    )
    .await;
    let grid_id = grid["id"].as_i64().expect("grid id");
    let grid2 = created(
        server,
        "/api/v1/areas",
        json!({ "level": "grid", "code": "JZ-WS-SY-02", "name": "思源社区第二网格", "parent_id": parent,
                "boundary": [[lat - 0.004, lon + 0.005], [lat - 0.004, lon + 0.015],
                             [lat + 0.004, lon + 0.015], [lat + 0.004, lon + 0.006]] }),
    )
    .await;
    let grid2_id = grid2["id"].as_i64().expect("grid id");
    let elder = created(
        server,
        "/api/v1/elders",
        json!({ "name": ELDER, "phone": ELDER_PHONE, "address": ADDRESS, "lat": lat, "lon": lon,
                "grid_id": grid_id, "living": "alone", "health_notes": HEALTH,
                "medications": "硝苯地平 每日两次", "key_safe_code": KEY_SAFE,
                "contacts": [{ "name": KEY_HOLDER, "relation": "女儿", "phone": KEY_HOLDER_PHONE, "key_holder": true }] }),
    )
    .await;
    let elder_id = elder["id"].as_i64().expect("elder id");
    register(server, 1, elder_id).await;
    let others = [
        "刘桂兰",
        "陈建国",
        "张淑珍",
        "赵德明",
        "周玉梅",
        "吴长福",
        "郑秀兰",
    ];
    for (i, name) in others.iter().enumerate() {
        let n = i as f64 + 1.0;
        let e = created(
            server,
            "/api/v1/elders",
            json!({ "name": name, "phone": format!("1390796{:04}", 100 + i), "address": format!("吉州区 文山街道 思源社区 {} 栋", 10 + i),
                    "lat": lat + 0.0004 * n, "lon": lon - 0.0003 * n, "grid_id": grid_id, "living": "empty_nest" }),
        )
        .await;
        register(server, i as u64 + 2, e["id"].as_i64().expect("id")).await;
    }
    for i in 0..HOMES {
        let (dl, dn) = ((i % 8) as f64 * 0.0007, (i / 8) as f64 * 0.0012);
        created(
            server,
            "/api/v1/elders",
            json!({ "name": format!("居家老人{:02}", i + 1), "address": format!("吉州区 文山街道 思源社区 二区 {} 号", i + 1),
                    "lat": lat - 0.003 + dl, "lon": lon + 0.007 + dn, "grid_id": grid2_id, "living": "alone" }),
        )
        .await;
    }
    let volunteer = created(
        server,
        "/api/v1/responders",
        json!({ "name": VOLUNTEER, "phone": VOLUNTEER_PHONE, "kind": "volunteer", "grid_id": grid_id,
                "skills": ["first_aid"], "home_lat": VOLUNTEER_AT.0, "home_lon": VOLUNTEER_AT.1,
                "password": VOLUNTEER_PASSWORD }),
    )
    .await;
    let far = created(
        server,
        "/api/v1/responders",
        json!({ "name": FAR_VOLUNTEER, "phone": "13907960004", "kind": "volunteer", "grid_id": grid_id,
                "skills": ["nursing"], "home_lat": lat + 0.009, "home_lon": lon + 0.004, "password": "volunteer-pass-2" }),
    )
    .await;
    let off = created(
        server,
        "/api/v1/responders",
        json!({ "name": OFF_DUTY, "phone": "13907960005", "kind": "volunteer", "grid_id": grid_id,
                "home_lat": lat + 0.0002, "home_lon": lon + 0.0002 }),
    )
    .await;
    Seeded {
        volunteer: volunteer["id"].as_i64().expect("id"),
        far_volunteer: far["id"].as_i64().expect("id"),
        off_duty: off["id"].as_i64().expect("id"),
        elder: elder_id,
    }
}

async fn register(server: &TestServer, n: u64, elder_id: i64) {
    server
        .register_device(
            "native",
            &(DEVICE_BASE + n).to_string(),
            Some(&hex::encode(demo_key(n + 5))),
            Some(elder_id),
        )
        .await;
}

async fn raise(server: &TestServer, kind: &str, n: u64) {
    let kind = AlarmKind::from_name(kind).unwrap_or_else(|| panic!("no alarm kind {kind}"));
    let mut device =
        NativeDevice::connect(&server.addr("device_tcp"), DEVICE_BASE + n, demo_key(n + 5))
            .await
            .expect("device connects");
    device.hello(WAIT).await.expect("hello");
    // Device 1 reports a fix at the elder's home; the others have none (fixed units), so the map
    // must use their registered address.
    let at = (n == 1).then_some(Location {
        lat_e6: (ELDER_AT.0 * 1e6) as i32,
        lon_e6: (ELDER_AT.1 * 1e6) as i32,
        accuracy_m: 10,
    });
    device.alarm(kind, at, WAIT).await.expect("alarm stored");
}

/// Two devices (2 and 3, then 4 and 5: a new device starts its sequence numbers afresh) heartbeat
/// every 50 ms until the returned token is cancelled.
async fn steady_heartbeats(server: &TestServer, round: u64) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    for n in [2 + 2 * round, 3 + 2 * round] {
        let mut device =
            NativeDevice::connect(&server.addr("device_tcp"), DEVICE_BASE + n, demo_key(n + 5))
                .await
                .expect("device connects");
        device.hello(WAIT).await.expect("hello");
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if device.heartbeat(80, WAIT).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    stop
}

/// A local tile server: `/{z}/{x}/{y}.svg` answers a labelled SVG tile; `served` records `z/x/y`.
async fn tile_server() -> (String, Arc<Mutex<BTreeSet<String>>>) {
    use axum::extract::Path as UrlPath;
    let served: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let log = served.clone();
    let app = axum::Router::new().route(
        "/{z}/{x}/{y}",
        axum::routing::get(move |UrlPath((z, x, y)): UrlPath<(u32, u32, String)>| {
            let log = log.clone();
            async move {
                let y = y.trim_end_matches(".svg").to_string();
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(format!("{z}/{x}/{y}"));
                let svg = format!(
                    "<svg xmlns='http://www.w3.org/2000/svg' width='256' height='256'>\
                     <rect width='256' height='256' fill='#e9efe6' stroke='#c9d3c4'/>\
                     <path d='M0 128H256M128 0V256' stroke='#fff' stroke-width='6'/>\
                     <text x='8' y='20' font-size='12' fill='#7a8a76'>{z}/{x}/{y}</text></svg>"
                );
                ([("content-type", "image/svg+xml")], svg)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("tile server bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/{{z}}/{{x}}/{{y}}.svg"), served)
}

fn spec(server: &TestServer, name: &str, seeded: &Seeded) -> Command {
    let shots = root().join("target/screenshots");
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/browser").join(name))
        .current_dir(root())
        .env("ONEKEY_URL", server.base())
        .env("ONEKEY_SCREENSHOTS", shots)
        .env("ONEKEY_OPERATOR", OPERATOR)
        .env("ONEKEY_OPERATOR_PASSWORD", OPERATOR_PASSWORD)
        .env("ONEKEY_OPERATOR2", OPERATOR2)
        .env("ONEKEY_OPERATOR2_PASSWORD", OPERATOR2_PASSWORD)
        .env("ONEKEY_ADMIN", common::ADMIN)
        .env("ONEKEY_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("ONEKEY_RESPONDER", VOLUNTEER)
        .env("ONEKEY_RESPONDER_PHONE", VOLUNTEER_PHONE)
        .env("ONEKEY_RESPONDER_PASSWORD", VOLUNTEER_PASSWORD)
        .env("ONEKEY_RESPONDER_ID", seeded.volunteer.to_string())
        .env("ONEKEY_FAR_RESPONDER_ID", seeded.far_volunteer.to_string())
        .env("ONEKEY_OFF_DUTY_ID", seeded.off_duty.to_string())
        .env("ONEKEY_RESPONDER_LAT", VOLUNTEER_AT.0.to_string())
        .env("ONEKEY_RESPONDER_LON", VOLUNTEER_AT.1.to_string())
        .env("ONEKEY_ELDER_ID", seeded.elder.to_string())
        .env("ONEKEY_ELDER_NAME", ELDER)
        .env("ONEKEY_ELDER_PHONE", ELDER_PHONE)
        .env("ONEKEY_KEY_HOLDER_PHONE", KEY_HOLDER_PHONE)
        .env("ONEKEY_ELDER_ADDRESS", ADDRESS)
        .env("ONEKEY_KEY_SAFE", KEY_SAFE)
        .env("ONEKEY_HEALTH_NOTES", HEALTH)
        .env("ONEKEY_HOMES", HOMES.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a spec to its end, raising the alarms it asks for; panics with its output unless it passes.
async fn run(server: &TestServer, name: &str, seeded: &Seeded) {
    let started = std::time::Instant::now();
    let mut child = spec(server, name, seeded).spawn().expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut out = String::new();
    let mut heartbeats: Option<tokio_util::sync::CancellationToken> = None;
    let mut rounds = 0;
    let outcome = tokio::time::timeout(RUN_LIMIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
            out.push_str(&line);
            out.push('\n');
            if let Some(rest) = line.strip_prefix("RAISE ") {
                let mut parts = rest.split_whitespace();
                let kind = parts.next().unwrap_or("sos").to_string();
                let n: u64 = parts.next().and_then(|d| d.parse().ok()).unwrap_or(1);
                raise(server, &kind, n).await;
                let _ = stdin
                    .write_all(format!("RAISED {kind} {n}\n").as_bytes())
                    .await;
                let _ = stdin.flush().await;
            } else if let Some(cmd) = line.strip_prefix("TRAFFIC ") {
                if let Some(stop) = heartbeats.take() {
                    stop.cancel();
                }
                if cmd.trim() == "start" {
                    heartbeats = Some(steady_heartbeats(server, rounds).await);
                    rounds += 1;
                }
                let _ = stdin
                    .write_all(format!("TRAFFIC {}\n", cmd.trim()).as_bytes())
                    .await;
                let _ = stdin.flush().await;
            }
        }
        child.wait().await
    })
    .await;
    if outcome.is_err() {
        // Its stderr ends only when it does.
        let _ = child.kill().await;
    }
    let errors = err_task.await.unwrap_or_default();
    match outcome {
        Ok(Ok(status)) if status.success() => {
            eprintln!("{name} passed in {:.1} s", started.elapsed().as_secs_f64());
        }
        Ok(status) => panic!(
            "{name} failed ({status:?})\n--- stdout\n{out}--- stderr\n{errors}\n--- server log\n{}",
            server.log()
        ),
        Err(_) => panic!(
            "{name} did not finish within {RUN_LIMIT:?}\n--- stdout\n{out}--- stderr\n{errors}"
        ),
    }
}

async fn browse(name: &str, env: &[(&str, &str)]) {
    require_tools();
    let _one_at_a_time = SERIAL.lock().await;
    let db = Db::sqlite();
    // Offers wait two minutes, so that a spec can work the procedure before the volunteer answers.
    let mut all = vec![
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
        ("ONEKEY_DISPATCH__POLICY__EMERGENCY__OFFER_TIMEOUT_S", "120"),
    ];
    all.extend_from_slice(env);
    let server = TestServer::start(&db, &all).await;
    let seeded = seed(&server).await;
    run(&server, name, &seeded).await;
}

#[tokio::test]
async fn an_sos_from_device_to_report_with_procedure_calls_and_timeline() {
    browse("console.mjs", &[]).await;
}

#[tokio::test]
async fn two_operators_see_who_has_an_incident_and_hand_it_over_live() {
    browse("handover.mjs", &[]).await;
}

#[tokio::test]
async fn the_queue_counts_filters_and_searches_many_alarm_kinds_at_1024_px() {
    browse("queue.mjs", &[]).await;
}

#[tokio::test]
async fn the_map_draws_tiles_from_the_configured_server_and_clusters_elders() {
    require_tools();
    let (url, served) = tile_server().await;
    browse(
        "map.mjs",
        &[("ONEKEY_CONSOLE__MAP__TILE_URL", url.as_str())],
    )
    .await;
    let served = served.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let zooms: BTreeSet<&str> = served.iter().filter_map(|t| t.split('/').next()).collect();
    assert!(
        served.len() >= 4,
        "the map loaded tiles from the tile server: {served:?}"
    );
    assert!(
        zooms.len() >= 2,
        "zooming in loaded tiles of another zoom level: {served:?}"
    );
}

#[tokio::test]
async fn a_protocol_whose_traffic_stops_calls_the_operator_with_a_system_banner() {
    browse(
        "system.mjs",
        &[
            ("ONEKEY_SUPERVISION__TRAFFIC_WINDOW_MS", "1000"),
            ("ONEKEY_SUPERVISION__TRAFFIC_MIN_FRAMES", "10"),
            ("ONEKEY_SUPERVISION__TRAFFIC_WARMUP", "2"),
        ],
    )
    .await;
}

#[tokio::test]
async fn reports_count_every_incident_per_operator_and_grid_and_export_csv() {
    browse("reports.mjs", &[]).await;
}

#[tokio::test]
async fn administration_edits_disables_and_previews_an_import() {
    browse("admin.mjs", &[]).await;
}

#[tokio::test]
async fn the_volunteer_app_is_an_installable_pwa_that_notifies_and_confirms() {
    browse("app.mjs", &[]).await;
}

#[tokio::test]
async fn offers_show_delivered_and_an_escalation_calls_the_operator_back() {
    browse(
        "attention.mjs",
        &[
            ("ONEKEY_DISPATCH__POLICY__EMERGENCY__OFFER_TIMEOUT_S", "2"),
            ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_language_switches_between_chinese_and_english() {
    browse("language.mjs", &[]).await;
}
