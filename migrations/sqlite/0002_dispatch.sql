-- Dispatch (SQLite): engine state per incident, offers with exactly-once seats, durable timers.

-- The engine's state as JSON; `version` makes concurrent writers (several instances) detect a race.
CREATE TABLE dispatch_states (
    incident_id  INTEGER PRIMARY KEY,
    version      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- One row per (incident, responder). `seat` is set on acceptance; the unique index below makes the
-- first accept win a seat, even across instances in the same millisecond.
CREATE TABLE dispatch_offers (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL,
    responder_id  INTEGER NOT NULL,
    slot          INTEGER NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    seat          INTEGER,
    sent_at       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    answered_at   INTEGER,
    UNIQUE (incident_id, responder_id)
);
CREATE UNIQUE INDEX dispatch_offers_seat ON dispatch_offers(incident_id, slot, seat)
    WHERE seat IS NOT NULL;
CREATE INDEX dispatch_offers_responder ON dispatch_offers(responder_id, status);

-- Every deadline: offer rounds, SLA clocks, welfare checks. Claimed once by setting `fired_at`.
CREATE TABLE dispatch_timers (
    key          TEXT PRIMARY KEY,
    incident_id  INTEGER,
    name         TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    fired_at     INTEGER,
    fired_by     TEXT
);
CREATE INDEX dispatch_timers_due ON dispatch_timers(due_at) WHERE fired_at IS NULL;
