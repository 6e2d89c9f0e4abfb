//! The console and the volunteer app in a real Chromium (Playwright, `tests/browser/*.mjs`), against
//! the real binary: the whole alarm path from a simulated device's SOS to the report page, and the
//! language switch. Screenshots land in `target/screenshots/`.
//!
//! Needs Node.js, `/usr/bin/chromium` and `tests/browser/node_modules` (`tests/browser/setup.sh`
//! installs them; the README test command runs it). Without them the tests print why and pass,
//! unless `ONEKEY_REQUIRE_BROWSER=1` (set by the README test command and CI), where they fail.

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
const OPERATOR: (&str, &str) = ("值班员", "night-shift-2026");
const VOLUNTEER: (&str, &str) = ("李志愿", "volunteer-pass");
const ELDER: &str = "张奶奶";
const ADDRESS: &str = "吉州区 文山街道 思源社区 5 栋 2 单元 301";
const KEY_CODE: &str = "4321";
const HEALTH: &str = "高血压，行动不便";
const DEVICE_ID: u64 = 860_000_000_000_077;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `None` when the browser tests can run; otherwise why not (a failure when they are required).
fn missing_tools() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let why = if !node {
        "node is not installed"
    } else if !Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium is not installed"
    } else if !browser_dir().join("node_modules/playwright-core").exists() {
        "tests/browser/node_modules is missing (run tests/browser/setup.sh)"
    } else {
        return None;
    };
    if std::env::var("ONEKEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("browser tests are required but {why}");
    }
    Some(why.to_string())
}

/// A server with a grid, an elder with a device, an operator and a volunteer near the elder.
async fn seeded_server(db: &Db) -> TestServer {
    let server = TestServer::start(
        db,
        &[
            ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
            // Long enough that a slow browser does not let the offer lapse.
            ("ONEKEY_DISPATCH__POLICY__EMERGENCY__OFFER_TIMEOUT_S", "300"),
        ],
    )
    .await;
    let mut parent = None;
    let mut grid = 0;
    for (level, code, name) in [
        ("district", "JZ", "吉州区"),
        ("street", "JZ-WS", "文山街道"),
        ("community", "JZ-WS-SY", "思源社区"),
        ("grid", "JZ-WS-SY-05", "思源五网格"),
    ] {
        let boundary = if level == "grid" {
            json!([
                [27.105, 114.975],
                [27.105, 114.985],
                [27.115, 114.985],
                [27.115, 114.975]
            ])
        } else {
            json!([])
        };
        let (status, area) = server
            .post(
                "/api/v1/areas",
                json!({ "parent_id": parent, "level": level, "code": code, "name": name, "boundary": boundary }),
            )
            .await;
        assert_eq!(status, 201, "{area}");
        parent = area["id"].as_i64();
        grid = parent.unwrap_or_default();
    }
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": ELDER, "address": ADDRESS, "lat": 27.11, "lon": 114.98, "living": "alone",
                    "grid_id": grid, "key_safe_code": KEY_CODE, "health_notes": HEALTH,
                    "medications": "硝苯地平", "contacts": [
                        { "name": "张伟", "relation": "儿子", "phone": "13800000001", "key_holder": true }] }),
        )
        .await;
    assert_eq!(status, 201, "{elder}");
    server
        .register_device(
            "native",
            &DEVICE_ID.to_string(),
            Some(&hex::encode(demo_key(77))),
            elder["id"].as_i64(),
        )
        .await;
    let (status, op) = server
        .post(
            "/api/v1/operators",
            json!({ "name": OPERATOR.0, "password": OPERATOR.1, "role": "operator" }),
        )
        .await;
    assert_eq!(status, 201, "{op}");
    let (status, vol) = server
        .post(
            "/api/v1/responders",
            json!({ "name": VOLUNTEER.0, "phone": "13900000077", "kind": "volunteer", "grid_id": grid,
                    "home_lat": 27.1112, "home_lon": 114.9812, "password": VOLUNTEER.1 }),
        )
        .await;
    assert_eq!(status, 201, "{vol}");
    server
}

/// Runs `tests/browser/<spec>` against `server`; when the spec prints `READY_FOR_SOS`, a simulated
/// native device raises an SOS over TCP. Returns the spec's output; panics when it fails.
async fn run_spec(server: &TestServer, spec: &str) -> String {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    let mut child = Command::new("node")
        .arg(browser_dir().join(spec))
        .current_dir(browser_dir())
        .env("ONEKEY_URL", server.base())
        .env("ONEKEY_SCREENSHOTS", &shots)
        .env("ONEKEY_OPERATOR", OPERATOR.0)
        .env("ONEKEY_OPERATOR_PASSWORD", OPERATOR.1)
        .env("ONEKEY_VOLUNTEER", VOLUNTEER.0)
        .env("ONEKEY_VOLUNTEER_PASSWORD", VOLUNTEER.1)
        .env("ONEKEY_VOLUNTEER_LAT", "27.1108")
        .env("ONEKEY_VOLUNTEER_LON", "114.9806")
        .env("ONEKEY_ELDER", ELDER)
        .env("ONEKEY_ELDER_ADDRESS", ADDRESS)
        .env("ONEKEY_KEY_CODE", KEY_CODE)
        .env("ONEKEY_HEALTH", HEALTH)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut output = String::new();
    let mut device = None;
    let run = async {
        while let Ok(Some(line)) = lines.next_line().await {
            output.push_str(&line);
            output.push('\n');
            if line.trim() == "READY_FOR_SOS" {
                let key = demo_key(77);
                let mut d = NativeDevice::connect(&server.addr("device_tcp"), DEVICE_ID, key)
                    .await
                    .expect("device connects");
                d.hello(WAIT).await.expect("hello");
                let at = Location {
                    lat_e6: 27_110_000,
                    lon_e6: 114_980_000,
                    accuracy_m: 10,
                };
                d.alarm(AlarmKind::Sos, Some(at), WAIT)
                    .await
                    .expect("the SOS is ACKed");
                device = Some(d);
            }
        }
        child.wait().await
    };
    let status = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("{spec} did not finish in 180 s:\n{output}"))
        .expect("wait for node");
    let mut errors = String::new();
    let _ = stderr.read_to_string(&mut errors).await;
    drop(device);
    assert!(
        status.success(),
        "{spec} failed ({status}):\n{output}\n{errors}\nserver log:\n{}",
        server.log()
    );
    output
}

#[tokio::test]
async fn an_sos_goes_from_device_to_console_to_volunteer_and_into_the_report() {
    if let Some(why) = missing_tools() {
        eprintln!("skipped: {why}");
        return;
    }
    let db = Db::sqlite();
    let server = seeded_server(&db).await;
    let output = run_spec(&server, "console.mjs").await;
    assert!(output.contains("PASS console flow"), "{output}");
    eprintln!("{output}");
    // What the browser saw is what the store holds.
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["status"], "closed");
    assert_eq!(incidents[0]["outcome"], "resolved");
    assert!(incidents[0]["accepted_at"].is_i64(), "{:?}", incidents[0]);
}

#[tokio::test]
async fn the_console_and_the_app_switch_between_chinese_and_english() {
    if let Some(why) = missing_tools() {
        eprintln!("skipped: {why}");
        return;
    }
    let db = Db::sqlite();
    let server = seeded_server(&db).await;
    let output = run_spec(&server, "language.mjs").await;
    assert!(output.contains("PASS language"), "{output}");
}
