-- The order in which followers read the incident log and the push notifications: by the writing
-- transaction's id, then by row id, and only below the horizon of transactions still running
-- (`store/log_order.rs`). Writers no longer take one global lock to commit in id order.
ALTER TABLE incident_events ADD COLUMN tx_id BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX incident_events_log_order ON incident_events(tx_id, id);
ALTER TABLE notifications ADD COLUMN tx_id BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX notifications_push_order ON notifications(tx_id, id) WHERE channel = 'push';
-- The webhook fan-out's cursor becomes a log position; the events it had passed all carry this
-- migration's transaction.
ALTER TABLE outbox_cursors ADD COLUMN position_tx BIGINT NOT NULL DEFAULT 0;
UPDATE outbox_cursors SET position_tx = COALESCE(
    (SELECT e.tx_id FROM incident_events e WHERE e.id <= outbox_cursors.position
     ORDER BY e.id DESC LIMIT 1), 0);
