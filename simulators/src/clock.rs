//! The simulation's clock: the same compressed clock the server runs on (`[clock] scale`,
//! `start_ms`), so that a device's timestamps, a volunteer's turnout delay and an operator's
//! reaction all live in the day being simulated. `scale` clock-milliseconds pass per wall-clock
//! millisecond.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on the simulated clock.
pub type Ms = i64;

/// A compressed clock.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    real_start: Instant,
    start: Ms,
    scale: f64,
}

impl SimClock {
    /// A clock that reads `start` now and runs `scale` (≥ 1) times faster than the wall clock.
    pub fn new(start: Ms, scale: f64) -> SimClock {
        SimClock {
            real_start: Instant::now(),
            start,
            scale: scale.max(1.0),
        }
    }

    /// The wall clock itself.
    pub fn wall() -> SimClock {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        SimClock::new(now, 1.0)
    }

    /// The clock's time at start.
    pub fn start(&self) -> Ms {
        self.start
    }

    /// How many times faster than the wall clock.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Now, on the clock.
    pub fn now(&self) -> Ms {
        self.start + (self.real_start.elapsed().as_secs_f64() * 1000.0 * self.scale) as Ms
    }

    /// Now in whole seconds (device clocks).
    pub fn now_secs(&self) -> i64 {
        self.now().div_euclid(1000)
    }

    /// The wall-clock span of `ms` clock-milliseconds.
    pub fn real(&self, ms: Ms) -> Duration {
        Duration::from_secs_f64((ms.max(0) as f64 / self.scale) / 1000.0)
    }

    /// Sleeps until the clock reads `at`.
    pub async fn sleep_until(&self, at: Ms) {
        let left = at - self.now();
        if left > 0 {
            tokio::time::sleep(self.real(left)).await;
        }
    }

    /// Sleeps for `ms` clock-milliseconds.
    pub async fn sleep(&self, ms: Ms) {
        tokio::time::sleep(self.real(ms)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_clock_runs_scale_times_faster() {
        let c = SimClock::new(1_000_000, 100.0);
        assert_eq!(c.real(60_000), Duration::from_millis(600));
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(20));
        let passed = c.now() - t0;
        assert!((2_000..4_000).contains(&passed), "{passed}");
    }
}
