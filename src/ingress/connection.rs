//! The one connection loop every protocol shares.
//!
//! Per connection: one task, one `FrameIo` with a maximum frame size, `TCP_NODELAY`. The first frame
//! must arrive within `first_frame_secs`, and until it does the connection holds one of the
//! listener's handshake places (`limits.rs`: the oldest is closed when they run out); afterwards
//! the connection may stay silent for `idle_heartbeats` heartbeat periods of its device, and may
//! send `max_frames_per_sec` frames on average (bursts of `frame_burst`) before it is cut off. A
//! frame is identified against the registry, decoded by the adapter, its events are committed
//! through intake, and only then is the reply written. A frame that is malformed, unauthenticated,
//! replayed or from an unknown device is logged and counted, and closes this connection only. On
//! shutdown the loop stops reading, but a frame already being handled is committed and answered
//! first.
//!
//! A connection becomes the device's connection (for commands, replacing an older one) only after
//! its first frame is authenticated, so a forged frame cannot push the real device off the line.
//! Every frame, and every change the directory announces, revalidates the device: disabled,
//! re-keyed or removed ends the connection (`revoked`); moved to another elder, it goes on as the
//! new elder's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::frame_io::FrameIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::limits::{FrameMeter, Handshakes};
use super::{Adapter, DeviceAuth, DeviceRegistry, Reason, Reject};
use crate::config::GatewayConfig;
use crate::domain::now_millis;
use crate::intake::Intake;
use crate::notify::ConnectedDevices;
use crate::notify::devices::Outgoing;
use crate::supervision::traffic::TrafficCounters;

/// A device's byte stream: plain TCP or TLS over it.
pub trait DeviceIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> DeviceIo for T {}

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
    /// Frames per protocol and grid, for the traffic watch.
    pub traffic: TrafficCounters,
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
            traffic: TrafficCounters::default(),
            next_connection: AtomicU64::new(1),
        })
    }
}

