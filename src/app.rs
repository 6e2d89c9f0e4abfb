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
use crate::dispatch::{Cadence, Outlets, Runner};
use crate::ingress::mqtt::Mqtt;
use crate::ingress::{
    DeviceRegistry, GatewayContext, deployed::Deployed, gt06::Gt06, h02::H02, native::Native,
    serve_listener, sia::Sia, watch::Watch,
};
use crate::intake::Intake;
use crate::mqtt::{BrokerHealth, embedded};
use crate::notify::{ConnectedDevices, ConsoleHub, Outbox, RelayContext, ResponderHub};
use crate::store::{Sealer, Store};
use crate::web::{self, AppState};

/// Opens the store named in the config and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    crate::store::configure_hashing(&config.auth);
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let durability = store
        .durability()
        .await
        .context("cannot read the database's durability settings")?;
    if durability.is_safe() {
        tracing::info!(settings = ?durability.settings, "store durability");
    } else if config.allow_unsafe_durability {
        tracing::warn!(unsafe_settings = ?durability.unsafe_settings,
            "the store can lose committed alarms on power loss (allow_unsafe_durability is set)");
    } else {
        anyhow::bail!(
            "the database can lose committed alarms on power loss ({}); fix its settings, or set \
             allow_unsafe_durability (ONEKEY_ALLOW_UNSAFE_DURABILITY=true) for a test bench",
            durability.unsafe_settings.join(", ")
        );
    }
    let store = store
        .with_sealer(secrets_key(config)?)
        .await
        .context("cannot seal the database's secrets")?;
    Ok(store)
}

