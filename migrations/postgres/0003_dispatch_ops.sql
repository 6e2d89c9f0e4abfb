-- Dispatch operations (PostgreSQL): timer claim leases, responders' recurring shifts.

-- A claim is a lease: the instance in `claimed_by` fires the timer before `claimed_until` and then
-- sets `fired_at`. If it dies mid-fire the lease runs out and another instance fires the timer.
ALTER TABLE dispatch_timers ADD COLUMN claimed_by TEXT;
ALTER TABLE dispatch_timers ADD COLUMN claimed_until BIGINT;

-- Weekly recurring shifts in local time, as JSON:
-- [{"weekdays": 31, "start_min": 480, "end_min": 1020}] (bit 0 = Monday; end < start wraps midnight).
ALTER TABLE responders ADD COLUMN shifts TEXT NOT NULL DEFAULT '[]';
