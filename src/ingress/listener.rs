//! The accept loop: a cap on open connections and on handshakes (`limits.rs`), back-off on accept
//! errors, one task per connection (its TLS handshake first, on a TLS listener), and a stop on
//! shutdown. Connections are tracked so shutdown can wait for them to finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::Adapter;
use super::connection::{DeviceIo, GatewayContext, serve_connection};
use super::limits::Handshakes;

/// Accepts connections for `adapter` until shutdown; with `tls`, each must complete a TLS
/// handshake within the first-frame deadline.
pub async fn serve_listener<A: Adapter>(
    listener: TcpListener,
    adapter: A,
    tls: Option<TlsAcceptor>,
    ctx: Arc<GatewayContext>,
    tracker: TaskTracker,
) {
    let adapter = Arc::new(adapter);
    let slots = Arc::new(Semaphore::new(ctx.config.max_connections));
    let handshakes = Arc::new(Handshakes::new(A::PROTOCOL, ctx.config.max_handshakes));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(e) => {
                // Usually out of file descriptors: wait instead of spinning.
                tracing::warn!(protocol = A::PROTOCOL, error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(protocol = A::PROTOCOL, %peer, "connection cap reached; refusing");
            metrics::counter!("onekey_connections_refused_total", "protocol" => A::PROTOCOL)
                .increment(1);
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let (adapter, ctx, handshakes) = (adapter.clone(), ctx.clone(), handshakes.clone());
        let tls = tls.clone();
        tracker.spawn(async move {
            let io: Box<dyn DeviceIo> = match &tls {
                None => Box::new(stream),
                Some(acceptor) => {
                    let deadline = Duration::from_secs(ctx.config.first_frame_secs.max(1));
                    // Boxed: the handshake's state would otherwise stay in every connection's task.
                    let handshake =
                        crate::tls::handshake(acceptor, stream, peer, A::PROTOCOL, deadline);
                    match Box::pin(handshake).await {
                        Some(tls) => Box::new(tls),
                        None => return,
                    }
                }
            };
            serve_connection(adapter, io, peer, ctx, handshakes).await;
            drop(slot);
        });
    }
    tracing::info!(protocol = A::PROTOCOL, "listener stopped");
}
