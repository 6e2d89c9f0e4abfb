//! Wiring: store, intake, listeners, web, ready file, and the orderly shutdown.
//!
//! Shutdown order matters for "nothing is lost": stop accepting; let every connection finish the
//! frame it is handling (its events commit and its ACK is written); then the intake writer drains
//! its queue and writes the last heartbeat state; then the store closes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, listener};
use crate::dispatch::Runner;
use crate::ingress::mqtt::Mqtt;
use crate::ingress::{
    Adapter, DeviceRegistry, GatewayContext, broker, gt06::Gt06, h02::H02, native::Native,
    serve_listener, sia::Sia, watch::Watch,
};
use crate::intake::Intake;
use crate::notify::{ConnectedDevices, ConsoleHub, ResponderHub};
use crate::store::Store;
use crate::web::{self, AppState, BrokerHealth};

/// Opens the store named in the config and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

/// Runs the server until `shutdown` is cancelled, then stops in order.
pub async fn serve(
    config: Config,
    ready_file: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    crate::telemetry::metrics();
    let store = open_store(&config)
        .await?
        .with_checkin_hour_ms(config.dispatch.timing().checkin_hour_ms);
    if let Some(admin) = &config.bootstrap_admin {
        let (name, password) = admin
            .split_once(':')
            .context("ONEKEY_BOOTSTRAP_ADMIN must be name:password")?;
        if store.bootstrap_admin(name, password).await? {
            tracing::info!(name, "created the bootstrap admin");
        }
    }

    let hub = ConsoleHub::new(4096);
    let on_commit = {
        let hub = hub.clone();
        move |committed: crate::intake::Committed| hub.publish(committed.incident_events)
    };
    let (intake, writer) = Intake::start(store.clone(), config.intake.into(), on_commit);
    let registry = DeviceRegistry::new(store.clone());
    let devices = ConnectedDevices::default();
    let gateway = GatewayContext::new(
        intake,
        registry.clone(),
        devices.clone(),
        config.gateway,
        shutdown.child_token(),
    );
    let connections = TaskTracker::new();
    let mut addrs: BTreeMap<&'static str, SocketAddr> = BTreeMap::new();
    let mut listeners = Vec::new();

    let http = bind(&config.http_addr, "http").await?;
    addrs.insert("http", http.local_addr()?);
    macro_rules! device_listener {
        ($setting:expr, $name:literal, $adapter:expr) => {
            if let Some(addr) = listener(&$setting) {
                let l = bind(addr, $name).await?;
                addrs.insert($name, l.local_addr()?);
                listeners.push(spawn_listener(l, $adapter, &gateway, &connections));
            }
        };
    }
    device_listener!(config.device_addr, "device_tcp", Native);
    device_listener!(config.gt06_addr, "gt06", Gt06);
    device_listener!(config.watch_addr, "watch", Watch);
    device_listener!(config.h02_addr, "h02", H02);
    device_listener!(config.sia_addr, "sia", Sia);

    let broker = BrokerHealth::default();
    let mqtt = start_mqtt(&config, &gateway, &broker, &shutdown, &mut addrs).await?;

    let responders = ResponderHub::new(4096);
    let dispatch = if config.dispatch.enabled {
        let d = &config.dispatch;
        let missing = d.policy.missing_templates();
        if !missing.is_empty() {
            tracing::warn!(?missing, "dispatch policy names undefined team templates");
        }
        let runner = Runner::new(
            store.clone(),
            d.policy.clone(),
            d.reference_lat,
            d.timing(),
            hub.clone(),
            responders.clone(),
        );
        let n = runner
            .refresh_responders()
            .await
            .context("cannot load responders for dispatch")?;
        tracing::info!(responders = n, "dispatch running");
        Some((
            runner.clone(),
            runner.spawn(
                Duration::from_millis(d.timer_poll_ms.max(10)),
                Duration::from_millis(d.responder_refresh_ms.max(100)),
                shutdown.child_token(),
            ),
        ))
    } else {
        None
    };
    let state = AppState {
        store: store.clone(),
        responders,
        dispatch: dispatch.as_ref().map(|(r, _)| r.clone()),
        hub,
        devices,
        registry,
        broker,
        mqtt: mqtt.as_ref().map(|m| m.outbox.clone()),
        shutdown: shutdown.clone(),
    };
    let router = web::router(state);
    let http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http, router)
            .with_graceful_shutdown(http_shutdown.cancelled_owned())
            .await
    });

    if let Some(path) = &ready_file {
        write_ready_file(path, &addrs).await?;
    }
    for (name, addr) in &addrs {
        tracing::info!(listener = name, %addr, "listening");
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down: no new connections; finishing in-flight alarms");
    for l in listeners {
        let _ = l.await;
    }
    connections.close();
    connections.wait().await;
    if let Some(mqtt) = mqtt {
        mqtt.join(Duration::from_secs(15)).await;
    }
    drop(gateway);
    if tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .is_err()
    {
        tracing::error!("intake writer did not finish within 30 s");
    }
    if let Some((_, task)) = dispatch {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    match tokio::time::timeout(Duration::from_secs(5), http_task).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server error"),
        Err(_) => tracing::warn!("http connections still open after 5 s; closing"),
        _ => {}
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the embedded broker when no external one is configured, then the MQTT client.
async fn start_mqtt(
    config: &Config,
    gateway: &std::sync::Arc<GatewayContext>,
    health: &BrokerHealth,
    shutdown: &CancellationToken,
    addrs: &mut BTreeMap<&'static str, SocketAddr>,
) -> anyhow::Result<Option<Mqtt>> {
    let external = config
        .mqtt_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let url = match (external, listener(&config.mqtt_listen)) {
        (Some(url), _) => url.to_string(),
        (None, Some(listen)) => {
            let listen = listen.to_string();
            let settings = config.mqtt.broker;
            let addr = tokio::task::spawn_blocking(move || broker::start(&listen, settings))
                .await
                .context("embedded MQTT broker start-up panicked")??;
            addrs.insert("mqtt", addr);
            format!("mqtt://{addr}")
        }
        (None, None) => {
            tracing::info!("MQTT disabled (no mqtt_url and mqtt_listen = off)");
            return Ok(None);
        }
    };
    let mqtt = crate::ingress::mqtt::start(
        &url,
        &config.mqtt_prefix,
        &config.mqtt,
        external.is_some(),
        gateway.clone(),
        health.clone(),
        shutdown.child_token(),
    )
    .context("cannot start the MQTT client")?;
    Ok(Some(mqtt))
}

async fn bind(addr: &str, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name})"))
}

fn spawn_listener<A: Adapter>(
    listener: TcpListener,
    adapter: A,
    gateway: &std::sync::Arc<GatewayContext>,
    connections: &TaskTracker,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve_listener(
        listener,
        adapter,
        gateway.clone(),
        connections.clone(),
    ))
}

/// Writes `{"http": "host:port", …}` atomically: a temp file renamed into place.
async fn write_ready_file(path: &Path, addrs: &BTreeMap<&str, SocketAddr>) -> anyhow::Result<()> {
    let json: BTreeMap<&str, String> = addrs.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, serde_json::to_vec_pretty(&json)?)
        .await
        .context("cannot write the ready file")?;
    tokio::fs::rename(&tmp, path)
        .await
        .context("cannot move the ready file into place")?;
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("signal received");
        token.cancel();
    });
}
