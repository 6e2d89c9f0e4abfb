//! Traffic supervision: notices when a protocol's listener or a grid goes quiet.
//!
//! Ingress counts every answered frame per protocol and per grid ([`TrafficCounters`], a short
//! lock and no allocation per frame). Once per window the supervisor hands the counts to
//! [`TrafficWatch`], which keeps each scope's usual rate (an exponentially weighted mean of its
//! past windows) and compares the window just ended against it. A scope goes quiet when its usual
//! rate is worth watching (at least `min_frames` per window, after `warmup` windows) and the window
//! brought less than `drop_share` of it; it is back when a window brings half its usual rate. While
//! a scope is quiet its usual rate is not updated, so a long outage does not become the new normal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::domain::Millis;

/// What traffic is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One protocol's frames (`native`, `mqtt`, `gt06`, `watch`, `h02`, `sia`): its listener.
    Protocol(&'static str),
    /// The frames of the devices of one grid (area id).
    Grid(i64),
}

impl Scope {
    /// `protocol` or `grid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Protocol(_) => "protocol",
            Scope::Grid(_) => "grid",
        }
    }

    /// The protocol name or the grid's id.
    pub fn name(&self) -> String {
        match self {
            Scope::Protocol(p) => (*p).to_string(),
            Scope::Grid(g) => g.to_string(),
        }
    }
}

/// Frames counted since the last window, shared by every connection.
#[derive(Debug, Clone, Default)]
pub struct TrafficCounters {
    counts: Arc<Mutex<HashMap<Scope, u64>>>,
}

impl TrafficCounters {
    /// Counts one answered frame of `protocol` from a device in `grid`.
    pub fn frame(&self, protocol: &'static str, grid: Option<i64>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(Scope::Protocol(protocol)).or_default() += 1;
        if let Some(g) = grid {
            *counts.entry(Scope::Grid(g)).or_default() += 1;
        }
    }

    /// The counts of the window that just ended; the next window starts at zero (scopes seen
    /// before stay, with 0, so that a silent scope is still reported).
    pub fn take(&self) -> HashMap<Scope, u64> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let window = counts.clone();
        counts.values_mut().for_each(|n| *n = 0);
        window
    }
}

/// Tuning of the watch.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// A scope is watched once its usual rate is at least this many frames per window.
    pub min_frames: f64,
    /// A window with less than this share of the usual rate is quiet.
    pub drop_share: f64,
    /// Windows seen before a scope is watched.
    pub warmup: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            min_frames: 20.0,
            drop_share: 0.1,
            warmup: 3,
        }
    }
}

/// A scope that went quiet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quiet {
    /// Which traffic.
    #[serde(skip)]
    pub scope: Scope,
    /// `protocol` or `grid`.
    #[serde(rename = "scope")]
    pub kind: &'static str,
    /// The protocol's name or the grid's id.
    pub name: String,
    /// When the window that showed it ended (clock ms).
    pub since: Millis,
    /// Its usual frames per window.
    pub usual: f64,
    /// Frames in the window that showed it.
    pub seen: u64,
}

/// What a window changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The scope went quiet.
    Quiet(Quiet),
    /// The scope's traffic is back.
    Back(Scope),
}

#[derive(Debug, Default)]
struct Usual {
    mean: f64,
    windows: u32,
}

/// The usual rate per scope, and which scopes are quiet.
#[derive(Debug, Default)]
pub struct TrafficWatch {
    settings: WatchSettings,
    usual: HashMap<Scope, Usual>,
    quiet: HashMap<Scope, Quiet>,
}

/// Weight of the newest window in the usual rate.
const ALPHA: f64 = 0.3;

impl TrafficWatch {
    /// A watch with `settings`.
    pub fn new(settings: WatchSettings) -> TrafficWatch {
        TrafficWatch {
            settings,
            ..TrafficWatch::default()
        }
    }

