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
