//! What one peer may cost: connections still waiting for their first authenticated frame
//! (handshakes) are capped per listener, the oldest closed when a new one would pass the cap; and a
//! connection's frames are metered, so that a flooding device is cut off before it crowds out
//! the others.
//!
//! Closing the *oldest* handshake, not refusing the newest, keeps the door open for real devices
//! during a flood of connections that never log in: a device sends its first frame within
//! milliseconds of connecting, so it is never the oldest for long, while an idle attacker's
//! connections age and are the first to go.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// The connections of one listener that have not yet authenticated a frame.
pub struct Handshakes {
    cap: usize,
    protocol: &'static str,
    /// By connection id, which grows with time: the first entry is the oldest.
    pending: Mutex<BTreeMap<u64, CancellationToken>>,
}

impl Handshakes {
    /// At most `cap` (at least 1) handshakes open at once on `protocol`'s listener.
    pub fn new(protocol: &'static str, cap: usize) -> Handshakes {
        Handshakes {
            cap: cap.max(1),
            protocol,
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    /// Connection `id` waits for its first frame. Returns the token raised if it is evicted to
    /// make room for newer ones; evicts the oldest beyond the cap.
    pub fn enter(&self, id: u64) -> CancellationToken {
        let token = CancellationToken::new();
        let mut evicted = 0u64;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.insert(id, token.clone());
            while pending.len() > self.cap {
                if let Some((_, oldest)) = pending.pop_first() {
                    oldest.cancel();
                    evicted += 1;
                }
            }
            metrics::gauge!("onekey_handshakes_open", "protocol" => self.protocol)
                .set(pending.len() as f64);
        }
        if evicted > 0 {
            metrics::counter!("onekey_handshakes_evicted_total", "protocol" => self.protocol)
                .increment(evicted);
        }
        token
    }

    /// Connection `id` authenticated, or closed.
    pub fn leave(&self, id: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.remove(&id).is_some() {
            metrics::gauge!("onekey_handshakes_open", "protocol" => self.protocol)
                .set(pending.len() as f64);
        }
    }

    /// Handshakes open now.
    pub fn open(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A token bucket over one connection's frames: `per_sec` on average, bursts of `burst`.
pub struct FrameMeter {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl FrameMeter {
    /// A full bucket.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> FrameMeter {
        let burst = f64::from(burst.max(1));
        FrameMeter {
            per_sec: f64::from(per_sec.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one frame at `now`; false when the connection is over its rate.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_oldest_handshake_is_evicted_first() {
        let h = Handshakes::new("native", 2);
        let a = h.enter(1);
        let b = h.enter(2);
        h.leave(2);
        let c = h.enter(3);
        assert!(!a.is_cancelled() && !b.is_cancelled() && !c.is_cancelled());
        let d = h.enter(4);
        assert!(a.is_cancelled(), "the oldest goes");
        assert!(!c.is_cancelled() && !d.is_cancelled());
        assert_eq!(h.open(), 2);
    }

    #[test]
    fn a_burst_passes_and_a_flood_does_not() {
        let t0 = Instant::now();
        let mut m = FrameMeter::new(10, 5, t0);
        assert!((0..5).all(|_| m.take(t0)), "a burst of 5");
        assert!(!m.take(t0), "the 6th at once is over the rate");
        assert!(m.take(t0 + Duration::from_millis(100)), "refilled at 10/s");
        assert!(!m.take(t0 + Duration::from_millis(100)));
    }
}
