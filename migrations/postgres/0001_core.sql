-- OneKey core schema (PostgreSQL). Timestamps are Unix milliseconds; booleans are 0/1.

CREATE TABLE areas (
    id          BIGSERIAL PRIMARY KEY,
    parent_id   BIGINT REFERENCES areas(id),
    level       TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    worker_id   BIGINT,
    boundary    TEXT NOT NULL DEFAULT '[]',
    updated_at  BIGINT NOT NULL
);

CREATE TABLE elders (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT,
    address        TEXT NOT NULL,
    lat            DOUBLE PRECISION NOT NULL,
    lon            DOUBLE PRECISION NOT NULL,
    grid_id        BIGINT REFERENCES areas(id),
    living         TEXT NOT NULL,
    health_notes   TEXT NOT NULL DEFAULT '',
    medications    TEXT NOT NULL DEFAULT '',
    contacts       TEXT NOT NULL DEFAULT '[]',
    key_safe_code  TEXT,
    checkin_hours  BIGINT NOT NULL DEFAULT 24,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX elders_grid ON elders(grid_id);

CREATE TABLE devices (
    id           BIGSERIAL PRIMARY KEY,
    protocol     TEXT NOT NULL,
    ident        TEXT NOT NULL,
    secret_hex   TEXT,
    model        TEXT NOT NULL DEFAULT '',
    elder_id     BIGINT REFERENCES elders(id),
    enabled      BIGINT NOT NULL DEFAULT 1,
    heartbeat_s  BIGINT NOT NULL DEFAULT 300,
    battery_pct  BIGINT,
    mains        BIGINT,
    signal_pct   BIGINT,
    lat          DOUBLE PRECISION,
    lon          DOUBLE PRECISION,
    last_seen    BIGINT,
    last_seq     BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    UNIQUE (protocol, ident)
);
CREATE INDEX devices_elder ON devices(elder_id);

CREATE TABLE responders (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    team           TEXT,
    skills         TEXT NOT NULL DEFAULT '[]',
    grid_id        BIGINT REFERENCES areas(id),
    home_lat       DOUBLE PRECISION NOT NULL,
    home_lon       DOUBLE PRECISION NOT NULL,
    lat            DOUBLE PRECISION,
    lon            DOUBLE PRECISION,
    on_duty        BIGINT NOT NULL DEFAULT 0,
    max_tasks      BIGINT NOT NULL DEFAULT 1,
    password_hash  TEXT,
    updated_at     BIGINT NOT NULL
);

-- Every durable thing a device said, once: (device_id, dedup_key) makes a retry a no-op.
CREATE TABLE device_events (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BIGINT NOT NULL REFERENCES devices(id),
    dedup_key    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    device_time  BIGINT,
    received_at  BIGINT NOT NULL,
    stored_at    BIGINT NOT NULL,
    incident_id  BIGINT,
    UNIQUE (device_id, dedup_key)
);

CREATE TABLE incidents (
    id                    BIGSERIAL PRIMARY KEY,
    elder_id              BIGINT REFERENCES elders(id),
    device_id             BIGINT REFERENCES devices(id),
    category              TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    priority              BIGINT NOT NULL,
    status                TEXT NOT NULL,
    outcome               TEXT,
    probable_false_alarm  BIGINT NOT NULL DEFAULT 0,
    alarm_count           BIGINT NOT NULL DEFAULT 1,
    lat                   DOUBLE PRECISION,
    lon                   DOUBLE PRECISION,
    accuracy_m            DOUBLE PRECISION,
    -- Non-NULL while open: at most one open incident per (elder or device, category).
    open_key              TEXT UNIQUE,
    received_at           BIGINT NOT NULL,
    stored_at             BIGINT NOT NULL,
    shown_at              BIGINT,
    acked_at              BIGINT,
    acked_by              TEXT,
    dispatched_at         BIGINT,
    accepted_at           BIGINT,
    on_scene_at           BIGINT,
    closed_at             BIGINT,
    closed_by             TEXT
);
CREATE INDEX incidents_status ON incidents(status, priority, received_at);
CREATE INDEX incidents_elder ON incidents(elder_id);

-- Append-only: the id orders the console's live stream and its catch-up.
CREATE TABLE incident_events (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL REFERENCES incidents(id),
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events(incident_id, id);
CREATE FUNCTION incident_events_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'incident_events is append-only'; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER incident_events_no_change BEFORE UPDATE OR DELETE ON incident_events
FOR EACH ROW EXECUTE FUNCTION incident_events_append_only();

CREATE TABLE operators (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    created_at     BIGINT NOT NULL
);

-- Bearer tokens, stored as SHA-256 digests.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('operator', 'responder')),
    subject_id    BIGINT NOT NULL,
    subject_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    expires_at    BIGINT NOT NULL
);
