//! The welfare clock: an elder not heard from for their check-in period (`checkin_hours`; no
//! check-in, no alarm, no service request) gets a welfare-visit incident for the grid worker.
//! Pure, like the engine: the runner keeps one durable timer per elder, re-armed by every sign of
//! life, and asks [`visit_needed`] when it fires.

use crate::domain::Millis;

/// One hour, the unit of an elder's check-in period.
pub const HOUR_MS: Millis = 3_600_000;

/// The check-in period of `checkin_hours` hours of `hour_ms` each (at least one hour).
pub fn period_ms(checkin_hours: i64, hour_ms: Millis) -> Millis {
    checkin_hours.max(1).saturating_mul(hour_ms.max(1))
}

/// When the welfare check of an elder last heard from at `last_sign_of_life` comes due.
pub fn due_at(last_sign_of_life: Millis, period_ms: Millis) -> Millis {
    last_sign_of_life.saturating_add(period_ms)
}

/// What to do when an elder's welfare timer fires at `now`: `true` opens a welfare visit; `false`
/// means a sign of life came in since the timer was set (the caller re-arms it at [`due_at`]).
pub fn visit_needed(last_sign_of_life: Millis, period_ms: Millis, now: Millis) -> bool {
    now >= due_at(last_sign_of_life, period_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_is_due_only_after_the_elders_own_period() {
        let h = HOUR_MS;
        let cases = [
            // (last sign, checkin_hours, now, visit)
            (0, 24, 24 * h - 1, false),
            (0, 24, 24 * h, true),
            (10 * h, 24, 24 * h, false),
            (0, 12, 13 * h, true),
            (0, 0, h, true), // a bad setting still checks hourly
        ];
        for (last, hours, now, want) in cases {
            let period = period_ms(hours, HOUR_MS);
            assert_eq!(
                visit_needed(last, period, now),
                want,
                "{last} {hours} {now}"
            );
        }
        assert_eq!(due_at(5, period_ms(2, HOUR_MS)), 5 + 2 * h);
        assert_eq!(period_ms(3, 1000), 3000, "drills shorten the hour");
    }
}
