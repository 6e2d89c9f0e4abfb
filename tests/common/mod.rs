//! Shared test harness: the real `onekey` binary on port 0, a fresh database per test, an API client.
#![allow(dead_code)]

pub mod peers;
pub mod pg;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Where a test's server keeps its data.
pub enum Db {
    /// A SQLite file in a temp dir.
    Sqlite(tempfile::TempDir),
    /// A fresh database on the shared PostgreSQL.
    Postgres(pg::TestDatabase),
    /// Any URL (a private PostgreSQL instance).
    Url(String),
}

impl Db {
    /// A new SQLite database.
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// A new database on 127.0.0.1:5432.
    pub async fn postgres() -> Db {
        Db::Postgres(pg::TestDatabase::create().await)
    }

    /// The secrets key every server on this database uses (`ONEKEY_SECRETS_KEY`): derived from a
    /// PostgreSQL URL (without its query), so restarts and other instances agree; `None` for
    /// SQLite, whose server keeps its key in a file beside the database.
    pub fn secrets_key(&self) -> Option<String> {
        let url = self.url();
        let base = url.split('?').next().unwrap_or_default();
        base.starts_with("postgres")
            .then(|| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(base.as_bytes())))
    }

    /// The URL to give the server.
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("onekey.db").display()),
            Db::Postgres(db) => db.url(),
            Db::Url(u) => u.clone(),
        }
    }
}

/// A running server process.
pub struct TestServer {
    child: Child,
    /// Listener addresses from the ready file.
    pub addrs: HashMap<String, String>,
    /// Temp dir holding the ready file and the log.
    pub dir: tempfile::TempDir,
    /// Admin bearer token.
    pub token: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// `http`, or `https` when the server was started with `ONEKEY_TLS__WEB=true`.
    pub scheme: &'static str,
}

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

impl TestServer {
    /// Starts `onekey serve` on `db` with every listener on port 0 and extra `env`.
    pub async fn start(db: &Db, env: &[(&str, &str)]) -> TestServer {
        TestServer::start_wrapped(db, env, &[]).await
    }

    /// Like [`TestServer::start`], with the binary run by `wrapper` (a command and its arguments,
    /// the binary and its arguments appended), e.g. in its own mount namespace.
    pub async fn start_wrapped(db: &Db, env: &[(&str, &str)], wrapper: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let bin = env!("CARGO_BIN_EXE_onekey");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("serve")
            .arg("--ready-file")
            .arg(&ready)
            .current_dir(dir.path())
            .env("ONEKEY_DATABASE_URL", db.url())
            .env("ONEKEY_HTTP_ADDR", "127.0.0.1:0")
            .env("ONEKEY_DEVICE_ADDR", "127.0.0.1:0")
            .env("ONEKEY_GT06_ADDR", "127.0.0.1:0")
            .env("ONEKEY_WATCH_ADDR", "127.0.0.1:0")
            .env("ONEKEY_H02_ADDR", "127.0.0.1:0")
            .env("ONEKEY_SIA_ADDR", "127.0.0.1:0")
            .env("ONEKEY_MQTT_LISTEN", "127.0.0.1:0")
            .env(
                "ONEKEY_BOOTSTRAP_ADMIN",
                format!("{ADMIN}:{ADMIN_PASSWORD}"),
            )
            .env("ONEKEY_LOG", "info,sqlx=warn,tower_http=warn")
            // The embedded broker's account for test clients (tests/mqtt_support).
            .env("ONEKEY_MQTT__BROKER__USERS__TESTER", "tester-pass-1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(key) = db.secrets_key() {
            cmd.env("ONEKEY_SECRETS_KEY", key);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn onekey");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let addrs: HashMap<String, String> = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                if let Ok(map) = serde_json::from_str(&text) {
                    break map;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("onekey exited with {status} before it was ready:\n{log}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "onekey did not become ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let setting = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let (http, scheme) = match (setting("ONEKEY_TLS__WEB"), setting("ONEKEY_TLS__CERT_FILE")) {
            (Some("true"), Some(cert)) => {
                let pem = std::fs::read(cert).expect("certificate");
                let client = reqwest::Client::builder()
                    .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
                    .build()
                    .expect("client");
                (client, "https")
            }
            _ => (reqwest::Client::new(), "http"),
        };
        let mut server = TestServer {
            child,
            addrs,
            dir,
            token: String::new(),
            http,
            scheme,
        };
        server.token = server.login(ADMIN, ADMIN_PASSWORD).await;
        server
    }

    /// `http://host:port` (`https://localhost:port` under TLS).
    pub fn base(&self) -> String {
        match self.scheme {
            "https" => format!(
                "https://localhost:{}",
                self.addrs["http"].rsplit(':').next().unwrap_or_default()
            ),
            _ => format!("http://{}", self.addrs["http"]),
        }
    }

    /// The address of a listener from the ready file.
    pub fn addr(&self, name: &str) -> String {
        self.addrs
            .get(name)
            .unwrap_or_else(|| panic!("no {name} listener in {:?}", self.addrs))
            .clone()
    }

    /// Logs in as an operator and returns the token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        self.login_as("operator", name, password).await
    }

    /// Logs in as a responder (by name or phone) and returns the token.
    pub async fn login_responder(&self, name: &str, password: &str) -> String {
        self.login_as("responder", name, password).await
    }

    async fn login_as(&self, kind: &str, name: &str, password: &str) -> String {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base()))
            .json(&json!({ "kind": kind, "name": name, "password": password }))
            .send()
            .await
            .expect("login request");
        assert_eq!(res.status(), 200, "{kind} login failed");
        res.json::<Value>().await.expect("login json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// GET an API path with the admin token; returns status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET `/healthz` as a monitor or load balancer does, without a session (whose lookup would
    /// need the store); returns status and JSON.
    pub async fn health(&self) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}/healthz", self.base()))
            .send()
            .await
            .expect("GET /healthz");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON to an API path with the admin token.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates an elder and a native device for it; returns (elder id, device row id).
    pub async fn register_native_device(&self, device_id: u64, key: &[u8; 32]) -> (i64, i64) {
        let (status, elder) = self
            .post(
                "/api/v1/elders",
                json!({ "name": format!("老人 {device_id}"), "address": "吉州区 文山街道 思源社区 1 号",
                        "lat": 27.11, "lon": 114.98, "living": "alone" }),
            )
            .await;
        assert_eq!(status, 201, "create elder: {elder}");
        let elder_id = elder["id"].as_i64().expect("elder id");
        let device_row = self
            .register_device(
                "native",
                &device_id.to_string(),
                Some(&hex::encode(key)),
                Some(elder_id),
            )
            .await;
        (elder_id, device_row)
    }

