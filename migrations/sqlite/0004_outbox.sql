-- The transactional outbox (SQLite): everything that leaves the server for a person or another
-- system is a row here, written in the transaction that decided it, then delivered by a relay.

CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    -- Unique per logical message: a step that is retried, or two instances, write it once.
    idem_key      TEXT NOT NULL UNIQUE,
    incident_id   INTEGER,
    -- 'push' (responder app: MQTT task topic and the app's live stream), 'sms', 'webhook'.
    channel       TEXT NOT NULL,
    -- Responder id (push), phone number (sms), subscription id (webhook).
    recipient     TEXT NOT NULL,
    responder_id  INTEGER,
    -- What it is for: offer, assigned, stand_down, escalation, cancel_notice, message,
    -- family_alert, offer_sms, event.
    purpose       TEXT NOT NULL,
    payload       TEXT NOT NULL,
    -- pending → sent (the channel took it) → delivered (the app or handset confirmed); failed.
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    due_at        INTEGER NOT NULL,
    claimed_by    TEXT,
    claimed_until INTEGER,
    -- Unless delivered by then, the fallback runs (SMS instead of the app, or an operator).
    confirm_by    INTEGER,
    fallback      TEXT,
    fallback_done INTEGER NOT NULL DEFAULT 0,
    external_id   TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    delivered_at  INTEGER,
    failed_at     INTEGER
);
CREATE INDEX notifications_due ON notifications(channel, due_at) WHERE status = 'pending';
CREATE INDEX notifications_confirm ON notifications(confirm_by)
    WHERE fallback_done = 0 AND confirm_by IS NOT NULL;
CREATE INDEX notifications_incident ON notifications(incident_id);
CREATE INDEX notifications_responder ON notifications(responder_id, id) WHERE responder_id IS NOT NULL;
CREATE INDEX notifications_recipient ON notifications(channel, recipient, id);
CREATE INDEX notifications_external ON notifications(external_id) WHERE external_id IS NOT NULL;

-- Why an operator is needed now (an escalation, a failed delivery, unreachable family); cleared
-- when an operator acknowledges that step.
ALTER TABLE incidents ADD COLUMN attention TEXT;
ALTER TABLE incidents ADD COLUMN attention_at INTEGER;
CREATE INDEX incidents_attention ON incidents(attention_at) WHERE attention IS NOT NULL;

-- Whether the saved state implies a pending timer (a running SLA clock or an open offer round):
-- the reconciler repairs a state that does but has none.
ALTER TABLE dispatch_states ADD COLUMN needs_timer INTEGER NOT NULL DEFAULT 0;

-- How a responder is reached: 'app' (push, SMS if unconfirmed) or 'sms' (no app).
ALTER TABLE responders ADD COLUMN notify_by TEXT NOT NULL DEFAULT 'app';

-- Other systems of the district (a 智慧养老 platform, a 120 dispatch bridge) subscribe to incident
-- events; `kinds`, `categories` are JSON arrays (empty = all), `area_id` any area (NULL = all).
CREATE TABLE webhook_subscriptions (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    kinds       TEXT NOT NULL DEFAULT '[]',
    categories  TEXT NOT NULL DEFAULT '[]',
    area_id     INTEGER REFERENCES areas(id),
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);

-- How far the webhook fan-out has read the incident event log (one row).
CREATE TABLE outbox_cursors (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
