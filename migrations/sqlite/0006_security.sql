-- Security (SQLite): durable native replay windows, roles, login limits, stream tickets, audit log.

-- The native protocol's replay window per device: the highest sequence number seen and a bitmap of
-- the 64 at and below it (bit i = highest - i seen; 0 = nothing seen yet). Claimed with a
-- compare-and-set by every instance, so a replayed frame is refused everywhere and after restarts.
ALTER TABLE devices ADD COLUMN replay_high INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN replay_seen INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET replay_high = last_seq, replay_seen = 1 WHERE last_seq > 0;

-- Operator roles: admin, dispatcher (the former `operator`), viewer; an account can be disabled and
-- scoped to one area (a street or community: the operator sees that area's elders and incidents).
CREATE TABLE operators_new (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'viewer')),
    created_at     INTEGER NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    scope_area_id  INTEGER REFERENCES areas(id)
);
INSERT INTO operators_new (id, name, password_hash, role, created_at)
SELECT id, name, password_hash, CASE WHEN role = 'operator' THEN 'dispatcher' ELSE role END, created_at
FROM operators;
DROP TABLE operators;
ALTER TABLE operators_new RENAME TO operators;
UPDATE sessions SET role = 'dispatcher' WHERE role = 'operator';

-- Sessions slide (renewed while used) up to a fixed lifetime from the login.
ALTER TABLE sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;

-- Failed logins per attempted name (known or not, so that a lockout does not tell which exist).
CREATE TABLE login_failures (
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    failures      INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Single-use, short-lived tickets for the live streams (EventSource cannot send a header, and a
-- bearer token must never be in a URL).
CREATE TABLE stream_tickets (
    ticket_hash  TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    path         TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);

-- Who read an elder's record and who changed the directory, keys and accounts: append-only.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    peer         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_target ON audit_log(target, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
