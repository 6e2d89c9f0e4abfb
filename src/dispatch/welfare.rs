//! The welfare clock: an elder not heard from for `checkin_hours` (no check-in, no alarm, no
//! activity) gets a welfare-visit incident for the grid worker. Pure, like the engine.

use crate::domain::Millis;

/// When the welfare check of an elder last heard from at `last_sign_of_life` comes due.
pub fn due_at(last_sign_of_life: Millis, checkin_hours: i64) -> Millis {
    last_sign_of_life.saturating_add(checkin_hours.max(1).saturating_mul(3_600_000))
}

/// What to do when an elder's welfare timer fires at `now`: `true` opens a welfare visit; `false`
/// means a sign of life came in since the timer was set (the caller re-arms it at
/// [`due_at`]).
pub fn visit_needed(last_sign_of_life: Millis, checkin_hours: i64, now: Millis) -> bool {
    now >= due_at(last_sign_of_life, checkin_hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_is_due_only_after_the_elders_own_period() {
        let h = 3_600_000;
        let cases = [
            // (last sign, checkin_hours, now, visit)
            (0, 24, 24 * h - 1, false),
            (0, 24, 24 * h, true),
            (10 * h, 24, 24 * h, false),
            (0, 12, 13 * h, true),
            (0, 0, h, true), // a bad setting still checks hourly
        ];
        for (last, hours, now, want) in cases {
            assert_eq!(visit_needed(last, hours, now), want, "{last} {hours} {now}");
        }
        assert_eq!(due_at(5, 2), 5 + 2 * h);
    }
}