/// The secrets key: `secrets_key`, or the file `secrets_key_file` names (default on SQLite: beside
/// the database), created with a new random key when it does not exist.
fn secrets_key(config: &Config) -> anyhow::Result<Sealer> {
    if let Some(key) = &config.secrets_key {
        return Sealer::from_hex(&key.0).context("secrets_key (ONEKEY_SECRETS_KEY)");
    }
    let path = match &config.secrets_key_file {
        Some(path) => PathBuf::from(path),
        None => match sqlite_path(&config.database_url) {
            Some(db) => PathBuf::from(format!("{db}.key")),
            None => anyhow::bail!(
                "set secrets_key_file (ONEKEY_SECRETS_KEY_FILE) or secrets_key: the key that \
                 seals device keys and key-safe codes in PostgreSQL, the same on every instance"
            ),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Sealer::from_hex(&text).with_context(|| format!("secrets key file {path:?}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = Sealer::generate_key();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create the secrets key file {path:?}"))?;
            file.write_all(format!("{key}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the secrets key file {path:?}"))?;
            tracing::warn!(file = %path.display(),
                "created a new secrets key; keep it apart from the database's backups, and back it up: \
                 without it no device can log in");
            Sealer::from_hex(&key).context("generated key")
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the secrets key file {path:?}")),
    }
}

/// The file of a `sqlite://` URL (without its query), or `None` for another database.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

/// Runs the server until `shutdown` is cancelled, then stops in order; writes the bound addresses
/// to `ready_file` once every listener is up.
pub async fn serve(
    config: Config,
    ready_file: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Application::build(config, shutdown).await?;
    if let Some(path) = &ready_file {
        write_ready_file(path, app.addrs()).await?;
    }
    app.run_until_stopped().await
}

/// A server with its store open, its listeners bound and its tasks running: [`Application::build`]
/// returns once it serves (in-process tests, benches and several instances in one process take
/// the addresses from [`Application::addrs`]); [`Application::run_until_stopped`] waits for the
/// shutdown token and stops in order.
pub struct Application {
    addrs: BTreeMap<&'static str, SocketAddr>,
    shutdown: CancellationToken,
    running: Running,
}

/// What the orderly stop waits for, in its order.
struct Running {
    listeners: Vec<tokio::task::JoinHandle<()>>,
    connections: TaskTracker,
    mqtt: Option<MqttLink>,
    relays: Vec<tokio::task::JoinHandle<()>>,
    gateway: std::sync::Arc<GatewayContext>,
    writer: tokio::task::JoinHandle<()>,
    dispatch: Option<tokio::task::JoinHandle<()>>,
    supervisor: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
}

impl Application {
    /// The bound listeners by name (`http`, `device_tcp`, `gt06`, …, `mqtt` when embedded).
    pub fn addrs(&self) -> &BTreeMap<&'static str, SocketAddr> {
        &self.addrs
    }

    /// Opens the store, binds every listener and starts every task of `config`'s server.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Application> {
        crate::telemetry::metrics();
        if config.clock.scale > 1.0 || config.clock.start_ms.is_some() {
            crate::domain::set_clock(config.clock.scale, config.clock.start_ms);
            tracing::warn!(
                scale = crate::domain::clock_scale(),
                start_ms = config.clock.start_ms,
                "running on a compressed clock (a drill or a simulated day)"
            );
        }
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

        let hub = ConsoleHub::start(store.clone(), 4096, shutdown.child_token()).await?;
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

        let tls = crate::tls::acceptor(&config.tls)?;
        let http = bind(&config.http_addr, "http").await?;
        addrs.insert("http", http.local_addr()?);
        macro_rules! device_listener {
            ($setting:expr, $name:literal, $tls_name:literal, $adapter:expr) => {
                if let Some(addr) = listener(&$setting) {
                    let l = bind(addr, $name).await?;
                    addrs.insert($name, l.local_addr()?);
                    let tls = tls
                        .clone()
                        .filter(|_| config.tls.devices.iter().any(|d| d == $tls_name));
                    if tls.is_some() {
                        tracing::info!(listener = $name, "TLS only");
                    }
                    listeners.push(tokio::spawn(serve_listener(
                        l,
                        $adapter,
                        tls,
                        gateway.clone(),
                        connections.clone(),
                    )));
                }
            };
        }
        device_listener!(config.device_addr, "device_tcp", "native", Native);
        device_listener!(config.gt06_addr, "gt06", "gt06", Deployed(Gt06));
        device_listener!(config.watch_addr, "watch", "watch", Deployed(Watch));
        device_listener!(config.h02_addr, "h02", "h02", Deployed(H02));
        device_listener!(config.sia_addr, "sia", "sia", Sia);

        let broker = BrokerHealth::default();
        let mqtt = start_mqtt(&config, &gateway, &broker, &shutdown, &mut addrs).await?;

        let responders = ResponderHub::start(store.clone(), 4096, shutdown.child_token()).await?;
        // Several instances on one PostgreSQL: follow the others' commits (SQLite has one server).
        let follower = (store.backend() == crate::store::Backend::Postgres).then(|| {
            let relay = crate::notify::remote_commands::CommandRelay::new(store.clone());
            devices.relay_through(relay.clone());
            crate::notify::follow::spawn(
                config.database_url.clone(),
                hub.clone(),
                responders.clone(),
                (relay, devices.clone()),
                shutdown.child_token(),
            )
        });
        let outbox = Outbox::new();
        let relay_ctx = RelayContext {
            store: store.clone(),
            console: hub.clone(),
            outbox: outbox.clone(),
            instance: format!("{:016x}", rand::random::<u64>()),
            settings: config.notify.relay,
            delivery: config.notify.delivery,
        };
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
                config.notify.delivery,
                Outlets {
                    console: hub.clone(),
                    responders: responders.clone(),
                    outbox: outbox.clone(),
                },
            );
            let n = runner
                .refresh_responders()
                .await
                .context("cannot load responders for dispatch")?;
            tracing::info!(responders = n, "dispatch running");
            Some(runner)
        } else {
            None
        };
        let sink = dispatch
            .clone()
            .map(|r| r as std::sync::Arc<dyn crate::notify::inbound::ReplySink>);
        let (relays, sms_inbound) =
            start_relays(&config, mqtt.as_ref(), &relay_ctx, sink, &shutdown)?;
        let dispatch = dispatch.map(|runner| {
            let d = &config.dispatch;
            let cadence = Cadence {
                poll: Duration::from_millis(d.timer_poll_ms.max(10)),
                refresh: Duration::from_millis(d.responder_refresh_ms.max(100)),
                reconcile: Duration::from_millis(d.reconcile_ms.max(100)),
                silence: Duration::from_millis(d.silence_check_ms.max(100)),
                silence_heartbeats: i64::from(d.silence_heartbeats.max(1)),
            };
            (
                runner.clone(),
                runner.spawn(cadence, shutdown.child_token()),
            )
        });
        let traffic = crate::supervision::TrafficBoard::default();
        let supervisor = crate::supervision::start(
            gateway.traffic.clone(),
            config.supervision,
            traffic.clone(),
            shutdown.child_token(),
        );
        let state = AppState {
            store: store.clone(),
            traffic,
            responders,
            dispatch: dispatch.as_ref().map(|(r, _)| r.clone()),
            hub,
            devices,
            registry,
            broker,
            outbox,
            sms_inbound,
            shutdown: shutdown.clone(),
            console: std::sync::Arc::new(web::console_config::ConsoleContext::new(&config)),
            auth: config.auth,
            login_limiter: std::sync::Arc::new(web::auth::LoginLimiter::new(
                config.login_burst,
                Duration::from_millis(config.login_every_ms),
            )),
            https: config.tls.web,
        };
        let router = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let http_shutdown = shutdown.clone();
        let http_task = match tls.filter(|_| config.tls.web) {
            None => tokio::spawn(async move {
                axum::serve(http, router)
                    .with_graceful_shutdown(http_shutdown.cancelled_owned())
                    .await
            }),
            Some(acceptor) => {
                use axum::serve::ListenerExt;
                let https = crate::tls::TlsListener::spawn(http, acceptor, shutdown.child_token())?;
                tracing::info!("the web port speaks HTTPS");
                tokio::spawn(async move {
                    axum::serve(https.tap_io(|_| {}), router)
                        .with_graceful_shutdown(http_shutdown.cancelled_owned())
                        .await
                })
            }
        };

        for (name, addr) in &addrs {
            tracing::info!(listener = name, %addr, "listening");
        }
        Ok(Application {
            addrs,
            shutdown,
            running: Running {
                listeners,
                connections,
                mqtt,
                relays,
                gateway,
                writer,
                dispatch: dispatch.map(|(_, task)| task),
                supervisor,
                follower,
                http: http_task,
                store,
            },
        })
    }

    /// Waits for the shutdown token, then stops: no new connections, every connection finishes
    /// the frame it is on, the writer drains, the tasks end, the store closes.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Running {
            listeners,
            connections,
            mqtt,
            relays,
            gateway,
            writer,
            dispatch,
            supervisor,
            follower,
            http: http_task,
            store,
        } = self.running;
        self.shutdown.cancelled().await;
        tracing::info!("shutting down: no new connections; finishing in-flight alarms");
        for l in listeners {
            let _ = l.await;
        }
        connections.close();
        connections.wait().await;
        if let Some(mqtt) = mqtt {
            mqtt.link.join(Duration::from_secs(15)).await;
        }
        for task in relays {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        drop(gateway);
        if tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .is_err()
        {
            tracing::error!("intake writer did not finish within 30 s");
        }
        if let Some(task) = dispatch {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), supervisor).await;
        if let Some(follower) = follower {
            let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
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
}