    /// Registers native device `id` (its demo key) for `elder`, connects it and says hello.
    pub async fn native_device_for(
        &self,
        elder: Option<i64>,
        id: u64,
    ) -> onekey_sim::native::NativeDevice {
        let key = onekey_sim::native::demo_key(id);
        self.register_device("native", &id.to_string(), Some(&hex::encode(key)), elder)
            .await;
        let mut device =
            onekey_sim::native::NativeDevice::connect(&self.addr("device_tcp"), id, key)
                .await
                .expect("connect");
        device.hello(Duration::from_secs(10)).await.expect("hello");
        device
    }

    /// Registers a device of any protocol; returns its row id.
    pub async fn register_device(
        &self,
        protocol: &str,
        ident: &str,
        secret_hex: Option<&str>,
        elder_id: Option<i64>,
    ) -> i64 {
        let (status, device) = self
            .post(
                "/api/v1/devices",
                json!({ "protocol": protocol, "ident": ident, "secret_hex": secret_hex,
                        "elder_id": elder_id, "model": "test-model", "heartbeat_s": 60 }),
            )
            .await;
        assert_eq!(status, 201, "create device: {device}");
        device["id"].as_i64().expect("device id")
    }

    /// Imports a directory (`onekey-dataset/1`) through `POST /api/v1/import`.
    pub async fn import_dataset(&self, dataset: &impl serde::Serialize) {
        let res = self
            .http
            .post(format!("{}/api/v1/import", self.base()))
            .bearer_auth(&self.token)
            .body(serde_json::to_string(dataset).expect("dataset json"))
            .send()
            .await
            .expect("import");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "import: {text}");
    }

    /// Imports a CSV file (`POST /api/v1/import`, `text/csv`) and expects it accepted.
    pub async fn import_csv(&self, csv: String) {
        let res = self
            .http
            .post(format!("{}/api/v1/import", self.base()))
            .bearer_auth(&self.token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("import");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "import: {text}");
    }

    /// Where simulated devices reach this server: every listener, and the embedded broker with
    /// the account `mqtt_user` (name, password).
    pub fn device_targets(&self, mqtt_user: (&str, &str)) -> onekey_sim::devices::Targets {
        onekey_sim::devices::Targets {
            native: self.addr("device_tcp"),
            gt06: self.addr("gt06"),
            watch: self.addr("watch"),
            h02: self.addr("h02"),
            sia: self.addr("sia"),
            mqtt: self.addr("mqtt"),
            mqtt_user: Some((mqtt_user.0.into(), mqtt_user.1.into())),
            mqtt_prefix: "onekey".into(),
        }
    }

    /// All incidents (any status).
    pub async fn incidents(&self) -> Vec<Value> {
        let (status, list) = self.get("/api/v1/incidents?limit=1000").await;
        assert_eq!(status, 200);
        list.as_array().cloned().unwrap_or_default()
    }

    /// Creates a responder with a password (`volunteer-pass`) and puts them on duty through the
    /// app's API; returns their id and app token.
    pub async fn responder_on_duty(
        &self,
        name: &str,
        phone: &str,
        lat: f64,
        lon: f64,
    ) -> (i64, String) {
        let (status, r) = self
            .post(
                "/api/v1/responders",
                json!({ "name": name, "phone": phone, "kind": "volunteer",
                        "home_lat": lat, "home_lon": lon, "password": "volunteer-pass" }),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        let token = self.login_responder(name, "volunteer-pass").await;
        let status = self
            .as_responder(&token, "duty", json!({ "on_duty": true }))
            .await;
        assert_eq!(status, 204);
        (r["id"].as_i64().expect("id"), token)
    }

    /// POSTs to the responder app's API (`/api/v1/responder/<path>`) with `token`; returns the
    /// status.
    pub async fn as_responder(&self, token: &str, path: &str, body: Value) -> u16 {
        self.http
            .post(format!("{}/api/v1/responder/{path}", self.base()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// An incident's events of `kind`, oldest first.
    pub async fn events_of(&self, incident: i64, kind: &str) -> Vec<Value> {
        let (_, detail) = self.get(&format!("/api/v1/incidents/{incident}")).await;
        detail["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    /// Waits until the incident has `n` events of `kind` (panics after `within`).
    pub async fn wait_events(
        &self,
        incident: i64,
        kind: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.events_of(incident, kind).await;
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {n} {kind} on incident {incident}: {got:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first incident to exist; returns its id.
    pub async fn first_incident(&self, within: Duration) -> i64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(id) = self
                .incidents()
                .await
                .first()
                .and_then(|i| i["id"].as_i64())
            {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no incident within {within:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The value of one metric series (0 when absent), e.g. `onekey_frames_rejected_total{protocol="native",reason="bad_mac"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        metric_value(&text, series)
    }

    /// Waits until `series` reaches at least `at_least`, or panics after 10 s.
    pub async fn wait_metric(&self, series: &str, at_least: f64) {
        for _ in 0..200 {
            if self.metric(series).await >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{series} never reached {at_least}; metrics:\n{}",
            self.metrics().await
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn stop(self) -> i32 {
        self.stop_with_log().await.0
    }

    /// Sends SIGTERM, waits, and returns the exit code and the whole log.
    pub async fn stop_with_log(mut self) -> (i32, String) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not stop within 30 s after SIGTERM")
            .expect("wait");
        (status.code().unwrap_or(-1), self.log())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Kills the process at once (a crash).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// The path of the temp dir, e.g. to keep the SQLite file across restarts.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Parses one series' value out of Prometheus text.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Reads Server-Sent Events from the live stream.
pub struct EventStream {
    response: reqwest::Response,
    buf: String,
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Sse {
    /// `id:` line.
    pub id: Option<i64>,
    /// `data:` JSON.
    pub data: Value,
}

impl EventStream {
    /// Opens the console stream, optionally resuming after `last_event_id`.
    pub async fn open(server: &TestServer, last_event_id: Option<i64>) -> EventStream {
        EventStream::open_as(server, &server.token, last_event_id).await
    }

    /// Opens the console stream with an operator's `token`.
    pub async fn open_as(
        server: &TestServer,
        token: &str,
        last_event_id: Option<i64>,
    ) -> EventStream {
        let mut req = server
            .http
            .get(format!("{}/api/v1/stream", server.base()))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = req.send().await.expect("stream");
        assert_eq!(response.status(), 200);
        EventStream {
            response,
            buf: String::new(),
        }
    }

    /// The next event, or `None` after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(Sse {
                    id,
                    data: serde_json::from_str(&data).expect("event json"),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for an event of `kind`.
    pub async fn next_of_kind(&mut self, kind: &str, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.data["kind"] == kind {
                return Some(event);
            }
        }
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate, key) PEM files.
pub fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}