/// Serves one device connection until it closes, misbehaves, is replaced, or the server stops.
pub async fn serve_connection<A: Adapter>(
    adapter: Arc<A>,
    stream: Box<dyn DeviceIo>,
    peer: SocketAddr,
    ctx: Arc<GatewayContext>,
    handshakes: Arc<Handshakes>,
) {
    let id = ctx.next_connection.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("device_conn", protocol = A::PROTOCOL, %peer, conn = id, device = tracing::field::Empty);
    async move {
        metrics::counter!("onekey_connections_total", "protocol" => A::PROTOCOL).increment(1);
        metrics::gauge!("onekey_connections_open", "protocol" => A::PROTOCOL).increment(1.0);
        let mut conn = Connection::<A> {
            framed: FrameIo::new(stream, adapter.codec(ctx.config.max_frame_bytes)),
            session: adapter.session(),
            adapter,
            ctx: ctx.clone(),
            id,
            device: None,
            watch: None,
            cancel: ctx.shutdown.child_token(),
            evicted: Some(handshakes.enter(id)),
            handshakes,
            meter: FrameMeter::new(
                ctx.config.max_frames_per_sec,
                ctx.config.frame_burst,
                Instant::now(),
            ),
        };
        let end = conn.run().await;
        conn.handshakes.leave(id);
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
    framed: FrameIo<A::Codec>,
    session: A::Session,
    ctx: Arc<GatewayContext>,
    id: u64,
    /// The device this connection authenticated as (its current directory entry).
    device: Option<Arc<DeviceAuth>>,
    /// Raised when the directory changes the device; `None` until the next frame after a failed
    /// lookup, so a store outage does not spin the loop.
    watch: Option<CancellationToken>,
    cancel: CancellationToken,
    /// The listener's handshakes, which this connection holds a place in until it authenticates.
    handshakes: Arc<Handshakes>,
    /// Raised when the handshake cap needs this connection's place; `None` once authenticated.
    evicted: Option<CancellationToken>,
    meter: FrameMeter,
}

async fn raised(token: Option<CancellationToken>) {
    match token {
        Some(t) => t.cancelled_owned().await,
        None => std::future::pending().await,
    }
}

impl<A: Adapter> Connection<A> {
    /// Runs the loop; returns why it ended. A rejection is logged, counted and answered here.
    async fn run(&mut self) -> &'static str {
        match self.serve().await {
            Ok(end) => end,
            Err(reject) => Box::pin(self.refuse(reject)).await,
        }
    }

    /// Reads, handles and answers frames until the connection ends.
    ///
    /// While it waits, this future holds only the select's small futures: everything that runs
    /// for a frame (the directory lookup, the commit, a command's write) is boxed for the time it
    /// runs, so an idle connection's task stays small.
    async fn serve(&mut self) -> Result<&'static str, Reject> {
        let (commands_tx, mut commands) = crate::notify::mailbox::mailbox();
        let mut commands_tx = Some(commands_tx);
        let mut wait = Duration::from_secs(self.ctx.config.first_frame_secs);
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    return Ok(if self.ctx.shutdown.is_cancelled() { "shutdown" } else { "replaced by a newer connection" });
                }
                _ = raised(self.evicted.clone()) => {
                    return Err(Reject::new(
                        Reason::HandshakeEvicted,
                        "not authenticated while newer connections waited",
                    ));
                }
                _ = raised(self.watch.clone()) => {
                    Box::pin(self.revalidate()).await?;
                    continue;
                }
                Some(out) = commands.recv() => {
                    Box::pin(self.write_command(out)).await;
                    continue;
                }
                next = tokio::time::timeout(wait, self.framed.next()) => next,
            };
            let frame = match next {
                Err(_) if self.device.is_none() => {
                    return Err(Reject::new(
                        Reason::FirstFrameTimeout,
                        "no frame before the deadline",
                    ));
                }
                Err(_) => {
                    return Err(Reject::new(
                        Reason::IdleTimeout,
                        "silent past its heartbeat period",
                    ));
                }
                Ok(None) => return Ok("peer closed"),
                Ok(Some(Err(e))) => return Err(Reject::new(Reason::Malformed, e.to_string())),
                Ok(Some(Ok(frame))) => frame,
            };
            metrics::counter!("onekey_frames_total", "protocol" => A::PROTOCOL).increment(1);
            let received = Instant::now();
            if !self.meter.take(received) {
                return Err(Reject::new(
                    Reason::Flood,
                    format!(
                        "more than {} frames/s (bursts of {})",
                        self.ctx.config.max_frames_per_sec, self.ctx.config.frame_burst
                    ),
                ));
            }
            let device = Box::pin(self.take_frame(frame, received)).await?;
            wait = self.ctx.config.idle_timeout(device.heartbeat_s);
            // Authenticated: only now does this connection speak for the device.
            if self.evicted.take().is_some() {
                self.handshakes.leave(self.id);
            }
            if let Some(tx) = commands_tx.take() {
                self.ctx
                    .devices
                    .register(device.device_id, self.id, tx, self.cancel.clone());
            }
        }
    }

    /// Identifies the frame's device, commits the frame and answers it; returns the device.
    async fn take_frame(
        &mut self,
        frame: A::Frame,
        received: Instant,
    ) -> Result<Arc<DeviceAuth>, Reject> {
        let device = self.identify(&frame).await?;
        self.handle(frame, &device, received).await?;
        Ok(device)
    }

    /// Resolves the frame's claimed identity to a registered, enabled device (not yet trusted: the
    /// adapter authenticates the frame next).
    async fn identify(&mut self, frame: &A::Frame) -> Result<Arc<DeviceAuth>, Reject> {
        let claimed = self.adapter.identity(frame, &mut self.session)?;
        let ident = match (claimed, &self.device) {
            (None, Some(_)) => return self.current().await,
            (None, None) => {
                return Err(Reject::new(
                    Reason::NotLoggedIn,
                    "frame before the device identified itself",
                ));
            }
            (Some(ident), Some(device)) if device.ident == ident => return self.current().await,
            (Some(ident), Some(device)) => {
                return Err(Reject::new(
                    Reason::IdentityChanged,
                    format!("connection of {} claimed {ident}", device.ident),
                ));
            }
            (Some(ident), None) => ident,
        };
        let device = self.ctx.registry.authorize(A::PROTOCOL, &ident).await?;
        Span::current().record("device", device.device_id);
        self.watch = Some(device.changed.clone());
        self.device = Some(device.clone());
        Ok(device)
    }

    /// The connection's device, revalidated against the directory.
    async fn current(&mut self) -> Result<Arc<DeviceAuth>, Reject> {
        self.revalidate().await?;
        self.device
            .clone()
            .ok_or_else(|| Reject::new(Reason::NotLoggedIn, "no device"))
    }

    /// Follows a change of the device in the directory: ends the connection when the device was
    /// disabled, re-keyed or removed, else goes on with its current entry. A store outage keeps
    /// the entry it has.
    async fn revalidate(&mut self) -> Result<(), Reject> {
        let Some(current) = self.device.clone() else {
            self.watch = None;
            return Ok(());
        };
        match self.ctx.registry.revalidate(&current).await {
            Ok(newer) => {
                if !Arc::ptr_eq(&newer, &current) {
                    tracing::info!(elder = ?newer.elder_id, "device entry changed in the directory");
                }
                self.watch = Some(newer.changed.clone());
                self.device = Some(newer);
                Ok(())
            }
            Err(reject) if reject.reason == Reason::StoreUnavailable => {
                tracing::warn!(detail = %reject.detail, "cannot revalidate the device; going on");
                self.watch = None;
                Ok(())
            }
            Err(reject) => Err(reject),
        }
    }

    /// Decodes the frame, claims its sequence number, commits its events, then replies.
    async fn handle(
        &mut self,
        frame: A::Frame,
        device: &DeviceAuth,
        received: Instant,
    ) -> Result<(), Reject> {
        let reply = super::commit::answer_frame(
            self.adapter.as_ref(),
            A::PROTOCOL,
            &self.ctx,
            frame,
            device,
            &mut self.session,
            now_millis(),
        )
        .await?;
        if let Some(reply) = reply {
            if let Err(e) = self.framed.send(reply).await {
                tracing::warn!(error = %e, "writing the reply failed");
                return Err(Reject::new(Reason::WriteFailed, e.to_string()));
            }
            metrics::histogram!("onekey_device_ack_seconds", "protocol" => A::PROTOCOL)
                .record(received.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn write_command(&mut self, out: Box<Outgoing>) {
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
        let reason = reject.reason.as_str();
        if reject.reason.is_routine() {
            tracing::info!(reason, detail = %reject.detail, "closing connection");
        } else if reject.reason.is_server_side() {
            tracing::error!(reason, detail = %reject.detail, "frame not handled; closing connection");
        } else {
            tracing::warn!(reason, detail = %reject.detail, "frame rejected; closing connection");
        }
        metrics::counter!("onekey_frames_rejected_total", "protocol" => A::PROTOCOL, "reason" => reason).increment(1);
        if let Some(reply) = reject.reply {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.framed.send(reply)).await;
        }
        reason
    }
}
