//! Typed settings: built-in defaults, then a TOML file, then `ONEKEY_*` environment variables.
//!
//! Top-level keys map to `ONEKEY_<KEY>` (`ONEKEY_HTTP_ADDR`); nested ones use a double underscore
//! (`ONEKEY_INTAKE__BATCH_MAX`). A listener address of `off` disables that listener.

use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::dispatch::DispatchPolicy;
use crate::intake::IntakeConfig;
pub use crate::mqtt::MqttSettings;

/// Every setting of a OneKey server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Start even when the database's durability settings can lose a committed alarm on power
    /// loss (SQLite `synchronous` below FULL, PostgreSQL `fsync` or `full_page_writes` off,
    /// `synchronous_commit=off`). Default false: such a server refuses to start.
    pub allow_unsafe_durability: bool,
    /// Web console and API listener.
    pub http_addr: String,
    /// Native protocol listener (`off` disables).
    pub device_addr: String,
    /// GT06 listener.
    pub gt06_addr: String,
    /// 3G watch listener.
    pub watch_addr: String,
    /// H02 listener.
    pub h02_addr: String,
    /// SIA DC-09 listener.
    pub sia_addr: String,
    /// External MQTT broker; unset runs the embedded one. Several comma-separated URLs name the
    /// nodes of one cluster, tried in turn after each connection error.
    pub mqtt_url: Option<String>,
    /// Topic prefix.
    pub mqtt_prefix: String,
    /// The embedded broker's listener when `mqtt_url` is unset (`off` disables MQTT). When taken, an
    /// ephemeral port is used instead, with a warning.
    pub mqtt_listen: String,
    /// MQTT client and embedded broker tuning.
    pub mqtt: MqttSettings,
    /// `name:password` of an admin to create when none exists.
    pub bootstrap_admin: Option<String>,
    /// Log filter (`EnvFilter` syntax).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Device connections.
    pub gateway: GatewayConfig,
    /// The group-commit writer.
    pub intake: IntakeSettings,
    /// Dispatch: matching, offers, escalation, SLA clocks.
    pub dispatch: DispatchSettings,
    /// The operators' console and the responders' app: the centre's number, the map, procedures.
    pub console: ConsoleSettings,
    /// Sessions and login limits.
    pub auth: crate::store::AuthSettings,
    /// Logins per client address: a burst of this many, then one every `login_every_ms`.
    pub login_burst: u32,
    /// Milliseconds between logins per client address once the burst is spent.
    pub login_every_ms: u64,
    /// The outbox: relays, delivery deadlines, SMS and webhooks.
    pub notify: NotifySettings,
    /// The clock (`[clock]`): the wall clock, or a compressed one for drills and simulated days.
    pub clock: ClockSettings,
    /// Traffic supervision (`[supervision]`).
    pub supervision: crate::supervision::SupervisionSettings,
    /// The key that seals device keys, key-safe codes and webhook secrets at rest: 64 hex digits
    /// (`ONEKEY_SECRETS_KEY`). Prefer `secrets_key_file`.
    pub secrets_key: Option<Redacted>,
    /// A file holding the secrets key (created, mode 0600, when missing). Default on SQLite:
    /// the database file's path with `.key` appended; PostgreSQL needs one of the two settings,
    /// the same on every instance.
    pub secrets_key_file: Option<String>,
    /// TLS on the web port and device listeners (`[tls]`).
    pub tls: TlsSettings,
}

/// A setting never shown in logs or `Debug` output.
#[derive(Clone, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl<'de> Deserialize<'de> for Redacted {
    /// A string; or, as the environment provider reads a key made only of decimal digits, a
    /// number, given back its leading zeros (keys are 64 digits).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Redacted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string (quote a key made only of digits)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Redacted, E> {
                Ok(Redacted(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Redacted, E> {
                Ok(Redacted(format!("{v:064}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Redacted, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a key is not a negative number"))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_any(Text)
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"…\"")
    }
}

/// `[tls]`: TLS with rustls. One certificate chain and key (PEM) serve every TLS listener.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TlsSettings {
    /// Certificate chain, PEM (`ONEKEY_TLS__CERT_FILE`).
    pub cert_file: Option<String>,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    /// HTTPS on `http_addr` (and `Strict-Transport-Security` on every answer).
    pub web: bool,
    /// Device listeners that speak TLS only, by protocol: `native`, `gt06`, `watch`, `h02`, `sia`
    /// (`ONEKEY_TLS__DEVICES='["native"]'`). Deployed trackers mostly cannot; OneKey's own
    /// devices and DC-09 receivers can.
    pub devices: Vec<String>,
}

