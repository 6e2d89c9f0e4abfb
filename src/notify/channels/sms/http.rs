//! SMS through an HTTP gateway (most Chinese SMS providers offer one): one request per message
//! built from a body template, an auth header, and a response check. The provider's delivery
//! reports and replies come back to `POST /api/v1/sms/report` and `POST /api/v1/sms/inbound`
//! with the shared `callback_token`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SubmitError;

/// `[notify.sms.http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSmsSettings {
    /// The gateway's send URL.
    pub url: String,
    /// `Content-Type` of the request (default `application/json`; with
    /// `application/x-www-form-urlencoded` the placeholders are percent-encoded instead).
    pub content_type: String,
    /// The request body; `{to}`, `{text}` and `{id}` (our notification id) are replaced, escaped
    /// for the content type.
    pub body: String,
    /// Extra headers, `Name: value` (e.g. `Authorization: Bearer …`).
    pub headers: Vec<String>,
    /// JSON pointer to the provider's message id in the response (e.g. `/messageId`); empty when
    /// the provider returns none (delivery reports then cannot be matched).
    pub message_id_pointer: String,
    /// A response body must contain this to count as accepted (empty: any 2xx counts).
    pub success_contains: String,
    /// The token the provider sends back in `X-OneKey-Sms-Token` on its callbacks.
    pub callback_token: String,
}

impl Default for HttpSmsSettings {
    fn default() -> Self {
        HttpSmsSettings {
            url: String::new(),
            content_type: "application/json".into(),
            body: r#"{"to":"{to}","text":"{text}","ref":"{id}"}"#.into(),
            headers: Vec::new(),
            message_id_pointer: String::new(),
            success_contains: String::new(),
            callback_token: String::new(),
        }
    }
}

/// The HTTP provider.
pub struct HttpSms {
    settings: HttpSmsSettings,
    client: reqwest::Client,
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl HttpSms {
    /// A client for `settings`.
    pub fn new(settings: HttpSmsSettings) -> anyhow::Result<HttpSms> {
        anyhow::ensure!(
            settings.url.starts_with("http://") || settings.url.starts_with("https://"),
            "[notify.sms.http] url must be an http(s) URL"
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(HttpSms { settings, client })
    }

    /// The body for one message.
    pub fn body(&self, to: &str, text: &str, id: i64) -> String {
        let esc = if self.settings.content_type.contains("json") {
            json_escape
        } else {
            form_escape
        };
        self.settings
            .body
            .replace("{to}", &esc(to))
            .replace("{text}", &esc(text))
            .replace("{id}", &id.to_string())
    }

    /// Sends one message; the provider's message id on success.
    pub async fn send(&self, to: &str, text: &str, id: i64) -> Result<String, SubmitError> {
        let mut req = self
            .client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, &self.settings.content_type)
            .body(self.body(to, text, id));
        for h in &self.settings.headers {
            if let Some((name, value)) = h.split_once(':') {
                req = req.header(name.trim(), value.trim());
            }
        }
        let res = req
            .send()
            .await
            .map_err(|e| SubmitError::Transient(format!("SMS gateway unreachable: {e}")))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            return Err(SubmitError::Transient(format!(
                "SMS gateway answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(SubmitError::Permanent(format!(
                "SMS gateway refused it: {status} {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        if !self.settings.success_contains.is_empty()
            && !text.contains(&self.settings.success_contains)
        {
            return Err(SubmitError::Transient(format!(
                "SMS gateway did not confirm: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        if self.settings.message_id_pointer.is_empty() {
            return Ok(String::new());
        }
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer(&self.settings.message_id_pointer)
                    .map(|id| match id {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
            })
            .unwrap_or_default();
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_escaped_for_the_content_type() {
        let mut s = HttpSmsSettings {
            url: "http://127.0.0.1:1/send".into(),
            ..Default::default()
        };
        let json = HttpSms::new(s.clone()).expect("client");
        let body = json.body("13800000001", "王奶奶 \"跌倒\"", 7);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(v["text"], "王奶奶 \"跌倒\"");
        assert_eq!(v["ref"], "7");
        s.content_type = "application/x-www-form-urlencoded".into();
        s.body = "to={to}&msg={text}".into();
        let form = HttpSms::new(s).expect("client");
        assert_eq!(form.body("138", "a b&c", 1), "to=138&msg=a%20b%26c");
    }
}
