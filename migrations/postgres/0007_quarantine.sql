-- Events the store kept refusing (a constraint the event breaks, say): kept whole with the refusal,
-- and put in front of an operator, so that the device can be ACKed and the alarm is not lost in a
-- retry loop. One row per device event (device, dedup key).
CREATE TABLE quarantined_events (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BIGINT NOT NULL,
    elder_id     BIGINT,
    dedup_key    TEXT NOT NULL,
    raw_code     TEXT NOT NULL,
    event        TEXT NOT NULL,
    error        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    incident_id  BIGINT,
    UNIQUE (device_id, dedup_key)
);
