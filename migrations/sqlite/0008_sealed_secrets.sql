-- Secrets at rest (device keys, key-safe codes, webhook signing secrets) are sealed with the
-- server's secrets key. One row holds a value sealed with that key, so that a server started with a
-- different key refuses to start instead of failing every device's login.
CREATE TABLE secrets_check (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    sealed  TEXT NOT NULL
);
