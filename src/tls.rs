//! TLS with rustls for the web port (HTTPS) and the device listeners that ask for it (`[tls]`).
//! One certificate chain and private key (PEM files) serve every TLS listener.
//!
//! A handshake that fails or does not finish within its deadline closes that one connection, is
//! logged with the peer, and counted in `onekey_tls_handshake_failures_total{listener}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::TlsSettings;

/// Device listeners that may speak TLS, by the name `[tls] devices` uses.
pub const DEVICE_LISTENERS: &[&str] = &["native", "gt06", "watch", "h02", "sia"];

/// The acceptor for `settings`' certificate, or `None` when no listener uses TLS. Errors name the
/// file or setting at fault.
pub fn acceptor(settings: &TlsSettings) -> anyhow::Result<Option<TlsAcceptor>> {
    for name in &settings.devices {
        anyhow::ensure!(
            DEVICE_LISTENERS.contains(&name.as_str()),
            "[tls] devices names {name:?}; the device listeners are {DEVICE_LISTENERS:?}"
        );
    }
    if !settings.web && settings.devices.is_empty() {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        anyhow::bail!("TLS is on, but [tls] cert_file and key_file are not both set");
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read the certificate file {cert_file:?}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in the certificate file {cert_file:?}"))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {cert_file:?}");
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("cannot read a private key from {key_file:?}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and private key do not go together")?;
    let listeners = settings.devices.iter().map(String::as_str);
    for listener in listeners.chain(settings.web.then_some("http")) {
        for reason in ["failed", "timeout"] {
            metrics::counter!("onekey_tls_handshake_failures_total",
                "listener" => listener.to_string(), "reason" => reason)
            .absolute(0);
        }
    }
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Completes the server side of a handshake within `deadline`; `None` (logged and counted) when
/// it fails or times out.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    listener: &'static str,
    deadline: Duration,
) -> Option<TlsStream<TcpStream>> {
    let reason = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(e)) => {
            tracing::info!(listener, %peer, error = %e, "TLS handshake failed");
            "failed"
        }
        Err(_) => {
            tracing::info!(listener, %peer, "TLS handshake not finished in time; closing");
            "timeout"
        }
    };
    metrics::counter!("onekey_tls_handshake_failures_total",
        "listener" => listener, "reason" => reason)
    .increment(1);
    None
}

/// The web port under TLS: an `axum::serve` listener whose handshakes run in their own tasks
/// (at most `MAX_PENDING` at a time), so a slow client never holds up the others.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

const MAX_PENDING: usize = 1_000;
const WEB_HANDSHAKE: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Accepts on `listener` until `shutdown`, handing on the connections whose handshake
    /// succeeds.
    pub fn spawn(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        let pending = Arc::new(Semaphore::new(MAX_PENDING));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    a = listener.accept() => a,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "https accept failed; backing off");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = pending.clone().try_acquire_owned() else {
                    metrics::counter!("onekey_tls_handshake_failures_total",
                        "listener" => "http", "reason" => "busy")
                    .increment(1);
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(tls) =
                        handshake(&acceptor, stream, peer, "http", WEB_HANDSHAKE).await
                    {
                        let _ = tx.send((tls, peer)).await;
                    }
                    drop(permit);
                });
            }
        });
        Ok(TlsListener { incoming, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(pair) => pair,
            // The accept task stopped (shutdown): wait for axum's graceful shutdown to end us.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
