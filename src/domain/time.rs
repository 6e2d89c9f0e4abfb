/// Milliseconds since the Unix epoch, UTC. Every timestamp OneKey stores or sends is one of these:
/// portable across SQLite and PostgreSQL, and native to JavaScript on the console.
pub type Millis = i64;

use std::sync::OnceLock;

/// The server's clock when it is not the wall clock: a drill or a simulated day runs on a
/// compressed clock, `scale` times faster than the wall clock, starting at `start` (the clock's
/// time when the process set it). Every timestamp then lives in that clock, so a day of alarms,
/// SLA clocks and reports reads as a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    real_start: Millis,
    start: Millis,
    scale: f64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

fn wall_millis() -> Millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sets the process's clock once, at start: `scale` (≥ 1) times the wall clock, reading `start`
/// now (default: the wall clock's time). Later calls change nothing; returns whether this one did.
pub fn set_clock(scale: f64, start: Option<Millis>) -> bool {
    let real_start = wall_millis();
    CLOCK
        .set(Clock {
            real_start,
            start: start.unwrap_or(real_start),
            scale: if scale.is_finite() {
                scale.max(1.0)
            } else {
                1.0
            },
        })
        .is_ok()
}

/// How many times faster than the wall clock time runs (1 unless a compressed clock was set).
pub fn clock_scale() -> f64 {
    CLOCK.get().map_or(1.0, |c| c.scale)
}

/// A wall-clock span (a lease, a retry delay, a grace period) in clock milliseconds: the same
/// span of real time that the machinery needs, however fast the clock runs.
pub fn wall_span(ms: Millis) -> Millis {
    (ms as f64 * clock_scale()) as Millis
}

/// The clock. Only the edges (ingress, the API, the dispatch runner) read it; the dispatch engine
/// is handed the time instead.
pub fn now_millis() -> Millis {
    let wall = wall_millis();
    match CLOCK.get() {
        Some(c) if c.scale != 1.0 || c.start != c.real_start => {
            c.start + ((wall - c.real_start) as f64 * c.scale) as Millis
        }
        _ => wall,
    }
}
