-- OneKey core schema (SQLite). Timestamps are Unix milliseconds; booleans are 0/1.

CREATE TABLE areas (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES areas(id),
    level       TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    worker_id   INTEGER,
    boundary    TEXT NOT NULL DEFAULT '[]',
    updated_at  INTEGER NOT NULL
);

CREATE TABLE elders (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT,
    address        TEXT NOT NULL,
    lat            REAL NOT NULL,
    lon            REAL NOT NULL,
    grid_id        INTEGER REFERENCES areas(id),
    living         TEXT NOT NULL,
    health_notes   TEXT NOT NULL DEFAULT '',
    medications    TEXT NOT NULL DEFAULT '',
    contacts       TEXT NOT NULL DEFAULT '[]',
    key_safe_code  TEXT,
    checkin_hours  INTEGER NOT NULL DEFAULT 24,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX elders_grid ON elders(grid_id);

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    protocol     TEXT NOT NULL,
    ident        TEXT NOT NULL,
    secret_hex   TEXT,
    model        TEXT NOT NULL DEFAULT '',
    elder_id     INTEGER REFERENCES elders(id),
    enabled      INTEGER NOT NULL DEFAULT 1,
    heartbeat_s  INTEGER NOT NULL DEFAULT 300,
    battery_pct  INTEGER,
    mains        INTEGER,
    signal_pct   INTEGER,
    lat          REAL,
    lon          REAL,
    last_seen    INTEGER,
    last_seq     INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL,
    UNIQUE (protocol, ident)
);
CREATE INDEX devices_elder ON devices(elder_id);

CREATE TABLE responders (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    team           TEXT,
    skills         TEXT NOT NULL DEFAULT '[]',
    grid_id        INTEGER REFERENCES areas(id),
    home_lat       REAL NOT NULL,
    home_lon       REAL NOT NULL,
    lat            REAL,
    lon            REAL,
    on_duty        INTEGER NOT NULL DEFAULT 0,
    max_tasks      INTEGER NOT NULL DEFAULT 1,
    password_hash  TEXT,
    updated_at     INTEGER NOT NULL
);

-- Every durable thing a device said, once: (device_id, dedup_key) makes a retry a no-op.
CREATE TABLE device_events (
    id           INTEGER PRIMARY KEY,
    device_id    INTEGER NOT NULL REFERENCES devices(id),
    dedup_key    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    device_time  INTEGER,
    received_at  INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL,
    incident_id  INTEGER,
    UNIQUE (device_id, dedup_key)
);

CREATE TABLE incidents (
    id                    INTEGER PRIMARY KEY,
    elder_id              INTEGER REFERENCES elders(id),
    device_id             INTEGER REFERENCES devices(id),
    category              TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    priority              INTEGER NOT NULL,
    status                TEXT NOT NULL,
    outcome               TEXT,
    probable_false_alarm  INTEGER NOT NULL DEFAULT 0,
    alarm_count           INTEGER NOT NULL DEFAULT 1,
    lat                   REAL,
    lon                   REAL,
    accuracy_m            REAL,
    -- Non-NULL while open: at most one open incident per (elder or device, category).
    open_key              TEXT UNIQUE,
    received_at           INTEGER NOT NULL,
    stored_at             INTEGER NOT NULL,
    shown_at              INTEGER,
    acked_at              INTEGER,
    acked_by              TEXT,
    dispatched_at         INTEGER,
    accepted_at           INTEGER,
    on_scene_at           INTEGER,
    closed_at             INTEGER,
    closed_by             TEXT
);
CREATE INDEX incidents_status ON incidents(status, priority, received_at);
CREATE INDEX incidents_elder ON incidents(elder_id);

-- Append-only: the id orders the console's live stream and its catch-up.
CREATE TABLE incident_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events(incident_id, id);
CREATE TRIGGER incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;

CREATE TABLE operators (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    created_at     INTEGER NOT NULL
);

-- Bearer tokens, stored as SHA-256 digests.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('operator', 'responder')),
    subject_id    INTEGER NOT NULL,
    subject_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);