/// `[clock]`: a compressed clock for drills and simulated days. Every timestamp, SLA clock,
/// policy duration (offer rounds, receipt and family deadlines, check-in hours) and report then
/// runs on it, so a day reads as a day; the machinery's own settings in milliseconds (polls,
/// leases, retries, heartbeat idle timeouts) stay wall-clock time. Device clocks must follow it
/// (the simulators do).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClockSettings {
    /// How many times faster than the wall clock (default 1: the wall clock).
    pub scale: f64,
    /// The clock's time at start, Unix milliseconds (default: the wall clock's).
    pub start_ms: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://onekey.db".into(),
            allow_unsafe_durability: false,
            http_addr: "127.0.0.1:8080".into(),
            device_addr: "0.0.0.0:7700".into(),
            gt06_addr: "0.0.0.0:5023".into(),
            watch_addr: "0.0.0.0:5093".into(),
            h02_addr: "0.0.0.0:5013".into(),
            sia_addr: "0.0.0.0:5074".into(),
            mqtt_url: None,
            mqtt_prefix: "onekey".into(),
            mqtt_listen: "127.0.0.1:1883".into(),
            mqtt: MqttSettings::default(),
            bootstrap_admin: None,
            log: "info,sqlx=warn,rumqttd=off".into(),
            log_format: "text".into(),
            gateway: GatewayConfig::default(),
            intake: IntakeSettings::default(),
            dispatch: DispatchSettings::default(),
            console: ConsoleSettings::default(),
            auth: crate::store::AuthSettings::default(),
            login_burst: 30,
            login_every_ms: 2_000,
            notify: NotifySettings::default(),
            clock: ClockSettings::default(),
            supervision: Default::default(),
            secrets_key: None,
            secrets_key_file: None,
            tls: TlsSettings::default(),
        }
    }
}

/// `[notify]`: how messages leave the server.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NotifySettings {
    /// Relay tuning (`[notify.relay]`).
    pub relay: crate::notify::RelaySettings,
    /// Delivery deadlines before a fallback runs (`[notify.delivery]`).
    pub delivery: crate::notify::DeliveryPolicy,
    /// SMS (`[notify.sms]`: `provider = "smpp"` or `"http"`).
    pub sms: crate::notify::channels::sms::SmsSettings,
}

/// Limits for device connections.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Most open device connections per listener; more are refused.
    pub max_connections: usize,
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// A new connection must send an authenticated frame within this many seconds.
    pub first_frame_secs: u64,
    /// Most connections per listener still waiting for their first authenticated frame; a new one
    /// beyond it closes the oldest.
    pub max_handshakes: usize,
    /// Frames per second one connection may send on average; faster closes it (`flood`).
    pub max_frames_per_sec: u32,
    /// Frames one connection may send at once above that rate (a device's backlog).
    pub frame_burst: u32,
    /// A connection silent for this many heartbeat periods is closed.
    pub idle_heartbeats: u32,
    /// Heartbeat period assumed before the device is known.
    pub default_heartbeat_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_connections: 20_000,
            max_frame_bytes: 2048,
            first_frame_secs: 30,
            max_handshakes: 1_000,
            max_frames_per_sec: 100,
            frame_burst: 500,
            idle_heartbeats: 3,
            default_heartbeat_secs: 300,
        }
    }
}

impl GatewayConfig {
    /// How long a device with heartbeat period `heartbeat_s` may stay silent.
    pub fn idle_timeout(&self, heartbeat_s: i64) -> Duration {
        let beat = u64::try_from(heartbeat_s)
            .unwrap_or(self.default_heartbeat_secs)
            .max(1);
        Duration::from_secs(beat * u64::from(self.idle_heartbeats.max(1)) + 30)
    }
}

/// Group-commit tuning, in config units.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct IntakeSettings {
    /// Most events per transaction.
    pub batch_max: usize,
    /// Milliseconds to wait for more events after the first of a batch.
    pub linger_ms: u64,
    /// Queue length.
    pub queue: usize,
    /// Milliseconds between heartbeat-state writes.
    pub status_flush_ms: u64,
    /// Refusals of the same event by the store (a constraint it breaks, not an outage) after
    /// which it is quarantined, put before an operator and ACKed; 0 = never.
    pub quarantine_after: u32,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        let d = IntakeConfig::default();
        IntakeSettings {
            batch_max: d.batch_max,
            linger_ms: d.linger.as_millis() as u64,
            queue: d.queue,
            status_flush_ms: d.status_flush.as_millis() as u64,
            quarantine_after: d.quarantine_after,
        }
    }
}

impl From<IntakeSettings> for IntakeConfig {
    fn from(s: IntakeSettings) -> Self {
        IntakeConfig {
            batch_max: s.batch_max.max(1),
            linger: Duration::from_millis(s.linger_ms),
            queue: s.queue.max(1),
            status_flush: Duration::from_millis(s.status_flush_ms.max(10)),
            quarantine_after: s.quarantine_after,
        }
    }
}

