//! The console and the responder app in a real browser (Chromium driven by Playwright): the specs in
//! `tests/browser/*.mjs` run against the real binary. `console.mjs` walks an SOS from the device to
//! the report: it prints `READY_FOR_SOS` once the operator's queue is showing and the volunteer is on
//! duty, and this side then raises the SOS from a simulated native device over TCP. `language.mjs`
//! switches the language. Screenshots land in `target/screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/browser/node_modules` (`tests/browser/setup.sh`);
//! without them the tests are skipped, unless `ONEKEY_REQUIRE_BROWSER=1` (set by `scripts/test.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AlarmKind, Location};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);
const RUN_LIMIT: Duration = Duration::from_secs(120);
const OPERATOR: &str = "夜班调度员";
const OPERATOR_PASSWORD: &str = "night-shift-12349";
const VOLUNTEER: &str = "志愿者小李";
const VOLUNTEER_PASSWORD: &str = "volunteer-pass";
const ELDER: &str = "王秀英";
const ADDRESS: &str = "吉州区 文山街道 思源社区 3 栋 2 单元 101";
const KEY_SAFE: &str = "4827";
const HEALTH: &str = "高血压，2019 年中风，行动不便";
const ELDER_AT: (f64, f64) = (27.1100, 114.9800);
const VOLUNTEER_AT: (f64, f64) = (27.1108, 114.9812);
const DEVICE: u64 = 860_000_000_000_601;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `None` when the browser tests can run; otherwise why not (a panic under ONEKEY_REQUIRE_BROWSER=1).
fn missing() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let reason = if !node {
        "node is not installed"
    } else if !Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium is not installed"
    } else if !root()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        "tests/browser/node_modules is missing (run tests/browser/setup.sh)"
    } else {
        return None;
    };
    if std::env::var("ONEKEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("browser tests required but {reason}");
    }
    Some(reason.to_string())
}

/// The directory of operators, a grid with its outline, an elder in it with a device, and a
/// volunteer near the elder. Returns the volunteer's id.
async fn seed(server: &TestServer) -> i64 {
    let (status, body) = server
        .post(
            "/api/v1/operators",
            json!({ "name": OPERATOR, "password": OPERATOR_PASSWORD, "role": "operator" }),
        )
        .await;
    assert_eq!(status, 201, "operator: {body}");
    let (lat, lon) = ELDER_AT;
    let mut parent = None;
    for (level, code, name) in [
        ("district", "JZ", "吉州区"),
        ("street", "JZ-WS", "文山街道"),
        ("community", "JZ-WS-SY", "思源社区"),
    ] {
        let (status, area) = server
            .post(
                "/api/v1/areas",
                json!({ "level": level, "code": code, "name": name, "parent_id": parent }),
            )
            .await;
        assert_eq!(status, 201, "{level}: {area}");
        parent = area["id"].as_i64();
    }
    let (status, grid) = server
        .post(
            "/api/v1/areas",
            json!({ "level": "grid", "code": "JZ-WS-SY-01", "name": "思源社区第一网格", "parent_id": parent,
                    "boundary": [[lat - 0.004, lon - 0.005], [lat - 0.004, lon + 0.005],
                                 [lat + 0.004, lon + 0.006], [lat + 0.005, lon - 0.004]] }),
        )
        .await;
    assert_eq!(status, 201, "grid: {grid}");
    let grid_id = grid["id"].as_i64().expect("grid id");
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": ELDER, "phone": "13907960001", "address": ADDRESS, "lat": lat, "lon": lon,
                    "grid_id": grid_id, "living": "alone", "health_notes": HEALTH,
                    "medications": "硝苯地平 每日两次", "key_safe_code": KEY_SAFE,
                    "contacts": [{ "name": "李梅", "relation": "女儿", "phone": "13907960002", "key_holder": true }] }),
        )
        .await;
    assert_eq!(status, 201, "elder: {elder}");
    let key = demo_key(6);
    server
        .register_device(
            "native",
            &DEVICE.to_string(),
            Some(&hex::encode(key)),
            elder["id"].as_i64(),
        )
        .await;
    let (status, volunteer) = server
        .post(
            "/api/v1/responders",
            json!({ "name": VOLUNTEER, "phone": "13907960003", "kind": "volunteer", "grid_id": grid_id,
                    "home_lat": VOLUNTEER_AT.0, "home_lon": VOLUNTEER_AT.1, "password": VOLUNTEER_PASSWORD }),
        )
        .await;
    assert_eq!(status, 201, "volunteer: {volunteer}");
    volunteer["id"].as_i64().expect("volunteer id")
}

fn spec(server: &TestServer, name: &str, volunteer: i64) -> Command {
    let shots = root().join("target/screenshots");
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/browser").join(name))
        .current_dir(root())
        .env("ONEKEY_URL", server.base())
        .env("ONEKEY_SCREENSHOTS", shots)
        .env("ONEKEY_OPERATOR", OPERATOR)
        .env("ONEKEY_OPERATOR_PASSWORD", OPERATOR_PASSWORD)
        .env("ONEKEY_RESPONDER", VOLUNTEER)
        .env("ONEKEY_RESPONDER_PASSWORD", VOLUNTEER_PASSWORD)
        .env("ONEKEY_RESPONDER_ID", volunteer.to_string())
        .env("ONEKEY_RESPONDER_LAT", VOLUNTEER_AT.0.to_string())
        .env("ONEKEY_RESPONDER_LON", VOLUNTEER_AT.1.to_string())
        .env("ONEKEY_ELDER_NAME", ELDER)
        .env("ONEKEY_ELDER_ADDRESS", ADDRESS)
        .env("ONEKEY_KEY_SAFE", KEY_SAFE)
        .env("ONEKEY_HEALTH_NOTES", HEALTH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn sos(server: &TestServer) {
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), DEVICE, demo_key(6))
        .await
        .expect("device connects");
    device.hello(WAIT).await.expect("hello");
    let at = Location {
        lat_e6: (ELDER_AT.0 * 1e6) as i32,
        lon_e6: (ELDER_AT.1 * 1e6) as i32,
        accuracy_m: 10,
    };
    device
        .alarm(AlarmKind::Sos, Some(at), WAIT)
        .await
        .expect("SOS stored");
}

/// Runs a spec to its end, raising the SOS when it asks; panics with its output unless it passes.
async fn run(server: &TestServer, name: &str, volunteer: i64) {
    let started = std::time::Instant::now();
    let mut child = spec(server, name, volunteer).spawn().expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut out = String::new();
    let outcome = tokio::time::timeout(RUN_LIMIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
            out.push_str(&line);
            out.push('\n');
            if line == "READY_FOR_SOS" {
                sos(server).await;
            }
        }
        child.wait().await
    })
    .await;
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

#[tokio::test]
async fn an_sos_from_device_to_report_in_the_console_and_the_app() {
    if let Some(reason) = missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[("ONEKEY_DISPATCH__TIMER_POLL_MS", "100")]).await;
    let volunteer = seed(&server).await;
    run(&server, "console.mjs", volunteer).await;
}

#[tokio::test]
async fn the_language_switches_between_chinese_and_english() {
    if let Some(reason) = missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let volunteer = seed(&server).await;
    run(&server, "language.mjs", volunteer).await;
}
