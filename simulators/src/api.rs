//! The simulated people's HTTP client for OneKey's API: signs in, keeps the bearer token, signs in
//! again when the server says the session ended (sessions run on the compressed clock too), and
//! answers JSON.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

/// One signed-in API user (an operator or a responder).
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    kind: &'static str,
    name: String,
    password: String,
    token: Mutex<Option<String>>,
}

/// A request that got an answer: status and JSON body (`null` when none).
pub type Answer = (u16, Value);

impl ApiClient {
    /// A client for `base` (`http://host:port`) signing in as `kind` (`operator`, `responder`).
    pub fn new(
        base: &str,
        http: reqwest::Client,
        kind: &'static str,
        name: &str,
        password: &str,
    ) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            kind,
            name: name.to_string(),
            password: password.to_string(),
            token: Mutex::new(None),
        }
    }

    /// An HTTP client fit for many simulated people: short timeouts, pooled connections.
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default()
    }

    async fn login(&self) -> anyhow::Result<String> {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "kind": self.kind, "name": self.name, "password": self.password }))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let token = body["token"]
            .as_str()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} {} cannot sign in: {status} {body}",
                    self.kind,
                    self.name
                )
            })?
            .to_string();
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(token)
    }

    async fn token(&self) -> anyhow::Result<String> {
        let cached = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match cached {
            Some(t) => Ok(t),
            None => self.login().await,
        }
    }

    /// A request to `/api/v1<path>`; signs in again once on a 401.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut req = self
                .http
                .request(method.clone(), format!("{}/api/v1{path}", self.base))
                .bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = req.send().await?;
            let status = res.status().as_u16();
            if status == 401 && attempt == 0 {
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            return Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)));
        }
        anyhow::bail!("{} {}: signed in but still refused", self.kind, self.name)
    }

    /// The session's token, when signed in.
    pub fn token_now(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opens the console's live feed (`/api/v1/stream`) with a fresh ticket, resuming after
    /// event `last_id` when given.
    pub async fn console_stream(&self, last_id: Option<i64>) -> anyhow::Result<reqwest::Response> {
        let (status, ticket) = self
            .post("/auth/ticket", json!({ "path": "/api/v1/stream" }))
            .await?;
        let ticket = ticket["ticket"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no stream ticket: {status} {ticket}"))?;
        let mut req = self
            .http
            .get(format!("{}/api/v1/stream?ticket={ticket}", self.base))
            .timeout(Duration::from_secs(24 * 3600));
        if let Some(id) = last_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await?;
        anyhow::ensure!(res.status().is_success(), "stream: {}", res.status());
        Ok(res)
    }

    /// Every row of a console table (`/api/v1/tables/<table>`: `elders`, `devices`,
    /// `responders`), page by page.
    pub async fn table_rows(&self, table: &str) -> anyhow::Result<Vec<Value>> {
        let mut rows = Vec::new();
        loop {
            let (status, page) = self
                .get(&format!("/tables/{table}?offset={}&limit=500", rows.len()))
                .await?;
            anyhow::ensure!(status == 200, "{table}: {status} {page}");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let done = items.is_empty();
            rows.extend(items);
            if done || rows.len() as i64 >= page["total"].as_i64().unwrap_or(0) {
                return Ok(rows);
            }
        }
    }

    /// GET `/api/v1<path>`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// POST JSON to `/api/v1<path>`.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.call(reqwest::Method::POST, path, Some(&body)).await
    }
}