    /// Takes one window's counts, ended at `now`; returns what changed.
    pub fn window(&mut self, counts: &HashMap<Scope, u64>, now: Millis) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut scopes: Vec<&Scope> = counts.keys().collect();
        scopes.sort();
        for scope in scopes {
            let seen = counts.get(scope).copied().unwrap_or(0);
            let usual = self.usual.entry(*scope).or_default();
            let watched =
                usual.windows >= self.settings.warmup && usual.mean >= self.settings.min_frames;
            if self.quiet.contains_key(scope) {
                if seen as f64 * 2.0 >= usual.mean {
                    self.quiet.remove(scope);
                    changes.push(Change::Back(*scope));
                } else {
                    continue;
                }
            } else if watched && (seen as f64) < usual.mean * self.settings.drop_share {
                let quiet = Quiet {
                    scope: *scope,
                    kind: scope.kind(),
                    name: scope.name(),
                    since: now,
                    usual: usual.mean,
                    seen,
                };
                self.quiet.insert(*scope, quiet.clone());
                changes.push(Change::Quiet(quiet));
                continue;
            }
            usual.mean = if usual.windows == 0 {
                seen as f64
            } else {
                ALPHA * seen as f64 + (1.0 - ALPHA) * usual.mean
            };
            usual.windows += 1;
        }
        changes
    }

    /// The scopes quiet now, in order.
    pub fn quiet(&self) -> Vec<Quiet> {
        let mut q: Vec<Quiet> = self.quiet.values().cloned().collect();
        q.sort_by_key(|q| q.scope);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(Scope, u64)]) -> HashMap<Scope, u64> {
        pairs.iter().copied().collect()
    }

    const GT06: Scope = Scope::Protocol("gt06");
    const NATIVE: Scope = Scope::Protocol("native");

    #[test]
    fn a_protocol_that_stops_goes_quiet_and_comes_back() {
        let mut w = TrafficWatch::new(WatchSettings::default());
        for t in 0..5 {
            assert!(
                w.window(&counts(&[(GT06, 100), (NATIVE, 80)]), t)
                    .is_empty()
            );
        }
        let changes = w.window(&counts(&[(GT06, 0), (NATIVE, 85)]), 5);
        assert_eq!(changes.len(), 1);
        assert!(
            matches!(&changes[0], Change::Quiet(q) if q.scope == GT06 && q.seen == 0 && q.usual > 90.0)
        );
        assert_eq!(w.quiet().len(), 1);
        // Still quiet: reported once, and the outage does not lower the usual rate.
        for t in 6..20 {
            assert!(w.window(&counts(&[(GT06, 0), (NATIVE, 80)]), t).is_empty());
        }
        assert_eq!(
            w.window(&counts(&[(GT06, 60), (NATIVE, 80)]), 20),
            vec![Change::Back(GT06)]
        );
        assert!(w.quiet().is_empty());
    }

    #[test]
    fn small_or_new_scopes_are_not_watched() {
        let mut w = TrafficWatch::new(WatchSettings::default());
        let grid = Scope::Grid(7);
        for t in 0..5 {
            w.window(&counts(&[(grid, 5)]), t);
        }
        assert!(
            w.window(&counts(&[(grid, 0)]), 5).is_empty(),
            "5 a window is too few to judge"
        );
        let mut w = TrafficWatch::new(WatchSettings::default());
        w.window(&counts(&[(GT06, 100)]), 0);
        assert!(
            w.window(&counts(&[(GT06, 0)]), 1).is_empty(),
            "still warming up"
        );
    }

    #[test]
    fn a_dip_is_not_an_outage() {
        let mut w = TrafficWatch::new(WatchSettings::default());
        for t in 0..5 {
            w.window(&counts(&[(GT06, 100)]), t);
        }
        assert!(w.window(&counts(&[(GT06, 40)]), 5).is_empty());
        assert!(w.window(&counts(&[(GT06, 11)]), 6).is_empty());
    }

    #[test]
    fn counters_start_each_window_at_zero_and_keep_known_scopes() {
        let c = TrafficCounters::default();
        c.frame("gt06", Some(3));
        c.frame("gt06", None);
        let first = c.take();
        assert_eq!(first[&GT06], 2);
        assert_eq!(first[&Scope::Grid(3)], 1);
        let second = c.take();
        assert_eq!(
            second[&GT06], 0,
            "a scope that went silent is reported with 0"
        );
    }
}
