//! The credentials of registered devices, cached for ingress, and the native replay windows.
//!
//! A lookup goes to the store on a miss and after [`TTL`], so a device disabled or re-keyed in the
//! directory is refused within a minute even on another server instance; the API also marks the
//! entry stale at once on this instance. Every cached entry carries a `changed` signal, raised when
//! the entry is replaced: open connections follow it (see `connection.rs`), so disabling, re-keying
//! or moving a device reaches a connection that is already logged in.
//!
//! The native protocol's replay windows (highest sequence number and the bitmap below it) live in
//! the store, with the device: every frame's sequence number is claimed there, atomically, so a
//! frame replayed to another instance, or after a restart, is refused as well.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onekey_protocol::SeqClass;
use tokio_util::sync::CancellationToken;

use super::{Reason, Reject};
use crate::store::{Store, StoreError};

/// How long a cached entry is trusted.
pub const TTL: Duration = Duration::from_secs(60);

/// What ingress knows about a registered device.
pub struct DeviceAuth {
    /// Row id.
    pub device_id: i64,
    /// Protocol it is registered under.
    pub protocol: &'static str,
    /// Identity on the wire.
    pub ident: String,
    /// The elder it belongs to.
    pub elder_id: Option<i64>,
    /// The elder's grid (for traffic supervision).
    pub grid_id: Option<i64>,
    /// Secret key (native MAC key, DC-09 AES key), empty if none. Never logged.
    pub secret: Vec<u8>,
    /// Refused when false.
    pub enabled: bool,
    /// Heartbeat period in seconds (sets the idle timeout).
    pub heartbeat_s: i64,
    /// Next native downlink sequence number. Seeded from the clock (8 per second since 2023-11-14),
    /// so it never goes backwards across restarts unless the server sent a device more than eight
    /// frames a second on average since then.
    pub downlink_seq: AtomicU32,
    /// Cancelled when this entry is replaced (the directory changed the device, or it was
    /// reloaded after its TTL): holders look the device up again.
    pub changed: CancellationToken,
}

impl std::fmt::Debug for DeviceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuth")
            .field("device_id", &self.device_id)
            .field("protocol", &self.protocol)
            .field("ident", &self.ident)
            .field("elder_id", &self.elder_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl DeviceAuth {
    /// Whether a connection authenticated as `self` may go on as `newer`: the same key, still
    /// enabled. Moving the device to another elder or changing its heartbeat does not end it.
    pub fn still_valid(&self, newer: Option<&DeviceAuth>) -> Result<(), Reject> {
        match newer {
            None => Err(Reject::new(
                Reason::Revoked,
                format!("{} is no longer registered", self.ident),
            )),
            Some(n) if !n.enabled => Err(Reject::new(
                Reason::Revoked,
                format!("{} was disabled", self.ident),
            )),
            Some(n) if n.secret != self.secret => Err(Reject::new(
                Reason::Revoked,
                format!("{} was given a new key", self.ident),
            )),
            Some(_) => Ok(()),
        }
    }
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
            let removed = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            if let Some(old) = removed {
                old.auth.changed.cancel();
            }
            return Ok(None);
        };
        let auth = Arc::new(DeviceAuth {
            device_id: creds.device_id,
            protocol,
            ident: ident.to_string(),
            elder_id: creds.elder_id,
            grid_id: creds.grid_id,
            secret: creds.secret,
            enabled: creds.enabled,
            heartbeat_s: creds.heartbeat_s,
            downlink_seq: AtomicU32::new(
                previous
                    .as_ref()
                    .map_or_else(downlink_seed, |p| p.downlink_seq.load(Ordering::Relaxed)),
            ),
            changed: CancellationToken::new(),
        });
        let replaced = self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key,
            Cached {
                auth: auth.clone(),
                loaded: Instant::now(),
                stale: false,
            },
        );
        if let Some(old) = replaced {
            old.auth.changed.cancel();
        }
        Ok(Some(auth))
    }

    /// Marks a cached entry stale (the directory changed it) and tells its holders: open
    /// connections of the device look it up again at once.
    pub fn forget(&self, protocol: &str, ident: &str) {
        let mut stale = Vec::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for ((p, i), cached) in cache.iter_mut() {
                if *p == protocol && i == ident {
                    cached.stale = true;
                    stale.push(cached.auth.clone());
                }
            }
        }
        for auth in stale {
            auth.changed.cancel();
        }
    }

    /// Resolves a claimed identity to a registered, enabled device, or the rejection every ingress
    /// path logs and counts: `unknown_device`, `disabled` or `store_unavailable`.
    pub async fn authorize(
        &self,
        protocol: &'static str,
        ident: &str,
    ) -> Result<Arc<DeviceAuth>, Reject> {
        let device = match self.lookup(protocol, ident).await {
            Ok(Some(device)) => device,
            Ok(None) => {
                return Err(Reject::new(
                    Reason::UnknownDevice,
                    format!("{ident} is not registered as {protocol}"),
                ));
            }
            Err(e) => {
                metrics::counter!("onekey_store_errors_total", "op" => "device_lookup")
                    .increment(1);
                return Err(Reject::new(
                    Reason::StoreUnavailable,
                    format!("cannot look up {ident}: {e}"),
                ));
            }
        };
        if !device.enabled {
            return Err(Reject::new(
                Reason::Disabled,
                format!("{ident} is disabled"),
            ));
        }
        Ok(device)
    }

    /// The current entry of a device a connection authenticated as `current`: the same one while
    /// nothing changed, the newer one when only its elder or heartbeat changed, or the rejection
    /// that ends the connection (`revoked`) when it was disabled, re-keyed or removed.
    pub async fn revalidate(&self, current: &Arc<DeviceAuth>) -> Result<Arc<DeviceAuth>, Reject> {
        let newer = self
            .lookup(current.protocol, &current.ident)
            .await
            .map_err(|e| {
                Reject::new(
                    Reason::StoreUnavailable,
                    format!("cannot look up {}: {e}", current.ident),
                )
            })?;
        current.still_valid(newer.as_deref())?;
        Ok(newer.unwrap_or_else(|| current.clone()))
    }

    /// Claims a native sequence number in the device's durable replay window.
    pub async fn claim(&self, device: &DeviceAuth, seq: u32) -> Result<SeqClass, Reject> {
        self.store
            .claim_sequence(device.device_id, seq)
            .await
            .map_err(|e| {
                metrics::counter!("onekey_store_errors_total", "op" => "replay_claim").increment(1);
                Reject::new(
                    Reason::StoreUnavailable,
                    format!("cannot check the replay window: {e}"),
                )
            })
    }
}
