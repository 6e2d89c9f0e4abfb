//! The API behind the operator's work on an incident, on the real binary over HTTP, on SQLite and
//! PostgreSQL: taking and handing over (a colleague's incident is refused without `force`), the
//! procedure for the alarm kind (configured through the environment here) and its steps, call
//! records, the queue's names and stages, responder candidates nearest first, paged tables,
//! disabling records (a disabled operator or responder cannot sign in), the import preview that
//! writes nothing, and reports that count an emergency nobody acknowledged, with CSV export.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn send(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let url = format!("{}{path}", server.base());
    let req = match method {
        "PUT" => server.http.put(url),
        "GET" => server.http.get(url),
        _ => server.http.post(url),
    };
    let res = req
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login_status(server: &TestServer, kind: &str, name: &str, password: &str) -> u16 {
    server
        .http
        .post(format!("{}/api/v1/auth/login", server.base()))
        .json(&json!({ "kind": kind, "name": name, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

async fn work(db: Db) {
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_DISPATCH__TIMER_POLL_MS", "100"),
            ("ONEKEY_CONSOLE__CENTRE_PHONE", "0796-12349"),
            ("ONEKEY_CONSOLE__PROCEDURES__PENDANT__KINDS", "[sos]"),
            (
                "ONEKEY_CONSOLE__PROCEDURES__PENDANT__STEPS",
                "[{id=call_elder,call=elder},{id=ask_neighbour}]",
            ),
        ],
    )
    .await;
    let admin = server.token.clone();
    for (name, pw) in [("甲", "operator-a-pass"), ("乙", "operator-b-pass")] {
        let (s, _) = server
            .post(
                "/api/v1/operators",
                json!({ "name": name, "password": pw, "role": "operator" }),
            )
            .await;
        assert_eq!(s, 201);
    }
    let a = server.login("甲", "operator-a-pass").await;
    let b = server.login("乙", "operator-b-pass").await;

    // The configuration the console reads: the centre's number and the procedure from the env.
    let (s, config) = send(&server, &a, "GET", "/api/v1/console/config", json!(null)).await;
    assert_eq!(s, 200, "{config}");
    assert_eq!(config["centre_phone"], "0796-12349");
    assert_eq!(
        config["procedures"]["pendant"]["steps"][1]["id"],
        "ask_neighbour"
    );
    assert_eq!(
        config["procedures"]["fire"]["steps"][0]["call"], "119",
        "defaults stay"
    );
    assert_eq!(config["sla"]["emergency"]["ack_s"], 60);

    let (_, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": "王奶奶", "phone": "13900000001", "address": "思源社区 3 栋", "lat": 27.11, "lon": 114.98,
                    "living": "alone" }),
        )
        .await;
    let elder_id = elder["id"].as_i64().expect("elder");
    let key = demo_key(31);
    let ident = 860_000_000_000_031u64;
    server
        .register_device(
            "native",
            &ident.to_string(),
            Some(&hex::encode(key)),
            Some(elder_id),
        )
        .await;
    let mut people = Vec::new();
    for (name, phone, dlat, pw) in [
        ("近的", "13900000011", 0.001, Some("responder-near")),
        ("远的", "13900000012", 0.02, None),
    ] {
        let (s, r) = server
            .post(
                "/api/v1/responders",
                json!({ "name": name, "phone": phone, "kind": "volunteer", "home_lat": 27.11 + dlat,
                        "home_lon": 114.98, "password": pw, "skills": ["first_aid"] }),
            )
            .await;
        assert_eq!(s, 201, "{r}");
        people.push(r["id"].as_i64().expect("id"));
    }

    let mut device = NativeDevice::connect(&server.addr("device_tcp"), ident, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");
    device.alarm(AlarmKind::Sos, None, WAIT).await.expect("sos");
    let id = server.incidents().await[0]["id"].as_i64().expect("id");
    let base = format!("/api/v1/incidents/{id}");

    // The queue names the elder and says it waits for an acknowledgement.
    let (s, queue) = send(&server, &a, "GET", "/api/v1/queue", json!(null)).await;
    assert_eq!(s, 200, "{queue}");
    assert_eq!(queue[0]["elder_name"], "王奶奶", "{queue}");
    assert_eq!(queue[0]["address"], "思源社区 3 栋");
    assert_eq!(queue[0]["stage"], "waiting_ack");

    // 甲 takes it; 乙 is refused, then takes over with force; only the holder hands over.
    let (s, inc) = send(&server, &a, "POST", &format!("{base}/take"), json!({})).await;
    assert_eq!((s, inc["taken_by"].as_str()), (200, Some("甲")), "{inc}");
    let (s, err) = send(&server, &b, "POST", &format!("{base}/take"), json!({})).await;
    assert_eq!(s, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("甲")),
        "{err}"
    );
    let (s, _) = send(
        &server,
        &b,
        "POST",
        &format!("{base}/handover"),
        json!({ "to": "乙" }),
    )
    .await;
    assert_eq!(s, 409, "乙 does not hold it");
    let (s, inc) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/handover"),
        json!({ "to": "乙", "note": "交班" }),
    )
    .await;
    assert_eq!((s, inc["taken_by"].as_str()), (200, Some("乙")), "{inc}");
    let (s, _) = send(
        &server,
        &b,
        "POST",
        &format!("{base}/handover"),
        json!({ "to": "nobody" }),
    )
    .await;
    assert_eq!(s, 409, "no such colleague");
    let (s, inc) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/take"),
        json!({ "force": true }),
    )
    .await;
    assert_eq!((s, inc["taken_by"].as_str()), (200, Some("甲")));
    // Acknowledging keeps the holder.
    let (s, inc) = send(&server, &b, "POST", &format!("{base}/ack"), json!({})).await;
    assert_eq!((s, inc["taken_by"].as_str()), (200, Some("甲")));

    // The procedure from the environment; steps of another procedure are refused.
    let (_, detail) = server.get(&base).await;
    assert_eq!(
        detail["procedure"]["name"], "pendant",
        "{}",
        detail["procedure"]
    );
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/steps"),
        json!({ "step": "call_119", "outcome": "done" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/steps"),
        json!({ "step": "ask_neighbour", "outcome": "maybe" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, ev) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/steps"),
        json!({ "step": "ask_neighbour", "outcome": "done", "note": "邻居去看了" }),
    )
    .await;
    assert_eq!(
        (s, ev["kind"].as_str()),
        (200, Some("procedure_step")),
        "{ev}"
    );

    // Calls: validated and logged.
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/calls"),
        json!({ "party": "elder", "number": "abc", "result": "reached" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/calls"),
        json!({ "party": "alien", "number": "120", "result": "reached" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, ev) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/calls"),
        json!({ "party": "elder", "name": "王奶奶", "number": "13900000001", "result": "busy" }),
    )
    .await;
    assert_eq!(
        (s, ev["detail"]["result"].as_str()),
        (200, Some("busy")),
        "{ev}"
    );
    let (_, detail) = server.get(&base).await;
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    for k in ["taken", "handed_over", "procedure_step", "call"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_eq!(
        detail["actors"][format!("device:{}", detail["incident"]["device_id"])]
            .as_str()
            .map(|s| s.contains("native")),
        Some(true),
        "{}",
        detail["actors"]
    );

    // Candidates: nobody on duty yet, so by default none; `all` lists both, nearest first.
    let (s, cands) = send(
        &server,
        &a,
        "GET",
        &format!("{base}/candidates?all=true"),
        json!(null),
    )
    .await;
    assert_eq!(s, 200, "{cands}");
    assert_eq!(cands[0]["id"], people[0], "{cands}");
    assert_eq!(cands[1]["id"], people[1]);
    assert!(
        cands[0]["distance_m"]
            .as_f64()
            .is_some_and(|d| d > 50.0 && d < 200.0),
        "{cands}"
    );
    assert_eq!(cands[0]["available"], false);
    let (_, cands) = send(
        &server,
        &a,
        "GET",
        &format!("{base}/candidates"),
        json!(null),
    )
    .await;
    assert_eq!(
        cands.as_array().map(Vec::len),
        Some(0),
        "only available ones by default: {cands}"
    );

    // Tables: paged and searchable, with names.
    let (s, page) = send(
        &server,
        &a,
        "GET",
        "/api/v1/tables/responders?q=远&limit=1",
        json!(null),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        (
            page["total"].as_i64(),
            page["items"][0]["responder"]["name"].as_str()
        ),
        (Some(1), Some("远的"))
    );
    let (_, page) = send(
        &server,
        &a,
        "GET",
        "/api/v1/tables/devices?q=王奶奶",
        json!(null),
    )
    .await;
    assert_eq!(page["items"][0]["elder_name"], "王奶奶", "{page}");

    // Disabled: a responder cannot sign in and is no candidate; an operator cannot sign in.
    assert_eq!(
        login_status(&server, "responder", "13900000011", "responder-near").await,
        200
    );
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("/api/v1/responders/{}/active", people[0]),
        json!({ "active": false }),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        login_status(&server, "responder", "13900000011", "responder-near").await,
        401
    );
    let (_, cands) = send(
        &server,
        &a,
        "GET",
        &format!("{base}/candidates?all=true"),
        json!(null),
    )
    .await;
    assert_eq!(cands.as_array().map(Vec::len), Some(1), "{cands}");
    let (_, ops) = server.get("/api/v1/operators").await;
    let b_id = ops
        .as_array()
        .and_then(|o| o.iter().find(|x| x["name"] == "乙"))
        .and_then(|x| x["id"].as_i64())
        .expect("乙");
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("/api/v1/operators/{b_id}/active"),
        json!({ "active": false }),
    )
    .await;
    assert_eq!(s, 403, "admins only");
    let (s, _) = send(
        &server,
        &admin,
        "POST",
        &format!("/api/v1/operators/{b_id}/active"),
        json!({ "active": false }),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        login_status(&server, "operator", "乙", "operator-b-pass").await,
        401
    );
    let (s, _) = send(&server, &b, "GET", "/api/v1/queue", json!(null)).await;
    assert_eq!(s, 401, "the disabled operator's session ended");

    // Import preview writes nothing.
    let csv = "name,address,lat,lon,living\n新老人,思源社区 9 栋,27.111,114.981,alone\n王奶奶,思源社区 3 栋,27.11,114.98,alone\n";
    let res = server
        .http
        .post(format!("{}/api/v1/import?preview=true", server.base()))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("preview");
    let preview: Value = res.json().await.expect("json");
    let actions: Vec<&str> = preview["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, vec!["create", "exists"], "{preview}");
    let (_, page) = send(&server, &a, "GET", "/api/v1/tables/elders", json!(null)).await;
    assert_eq!(page["total"], 1, "nothing written: {page}");

    // A second SOS closed without acknowledgement misses the answer target; CSV has both.
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("{base}/close"),
        json!({ "outcome": "resolved" }),
    )
    .await;
    assert_eq!(s, 200);
    device
        .alarm(AlarmKind::Fall, None, WAIT)
        .await
        .expect("fall");
    let second = server
        .incidents()
        .await
        .iter()
        .find(|i| i["id"] != id)
        .and_then(|i| i["id"].as_i64())
        .expect("second");
    let (s, _) = send(
        &server,
        &a,
        "POST",
        &format!("/api/v1/incidents/{second}/close"),
        json!({ "outcome": "false_alarm" }),
    )
    .await;
    assert_eq!(s, 200);
    let (_, report) = server.get("/api/v1/reports").await;
    assert_eq!(report["answer"]["count"], 2, "{report}");
    assert_eq!(report["answer"]["unacknowledged"], 1);
    assert_eq!(report["answer"]["share_within_target"], 0.5);
    let op_a = report["operators"]
        .as_array()
        .and_then(|o| o.iter().find(|x| x["operator"] == "甲"))
        .cloned()
        .expect("甲");
    assert_eq!(op_a["closed"], 2, "{op_a}");
    let csv = server
        .http
        .get(format!("{}/api/v1/reports/incidents.csv", server.base()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    let text = csv.text().await.expect("text");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains(",fall,王奶奶,"), "{text}");
}

#[tokio::test]
async fn operator_work_on_an_incident_sqlite() {
    work(Db::sqlite()).await;
}

#[tokio::test]
async fn operator_work_on_an_incident_postgres() {
    work(Db::postgres().await).await;
}
