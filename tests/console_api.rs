//! The endpoints behind the console's reports, fleet, incident map and administration pages, on
//! the real binary over HTTP, on SQLite and PostgreSQL: CSV import (bad rows by line, idempotent),
//! operator accounts (admins only), offers with live positions on the incident page, devices by
//! state and uncovered grids, and a report that counts an acknowledged, false-alarm SOS.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn post_csv(server: &TestServer, token: &str, csv: &str) -> (u16, Value) {
    let res = server
        .http
        .post(format!("{}/api/v1/import", server.base()))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("import");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get_as(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let res = server
        .http
        .get(format!("{}{path}", server.base()))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn console_endpoints(db: Db) {
    let server = TestServer::start(&db, &[("ONEKEY_DISPATCH__TIMER_POLL_MS", "100")]).await;
    let admin = server.token.clone();

    // Areas by CSV: one bad row is reported by line, the others land; a second import creates none.
    let areas = "code,level,name,parent_code\n\
                 JZ,district,吉州区,\n\
                 JZ-WS,street,文山街道,JZ\n\
                 JZ-WS-SY,community,思源社区,JZ-WS\n\
                 JZ-WS-SY-01,grid,思源一网格,JZ-WS-SY\n\
                 JZ-WS-SY-02,grid,思源二网格,JZ-WS-SY\n\
                 BAD,planet,不存在,JZ\n";
    let (status, report) = post_csv(&server, &admin, areas).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 5, "{report}");
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], 7, "{report}");
    let (_, again) = post_csv(&server, &admin, areas).await;
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(5))
    );
    let (status, err) = post_csv(&server, &admin, "what,is,this\n1,2,3\n").await;
    assert_eq!(status, 400, "an unknown CSV is refused: {err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("header")),
        "{err}"
    );

    let (_, list) = server.get("/api/v1/areas").await;
    let grid = |code: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|x| x["code"] == code))
            .and_then(|x| x["id"].as_i64())
            .unwrap_or_else(|| panic!("{code} in {list}"))
    };
    let (grid1, grid2) = (grid("JZ-WS-SY-01"), grid("JZ-WS-SY-02"));

    // Operator accounts: admins list them; a plain operator may not.
    let (status, _) = server
        .post(
            "/api/v1/operators",
            json!({ "name": "夜班", "password": "night-shift-1", "role": "operator" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, ops) = server.get("/api/v1/operators").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = ops
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"夜班"), "{ops}");
    assert!(
        ops.to_string().find("password").is_none(),
        "no hashes: {ops}"
    );
    let night = server.login("夜班", "night-shift-1").await;
    assert_eq!(get_as(&server, &night, "/api/v1/operators").await.0, 403);

    // An elder in grid 1 with a native device; a volunteer of grid 1 on duty next door.
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": "王奶奶", "address": "思源社区 3 栋", "lat": 27.11, "lon": 114.98,
                    "living": "alone", "grid_id": grid1 }),
        )
        .await;
    assert_eq!(status, 201, "{elder}");
    let key = demo_key(21);
    let device_id = 860_000_000_000_021u64;
    server
        .register_device(
            "native",
            &device_id.to_string(),
            Some(&hex::encode(key)),
            elder["id"].as_i64(),
        )
        .await;
    let (status, volunteer) = server
        .post(
            "/api/v1/responders",
            json!({ "name": "小李", "phone": "13900000021", "kind": "volunteer", "grid_id": grid1,
                    "home_lat": 27.1105, "home_lon": 114.9805, "password": "volunteer-pass" }),
        )
        .await;
    assert_eq!(status, 201, "{volunteer}");
    let vol_token = server.login_responder("小李", "volunteer-pass").await;
    let duty = server
        .http
        .post(format!("{}/api/v1/responder/duty", server.base()))
        .bearer_auth(&vol_token)
        .json(&json!({ "on_duty": true, "lat": 27.1106, "lon": 114.9806 }))
        .send()
        .await
        .expect("duty");
    assert_eq!(duty.status(), 204);

    // Fleet: grid 1 has its device (never seen yet counts as silent) and a volunteer on duty;
    // grid 2 has nobody.
    let (status, fleet) = server.get("/api/v1/fleet").await;
    assert_eq!(status, 200, "{fleet}");
    let of = |f: &Value, id: i64| {
        f["grids"]
            .as_array()
            .and_then(|g| g.iter().find(|x| x["area_id"] == id).cloned())
            .unwrap_or_else(|| panic!("grid {id} in {f}"))
    };
    assert_eq!(of(&fleet, grid1)["devices"]["silent"], 1, "{fleet}");
    assert_eq!(of(&fleet, grid1)["responders_on_duty"], 1);
    assert_eq!(of(&fleet, grid1)["uncovered"], false);
    assert_eq!(of(&fleet, grid2)["uncovered"], true);

    // An SOS: offered to the volunteer, whose live position the incident page carries.
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), device_id, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");
    device.alarm(AlarmKind::Sos, None, WAIT).await.expect("sos");
    let incident = server.incidents().await[0]["id"].as_i64().expect("id");
    let deadline = tokio::time::Instant::now() + WAIT;
    let detail = loop {
        let (_, detail) = server.get(&format!("/api/v1/incidents/{incident}")).await;
        if detail["offers"].as_array().is_some_and(|o| !o.is_empty()) {
            break detail;
        }
        assert!(tokio::time::Instant::now() < deadline, "no offer: {detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let offer = &detail["offers"][0];
    assert_eq!(offer["name"], "小李", "{offer}");
    assert_eq!(offer["status"], "pending");
    assert!(
        (offer["lat"].as_f64().unwrap_or(0.0) - 27.1106).abs() < 1e-6,
        "live position: {offer}"
    );
    // Device state is written in batches every couple of seconds: wait for "online".
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, fleet) = server.get("/api/v1/fleet").await;
        if of(&fleet, grid1)["devices"]["online"] == 1 {
            assert_eq!(of(&fleet, grid1)["devices"]["silent"], 0, "{fleet}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "heard from now: {fleet}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Acknowledged at once, then closed as a false alarm: the report counts both.
    let (status, _) = server
        .post(&format!("/api/v1/incidents/{incident}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            &format!("/api/v1/incidents/{incident}/close"),
            json!({ "outcome": "false_alarm" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, report) = server.get("/api/v1/reports").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["total"], 1, "{report}");
    assert_eq!(report["closed"], 1);
    assert_eq!(report["answer"]["count"], 1);
    assert_eq!(report["answer"]["within_target"], 1);
    assert_eq!(report["answer"]["share_within_target"], 1.0);
    assert_eq!(report["false_alarms"][0]["model"], "test-model");
    assert_eq!(report["false_alarms"][0]["false_alarms"], 1);
    let (status, _) = server.get("/api/v1/reports?since=10&until=5").await;
    assert_eq!(status, 400, "an empty period is refused");
    assert_eq!(get_as(&server, &vol_token, "/api/v1/reports").await.0, 403);
}

#[tokio::test]
async fn console_endpoints_sqlite() {
    console_endpoints(Db::sqlite()).await;
}

#[tokio::test]
async fn console_endpoints_postgres() {
    console_endpoints(Db::postgres().await).await;
}
