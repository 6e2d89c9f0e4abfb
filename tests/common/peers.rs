//! Real peers the server talks to, run as their own processes: an SMPP SMS centre (node-smpp, see
//! `tests/peers/smsc.mjs`) and an HTTP receiver for webhooks and HTTP SMS gateways
//! (`tests/peers/http_receiver.py`). Each is started on free ports and killed with the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

async fn ready_line(child: &mut Child, what: &str) -> Value {
    let stdout = child.stdout.take().expect("peer stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} did not start in 20 s"))
        .expect("read")
        .unwrap_or_else(|| panic!("{what} exited before it was ready"));
    // Keep draining so the peer never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what} ready line {line:?}: {e}"))
}

/// The SMS centre.
pub struct Smsc {
    child: Option<Child>,
    /// The SMPP port.
    pub port: u16,
    control: u16,
    http: reqwest::Client,
}

/// System id and password the SMS centre accepts.
pub const SMSC_SYSTEM_ID: &str = "onekey";
/// See [`SMSC_SYSTEM_ID`].
pub const SMSC_PASSWORD: &str = "secret";

impl Smsc {
    /// Starts an SMS centre on `port` (0: any free port).
    pub async fn start(port: u16) -> Smsc {
        let mut child = Command::new("node")
            .arg(peers_dir().join("smsc.mjs"))
            .args(["--port", &port.to_string(), "--control", "0"])
            .args(["--system-id", SMSC_SYSTEM_ID, "--password", SMSC_PASSWORD])
            .current_dir(peers_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/peers/smsc.mjs (run tests/peers/setup.sh)");
        let ready = ready_line(&mut child, "the SMS centre").await;
        Smsc {
            child: Some(child),
            port: ready["smpp"].as_u64().expect("smpp port") as u16,
            control: ready["control"].as_u64().expect("control port") as u16,
            http: reqwest::Client::new(),
        }
    }

    /// `host:port` for `[notify.sms.smpp] addr`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server settings that point OneKey at this SMS centre.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        Smsc::env_for(self.port)
    }

