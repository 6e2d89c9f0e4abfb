//! How OneKey talks to an MQTT broker, whoever uses the connection: settings, the broker URL,
//! client options (TLS with rustls, `TCP_NODELAY`), reconnect backoff, the connection's health, the
//! topic tree, and the embedded broker for machines without one.
//!
//! Two rooms use it and neither knows the other: device uplinks (`ingress::mqtt`) and the
//! responder push with its receipts (`notify::channels::mqtt`).

pub mod embedded;
pub mod topics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rumqttc::MqttOptions;
use serde::{Deserialize, Serialize};

pub use embedded::BrokerSettings;
pub use topics::{Topics, valid_id};

/// `[mqtt]` settings (the broker URL and topic prefix are the top-level `mqtt_url`, `mqtt_prefix`;
/// the embedded broker's address is `mqtt_listen`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttSettings {
    /// Client id of this instance; default `onekey-<hostname>-<prefix>`. Keep it stable: the broker
    /// keeps the persistent session under it.
    pub client_id: Option<String>,
    /// Shared-subscription group for uplinks on an external broker (empty = plain subscriptions).
    pub share_group: String,
    /// Keep-alive in seconds.
    pub keep_alive_secs: u64,
    /// First reconnect delay, milliseconds.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, milliseconds.
    pub backoff_max_ms: u64,
    /// rumqttc's request queue (ACKs beyond it are dropped, never waited for).
    pub request_queue: usize,
    /// Responder pushes queued while the broker is unreachable.
    pub outbox: usize,
    /// Uplinks handled at once.
    pub max_in_flight: usize,
    /// Largest packet the client accepts, bytes. A bigger one makes rumqttc drop the connection,
    /// and a persistent session would redeliver it after every reconnect, so keep this at or above
    /// the broker's own limit (Mosquitto `message_size_limit`, 16 KiB on the embedded broker).
    /// Uplinks are refused far below it (JSON over 1 KiB, frames over 128 bytes).
    pub max_packet_bytes: usize,
    /// The embedded broker.
    pub broker: BrokerSettings,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            client_id: None,
            share_group: "onekey".into(),
            keep_alive_secs: 30,
            backoff_min_ms: 200,
            backoff_max_ms: 30_000,
            request_queue: 1024,
            outbox: 10_000,
            max_in_flight: 1024,
            max_packet_bytes: 1024 * 1024,
            broker: BrokerSettings::default(),
        }
    }
}

/// A broker URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// mqtts / ssl.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (1883, 8883 for TLS, when absent).
    pub port: u16,
    /// Username and password from the URL's user info.
    pub credentials: Option<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl BrokerUrl {
    /// Parses `mqtt://[user[:password]@]host[:port]` (`mqtts://` for TLS; `tcp://`, `ssl://` too).
    pub fn parse(url: &str) -> anyhow::Result<BrokerUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow::anyhow!("MQTT URL needs a scheme (mqtt:// or mqtts://)"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => anyhow::bail!("unsupported MQTT URL scheme {other}"),
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (percent_decode(user), percent_decode(pass)),
            None => (percent_decode(u), String::new()),
        });
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| anyhow::anyhow!("bad IPv6 host in MQTT URL"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        anyhow::ensure!(!host.is_empty(), "MQTT URL has no host");
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| anyhow::anyhow!("bad port {p:?} in MQTT URL"))?,
            None => default_port,
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
            credentials,
        })
    }
}

/// The nodes of the broker: `mqtt_url` is one URL or several separated by commas (the nodes of one
/// cluster; a comma inside a password is written `%2C`). A connection starts at the first node and
/// moves to the next after every connection error, so a client whose node died reconnects to a
/// surviving one without a load balancer in front of the cluster.
#[derive(Debug, Clone)]
pub struct BrokerUrls {
    urls: Vec<BrokerUrl>,
    current: usize,
}

impl BrokerUrls {
    /// Parses `url[,url…]` (blanks around the commas are ignored).
    pub fn parse(list: &str) -> anyhow::Result<BrokerUrls> {
        let urls = list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(BrokerUrl::parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!urls.is_empty(), "no MQTT broker URL");
        Ok(BrokerUrls { urls, current: 0 })
    }

    /// The node to connect to.
    pub fn current(&self) -> &BrokerUrl {
        &self.urls[self.current]
    }

