//! A device's connection to the server: a TCP socket, or its own MQTT connection to the broker.
//!
//! Every MQTT device has its own broker connection (client id `sim-<id>`, clean session, QoS 1,
//! subscribed to its `down` topic before it publishes), as real Wi-Fi and NB-IoT buttons do; its
//! event loop is polled by the device's own task, so an MQTT device costs one task and one socket
//! like a TCP device (the embedded broker accepts 10 000 connections).

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where an MQTT device publishes and listens.
#[derive(Debug, Clone)]
pub struct MqttTarget {
    /// Broker `host:port`.
    pub broker: String,
    /// Account.
    pub user: Option<(String, String)>,
    /// Uplink topic.
    pub up: String,
    /// Downlink topic.
    pub down: String,
    /// Client id.
    pub client_id: String,
}

/// An open connection.
pub enum Conn {
    /// A TCP socket.
    Tcp(TcpStream),
    /// An MQTT session.
    Mqtt(Box<MqttConn>),
}

/// An MQTT session of one device.
pub struct MqttConn {
    client: AsyncClient,
    events: EventLoop,
    up: String,
    down: String,
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string())
}

impl Conn {
    /// Opens a TCP connection to `addr`.
    pub async fn tcp(addr: &str, within: Duration) -> io::Result<Conn> {
        let stream = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Conn::Tcp(stream))
    }

    /// Connects to the broker and subscribes to the device's downlink topic.
    pub async fn mqtt(t: &MqttTarget, within: Duration) -> io::Result<Conn> {
        let (host, port) = t
            .broker
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "broker is not host:port")
            })?;
        let mut options = MqttOptions::new(t.client_id.clone(), host, port);
        options.set_keep_alive(Duration::from_secs(60));
        options.set_clean_session(true);
        if let Some((u, p)) = &t.user {
            options.set_credentials(u.clone(), p.clone());
        }
        let (client, mut events) = AsyncClient::new(options, 16);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(within.as_secs().max(1));
        events.set_network_options(net);
        client
            .try_subscribe(t.down.clone(), QoS::AtLeastOnce)
            .map_err(broken)?;
        let subscribed = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let refused = ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                        return if refused {
                            Err(broken("subscription refused"))
                        } else {
                            Ok(())
                        };
                    }
                    Ok(_) => {}
                    Err(e) => return Err(broken(e)),
                }
            }
        };
        tokio::time::timeout(within, subscribed)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no SUBACK in time"))??;
        Ok(Conn::Mqtt(Box::new(MqttConn {
            client,
            events,
            up: t.up.clone(),
            down: t.down.clone(),
        })))
    }

    /// Sends one frame (an MQTT message on the uplink topic, QoS 1).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(bytes).await,
            Conn::Mqtt(m) => m
                .client
                .try_publish(m.up.clone(), QoS::AtLeastOnce, false, bytes.to_vec())
                .map_err(broken),
        }
    }

    /// Waits for bytes from the server and appends them to `buf` (one whole message for MQTT).
    /// Cancel-safe; an error means the connection is gone.
    pub async fn recv(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                if buf.capacity() - buf.len() < 256 {
                    buf.reserve(512);
                }
                match s.read_buf(buf).await? {
                    0 => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed by the server",
                    )),
                    _ => Ok(()),
                }
            }
            Conn::Mqtt(m) => loop {
                match m.events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == m.down => {
                        buf.extend_from_slice(&p.payload);
                        return Ok(());
                    }
                    Ok(Event::Incoming(Packet::Disconnect)) => {
                        return Err(broken("disconnected by the broker"));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(broken(e)),
                }
            },
        }
    }

    /// Closes the connection (MQTT: a clean DISCONNECT, briefly flushed).
    pub async fn close(self) {
        match self {
            Conn::Tcp(mut s) => {
                let _ = s.shutdown().await;
            }
            Conn::Mqtt(mut m) => {
                if m.client.try_disconnect().is_ok() {
                    let flush = async { while m.events.poll().await.is_ok() {} };
                    let _ = tokio::time::timeout(Duration::from_millis(200), flush).await;
                }
            }
        }
    }
}
