//! Dispatch in the running server, over real HTTP: an SOS reaches on-duty volunteers as offers,
//! the offer round's durable timer survives a crash and fires once after restart, the search widens,
//! exactly one accept wins, and the responder reports arrival and completion. Operators offer and
//! escalate by hand; a silent elder gets a welfare visit for the grid worker; two instances on one
//! PostgreSQL fire each timer once; the SLA histogram answers "acked within 60 s".

mod common;

use std::time::Duration;

use common::{Db, TestServer, metric_value};
use onekey_protocol::{AlarmKind, Location};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn responder(server: &TestServer, name: &str, lat: f64, lon: f64) -> (i64, String) {
    server
        .responder_on_duty(name, &format!("139{name}"), lat, lon)
        .await
}

async fn login(server: &TestServer, name: &str) -> String {
    server.login_responder(name, "volunteer-pass").await
}

async fn call(server: &TestServer, token: &str, path: &str, body: Value) -> u16 {
    server.as_responder(token, path, body).await
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
    server.events_of(incident, kind).await
}

async fn wait_events(server: &TestServer, incident: i64, kind: &str, n: usize) -> Vec<Value> {
    server.wait_events(incident, kind, n, WAIT).await
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

/// A responder of any kind, on duty or not; returns id and app token.
async fn person(
    server: &TestServer,
    name: &str,
    kind: &str,
    at: (f64, f64),
    on_duty: bool,
) -> (i64, String) {
    let (status, r) = server
        .post(
            "/api/v1/responders",
            json!({ "name": name, "phone": format!("138{name}"), "kind": kind,
                    "home_lat": at.0, "home_lon": at.1, "password": "volunteer-pass" }),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let token = login(server, name).await;
    let status = call(server, &token, "duty", json!({ "on_duty": on_duty })).await;
    assert_eq!(status, 204);
    (r["id"].as_i64().expect("id"), token)
}

/// District → street → community → grid, the grid in `worker`'s charge; returns the grid id.
async fn grid(server: &TestServer, worker: i64) -> i64 {
    let mut parent: Option<i64> = None;
    let mut id = 0;
    for (level, code, name) in [
        ("district", "JZ", "吉州区"),
        ("street", "JZ-WS", "文山街道"),
        ("community", "JZ-WS-SY", "思源社区"),
        ("grid", "JZ-WS-SY-01", "思源社区第一网格"),
    ] {
        let worker_id = (level == "grid").then_some(worker);
        let (status, area) = server
            .post(
                "/api/v1/areas",
                json!({ "level": level, "code": code, "name": name, "parent_id": parent,
                        "worker_id": worker_id }),
            )
            .await;
        assert_eq!(status, 201, "{area}");
        id = area["id"].as_i64().expect("area id");
        parent = Some(id);
    }
    id
}

/// An elder in `grid` checked every `checkin_hours`, with a native device; returns (elder, device).
async fn elder_with_device(
    server: &TestServer,
    grid: i64,
    device_id: u64,
    checkin_hours: i64,
) -> (i64, NativeDevice) {
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": format!("老人 {device_id}"), "address": "吉州区 文山街道 思源社区 3 号",
                    "lat": 27.11, "lon": 114.98, "living": "alone", "grid_id": grid,
                    "checkin_hours": checkin_hours }),
        )
        .await;
    assert_eq!(status, 201, "{elder}");
    let elder_id = elder["id"].as_i64().expect("elder id");
    let device = server.native_device_for(Some(elder_id), device_id).await;
    (elder_id, device)
}

async fn sos(device: &mut NativeDevice) {
    let at = Location {
        lat_e6: 27_110_000,
        lon_e6: 114_980_000,
        accuracy_m: 10,
    };
    device
        .alarm(AlarmKind::Sos, Some(at), WAIT)
        .await
        .expect("sos");
}

