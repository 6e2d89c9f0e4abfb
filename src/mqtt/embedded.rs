//! The embedded MQTT broker, run when no external broker is configured (`ONEKEY_MQTT_URL` unset).
//!
//! It is rumqttd (MQTT 3.1.1 listener only: no TLS, websockets, console or metrics server), on its
//! own threads so a busy broker never starves the server's runtime. Memory is bounded: rumqttd keeps
//! each subscribed filter's messages in a ring of `segment_count` segments of `segment_bytes`, drops
//! the oldest segment when full, and caps connections and each connection's in-flight window.
//!
//! It requires a user name and password: the server's own clients use a random one made at start-up,
//! devices and apps the accounts in `[mqtt.broker.users]` (`name = "password"`). Anonymous
//! connections are refused unless `allow_anonymous` is set (a closed test bench only).
//!
//! It binds the configured address (`mqtt_listen`, default `127.0.0.1:1883`); when that is taken it
//! falls back to an ephemeral port on the same interface with a warning, so a system Mosquitto on
//! 1883 never stops OneKey from starting. The bound address goes to the ready file under `mqtt`.
//! That address is bound once and kept by our front (below); rumqttd binds its own socket on a
//! private loopback port, probed first; if another process takes that in between, start-up fails
//! with a clear error rather than connecting elsewhere silently.
//!
//! rumqttd leaves Nagle's algorithm on its sockets, and a device's delayed ACK then holds the
//! broker's next small packet (the downlink ACK right after a PUBACK) for 40 ms. So rumqttd listens
//! on a private loopback port, and the configured address belongs to a front of ours
//! ([`front`]): each connection is relayed with `TCP_NODELAY` on both of our sockets, and the
//! socket from rumqttd ACKs every read at once (`TCP_QUICKACK`), so rumqttd never waits for one.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Limits and accounts of the embedded broker (`[mqtt.broker]`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerSettings {
    /// Most client connections.
    pub max_connections: usize,
    /// Largest message, in bytes.
    pub max_payload_bytes: usize,
    /// Most unacknowledged QoS 1 messages per connection.
    pub max_inflight: usize,
    /// Bytes per log segment of one subscribed filter.
    pub segment_bytes: usize,
    /// Segments kept per filter (older ones are dropped): at most `segment_bytes × segment_count`
    /// bytes of messages per filter, also for offline persistent sessions.
    pub segment_count: usize,
    /// Accounts of devices and apps: user name → password.
    pub users: BTreeMap<String, String>,
    /// Accept connections without a user name and password (never on a reachable network).
    pub allow_anonymous: bool,
}

impl std::fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("max_connections", &self.max_connections)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish_non_exhaustive()
    }
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            max_connections: 10_000,
            max_payload_bytes: 16 * 1024,
            max_inflight: 100,
            segment_bytes: 256 * 1024,
            segment_count: 4,
            users: BTreeMap::new(),
            allow_anonymous: false,
        }
    }
}

/// Binds `listen` when free, else an ephemeral port on the same interface.
pub fn bind_or_fallback(listen: &str) -> anyhow::Result<TcpListener> {
    let wanted = listen
        .to_socket_addrs()
        .with_context(|| format!("bad mqtt_listen address {listen}"))?
        .next()
        .with_context(|| format!("mqtt_listen {listen} resolves to nothing"))?;
    let probe = match TcpListener::bind(wanted) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%wanted, error = %e, "embedded MQTT broker: address taken; using an ephemeral port");
            TcpListener::bind(SocketAddr::new(wanted.ip(), 0))
                .context("embedded MQTT broker: cannot bind an ephemeral port")?
        }
    };
    Ok(probe)
}

/// The account the server's own MQTT clients use on the embedded broker: random per start.
pub fn internal_account() -> (String, String) {
    let mut secret = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    ("onekey-server".to_string(), hex::encode(secret))
}

