//! Supervision of the system as a whole: a listener, a protocol or a grid whose traffic stops.
//!
//! A single device that goes silent is the dispatch runner's business (a technical incident for
//! the grid worker). What this module watches is the failure no single device shows: an update
//! that breaks one protocol's listener, a mobile network down in one grid, a broker that stops
//! delivering. Every `traffic_window_ms` it takes the frames counted by ingress and hands them
//! to the pure [`traffic::TrafficWatch`]. A scope that went quiet is logged, counted
//! (`onekey_traffic_quiet{scope,name}` is 1 while it lasts, `onekey_traffic_quiet_total{scope}`),
//! shown on `/healthz` (`status: degraded`, `traffic_quiet`), and the console's banner calls the
//! operator with the alarm sound until it is back.
//!
//! The watch lives in memory: after a restart it learns each scope's usual rate again (three
//! windows) before it judges.

pub mod traffic;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::now_millis;
use traffic::{Change, Quiet, TrafficCounters, TrafficWatch, WatchSettings};

/// `[supervision]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct SupervisionSettings {
    /// Length of one counting window, wall-clock ms (default 600 000: ten minutes).
    pub traffic_window_ms: u64,
    /// A scope is watched once it usually brings this many frames per window (default 20).
    pub traffic_min_frames: f64,
    /// A window with less than this share of the usual rate is quiet (default 0.1).
    pub traffic_drop_share: f64,
    /// Windows learned before a scope is judged (default 3).
    pub traffic_warmup: u32,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        let w = WatchSettings::default();
        SupervisionSettings {
            traffic_window_ms: 600_000,
            traffic_min_frames: w.min_frames,
            traffic_drop_share: w.drop_share,
            traffic_warmup: w.warmup,
        }
    }
}

/// The scopes quiet now, for `/healthz` and the console.
#[derive(Debug, Clone, Default)]
pub struct TrafficBoard {
    quiet: Arc<Mutex<Vec<Quiet>>>,
}

impl TrafficBoard {
    /// The quiet scopes.
    pub fn quiet(&self) -> Vec<Quiet> {
        self.quiet.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, quiet: Vec<Quiet>) {
        *self.quiet.lock().unwrap_or_else(|e| e.into_inner()) = quiet;
    }
}

/// Starts the traffic watch; it stops at `shutdown`.
pub fn start(
    counters: TrafficCounters,
    settings: SupervisionSettings,
    board: TrafficBoard,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut watch = TrafficWatch::new(WatchSettings {
        min_frames: settings.traffic_min_frames,
        drop_share: settings.traffic_drop_share,
        warmup: settings.traffic_warmup,
    });
    let every = Duration::from_millis(settings.traffic_window_ms.max(100));
    // Every protocol starts "not quiet", so the alert on this gauge has a series from the start.
    for &protocol in crate::store::PROTOCOLS {
        metrics::gauge!("onekey_traffic_quiet", "scope" => "protocol", "name" => protocol).set(0.0);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let counts = counters.take();
            for change in watch.window(&counts, now_millis()) {
                report(&change);
            }
            board.set(watch.quiet());
        }
    })
}

fn report(change: &Change) {
    match change {
        Change::Quiet(q) => {
            let (scope, name) = (q.scope.kind(), q.scope.name());
            tracing::error!(scope, name = %name, usual = q.usual, seen = q.seen, "traffic stopped");
            metrics::gauge!("onekey_traffic_quiet", "scope" => scope, "name" => name).set(1.0);
            metrics::counter!("onekey_traffic_quiet_total", "scope" => scope).increment(1);
        }
        Change::Back(s) => {
            let (scope, name) = (s.kind(), s.name());
            tracing::info!(scope, name = %name, "traffic is back");
            metrics::gauge!("onekey_traffic_quiet", "scope" => scope, "name" => name).set(0.0);
        }
    }
}