    /// Moves to the next node (after a connection error) and returns it; with one node, that node.
    pub fn advance(&mut self) -> &BrokerUrl {
        self.current = (self.current + 1) % self.urls.len();
        self.current()
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never: [`BrokerUrls::parse`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }
}

impl std::fmt::Display for BrokerUrls {
    /// `host:port` of the current node (never the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = self.current();
        write!(f, "{}:{}", u.host, u.port)
    }
}

fn tls_config() -> anyhow::Result<rumqttc::TlsConfiguration> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "loading a system CA certificate failed");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system CA certificates for MQTT TLS");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::from(config))
}

/// This machine's host name (for default client ids).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
}

/// Client options for one connection.
pub fn options(
    url: &BrokerUrl,
    client_id: &str,
    settings: &MqttSettings,
    clean: bool,
) -> anyhow::Result<MqttOptions> {
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(settings.keep_alive_secs.max(5)))
        .set_clean_session(clean)
        .set_manual_acks(!clean)
        .set_request_channel_capacity(settings.request_queue.max(16))
        .set_max_packet_size(settings.max_packet_bytes.max(1024), 64 * 1024)
        .set_inflight(100);
    if let Some((user, pass)) = &url.credentials {
        o.set_credentials(user.clone(), pass.clone());
    }
    if url.tls {
        o.set_transport(rumqttc::Transport::Tls(tls_config()?));
    }
    Ok(o)
}

/// rumqttc leaves Nagle's algorithm on: a small ACK written while an earlier one is unacknowledged
/// then waits for the peer's delayed ACK (~40 ms on Linux). Off, like on the device sockets.
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n.set_connection_timeout(10);
    n
}

/// Capped exponential backoff with jitter: each delay is drawn from `[d/2, d]` where `d` doubles
/// from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Back to `min` (after a successful connection).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The broker connection's state, shared with the MQTT client.
#[derive(Clone, Default)]
pub struct BrokerHealth(Arc<AtomicU8>);

/// What the broker connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// MQTT is not configured in this process.
    Disabled,
    /// Connecting or reconnecting.
    Down,
    /// Connected and subscribed.
    Up,
}

impl BrokerHealth {
    /// Sets the state.
    pub fn set(&self, state: BrokerState) {
        self.0.store(state as u8, Ordering::Relaxed);
    }

    /// Reads the state.
    pub fn get(&self) -> BrokerState {
        match self.0.load(Ordering::Relaxed) {
            1 => BrokerState::Down,
            2 => BrokerState::Up,
            _ => BrokerState::Disabled,
        }
    }
}

/// The default client id of this instance: `onekey-<hostname>-<prefix>` (keep it stable: the
/// broker keeps the persistent session under it).
pub fn default_client_id(settings: &MqttSettings, topics: &Topics) -> String {
    settings.client_id.clone().unwrap_or_else(|| {
        let p: String = topics
            .prefix()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("onekey-{}-{p}", hostname())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            BrokerUrl::parse("mqtt://127.0.0.1:1884").expect("url"),
            BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1884,
                credentials: None
            }
        );
        let u = BrokerUrl::parse("mqtts://onekey:p%40ss:w@broker.example.org/").expect("url");
        assert!(u.tls);
        assert_eq!(u.port, 8883);
        assert_eq!(u.host, "broker.example.org");
        assert_eq!(u.credentials, Some(("onekey".into(), "p@ss:w".into())));
        assert_eq!(BrokerUrl::parse("mqtt://[::1]:1").expect("v6").host, "::1");
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://:1883").is_err());
        assert!(BrokerUrl::parse("mqtt://h:99999").is_err());
    }

    #[test]
    fn a_list_of_nodes_is_tried_in_turn() {
        let mut nodes =
            BrokerUrls::parse("mqtt://u:p%2Cq@n1:1883, mqtt://n2:1884 ,mqtts://n3").expect("list");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes.current().host, "n1");
        assert_eq!(
            nodes.current().credentials,
            Some(("u".into(), "p,q".into()))
        );
        assert_eq!(nodes.to_string(), "n1:1883");
        assert_eq!(nodes.advance().port, 1884);
        let third = nodes.advance();
        assert_eq!(
            (third.host.as_str(), third.tls, third.port),
            ("n3", true, 8883)
        );
        assert_eq!(
            nodes.advance().host,
            "n1",
            "back to the first after the last"
        );
        let mut one = BrokerUrls::parse("mqtt://only:1").expect("one");
        assert_eq!(one.advance().host, "only");
        assert!(BrokerUrls::parse(" , ").is_err());
        assert!(BrokerUrls::parse("mqtt://n1,http://n2").is_err());
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceiling = Duration::from_millis(100);
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(2));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