/// Starts the embedded broker on `listen` (or its fallback) and returns the bound address once it
/// accepts connections. `internal` is the server's own account.
pub fn start(
    listen: &str,
    settings: BrokerSettings,
    internal: (String, String),
) -> anyhow::Result<SocketAddr> {
    // The front keeps the address it bound; rumqttd gets a private port on loopback, probed here
    // and bound again by rumqttd itself.
    let listener = bind_or_fallback(listen)?;
    let addr = listener.local_addr()?;
    let inner = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("embedded MQTT broker: no private loopback port")?;
    let auth = (!settings.allow_anonymous).then(|| {
        let mut users: HashMap<String, String> = settings.users.clone().into_iter().collect();
        users.insert(internal.0, internal.1);
        users
    });
    let server = rumqttd::ServerSettings {
        name: "onekey-embedded".into(),
        listen: inner,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: settings.max_payload_bytes,
            max_inflight_count: settings.max_inflight,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: settings.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: settings.segment_bytes.max(1024),
            max_segment_count: settings.segment_count.max(1),
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Default::default()
    };
    let thread = std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("cannot start the embedded MQTT broker thread")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect_timeout(&inner, Duration::from_millis(200)).is_ok() {
            break;
        }
        if thread.is_finished() {
            bail!("the embedded MQTT broker did not start on {addr}");
        }
        if Instant::now() > deadline {
            bail!("the embedded MQTT broker did not listen on {addr} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("mqtt-front".into())
        .spawn(move || front::run(listener, inner))
        .context("cannot start the embedded MQTT broker's front thread")?;
    tracing::info!(%addr, "embedded MQTT broker running");
    Ok(addr)
}

/// The embedded broker's listening front: relays each connection to rumqttd without Nagle's delay.
mod front {
    use std::net::SocketAddr;

    use socket2::SockRef;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Serves `listener` on a runtime of its own until the process ends.
    pub fn run(listener: std::net::TcpListener, inner: SocketAddr) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "embedded MQTT front: no runtime"),
        };
        runtime.block_on(async move {
            let listener = match TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => return tracing::error!(error = %e, "embedded MQTT front: bad listener"),
            };
            loop {
                match listener.accept().await {
                    Ok((client, peer)) => {
                        tokio::spawn(async move {
                            if let Err(e) = relay(client, inner).await {
                                tracing::debug!(%peer, error = %e, "embedded MQTT connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, typically: wait rather than spin.
                        tracing::warn!(error = %e, "embedded MQTT front: accept failed");
                        metrics::counter!("onekey_mqtt_front_accept_errors_total").increment(1);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    async fn relay(client: TcpStream, inner: SocketAddr) -> std::io::Result<()> {
        client.set_nodelay(true)?;
        let broker = TcpStream::connect(inner).await?;
        broker.set_nodelay(true)?;
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_broker, mut to_broker) = broker.into_split();
        let up = async {
            let copied = tokio::io::copy(&mut from_client, &mut to_broker).await;
            let _ = to_broker.shutdown().await;
            copied.map(|_| ())
        };
        let down = async {
            let mut buf = vec![0u8; 8 * 1024];
            loop {
                let n = from_broker.read(&mut buf).await?;
                if n == 0 {
                    let _ = to_client.shutdown().await;
                    return Ok::<(), std::io::Error>(());
                }
                // Linux turns quick ACKs off again after a while: ask for one after every read.
                let _ = SockRef::from(from_broker.as_ref()).set_tcp_quickack(true);
                to_client.write_all(&buf[..n]).await?;
            }
        };
        tokio::try_join!(up, down).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_falls_back_to_an_ephemeral_port() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let chosen = bind_or_fallback(&addr.to_string())
            .and_then(|l| Ok(l.local_addr()?))
            .expect("fallback");
        assert_ne!(chosen.port(), addr.port());
        assert!(chosen.ip().is_loopback());
    }
}
