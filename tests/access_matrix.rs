//! The whole access matrix, from outside: every route in `/openapi.json` × anonymous, each role
//! (admin, dispatcher, viewer, responder) and a second responder, checked against the table in
//! `src/web/policy.rs`. A route without a row in the table fails here, by name.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Db, TestServer};
use onekey::web::policy::{self, Role};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Routes outside the API document that the table must also have.
const OUTSIDE_API: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/app"),
    ("GET", "/app-sw.js"),
    ("GET", "/assets/{*path}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = server
        .http
        .request(method, format!("{}{path}", server.base()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answer in time")
        .expect("request");
    let status = res.status().as_u16();
    let streaming = res
        .headers()
        .get("content-type")
        .is_some_and(|t| t.to_str().unwrap_or("").starts_with("text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

struct Fixture {
    ids: BTreeMap<&'static str, i64>,
}

impl Fixture {
    /// The concrete path of a route template.
    fn path(&self, template: &str) -> String {
        let id_of = |param: &str| -> i64 {
            if param == "incident_id" {
                return self.ids["incident"];
            }
            let resource = template
                .split('/')
                .take_while(|s| !s.starts_with('{'))
                .last()
                .unwrap_or("");
            match resource {
                "incidents" => self.ids["incident"],
                "areas" => self.ids["grid"],
                "elders" => self.ids["elder"],
                "devices" => self.ids["device"],
                "responders" => self.ids["responder_a"],
                "operators" => self.ids["spare_operator"],
                // No such row: an allowed caller gets 404, a refused one 401/403 first.
                "webhooks" | "notifications" => 999_999,
                other => panic!("no fixture id for {other} in {template}"),
            }
        };
        template
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => id_of(param).to_string(),
                    None => seg.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }
}

async fn seed(server: &TestServer) -> Fixture {
    let mut ids = BTreeMap::new();
    let mut parent = None;
    let mut district = None;
    for (level, code) in [
        ("district", "M"),
        ("street", "M-S"),
        ("community", "M-S-C"),
        ("grid", "M-S-C-1"),
    ] {
        let (status, area) = server
            .post(
                "/api/v1/areas",
                json!({"level": level, "code": code, "name": code, "parent_id": parent}),
            )
            .await;
        assert_eq!(status, 201, "{area}");
        parent = area["id"].as_i64();
        district = district.or(parent);
    }
    ids.insert("grid", parent.expect("grid"));
    let (status, other_street) = server
        .post(
            "/api/v1/areas",
            json!({"level": "street", "code": "M-T", "name": "other", "parent_id": district}),
        )
        .await;
    assert_eq!(status, 201, "{other_street}");
    ids.insert("other_street", other_street["id"].as_i64().expect("id"));
    let key = demo_key(777);
    let (elder, device) = server.register_native_device(777, &key).await;
    let res = server
        .http
        .put(format!("{}/api/v1/elders/{elder}", server.base()))
        .bearer_auth(&server.token)
        .json(
            &json!({"name": "矩阵老人", "address": "1 号", "lat": 27.11, "lon": 114.98,
                      "living": "alone", "grid_id": ids["grid"], "key_safe_code": "2468"}),
        )
        .send()
        .await
        .expect("PUT elder");
    assert_eq!(res.status(), 200);
    ids.insert("elder", elder);
    ids.insert("device", device);
    let mut pendant = NativeDevice::connect(&server.addr("device_tcp"), 777, key)
        .await
        .expect("connect");
    pendant
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("alarm");
    let incident = server.incidents().await[0]["id"]
        .as_i64()
        .expect("incident");
    ids.insert("incident", incident);
    for (name, phone) in [
        ("responder_a", "13900000001"),
        ("responder_b", "13900000002"),
    ] {
        let (status, r) = server
            .post(
                "/api/v1/responders",
                json!({"name": name, "phone": phone, "kind": "volunteer", "home_lat": 27.11,
                       "home_lon": 114.98, "grid_id": ids["grid"], "password": "volunteer-pass"}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        ids.insert(name, r["id"].as_i64().expect("id"));
    }
    let (status, spare) = server
        .post(
            "/api/v1/operators",
            json!({"name": "spare", "password": "spare-pass-1", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201);
    ids.insert("spare_operator", spare["id"].as_i64().expect("id"));
    Fixture { ids }
}

#[tokio::test]
async fn every_route_answers_exactly_the_roles_its_row_allows() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[("ONEKEY_LOGIN_BURST", "1000")]).await;
    let fx = seed(&server).await;
    for (name, role) in [("m-dispatcher", "dispatcher"), ("m-viewer", "viewer")] {
        let (status, _) = server
            .post(
                "/api/v1/operators",
                json!({"name": name, "password": "matrix-pass-1", "role": role}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, _) = server
        .post(
            "/api/v1/operators",
            json!({"name": "m-scoped", "password": "matrix-pass-1", "role": "dispatcher",
                   "scope_area_id": fx.ids["other_street"]}),
        )
        .await;
    assert_eq!(status, 201);

    // Responder A is offered the incident; responder B is not.
    let responder_a = server
        .login_responder("responder_a", "volunteer-pass")
        .await;
    let responder_b = server
        .login_responder("responder_b", "volunteer-pass")
        .await;
    let (status, _) = send(
        &server,
        "POST",
        "/api/v1/responder/duty",
        Some(&responder_a),
        Some(&json!({"on_duty": true, "lat": 27.11, "lon": 114.98})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, offer) = server
        .post(
            &format!("/api/v1/incidents/{}/offer", fx.ids["incident"]),
            json!({"responder_id": fx.ids["responder_a"]}),
        )
        .await;
    assert_eq!(status, 200, "{offer}");

    let callers: Vec<(&str, Option<Role>, Option<String>)> = vec![
        ("anonymous", None, None),
        ("admin", Some(Role::Admin), Some(server.token.clone())),
        (
            "dispatcher",
            Some(Role::Dispatcher),
            Some(server.login("m-dispatcher", "matrix-pass-1").await),
        ),
        (
            "viewer",
            Some(Role::Viewer),
            Some(server.login("m-viewer", "matrix-pass-1").await),
        ),
        (
            "responder",
            Some(Role::Responder),
            Some(responder_a.clone()),
        ),
        (
            "second responder",
            Some(Role::Responder),
            Some(responder_b.clone()),
        ),
    ];

    let (status, doc) = send(&server, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, p)| policy::rule(m, p).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes in /openapi.json without a row in src/web/policy.rs RULES: {missing:?}"
    );
    let stale: Vec<String> = policy::RULES
        .iter()
        .filter(|r| !routes.iter().any(|(m, p)| m == r.method && p == r.path))
        .filter(|r| !OUTSIDE_API.contains(&(r.method, r.path)))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    // Logging out and the responder's task actions change state; they go last.
    routes.sort_by_key(|(m, p)| {
        (
            p.contains("/auth/logout") || p.contains("/responder/tasks/"),
            m.clone(),
            p.clone(),
        )
    });
    let mut checked = 0;
    let mut admitted = 0;
    let mut failures = Vec::new();
    for (method, template) in &routes {
        let rule = policy::rule(method, template).expect("row");
        let path = fx.path(template);
        let body = (method != "GET").then(|| json!({}));
        for (who, role, token) in &callers {
            let token = if template.ends_with("/auth/logout") {
                // A fresh session to end, so the others stay usable.
                match *who {
                    "admin" => Some(server.login(common::ADMIN, common::ADMIN_PASSWORD).await),
                    "dispatcher" => Some(server.login("m-dispatcher", "matrix-pass-1").await),
                    "viewer" => Some(server.login("m-viewer", "matrix-pass-1").await),
                    "responder" => Some(
                        server
                            .login_responder("responder_a", "volunteer-pass")
                            .await,
                    ),
                    "second responder" => Some(
                        server
                            .login_responder("responder_b", "volunteer-pass")
                            .await,
                    ),
                    _ => None,
                }
            } else {
                token.clone()
            };
            let (status, answer) =
                send(&server, method, &path, token.as_deref(), body.as_ref()).await;
            checked += 1;
            let allowed = rule.allows(*role);
            let mine = template.starts_with("/api/v1/responder/tasks/{");
            let ok = match (allowed, role) {
                (false, None) => status == 401,
                (false, Some(_)) => status == 403,
                // The second responder passes the table but must not reach the first one's task.
                (true, _) if mine && *who == "second responder" => {
                    matches!(status, 404 | 409)
                }
                (true, _) => !matches!(status, 401 | 403) && status < 500,
            };
            if allowed && status < 300 {
                admitted += 1;
            }
            if !ok {
                failures.push(format!(
                    "{method} {template} as {who}: {status} (allowed: {allowed}) {answer}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "access matrix: {} routes × {} callers = {checked} checks, {admitted} admitted with 2xx",
        routes.len(),
        callers.len()
    );

    // Data a second responder must not see; a scoped operator sees nothing outside their area.
    let (_, tasks_b) = send(
        &server,
        "GET",
        "/api/v1/responder/tasks",
        Some(&responder_b),
        None,
    )
    .await;
    assert_eq!(tasks_b, json!([]), "the second responder sees no task");
    let scoped = server.login("m-scoped", "matrix-pass-1").await;
    for path in [
        format!("/api/v1/incidents/{}", fx.ids["incident"]),
        format!("/api/v1/elders/{}", fx.ids["elder"]),
        format!("/api/v1/devices/{}", fx.ids["device"]),
    ] {
        let (status, _) = send(&server, "GET", &path, Some(&scoped), None).await;
        assert_eq!(status, 404, "{path} is outside the scoped operator's area");
    }
    for path in ["/api/v1/incidents", "/api/v1/elders", "/api/v1/devices"] {
        let (status, list) = send(&server, "GET", path, Some(&scoped), None).await;
        assert_eq!((status, list), (200, json!([])), "{path}");
    }
    let (status, _) = send(
        &server,
        "POST",
        &format!("/api/v1/incidents/{}/ack", fx.ids["incident"]),
        Some(&scoped),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

/// Creates `code`'s chain under `district` (street, community, grid) and an elder in the grid with
/// native device `device_id`; returns (street id, grid id, elder id, device row id).
async fn street_with_elder(
    server: &TestServer,
    district: i64,
    code: &str,
    device_id: u64,
) -> (i64, i64, i64, i64) {
    let mut parent = district;
    let mut chain = Vec::new();
    for (level, suffix) in [("street", ""), ("community", "-C"), ("grid", "-C-1")] {
        let code = format!("{code}{suffix}");
        let (status, area) = server
            .post(
                "/api/v1/areas",
                json!({"level": level, "code": code, "name": code, "parent_id": parent}),
            )
            .await;
        assert_eq!(status, 201, "{area}");
        parent = area["id"].as_i64().expect("id");
        chain.push(parent);
    }
    let (elder, device) = server
        .register_native_device(device_id, &demo_key(device_id))
        .await;
    let res = server
        .http
        .put(format!("{}/api/v1/elders/{elder}", server.base()))
        .bearer_auth(&server.token)
        .json(
            &json!({"name": format!("老人 {code}"), "address": "1 号", "lat": 27.11,
                      "lon": 114.98, "living": "alone", "grid_id": chain[2]}),
        )
        .send()
        .await
        .expect("PUT elder");
    assert_eq!(res.status(), 200);
    (chain[0], chain[2], elder, device)
}

#[tokio::test]
async fn a_scoped_operators_stream_reports_and_fleet_show_only_their_area() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (status, district) = server
        .post(
            "/api/v1/areas",
            json!({"level": "district", "code": "Z", "name": "Z", "parent_id": null}),
        )
        .await;
    assert_eq!(status, 201);
    let district = district["id"].as_i64().expect("id");
    let (street_a, grid_a, elder_a, device_a) =
        street_with_elder(&server, district, "Z-A", 791).await;
    let (_, grid_b, elder_b, _) = street_with_elder(&server, district, "Z-B", 792).await;
    let (status, _) = server
        .post(
            "/api/v1/operators",
            json!({"name": "street-a", "password": "street-pass-1", "role": "viewer",
                   "scope_area_id": street_a}),
        )
        .await;
    assert_eq!(status, 201);
    let scoped = server.login("street-a", "street-pass-1").await;
    let mut scoped_feed = common::EventStream::open_as(&server, &scoped, None).await;
    let mut full_feed = common::EventStream::open(&server, None).await;

    // Street B's elder calls first, then street A's.
    for id in [792, 791] {
        let mut pendant = NativeDevice::connect(&server.addr("device_tcp"), id, demo_key(id))
            .await
            .expect("connect");
        pendant
            .alarm(AlarmKind::Sos, None, WAIT)
            .await
            .expect("ACK");
    }
    let incidents = server.incidents().await;
    let incident_of = |elder: i64| {
        incidents
            .iter()
            .find(|i| i["elder_id"] == elder)
            .and_then(|i| i["id"].as_i64())
            .expect("incident")
    };
    let (incident_a, incident_b) = (incident_of(elder_a), incident_of(elder_b));

    // The full feed shows both openings; the scoped one only street A's, and nothing of B's.
    let mut opened = Vec::new();
    while opened.len() < 2 {
        let e = full_feed
            .next_of_kind("opened", WAIT)
            .await
            .expect("opened");
        opened.push(e.data["incident_id"].as_i64().expect("id"));
    }
    assert_eq!(opened, vec![incident_b, incident_a]);
    let first = scoped_feed
        .next(WAIT)
        .await
        .expect("an event on the scoped feed");
    assert_eq!(first.data["incident_id"], incident_a, "{:?}", first.data);
    while let Some(e) = scoped_feed.next(Duration::from_millis(500)).await {
        assert_eq!(e.data["incident_id"], incident_a, "{:?}", e.data);
    }

    // Reports and their CSV count street A's incident only.
    let as_scoped = |path: &str| {
        server
            .http
            .get(format!("{}{path}", server.base()))
            .bearer_auth(&scoped)
            .send()
    };
    let report: Value = as_scoped("/api/v1/reports")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["total"], 1, "{report}");
    let (_, full) = server.get("/api/v1/reports").await;
    assert_eq!(full["total"], 2, "{full}");
    let csv = as_scoped("/api/v1/reports/incidents.csv")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "header and one row: {csv}");
    assert!(
        csv.contains("老人 Z-A") && !csv.contains("老人 Z-B"),
        "{csv}"
    );

    // The fleet: street A's grid and device only.
    let fleet: Value = as_scoped("/api/v1/fleet")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grids: Vec<i64> = fleet["grids"]
        .as_array()
        .expect("grids")
        .iter()
        .filter_map(|g| g["area_id"].as_i64())
        .collect();
    assert_eq!(grids, vec![grid_a], "{fleet}");
    let devices: Vec<i64> = fleet["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    assert_eq!(devices, vec![device_a], "{fleet}");
    let (_, full) = server.get("/api/v1/fleet").await;
    assert!(
        full["grids"]
            .as_array()
            .expect("grids")
            .iter()
            .any(|g| g["area_id"] == grid_b),
        "{full}"
    );
}

/// The pages and every file they load are public: a browser fetches them before anyone signs in.
#[tokio::test]
async fn the_console_and_app_files_load_without_a_session() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/app", "text/html"),
        ("/app-sw.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
        ("/assets/vendor/leaflet/leaflet.js", "text/javascript"),
    ] {
        let res = server
            .http
            .get(format!("{}{path}", server.base()))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|t| t.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert_eq!(status, 200, "{path}");
        assert!(
            content_type.starts_with(kind),
            "{path} is served as {content_type}, not {kind}"
        );
    }
}
