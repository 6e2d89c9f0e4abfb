//! Dispatch in the running server, over real HTTP: an SOS reaches on-duty volunteers as offers,
//! the offer round's durable timer survives a crash and fires once after restart, the search widens,
//! exactly one accept wins, and the responder reports arrival and completion.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AlarmKind, Location};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn responder(server: &TestServer, name: &str, lat: f64, lon: f64) -> (i64, String) {
    let (status, r) = server
        .post(
            "/api/v1/responders",
            json!({ "name": name, "phone": format!("139{name}"), "kind": "volunteer",
                    "home_lat": lat, "home_lon": lon, "password": "volunteer-pass" }),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let token = login(server, name).await;
    let status = call(server, &token, "duty", json!({ "on_duty": true })).await;
    assert_eq!(status, 204);
    (r["id"].as_i64().expect("id"), token)
}

async fn login(server: &TestServer, name: &str) -> String {
    let res = server
        .http
        .post(format!("{}/api/v1/auth/login", server.base()))
        .json(&json!({ "kind": "responder", "name": name, "password": "volunteer-pass" }))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["token"].as_str().expect("token").to_string()
}

async fn call(server: &TestServer, token: &str, path: &str, body: Value) -> u16 {
    server
        .http
        .post(format!("{}/api/v1/responder/{path}", server.base()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn my_tasks(server: &TestServer, token: &str) -> Vec<Value> {
    let res = server
        .http
        .get(format!("{}/api/v1/responder/tasks", server.base()))
        .bearer_auth(token)
        .send()
        .await
        .expect("tasks");
    assert_eq!(res.status(), 200);
    res.json::<Vec<Value>>().await.expect("json")
}

async fn events_of(server: &TestServer, incident: i64, kind: &str) -> Vec<Value> {
    let (_, detail) = server.get(&format!("/api/v1/incidents/{incident}")).await;
    detail["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

async fn wait_events(server: &TestServer, incident: i64, kind: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = events_of(server, incident, kind).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited for {n} {kind}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn offers_survive_a_crash_and_one_accept_wins(db: Db) {
    let env = [
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
        ("ONEKEY_DISPATCH__POLICY__EMERGENCY__OFFER_TIMEOUT_S", "4"),
    ];
    let server = TestServer::start(&db, &env).await;
    let near: Vec<(i64, String)> = vec![
        responder(&server, "near1", 27.111, 114.98).await,
        responder(&server, "near2", 27.112, 114.981).await,
    ];
    let (far, far_token) = responder(&server, "far", 27.12, 114.98).await; // ~1.1 km
    let key = demo_key(9);
    server
        .register_native_device(860_000_000_000_009, &key)
        .await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 860_000_000_000_009, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");
    let at = Location {
        lat_e6: 27_110_000,
        lon_e6: 114_980_000,
        accuracy_m: 10,
    };
    device
        .alarm(AlarmKind::Sos, Some(at), WAIT)
        .await
        .expect("sos");
    let incident = server.incidents().await[0]["id"]
        .as_i64()
        .expect("incident");

    let offers = wait_events(&server, incident, "offer_sent", 2).await;
    let offered: Vec<i64> = offers
        .iter()
        .map(|e| e["detail"]["responder_id"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(offered.len(), 2, "only ring one (500 m): {offered:?}");
    assert!(offered.contains(&near[0].0) && offered.contains(&near[1].0));
    let count = server
        .metric("onekey_dispatch_first_offer_seconds_count")
        .await;
    let sum = server
        .metric("onekey_dispatch_first_offer_seconds_sum")
        .await;
    assert!(count >= 1.0);
    eprintln!("alarm → first offer: {:.1} ms", sum / count * 1000.0);
    let task = &my_tasks(&server, &near[0].1).await[0];
    assert_eq!(task["offer"]["status"], "pending");
    assert!(
        task["address"].as_str().is_some_and(|a| !a.is_empty()),
        "{task}"
    );
    assert!(
        task["health_notes"].is_null(),
        "notes only after accepting: {task}"
    );
    assert!(
        my_tasks(&server, &far_token).await.is_empty(),
        "outside ring one"
    );

    // Crash while the round timer is pending; it must fire once after the restart.
    server.kill().await;
    let server = TestServer::start(&db, &env).await;
    let expired = wait_events(&server, incident, "offer_expired", 2).await;
    wait_events(&server, incident, "ring_widened", 1).await;
    let offers = wait_events(&server, incident, "offer_sent", 3).await;
    assert_eq!(offers[2]["detail"]["responder_id"], far);
    assert_eq!(expired.len(), 2);

    // The far volunteer's app listens to its pushes; then accepts. A late accept by an expired
    // near one is refused.
    let mut pushes = server
        .http
        .get(format!("{}/api/v1/responder/stream", server.base()))
        .bearer_auth(&far_token)
        .send()
        .await
        .expect("sse");
    assert_eq!(pushes.status(), 200);
    assert_eq!(
        call(
            &server,
            &far_token,
            &format!("tasks/{incident}/accept"),
            json!({})
        )
        .await,
        204
    );
    let late = login(&server, "near1").await;
    assert_eq!(
        call(
            &server,
            &late,
            &format!("tasks/{incident}/accept"),
            json!({})
        )
        .await,
        409
    );
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !text.contains("event: assigned") {
        let chunk = tokio::time::timeout_at(deadline, pushes.chunk()).await;
        let chunk = chunk
            .expect("an assigned push in time")
            .expect("sse read")
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains(&format!("\"incident_id\":{incident}")),
        "{text}"
    );
    let mine = my_tasks(&server, &far_token).await;
    assert_eq!(mine[0]["offer"]["status"], "accepted");
    assert!(
        mine[0]["health_notes"].is_string(),
        "shown after accepting: {}",
        mine[0]
    );
    assert_eq!(
        call(
            &server,
            &far_token,
            &format!("tasks/{incident}/arrived"),
            json!({})
        )
        .await,
        204
    );
    assert_eq!(
        call(
            &server,
            &far_token,
            &format!("tasks/{incident}/completed"),
            json!({ "note": "扶起老人，无外伤" })
        )
        .await,
        204
    );
    assert_eq!(
        events_of(&server, incident, "offer_accepted").await.len(),
        1
    );
    assert_eq!(events_of(&server, incident, "arrived").await.len(), 1);
    let (_, detail) = server.get(&format!("/api/v1/incidents/{incident}")).await;
    let i = &detail["incident"];
    assert_eq!(i["status"], "on_scene", "{i}");
    let (d, a, o) = (&i["dispatched_at"], &i["accepted_at"], &i["on_scene_at"]);
    assert!(
        d.is_i64() && d.as_i64() <= a.as_i64() && a.as_i64() <= o.as_i64(),
        "{i}"
    );
    wait_events(&server, incident, "completed", 1).await;
    // The operator closes it; dispatch follows the console feed and stops.
    let (status, _) = server
        .post(
            &format!("/api/v1/incidents/{incident}/close"),
            json!({ "outcome": "resolved" }),
        )
        .await;
    assert_eq!(status, 200);
    wait_events(&server, incident, "dispatch_closed", 1).await;
    // Give a second timer pass the chance to fire twice; it must not.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(events_of(&server, incident, "offer_expired").await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn offers_survive_a_crash_and_one_accept_wins_sqlite() {
    offers_survive_a_crash_and_one_accept_wins(Db::sqlite()).await;
}

#[tokio::test]
async fn offers_survive_a_crash_and_one_accept_wins_postgres() {
    offers_survive_a_crash_and_one_accept_wins(Db::postgres().await).await;
}
