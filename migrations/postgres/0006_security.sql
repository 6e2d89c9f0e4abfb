-- Security (PostgreSQL): durable native replay windows, roles, login limits, stream tickets, audit log.

-- The native protocol's replay window per device: the highest sequence number seen and a bitmap of
-- the 64 at and below it (bit i = highest - i seen; 0 = nothing seen yet). Claimed with a
-- compare-and-set by every instance, so a replayed frame is refused everywhere and after restarts.
ALTER TABLE devices ADD COLUMN replay_high BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN replay_seen BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET replay_high = last_seq, replay_seen = 1 WHERE last_seq > 0;

-- Operator roles: admin, dispatcher (the former `operator`), viewer; an account can be disabled and
-- scoped to one area (a street or community: the operator sees that area's elders and incidents).
ALTER TABLE operators DROP CONSTRAINT operators_role_check;
UPDATE operators SET role = 'dispatcher' WHERE role = 'operator';
ALTER TABLE operators ADD CONSTRAINT operators_role_check
    CHECK (role IN ('admin', 'dispatcher', 'viewer'));
ALTER TABLE operators ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN scope_area_id BIGINT REFERENCES areas(id);
UPDATE sessions SET role = 'dispatcher' WHERE role = 'operator';

-- Sessions slide (renewed while used) up to a fixed lifetime from the login.
ALTER TABLE sessions ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;

-- Failed logins per attempted name (known or not, so that a lockout does not tell which exist).
CREATE TABLE login_failures (
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Single-use, short-lived tickets for the live streams (EventSource cannot send a header, and a
-- bearer token must never be in a URL).
CREATE TABLE stream_tickets (
    ticket_hash  TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    path         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);

-- Who read an elder's record and who changed the directory, keys and accounts: append-only.
CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    peer         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_target ON audit_log(target, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
