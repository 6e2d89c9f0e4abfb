-- Dispatch (PostgreSQL): engine state per incident, offers with exactly-once seats, durable timers.

-- The engine's state as JSON; `version` makes concurrent writers (several instances) detect a race.
CREATE TABLE dispatch_states (
    incident_id  BIGINT PRIMARY KEY,
    version      BIGINT NOT NULL,
    state        TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- One row per (incident, responder). `seat` is set on acceptance; the unique index below makes the
-- first accept win a seat, even across instances in the same millisecond.
CREATE TABLE dispatch_offers (
    id            BIGSERIAL PRIMARY KEY,
    incident_id   BIGINT NOT NULL,
    responder_id  BIGINT NOT NULL,
    slot          BIGINT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    seat          BIGINT,
    sent_at       BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    UNIQUE (incident_id, responder_id)
);
CREATE UNIQUE INDEX dispatch_offers_seat ON dispatch_offers(incident_id, slot, seat)
    WHERE seat IS NOT NULL;
CREATE INDEX dispatch_offers_responder ON dispatch_offers(responder_id, status);

-- Every deadline: offer rounds, SLA clocks, welfare checks. Claimed once by setting `fired_at`.
CREATE TABLE dispatch_timers (
    key          TEXT PRIMARY KEY,
    incident_id  BIGINT,
    name         TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    fired_at     BIGINT,
    fired_by     TEXT
);
CREATE INDEX dispatch_timers_due ON dispatch_timers(due_at) WHERE fired_at IS NULL;