async fn operator(server: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = server
        .http
        .post(format!("{}/api/v1/{path}", server.base()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn operators_offer_and_escalate(db: Db) {
    let env = [("ONEKEY_DISPATCH__TIMER_POLL_MS", "100")];
    let server = TestServer::start(&db, &env).await;
    let (near, near_token) = person(&server, "near", "volunteer", (27.111, 114.98), true).await;
    let (far, far_token) = person(&server, "far", "volunteer", (27.12, 114.98), true).await;
    let (resting, _) = person(&server, "resting", "volunteer", (27.111, 114.981), false).await;
    let (gw, _) = person(&server, "gw", "grid_worker", (27.2, 115.0), false).await;
    let grid = grid(&server, gw).await;
    let (_, mut device) = elder_with_device(&server, grid, 860_000_000_000_021, 24).await;
    sos(&mut device).await;
    let incident = server.incidents().await[0]["id"]
        .as_i64()
        .expect("incident");
    wait_events(&server, incident, "offer_sent", 1).await;

    // The operator acknowledges: the ack SLA clock is met and lands in a bucket at or under 60 s.
    let (status, _) = server
        .post(&format!("/api/v1/incidents/{incident}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    // Dispatch follows the console feed: the clock is met a moment after the ack.
    server
        .wait_metric("onekey_dispatch_sla_seconds_count{clock=\"ack\"}", 1.0)
        .await;
    let text = server.metrics().await;
    let le60 = metric_value(
        &text,
        "onekey_dispatch_sla_seconds_bucket{clock=\"ack\",le=\"60\"}",
    );
    let count = metric_value(&text, "onekey_dispatch_sla_seconds_count{clock=\"ack\"}");
    assert!(le60 >= 1.0 && le60 == count, "ack ≤ 60 s bucket: {text}");
    for le in ["120", "1800", "86400"] {
        assert!(
            text.contains(&format!(
                "onekey_dispatch_sla_seconds_bucket{{clock=\"ack\",le=\"{le}\"}}"
            )),
            "bucket {le} s: {text}"
        );
    }
    eprintln!("acked within 60 s: {le60} of {count}");

    // The near volunteer accepts; the operator gives the task to the far one instead.
    let accept = format!("tasks/{incident}/accept");
    assert_eq!(call(&server, &near_token, &accept, json!({})).await, 204);
    let path = format!("incidents/{incident}/offer");
    let (status, body) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": far }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let op = wait_events(&server, incident, "operator_offer", 1).await;
    assert_eq!(op[0]["actor"], "operator:admin");
    assert_eq!(op[0]["detail"]["responder_id"], far);
    assert_eq!(op[0]["detail"]["replaced"], near);
    let down = wait_events(&server, incident, "stood_down", 1).await;
    assert!(
        down.iter()
            .any(|e| e["detail"]["responder_id"] == near && e["detail"]["reason"] == "reassigned"),
        "{down:?}"
    );
    assert!(
        my_tasks(&server, &near_token).await.is_empty(),
        "the old holder no longer has the task"
    );
    assert_eq!(
        my_tasks(&server, &far_token).await[0]["offer"]["status"],
        "pending"
    );
    assert_eq!(
        call(&server, &far_token, &accept, json!({})).await,
        204,
        "the seat is free again"
    );
    assert_eq!(call(&server, &near_token, &accept, json!({})).await, 409);

    // Refusals.
    let (status, _) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": 999_999 }),
    )
    .await;
    assert_eq!(status, 400, "unknown responder");
    let (status, _) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": resting }),
    )
    .await;
    assert_eq!(status, 400, "off duty, no shift");
    let (status, _) = operator(
        &server,
        &server.token,
        "incidents/999999/offer",
        json!({ "responder_id": far }),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = operator(&server, &far_token, &path, json!({ "responder_id": far })).await;
    assert_eq!(status, 403, "operators only");
    let (status, _) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": "x" }),
    )
    .await;
    assert!(status == 400 || status == 422, "a malformed body: {status}");

    // Escalation: the grid worker first (told, since the task is held), then an operator decision.
    let esc = format!("incidents/{incident}/escalate");
    let (status, _) = operator(
        &server,
        &server.token,
        &esc,
        json!({ "note": "老人电话无人接听" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = operator(
        &server,
        &server.token,
        &esc,
        json!({ "note": "请坐席决定" }),
    )
    .await;
    assert_eq!(status, 200);
    let escalated = wait_events(&server, incident, "escalated", 2).await;
    assert_eq!(escalated[0]["detail"]["to"], "grid_worker");
    assert_eq!(escalated[0]["detail"]["responder_id"], gw);
    assert_eq!(escalated[0]["detail"]["note"], "老人电话无人接听");
    assert_eq!(escalated[0]["actor"], "operator:admin");
    assert_eq!(escalated[1]["detail"]["to"], "operator");
    let (status, _) = operator(
        &server,
        &server.token,
        "incidents/999999/escalate",
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    // Off duty but inside a recurring shift (every day, all day) counts as available.
    let (status, body) = server
        .post(
            "/api/v1/responders",
            json!({ "name": "shifty", "phone": "138shifty", "kind": "volunteer",
                    "home_lat": 27.111, "home_lon": 114.98, "password": "volunteer-pass",
                    "shifts": [{ "weekdays": 127, "start_min": 0, "end_min": 1440 }] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["shifts"][0]["weekdays"], 127);
    let shifty = body["id"].as_i64().expect("id");
    let shifty_token = login(&server, "shifty").await;
    assert_eq!(
        call(&server, &shifty_token, "duty", json!({ "on_duty": false })).await,
        204
    );
    let (status, body) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": shifty }),
    )
    .await;
    assert_eq!(status, 200, "on shift: {body}");
    assert_eq!(
        my_tasks(&server, &shifty_token).await[0]["offer"]["status"],
        "pending"
    );
    let (status, _) = server
        .post(
            "/api/v1/responders",
            json!({ "name": "bad", "phone": "138bad", "kind": "volunteer",
                    "home_lat": 27.1, "home_lon": 114.9,
                    "shifts": [{ "weekdays": 0, "start_min": 0, "end_min": 60 }] }),
        )
        .await;
    assert_eq!(status, 400, "a shift on no weekday");

    // The console's contract is in the OpenAPI document.
    let (_, doc) = server.get("/openapi.json").await;
    for path in [
        "/api/v1/incidents/{id}/offer",
        "/api/v1/incidents/{id}/escalate",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path} documented");
    }

    // Closed: both actions are refused.
    let (status, _) = server
        .post(
            &format!("/api/v1/incidents/{incident}/close"),
            json!({ "outcome": "resolved" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = operator(
        &server,
        &server.token,
        &path,
        json!({ "responder_id": far }),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = operator(&server, &server.token, &esc, json!({ "note": "x" })).await;
    assert_eq!(status, 409);
    server.stop().await;
}

#[tokio::test]
async fn operators_offer_and_escalate_sqlite() {
    operators_offer_and_escalate(Db::sqlite()).await;
}

#[tokio::test]
async fn operators_offer_and_escalate_postgres() {
    operators_offer_and_escalate(Db::postgres().await).await;
}

async fn a_silent_elder_gets_a_welfare_visit(db: Db) {
    // One check-in hour lasts a second: an elder with checkin_hours = 2 is due after 2 s.
    let env = [
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
        ("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "200"),
        ("ONEKEY_DISPATCH__CHECKIN_HOUR_S", "1"),
    ];
    let server = TestServer::start(&db, &env).await;
    let (gw, gw_token) = person(&server, "gw", "grid_worker", (27.2, 115.0), false).await;
    let grid = grid(&server, gw).await;
    let (silent, _silent_device) = elder_with_device(&server, grid, 860_000_000_000_031, 2).await;
    let (chatty, mut chatty_device) =
        elder_with_device(&server, grid, 860_000_000_000_032, 2).await;
    let started = tokio::time::Instant::now();
    let welfare_of = |list: &[Value], elder: i64| -> Vec<Value> {
        list.iter()
            .filter(|i| i["category"] == "welfare" && i["elder_id"] == elder)
            .cloned()
            .collect()
    };
    // The chatty elder says "I'm OK" every 400 ms for 5 s; the silent one says nothing.
    let mut visit = None;
    while started.elapsed() < Duration::from_secs(5) || visit.is_none() {
        chatty_device
            .request(onekey_protocol::Message::CheckIn, WAIT)
            .await
            .expect("check-in ACKed");
        let list = server.incidents().await;
        if visit.is_none() {
            visit = welfare_of(&list, silent).first().cloned();
        }
        assert!(
            welfare_of(&list, chatty).is_empty(),
            "a checked-in elder got a visit"
        );
        assert!(
            started.elapsed() < WAIT + WAIT,
            "no welfare visit for the silent elder"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Each check-in moved the chatty elder's welfare timer to one period after it.
    let store = onekey::store::Store::connect(&db.url())
        .await
        .expect("store");
    let last = store
        .last_sign_of_life(chatty)
        .await
        .expect("last sign")
        .expect("check-ins stored");
    let timers = store.pending_timers().await.expect("timers");
    let chatty_timer = timers
        .iter()
        .find(|t| t.key == onekey::store::welfare_key(chatty))
        .expect("a welfare timer");
    assert_eq!(
        chatty_timer.due_at,
        last + 2000,
        "re-armed by the last check-in"
    );
    let visit = visit.expect("a visit");
    let id = visit["id"].as_i64().expect("id");
    assert_eq!(visit["kind"], "missed_check_in");
    let opened = wait_events(&server, id, "opened", 1).await;
    assert_eq!(opened[0]["actor"], "system");
    let offers = wait_events(&server, id, "offer_sent", 1).await;
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0]["detail"]["responder_id"], gw,
        "the grid worker is offered the visit"
    );
    let tasks = my_tasks(&server, &gw_token).await;
    assert_eq!(tasks[0]["category"], "welfare");
    // The 24 h service deadline runs as a durable timer.
    let timers = store.pending_timers().await.expect("timers");
    let done = timers
        .iter()
        .find(|t| t.key == onekey::store::timer_key(id, "sla:done"))
        .expect("the 24 h clock");
    let received = visit["received_at"].as_i64().expect("received_at");
    assert_eq!(done.due_at - received, 24 * 3_600_000);
    // One visit at a time: the silent elder's next period joins nothing and opens nothing new.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(welfare_of(&server.incidents().await, silent).len(), 1);
    assert_eq!(events_of(&server, id, "opened").await.len(), 1);
    store.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_silent_elder_gets_a_welfare_visit_sqlite() {
    a_silent_elder_gets_a_welfare_visit(Db::sqlite()).await;
}

#[tokio::test]
async fn a_silent_elder_gets_a_welfare_visit_postgres() {
    a_silent_elder_gets_a_welfare_visit(Db::postgres().await).await;
}

/// Two instances on one PostgreSQL database, many incidents, each with two SLA timers due in a
/// few seconds: every timer fires once (one `sla_breached` per clock per incident, and the
/// instances' fire counters add up to the number of timers).
#[tokio::test]
async fn two_instances_fire_each_timer_once_postgres() {
    const N: usize = 24;
    let db = Db::postgres().await;
    let env = [
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "50"),
        ("ONEKEY_DISPATCH__POLICY__EMERGENCY__SLA__ACK_S", "2"),
        ("ONEKEY_DISPATCH__POLICY__EMERGENCY__SLA__ACCEPT_S", "3"),
    ];
    let a = TestServer::start(&db, &env).await;
    let b = TestServer::start(&db, &env).await;
    let mut devices = Vec::new();
    for i in 0..N {
        let id = 860_000_000_001_000 + i as u64;
        let key = demo_key(id);
        a.register_native_device(id, &key).await;
        let via = if i % 2 == 0 { &a } else { &b };
        let mut d = NativeDevice::connect(&via.addr("device_tcp"), id, key)
            .await
            .expect("connect");
        d.hello(WAIT).await.expect("hello");
        devices.push(d);
    }
    for d in &mut devices {
        sos(d).await;
    }
    let incidents: Vec<i64> = a
        .incidents()
        .await
        .iter()
        .filter_map(|i| i["id"].as_i64())
        .collect();
    assert_eq!(incidents.len(), N);
    for &id in &incidents {
        wait_events(&a, id, "sla_breached", 2).await;
    }
    // Another few poll rounds on both instances: nothing fires twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for &id in &incidents {
        let breaches = events_of(&a, id, "sla_breached").await;
        let mut clocks: Vec<String> = breaches
            .iter()
            .map(|e| e["detail"]["clock"].as_str().unwrap_or("").to_string())
            .collect();
        clocks.sort();
        assert_eq!(clocks, vec!["accept", "ack"], "incident {id}");
    }
    let series = "onekey_dispatch_timer_fires_total{kind=\"incident\"}";
    let (fa, fb) = (a.metric(series).await, b.metric(series).await);
    eprintln!("timers fired: instance a {fa}, instance b {fb}");
    assert_eq!(
        fa + fb,
        (2 * N) as f64,
        "each of the {} timers fired once",
        2 * N
    );
    a.stop().await;
    b.stop().await;
}

/// On a clock 60 times the wall clock: a device that stops talking for three of its heartbeat
/// periods (60 s each) gets a technical incident offered to the grid worker; one that keeps
/// sending heartbeats does not.
#[tokio::test]
async fn a_device_that_goes_silent_gets_a_technical_incident_for_the_grid_worker() {
    let db = Db::sqlite();
    let env = [
        ("ONEKEY_CLOCK__SCALE", "60"),
        ("ONEKEY_DISPATCH__SILENCE_CHECK_MS", "100"),
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "50"),
        ("ONEKEY_INTAKE__STATUS_FLUSH_MS", "100"),
    ];
    let server = TestServer::start(&db, &env).await;
    let (gw, _) = person(&server, "gw", "grid_worker", (27.2, 115.0), false).await;
    let grid = grid(&server, gw).await;
    let (quiet, mut quiet_device) = elder_with_device(&server, grid, 860_000_000_000_041, 24).await;
    let (talking, mut talking_device) =
        elder_with_device(&server, grid, 860_000_000_000_042, 24).await;
    // Installed but never heard from: silent from its registration.
    let (status, never) = server
        .post(
            "/api/v1/elders",
            json!({ "name": "老人 never", "address": "吉州区 文山街道 思源社区 5 号",
                    "lat": 27.11, "lon": 114.98, "living": "alone", "grid_id": grid }),
        )
        .await;
    assert_eq!(status, 201, "{never}");
    let never = never["id"].as_i64().expect("elder id");
    server
        .register_device(
            "native",
            "860000000000043",
            Some(&hex::encode(demo_key(860_000_000_000_043))),
            Some(never),
        )
        .await;
    let technical_of = |list: &[Value], elder: i64| -> Vec<Value> {
        list.iter()
            .filter(|i| i["category"] == "technical" && i["elder_id"] == elder)
            .cloned()
            .collect()
    };
    let started = tokio::time::Instant::now();
    let incident = loop {
        // A heartbeat every virtual 30 s keeps the second device alive.
        talking_device.heartbeat(90, WAIT).await.expect("heartbeat");
        let list = server.incidents().await;
        assert!(
            technical_of(&list, talking).is_empty(),
            "a live device flagged"
        );
        if let Some(i) = technical_of(&list, quiet).first() {
            break i.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "the silent device was never flagged"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(incident["kind"], "silent_device");
    let id = incident["id"].as_i64().expect("id");
    let offers = wait_events(&server, id, "offer_sent", 1).await;
    assert_eq!(offers[0]["detail"]["responder_id"], gw);
    // Silent for at least three heartbeat periods of its clock before it was flagged.
    let opened = wait_events(&server, id, "opened", 1).await;
    assert!(
        opened[0]["detail"]["silent_ms"].as_i64() >= Some(180_000),
        "{opened:?}"
    );
    // Flagged once, not again while the incident is open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(technical_of(&server.incidents().await, quiet).len(), 1);
    // Nor after the grid worker's visit is closed while the device stays dead: one incident per
    // silence, not one every few heartbeat periods.
    let (status, body) = server
        .post(
            &format!("/api/v1/incidents/{id}/close"),
            json!({ "outcome": "resolved", "note": "device unplugged, replaced tomorrow" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..8 {
        talking_device.heartbeat(90, WAIT).await.expect("heartbeat");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(technical_of(&server.incidents().await, quiet).len(), 1);
    // Heard from again, then silent again: a new silence, a new incident.
    quiet_device.heartbeat(80, WAIT).await.expect("heartbeat");
    let started = tokio::time::Instant::now();
    while technical_of(&server.incidents().await, quiet).len() < 2 {
        talking_device.heartbeat(90, WAIT).await.expect("heartbeat");
        assert!(
            started.elapsed() < WAIT,
            "the second silence was never flagged"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let list = server.incidents().await;
    let never_flagged = technical_of(&list, never);
    assert_eq!(
        never_flagged.len(),
        1,
        "a device never heard from: {list:?}"
    );
    assert_eq!(never_flagged[0]["kind"], "silent_device");
    server.stop().await;
}

/// The standard's rule for a broken alarm: fixed within the technical time to done, or a person
/// goes to the elder. On a clock 60 times the wall clock with a 5-minute time to done: the silent
/// device's technical incident is left open, and once it is overdue a welfare visit
/// (`device_out_of_service`) is opened for the elder and offered to the grid worker, once.
#[tokio::test]
async fn a_silent_device_not_fixed_in_time_sends_a_person_to_the_elder() {
    let db = Db::sqlite();
    let env = [
        ("ONEKEY_CLOCK__SCALE", "60"),
        ("ONEKEY_DISPATCH__SILENCE_CHECK_MS", "100"),
        ("ONEKEY_DISPATCH__TIMER_POLL_MS", "50"),
        ("ONEKEY_INTAKE__STATUS_FLUSH_MS", "100"),
        ("ONEKEY_DISPATCH__POLICY__TECHNICAL__SLA__DONE_S", "300"),
    ];
    let server = TestServer::start(&db, &env).await;
    let (gw, _) = person(&server, "gw", "grid_worker", (27.2, 115.0), false).await;
    let grid = grid(&server, gw).await;
    let (elder, _device) = elder_with_device(&server, grid, 860_000_000_000_051, 24).await;
    let of_kind = |list: &[Value], kind: &str| -> Vec<Value> {
        list.iter()
            .filter(|i| i["elder_id"] == elder && i["kind"] == kind)
            .cloned()
            .collect()
    };
    let started = tokio::time::Instant::now();
    let (silent_at, visit) = loop {
        let list = server.incidents().await;
        let silent = of_kind(&list, "silent_device");
        let visits = of_kind(&list, "device_out_of_service");
        if let (Some(s), Some(v)) = (silent.first(), visits.first()) {
            break (s.clone(), v.clone());
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no visit for the elder whose device stayed broken: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(visit["category"], "welfare", "{visit}");
    let opened_gap =
        visit["received_at"].as_i64().unwrap_or(0) - silent_at["received_at"].as_i64().unwrap_or(0);
    assert!(
        opened_gap >= 300_000,
        "the visit waits for the technical time to done (5 virtual minutes), not {opened_gap} ms"
    );
    let silent_opened =
        wait_events(&server, silent_at["id"].as_i64().expect("id"), "opened", 1).await;
    eprintln!(
        "silence flagged after {} virtual ms without a frame (3 heartbeats of 60 s + 30 s margin); \
         the visit opened {opened_gap} virtual ms later (time to done 300 s)",
        silent_opened[0]["detail"]["silent_ms"]
    );
    let id = visit["id"].as_i64().expect("id");
    let opened = wait_events(&server, id, "opened", 1).await;
    assert_eq!(
        opened[0]["detail"]["technical_incident_id"], silent_at["id"],
        "{opened:?}"
    );
    let offers = wait_events(&server, id, "offer_sent", 1).await;
    assert_eq!(offers[0]["detail"]["responder_id"], gw);
    assert_eq!(
        server.metric("onekey_out_of_service_visits_total").await,
        1.0
    );
    // One visit per silence, not one every pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = server.incidents().await;
    assert_eq!(of_kind(&list, "device_out_of_service").len(), 1, "{list:?}");
    server.stop().await;
}
