-- Events the store kept refusing (a constraint the event breaks, say): kept whole with the refusal,
-- and put in front of an operator, so that the device can be ACKed and the alarm is not lost in a
-- retry loop. One row per device event (device, dedup key).
CREATE TABLE quarantined_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id    INTEGER NOT NULL,
    elder_id     INTEGER,
    dedup_key    TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    event        TEXT NOT NULL,
    error        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    incident_id  INTEGER,
    UNIQUE (device_id, dedup_key)
);
