//! The one connection loop every protocol shares.
//!
//! Per connection: one task, one `Framed` with a maximum frame size, `TCP_NODELAY`. The first frame
//! must arrive within `first_frame_secs`; afterwards the connection may stay silent for
//! `idle_heartbeats` heartbeat periods of its device. A frame is identified against the registry,
//! decoded by the adapter, its events are committed through intake, and only then is the reply
//! written. A frame that is malformed, unauthenticated, replayed or from an unknown device is logged
//! and counted, and closes this connection only. On shutdown the loop stops reading, but a frame
//! already being handled is committed and answered first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::{Adapter, DeviceAuth, DeviceRegistry, Reject};
use crate::config::GatewayConfig;
use crate::domain::now_millis;
use crate::intake::Intake;
use crate::notify::ConnectedDevices;
use crate::notify::devices::Outgoing;

/// What every connection needs, shared by all listeners.
pub struct GatewayContext {
    /// The durable door.
    pub intake: Intake,
    /// Device credentials.
    pub registry: DeviceRegistry,
    /// Connected devices, for commands and reconnect replacement.
    pub devices: ConnectedDevices,
    /// Limits and timeouts.
    pub config: GatewayConfig,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    next_connection: AtomicU64,
}

impl GatewayContext {
    /// A context for listeners.
    pub fn new(
        intake: Intake,
        registry: DeviceRegistry,
        devices: ConnectedDevices,
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Arc<GatewayContext> {
        Arc::new(GatewayContext {
            intake,
            registry,
            devices,
            config,
            shutdown,
            next_connection: AtomicU64::new(1),
        })
    }
}

/// Serves one device connection until it closes, misbehaves, is replaced, or the server stops.
pub async fn serve_connection<A: Adapter>(
    adapter: Arc<A>,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<GatewayContext>,
) {
    let id = ctx.next_connection.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("device_conn", protocol = A::PROTOCOL, %peer, conn = id, device = tracing::field::Empty);
    async move {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        metrics::counter!("onekey_connections_total", "protocol" => A::PROTOCOL).increment(1);
        metrics::gauge!("onekey_connections_open", "protocol" => A::PROTOCOL).increment(1.0);
        let mut conn = Connection::<A> {
            framed: Framed::new(stream, adapter.codec(ctx.config.max_frame_bytes)),
            session: adapter.session(),
            adapter,
            ctx: ctx.clone(),
            id,
            device: None,
            cancel: ctx.shutdown.child_token(),
        };
        let end = conn.run().await;
        tracing::info!(reason = end, "connection closed");
        if let Some(device) = &conn.device {
            ctx.devices.unregister(device.device_id, id);
        }
        metrics::gauge!("onekey_connections_open", "protocol" => A::PROTOCOL).decrement(1.0);
    }
    .instrument(span)
    .await
}

struct Connection<A: Adapter> {
    adapter: Arc<A>,
    framed: Framed<TcpStream, A::Codec>,
    session: A::Session,
    ctx: Arc<GatewayContext>,
    id: u64,
    device: Option<Arc<DeviceAuth>>,
    cancel: CancellationToken,
}

impl<A: Adapter> Connection<A> {
    /// Runs the loop; returns why it ended.
    async fn run(&mut self) -> &'static str {
        let (commands_tx, mut commands) = mpsc::channel::<Outgoing>(8);
        let mut commands_tx = Some(commands_tx);
        let mut wait = Duration::from_secs(self.ctx.config.first_frame_secs);
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    return if self.ctx.shutdown.is_cancelled() { "shutdown" } else { "replaced by a newer connection" };
                }
                Some(out) = commands.recv() => {
                    self.write_command(out).await;
                    continue;
                }
                next = tokio::time::timeout(wait, self.framed.next()) => next,
            };
            let frame = match next {
                Err(_) if self.device.is_none() => {
                    return self
                        .refuse(Reject::new(
                            "first_frame_timeout",
                            "no frame before the deadline",
                        ))
                        .await;
                }
                Err(_) => {
                    return self
                        .refuse(Reject::new(
                            "idle_timeout",
                            "silent past its heartbeat period",
                        ))
                        .await;
                }
                Ok(None) => return "peer closed",
                Ok(Some(Err(e))) => {
                    return self.refuse(Reject::new("malformed", e.to_string())).await;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            metrics::counter!("onekey_frames_total", "protocol" => A::PROTOCOL).increment(1);
            let received = Instant::now();
            let device = match self.identify(&frame, &mut commands_tx).await {
                Ok(device) => device,
                Err(reject) => return self.refuse(reject).await,
            };
            wait = self.ctx.config.idle_timeout(device.heartbeat_s);
            if let Err(reject) = self.handle(frame, &device, received).await {
                return self.refuse(reject).await;
            }
        }
    }

    /// Resolves the frame's claimed identity to a registered, enabled device.
    async fn identify(
        &mut self,
        frame: &A::Frame,
        commands: &mut Option<mpsc::Sender<Outgoing>>,
    ) -> Result<Arc<DeviceAuth>, Reject> {
        let claimed = self.adapter.identity(frame, &mut self.session)?;
        let ident = match (claimed, &self.device) {
            (None, Some(device)) => return Ok(device.clone()),
            (None, None) => {
                return Err(Reject::new(
                    "not_logged_in",
                    "frame before the device identified itself",
                ));
            }
            (Some(ident), Some(device)) if device.ident == ident => return Ok(device.clone()),
            (Some(ident), Some(device)) => {
                return Err(Reject::new(
                    "identity_changed",
                    format!("connection of {} claimed {ident}", device.ident),
                ));
            }
            (Some(ident), None) => ident,
        };
        let device = self.ctx.registry.authorize(A::PROTOCOL, &ident).await?;
        Span::current().record("device", device.device_id);
        if let Some(tx) = commands.take() {
            self.ctx
                .devices
                .register(device.device_id, self.id, tx, self.cancel.clone());
        }
        self.device = Some(device.clone());
        Ok(device)
    }

    /// Decodes the frame, commits its events, then replies.
    async fn handle(
        &mut self,
        frame: A::Frame,
        device: &DeviceAuth,
        received: Instant,
    ) -> Result<(), Reject> {
        let now = now_millis();
        let handled = self.adapter.handle(frame, device, &mut self.session, now)?;
        if let Some(status) = handled.status {
            self.ctx
                .intake
                .report_status(device.device_id, status, now, handled.seq);
        } else {
            self.ctx
                .intake
                .report_status(device.device_id, Default::default(), now, handled.seq);
        }
        let stored = if handled.events.is_empty() {
            Vec::new()
        } else {
            let submits = handled
                .events
                .into_iter()
                .map(|event| self.ctx.intake.submit(event));
            let results = futures_util::future::join_all(submits).await;
            match results.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(stored) => stored,
                Err(e) => {
                    // Never ACK what is not stored: the device retries and nothing is lost.
                    tracing::error!(error = %e, "events not committed; withholding the ACK");
                    metrics::counter!("onekey_acks_withheld_total", "protocol" => A::PROTOCOL)
                        .increment(1);
                    return Ok(());
                }
            }
        };
        if let Some(reply) = self
            .adapter
            .reply(handled.pending, &stored, device, &mut self.session)
        {
            if let Err(e) = self.framed.send(reply).await {
                tracing::warn!(error = %e, "writing the reply failed");
                return Err(Reject::new("write_failed", e.to_string()));
            }
            metrics::histogram!("onekey_device_ack_seconds", "protocol" => A::PROTOCOL)
                .record(received.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn write_command(&mut self, out: Outgoing) {
        let Some(device) = self.device.clone() else {
            let _ = out
                .done
                .send(Err(crate::notify::CommandError::NotConnected));
            return;
        };
        let result = match self
            .adapter
            .command(&out.command, out.id, &device, &mut self.session)
        {
            Ok(bytes) => self
                .framed
                .send(bytes)
                .await
                .map_err(|_| crate::notify::CommandError::Closed),
            Err(e) => Err(e),
        };
        tracing::info!(command = ?out.command, id = out.id, ok = result.is_ok(), "command to device");
        let _ = out.done.send(result);
    }

    /// Logs and counts a rejection, sends its reply if any, and ends the connection.
    async fn refuse(&mut self, reject: Reject) -> &'static str {
        match reject.reason {
            "first_frame_timeout" | "idle_timeout" => {
                tracing::info!(reason = reject.reason, detail = %reject.detail, "closing connection")
            }
            _ => {
                tracing::warn!(reason = reject.reason, detail = %reject.detail, "frame rejected; closing connection")
            }
        }
        metrics::counter!("onekey_frames_rejected_total", "protocol" => A::PROTOCOL, "reason" => reject.reason).increment(1);
        if let Some(reply) = reject.reply {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.framed.send(reply)).await;
        }
        reject.reason
    }
}