/// Dispatch settings (`[dispatch]`; the policy under `[dispatch.policy]`, e.g.
/// `[dispatch.policy.emergency]`, see [`DispatchPolicy`] for every key and its default).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DispatchSettings {
    /// Run the dispatch engine in this instance (default true).
    pub enabled: bool,
    /// Latitude the spatial index is projected around (default 27.11, Jizhou).
    pub reference_lat: f64,
    /// Milliseconds between polls for due timers (default 500).
    pub timer_poll_ms: u64,
    /// Milliseconds between reloads of available responders (on duty or on shift) into the index,
    /// which is also how often welfare timers are armed for new elders (default 30000; duty changes
    /// through the responder API reload at once).
    pub responder_refresh_ms: u64,
    /// Milliseconds a claimed timer is reserved for the instance firing it; if that instance dies
    /// mid-fire, another fires the timer after this lease (default 30000).
    pub timer_lease_ms: u64,
    /// Milliseconds between passes of the reconciler, which repairs open incidents dispatch lost
    /// track of (default 10000).
    pub reconcile_ms: u64,
    /// Milliseconds an incident must be old before the reconciler looks at it (default 10000,
    /// well above the dispatch inbox's own grace).
    pub reconcile_grace_ms: u64,
    /// A device that says nothing for this many of its heartbeat periods gets a technical
    /// incident for the grid worker (default 3).
    pub silence_heartbeats: u32,
    /// Milliseconds between looks for silent devices (default 60000).
    pub silence_check_ms: u64,
    /// Seconds in one hour of an elder's check-in period (default 3600; drills and tests shorten
    /// it so that `checkin_hours = 2` means two of these).
    pub checkin_hour_s: u64,
    /// Local time's offset from UTC in minutes, for responders' shifts (default 480, China
    /// Standard Time).
    pub utc_offset_min: i64,
    /// The policy.
    pub policy: DispatchPolicy,
}

impl DispatchSettings {
    /// The runner's timing in engine units.
    pub fn timing(&self) -> crate::dispatch::RunnerTiming {
        crate::dispatch::RunnerTiming {
            timer_lease_ms: i64::try_from(self.timer_lease_ms.max(1)).unwrap_or(i64::MAX),
            reconcile_grace_ms: i64::try_from(self.reconcile_grace_ms).unwrap_or(i64::MAX),
            checkin_hour_ms: crate::dispatch::policy::secs_to_ms(self.checkin_hour_s.max(1)),
            utc_offset_min: self.utc_offset_min.clamp(-14 * 60, 14 * 60),
        }
    }
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            enabled: true,
            reference_lat: 27.11,
            timer_poll_ms: 500,
            responder_refresh_ms: 30_000,
            timer_lease_ms: 30_000,
            reconcile_ms: 10_000,
            reconcile_grace_ms: 10_000,
            silence_heartbeats: 3,
            silence_check_ms: 60_000,
            checkin_hour_s: 3600,
            utc_offset_min: 480,
            policy: DispatchPolicy::default(),
        }
    }
}

/// What the console and the app show beyond the data (`[console]`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ConsoleSettings {
    /// The centre's phone number, behind the app's "call the centre" button (default `12349`).
    pub centre_phone: String,
    /// The map (`[console.map]`).
    pub map: MapSettings,
    /// Checklists per alarm kind (`[console.procedures.<name>]`, see [`crate::procedures`]);
    /// a table given in the file replaces the built-in one of that name.
    pub procedures: std::collections::BTreeMap<String, crate::procedures::Procedure>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            centre_phone: "12349".into(),
            map: MapSettings::default(),
            procedures: crate::procedures::defaults(),
        }
    }
}

/// The map's base layer (`[console.map]`). Without `tile_url` the console draws the grid outlines
/// alone, which works on a closed network; with it, raster tiles from that server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MapSettings {
    /// A `{z}/{x}/{y}` raster tile URL template (`{s}` for subdomains), e.g. the city's own tile
    /// server; empty: no tiles.
    pub tile_url: String,
    /// The attribution the tile provider requires, shown in the map's corner.
    pub attribution: String,
    /// Highest zoom level the tile server has (default 18 when 0).
    pub max_zoom: u8,
}

/// An enabled listener address, or `None` for `off`.
pub fn listener(addr: &str) -> Option<&str> {
    let addr = addr.trim();
    (!addr.eq_ignore_ascii_case("off") && !addr.is_empty()).then_some(addr)
}

impl Config {
    /// Loads defaults, then `file` (or `onekey.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("onekey.toml").exists() => {
                figment = figment.merge(Toml::file("onekey.toml"))
            }
            None => {}
        }
        figment
            .merge(Env::prefixed("ONEKEY_").split("__"))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "http_addr = \"1.2.3.4:1\"\n[intake]\nbatch_max = 7\n\
                 [dispatch.policy.emergency]\noffers_per_seat = 9\n",
            )?;
            jail.set_env("ONEKEY_HTTP_ADDR", "127.0.0.1:0");
            jail.set_env("ONEKEY_GT06_ADDR", "off");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr, "127.0.0.1:0");
            assert_eq!(c.intake.batch_max, 7);
            assert_eq!(c.dispatch.policy.emergency.offers_per_seat, 9);
            assert_eq!(c.dispatch.policy.emergency.sla.ack_s, Some(60));
            assert_eq!(listener(&c.gt06_addr), None);
            assert_eq!(listener(&c.device_addr), Some("0.0.0.0:7700"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn a_secrets_key_of_digits_only_keeps_its_leading_zeros() {
        figment::Jail::expect_with(|jail| {
            let key = format!("{:064}", 42);
            jail.set_env("ONEKEY_SECRETS_KEY", &key);
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.secrets_key.map(|k| k.0), Some(key));
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/onekey.toml"))).is_err());
    }
}
