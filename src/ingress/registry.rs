//! The credentials of registered devices, cached for ingress.
//!
//! A lookup goes to the store on a miss and after [`TTL`], so a device disabled or re-keyed in the
//! directory is refused within a minute even on another server instance; the API also drops the
//! entry at once on this instance. The native protocol's replay window lives here, so it survives
//! reconnects; it starts from the highest sequence number the store has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onekey_protocol::ReplayWindow;

use crate::store::{Store, StoreError};

/// How long a cached entry is trusted.
pub const TTL: Duration = Duration::from_secs(60);

/// What ingress knows about a registered device.
#[derive(Debug)]
pub struct DeviceAuth {
    /// Row id.
    pub device_id: i64,
    /// Protocol it is registered under.
    pub protocol: &'static str,
    /// Identity on the wire.
    pub ident: String,
    /// The elder it belongs to.
    pub elder_id: Option<i64>,
    /// Secret key (native MAC key, DC-09 AES key), empty if none.
    pub secret: Vec<u8>,
    /// Refused when false.
    pub enabled: bool,
    /// Heartbeat period in seconds (sets the idle timeout).
    pub heartbeat_s: i64,
    /// Native protocol replay window.
    pub replay: Mutex<ReplayWindow>,
    /// Next native downlink sequence number. Seeded from the clock (8 per second since 2023-11-14),
    /// so it never goes backwards across restarts unless the server sent a device more than eight
    /// frames a second on average since then.
    pub downlink_seq: AtomicU32,
}

fn downlink_seed() -> u32 {
    let secs = crate::domain::now_millis() / 1000 - 1_700_000_000;
    u32::try_from(secs.max(0).saturating_mul(8)).unwrap_or(u32::MAX / 2)
}

struct Cached {
    auth: Arc<DeviceAuth>,
    loaded: Instant,
    stale: bool,
}

/// Cheap-to-clone cache of device credentials.
#[derive(Clone)]
pub struct DeviceRegistry {
    store: Store,
    cache: Arc<Mutex<HashMap<(&'static str, String), Cached>>>,
}

impl DeviceRegistry {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> DeviceRegistry {
        DeviceRegistry {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The device registered as `ident` under `protocol`, or `None` when there is none.
    pub async fn lookup(
        &self,
        protocol: &'static str,
        ident: &str,
    ) -> Result<Option<Arc<DeviceAuth>>, StoreError> {
        let key = (protocol, ident.to_string());
        let previous = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&key) {
                Some(c) if !c.stale && c.loaded.elapsed() < TTL => return Ok(Some(c.auth.clone())),
                Some(c) => Some(c.auth.clone()),
                None => None,
            }
        };
        let Some(creds) = self.store.device_credentials(protocol, ident).await? else {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            return Ok(None);
        };
        // Keep the replay window of a refreshed entry: it may be ahead of the store.
        let window = match &previous {
            Some(p) => *p.replay.lock().unwrap_or_else(|e| e.into_inner()),
            None => match u32::try_from(creds.last_seq) {
                Ok(0) | Err(_) => ReplayWindow::new(),
                Ok(seq) => ReplayWindow::resume(seq),
            },
        };
        let auth = Arc::new(DeviceAuth {
            device_id: creds.device_id,
            protocol,
            ident: ident.to_string(),
            elder_id: creds.elder_id,
            secret: creds.secret,
            enabled: creds.enabled,
            heartbeat_s: creds.heartbeat_s,
            replay: Mutex::new(window),
            downlink_seq: AtomicU32::new(
                previous.map_or_else(downlink_seed, |p| p.downlink_seq.load(Ordering::Relaxed)),
            ),
        });
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key,
            Cached {
                auth: auth.clone(),
                loaded: Instant::now(),
                stale: false,
            },
        );
        Ok(Some(auth))
    }

    /// Marks a cached entry stale (the directory changed it); the next lookup reloads it from the
    /// store but keeps its replay window.
    pub fn forget(&self, protocol: &str, ident: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for ((p, i), cached) in cache.iter_mut() {
            if *p == protocol && i == ident {
                cached.stale = true;
            }
        }
    }

    /// Resolves a claimed identity to a registered, enabled device, or the rejection every ingress
    /// path logs and counts: `unknown_device`, `disabled` or `store_unavailable`.
    pub async fn authorize(
        &self,
        protocol: &'static str,
        ident: &str,
    ) -> Result<Arc<DeviceAuth>, super::Reject> {
        use super::Reject;
        let device = match self.lookup(protocol, ident).await {
            Ok(Some(device)) => device,
            Ok(None) => {
                return Err(Reject::new(
                    "unknown_device",
                    format!("{ident} is not registered as {protocol}"),
                ));
            }
            Err(e) => {
                metrics::counter!("onekey_store_errors_total", "op" => "device_lookup")
                    .increment(1);
                return Err(Reject::new(
                    "store_unavailable",
                    format!("cannot look up {ident}: {e}"),
                ));
            }
        };
        if !device.enabled {
            return Err(Reject::new("disabled", format!("{ident} is disabled")));
        }
        Ok(device)
    }
}