    /// The server settings that point OneKey at an SMS centre on `port`.
    pub fn env_for(port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("ONEKEY_NOTIFY__SMS__PROVIDER", "smpp".into()),
            (
                "ONEKEY_NOTIFY__SMS__SMPP__ADDR",
                format!("127.0.0.1:{port}"),
            ),
            ("ONEKEY_NOTIFY__SMS__SMPP__SYSTEM_ID", SMSC_SYSTEM_ID.into()),
            ("ONEKEY_NOTIFY__SMS__SMPP__PASSWORD", SMSC_PASSWORD.into()),
            ("ONEKEY_NOTIFY__SMS__SMPP__BACKOFF_MIN_MS", "100".into()),
            ("ONEKEY_NOTIFY__SMS__SMPP__BACKOFF_MAX_MS", "500".into()),
        ]
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.control));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .expect("SMS centre control")
            .json()
            .await
            .expect("json")
    }

    /// Every message received, segments joined.
    pub async fn messages(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/messages", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `n` messages have arrived (panics after `within`).
    pub async fn wait_messages(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.messages().await;
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the SMS centre got {} of {n} messages: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sets how delivery receipts are answered (`delivered`, `undeliverable`, `none`), overall
    /// or for some numbers.
    pub async fn receipts(&self, mode: &str, numbers: Value) {
        self.call(
            reqwest::Method::POST,
            "/config",
            Some(serde_json::json!({ "receipt": mode, "numbers": numbers })),
        )
        .await;
    }

    /// A handset sends `text` to the centre's number; returns how many bound sessions got it.
    pub async fn reply(&self, from: &str, text: &str) -> u64 {
        self.call(
            reqwest::Method::POST,
            "/mo",
            Some(serde_json::json!({ "from": from, "text": text })),
        )
        .await["sent_to"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Binds, submits and enquire_links seen.
    pub async fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/stats", None).await
    }

    /// Waits until OneKey is bound.
    pub async fn wait_bound(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.stats().await["sessions"].as_u64().unwrap_or(0) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "OneKey never bound to the SMS centre"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the SMS centre (an outage); [`Smsc::start`] on the same port brings it back.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// The HTTP receiver (a webhook endpoint or an HTTP SMS gateway).
pub struct Receiver {
    _child: Child,
    /// Its port.
    pub port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver that answers the first `fail_first` requests with `fail_status`.
    pub async fn start(fail_first: u32, fail_status: u16) -> Receiver {
        let mut child = Command::new("python3")
            .arg(peers_dir().join("http_receiver.py"))
            .args(["--port", "0", "--fail-first", &fail_first.to_string()])
            .args(["--fail-status", &fail_status.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs tests/peers/http_receiver.py");
        let ready = ready_line(&mut child, "the HTTP receiver").await;
        Receiver {
            _child: child,
            port: ready["port"].as_u64().expect("port") as u16,
            http: reqwest::Client::new(),
        }
    }

    /// A URL on it.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request received (`method`, `path`, `headers`, `body`, the `status` answered).
    pub async fn requests(&self) -> Vec<Value> {
        self.http
            .get(self.url("/_requests"))
            .send()
            .await
            .expect("receiver")
            .json::<Vec<Value>>()
            .await
            .expect("json")
    }

    /// Waits until `n` requests were answered 200 (panics after `within`).
    pub async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let all = self.requests().await;
            if all.iter().filter(|r| r["status"] == 200).count() >= n {
                return all;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} requests accepted: {all:?}",
                all.iter().filter(|r| r["status"] == 200).count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails the next `n` requests with `status`.
    pub async fn fail_next(&self, n: u32, status: u16) {
        let answered = self.requests().await.len() as u32;
        self.http
            .post(self.url("/_config"))
            .json(&serde_json::json!({ "fail_first": answered + n, "fail_status": status }))
            .send()
            .await
            .expect("config");
    }
}

/// A volunteer's app on paho-mqtt (`tests/peers/app.py`): persistent session, reconnects by
/// itself, confirms what it gets unless told not to.
pub struct App {
    _child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
    got: Vec<Value>,
    readies: usize,
}

impl App {
    /// Starts the app of `responder` on `broker` (`host:port`) under `prefix`.
    pub async fn start(
        broker: &str,
        prefix: &str,
        responder: i64,
        client_id: &str,
        receipts: bool,
    ) -> App {
        let mut cmd = Command::new("python3");
        cmd.arg(peers_dir().join("app.py"))
            .args(["--broker", broker, "--prefix", prefix])
            .args([
                "--responder",
                &responder.to_string(),
                "--client-id",
                client_id,
            ]);
        // The embedded broker's test account (TestServer creates it); Mosquitto lets it in too.
        cmd.args(["--username", "tester", "--password", "tester-pass-1"]);
        if !receipts {
            cmd.arg("--no-receipts");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs tests/peers/app.py (run tests/peers/setup.sh)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut app = App {
            _child: child,
            lines,
            got: Vec::new(),
            readies: 0,
        };
        app.wait_ready(1, Duration::from_secs(20)).await;
        app
    }

    fn drain(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            if v["ready"] == true {
                self.readies += 1;
            } else {
                self.got.push(v["message"].clone());
            }
        }
    }

    /// Waits until the app has subscribed `n` times (once per connection).
    pub async fn wait_ready(&mut self, n: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.drain();
            if self.readies >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the app subscribed {} of {n} times",
                self.readies
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every message so far.
    pub fn messages(&mut self) -> Vec<Value> {
        self.drain();
        self.got.clone()
    }

    /// Waits until `n` messages of `kind` (`offer`, `stand_down`…) arrived.
    pub async fn wait_kind(&mut self, kind: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let of: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["type"] == kind)
                .collect();
            if of.len() >= n {
                return of;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the app got {} of {n} {kind}: {:?}",
                of.len(),
                self.got
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
