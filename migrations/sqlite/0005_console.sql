-- Console (sqlite): who is handling an incident, and records that can be switched off without deleting them.

-- The operator handling an incident now (taken or handed over); NULL when nobody has taken it.
ALTER TABLE incidents ADD COLUMN taken_by TEXT;
ALTER TABLE incidents ADD COLUMN taken_at INTEGER;

-- Disabled records stay for history: a disabled responder is not offered tasks and cannot sign in,
-- a disabled elder gets no welfare checks (operators have their own `disabled`, migration 0006).
ALTER TABLE elders ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE responders ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
