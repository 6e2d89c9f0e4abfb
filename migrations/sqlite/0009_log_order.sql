-- The order in which followers read the incident log and the push notifications (see the
-- PostgreSQL migration). SQLite has one writer at a time, so row ids already follow commit order:
-- every row's transaction position is 0.
ALTER TABLE incident_events ADD COLUMN tx_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX incident_events_log_order ON incident_events(tx_id, id);
ALTER TABLE notifications ADD COLUMN tx_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX notifications_push_order ON notifications(tx_id, id) WHERE channel = 'push';
ALTER TABLE outbox_cursors ADD COLUMN position_tx INTEGER NOT NULL DEFAULT 0;
