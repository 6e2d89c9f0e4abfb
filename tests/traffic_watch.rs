//! Traffic supervision on the running server: simulated devices heartbeat over the real sockets;
//! when one protocol's devices, or one grid's, stop, `/healthz` names the quiet scope (status
//! `degraded`, still 200), `onekey_traffic_quiet{scope,name}` is 1, and the rest stay unflagged.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_sim::clock::SimClock;
use onekey_sim::devices;
use onekey_sim::plan::{DevicePlan, Link};
use onekey_sim::world::{self, Preset, World};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Both clocks run 10× so that a 1 s heartbeat of the clock is 100 ms of wall time.
const SCALE: f64 = 10.0;

/// The server and its database (kept for as long as the server runs: dropping it removes the
/// folder the server opens new connections in).
async fn start(w: &World) -> (TestServer, Db) {
    let start = w.start.to_string();
    let scale = SCALE.to_string();
    let db = Db::sqlite();
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_CLOCK__SCALE", &scale),
            ("ONEKEY_CLOCK__START_MS", &start),
            ("ONEKEY_SUPERVISION__TRAFFIC_WINDOW_MS", "1000"),
            ("ONEKEY_SUPERVISION__TRAFFIC_MIN_FRAMES", "10"),
            ("ONEKEY_SUPERVISION__TRAFFIC_WARMUP", "2"),
        ],
    )
    .await;
    (server, db)
}

/// Heartbeats only, every second of the clock, until `stop`.
fn heartbeating(plans: &[&DevicePlan]) -> Vec<DevicePlan> {
    plans
        .iter()
        .map(|d| DevicePlan {
            heartbeat_ms: 1_000,
            actions: Vec::new(),
            ..(*d).clone()
        })
        .collect()
}

fn run(
    plans: Vec<DevicePlan>,
    server: &TestServer,
    w: &World,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<devices::DeviceReport> {
    tokio::spawn(devices::run(
        plans,
        server.device_targets(("tester", "tester-pass-1")),
        SimClock::new(w.start, SCALE),
        w.start + 3_600_000,
        None,
        stop.clone(),
    ))
}

async fn health(server: &TestServer) -> (u16, Value) {
    let res = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    let code = res.status().as_u16();
    (code, res.json().await.expect("healthz json"))
}

fn quiet(body: &Value) -> Vec<(String, String)> {
    body["traffic_quiet"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|q| {
            (
                q["scope"].as_str().unwrap_or_default().to_string(),
                q["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until `/healthz` lists `want` among the quiet scopes; returns the body.
async fn wait_quiet(server: &TestServer, want: (&str, &str), within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (code, body) = health(server).await;
        assert_eq!(
            code, 200,
            "quiet traffic degrades, it is not an outage: {body}"
        );
        if quiet(&body).contains(&(want.0.to_string(), want.1.to_string())) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{want:?} not flagged: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn world_of(elders: usize) -> World {
    let preset = Preset {
        name: "traffic".into(),
        elders,
        responders: 5,
        grids_per_community: None,
        scale: SCALE,
        heartbeat_min: 10,
    };
    world::build(&preset, 21)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_whose_devices_stop_is_flagged_while_the_others_are_not() {
    let w = world_of(200);
    let (server, _db) = start(&w).await;
    server.import_dataset(&w.dataset).await;
    let of = |link: Link| -> Vec<&DevicePlan> {
        w.devices
            .iter()
            .filter(|d| d.link == link)
            .take(3)
            .collect()
    };
    let (gt06, native) = (of(Link::Gt06), of(Link::NativeTcp));
    assert!(gt06.len() == 3 && native.len() == 3);
    let (stop_gt06, stop_native) = (CancellationToken::new(), CancellationToken::new());
    let gt06_run = run(heartbeating(&gt06), &server, &w, &stop_gt06);
    let native_run = run(heartbeating(&native), &server, &w, &stop_native);

    // Learning the usual rates: nothing is flagged.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, body) = health(&server).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert!(quiet(&body).is_empty(), "{body}");

    // The GT06 devices stop (as if their listener broke): flagged within a few windows.
    let stopped = tokio::time::Instant::now();
    stop_gt06.cancel();
    let body = wait_quiet(&server, ("protocol", "gt06"), Duration::from_secs(10)).await;
    let detected = stopped.elapsed();
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        !quiet(&body).contains(&("protocol".into(), "native".into())),
        "{body}"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        common::metric_value(
            &metrics,
            "onekey_traffic_quiet{scope=\"protocol\",name=\"gt06\"}"
        ),
        1.0
    );
    assert!(server.log().contains("traffic stopped"));
    println!("GT06 traffic stopped; flagged after {detected:?} (1 s windows)");

    stop_native.cancel();
    let _ = gt06_run.await;
    let _ = native_run.await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_whose_devices_all_go_quiet_is_flagged_by_its_id() {
    let w = world_of(200);
    let (server, _db) = start(&w).await;
    server.import_dataset(&w.dataset).await;
    // Which grid each native device's elder lives in, as the server has it.
    let (_, devices) = server.get("/api/v1/devices?limit=10000").await;
    let (_, elders) = server.get("/api/v1/elders?limit=10000").await;
    let grid_of_elder: HashMap<i64, i64> = elders
        .as_array()
        .expect("elders")
        .iter()
        .filter_map(|e| Some((e["id"].as_i64()?, e["grid_id"].as_i64()?)))
        .collect();
    let mut by_grid: HashMap<i64, Vec<&DevicePlan>> = HashMap::new();
    for d in devices.as_array().expect("devices") {
        let (Some(ident), Some(elder)) = (d["ident"].as_str(), d["elder_id"].as_i64()) else {
            continue;
        };
        if let (Some(plan), Some(grid)) = (
            w.devices
                .iter()
                .find(|p| p.ident == ident && p.link == Link::NativeTcp),
            grid_of_elder.get(&elder),
        ) {
            by_grid.entry(*grid).or_default().push(plan);
        }
    }
    let mut grids: Vec<(i64, Vec<&DevicePlan>)> = by_grid
        .into_iter()
        .filter(|(_, plans)| plans.len() >= 2)
        .collect();
    grids.sort_by_key(|(g, _)| *g);
    assert!(grids.len() >= 2, "two grids with two native devices each");
    let (quiet_grid, quiet_devices) = (grids[0].0, &grids[0].1[..2]);
    let (busy_grid, busy_devices) = (grids[1].0, &grids[1].1[..2]);
    let (stop_quiet, stop_busy) = (CancellationToken::new(), CancellationToken::new());
    let quiet_run = run(heartbeating(quiet_devices), &server, &w, &stop_quiet);
    let busy_run = run(heartbeating(busy_devices), &server, &w, &stop_busy);

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, body) = health(&server).await;
    assert!(quiet(&body).is_empty(), "{body}");

    // Every device of one grid goes quiet (a cell tower down): that grid is flagged, the other
    // and the native protocol as a whole (half its traffic remains) are not.
    stop_quiet.cancel();
    let body = wait_quiet(
        &server,
        ("grid", &quiet_grid.to_string()),
        Duration::from_secs(10),
    )
    .await;
    let flagged = quiet(&body);
    assert!(
        !flagged.contains(&("grid".into(), busy_grid.to_string())),
        "{body}"
    );
    assert!(
        !flagged.contains(&("protocol".into(), "native".into())),
        "{body}"
    );

    stop_busy.cancel();
    let _ = quiet_run.await;
    let _ = busy_run.await;
    server.stop().await;
}