/// The MQTT device connection and where its broker is.
struct MqttLink {
    link: Mqtt,
    url: String,
    external: bool,
}

/// Starts the outbox's relays (push when MQTT runs, SMS when a provider is configured) and the
/// supervisor of fallbacks; returns their tasks and, for an HTTP SMS provider, where its
/// callbacks go.
fn start_relays(
    config: &Config,
    mqtt: Option<&MqttLink>,
    ctx: &RelayContext,
    sink: Option<std::sync::Arc<dyn crate::notify::inbound::ReplySink>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, Option<web::SmsCallbacks>)> {
    use crate::notify::outbox::{spawn_relay, spawn_supervisor};
    let mut tasks = Vec::new();
    let (inbound_tx, inbound_rx) = tokio::sync::mpsc::channel(1024);
    let sms = crate::notify::channels::sms::start(
        &config.notify.sms,
        inbound_tx.clone(),
        shutdown.child_token(),
    )
    .context("cannot start SMS")?;
    let mut callbacks = None;
    if let Some((transport, session)) = sms {
        if matches!(
            transport,
            crate::notify::channels::sms::SmsTransport::Http(_)
        ) {
            callbacks = Some(web::SmsCallbacks {
                inbound: inbound_tx.clone(),
                token: config.notify.sms.http.callback_token.clone(),
            });
        }
        tasks.extend(session);
        tasks.push(spawn_relay(
            std::sync::Arc::new(transport),
            ctx.clone(),
            shutdown.child_token(),
        ));
        tracing::info!(provider = %config.notify.sms.provider, "SMS relay running");
    }
    drop(inbound_tx);
    tasks.push(tokio::spawn(crate::notify::inbound::run(
        inbound_rx,
        ctx.store.clone(),
        ctx.console.clone(),
        sink,
    )));
    if let Some(m) = mqtt {
        let (push, connection) = crate::notify::channels::mqtt::start(
            &m.url,
            &config.mqtt_prefix,
            &config.mqtt,
            m.external,
            ctx.store.clone(),
            ctx.console.clone(),
            shutdown.child_token(),
        )
        .context("cannot start the MQTT push")?;
        tasks.push(connection);
        tasks.push(spawn_relay(push, ctx.clone(), shutdown.child_token()));
    }
    tasks.push(spawn_relay(
        std::sync::Arc::new(crate::notify::channels::webhook::Webhooks::new(
            ctx.store.clone(),
        )?),
        ctx.clone(),
        shutdown.child_token(),
    ));
    tasks.push(crate::notify::channels::webhook::spawn_fan_out(
        ctx.store.clone(),
        ctx.console.clone(),
        ctx.outbox.clone(),
        Duration::from_millis(config.notify.relay.poll_ms.clamp(50, 5000)),
        shutdown.child_token(),
    ));
    tasks.push(spawn_supervisor(
        ctx.clone(),
        Duration::from_millis(config.notify.relay.poll_ms.clamp(50, 5000)),
        shutdown.child_token(),
    ));
    Ok((tasks, callbacks))
}

/// Starts the embedded broker when no external one is configured, then the MQTT client.
async fn start_mqtt(
    config: &Config,
    gateway: &std::sync::Arc<GatewayContext>,
    health: &BrokerHealth,
    shutdown: &CancellationToken,
    addrs: &mut BTreeMap<&'static str, SocketAddr>,
) -> anyhow::Result<Option<MqttLink>> {
    let external = config
        .mqtt_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let url = match (external, listener(&config.mqtt_listen)) {
        (Some(url), _) => url.to_string(),
        (None, Some(listen)) => {
            let listen = listen.to_string();
            let settings = config.mqtt.broker.clone();
            let (user, password) = embedded::internal_account();
            let account = (user.clone(), password.clone());
            let addr =
                tokio::task::spawn_blocking(move || embedded::start(&listen, settings, account))
                    .await
                    .context("embedded MQTT broker start-up panicked")??;
            addrs.insert("mqtt", addr);
            format!("mqtt://{user}:{password}@{addr}")
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
    Ok(Some(MqttLink {
        link: mqtt,
        url,
        external: external.is_some(),
    }))
}

async fn bind(addr: &str, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name})"))
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
