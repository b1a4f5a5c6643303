-- +goose Up
-- The transactional outbox, in the shape the relay expects (see outbox.go).
-- Before this package owned the table, auth's migrations 1, 2 and 4 made it
-- in this same shape; on such a database every statement here finds its
-- object and does nothing, and Migrate has added any column an older auth
-- database still lacked.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    topic           TEXT NOT NULL,
    msg_key         TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         BLOB,                              -- NULL once published
    headers         TEXT NOT NULL DEFAULT '{}',
    created_at      TIMESTAMP NOT NULL,
    published_at    TIMESTAMP,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     TIMESTAMP,
    next_attempt_at TIMESTAMP,
    traceparent     TEXT
);
-- The relay's claim: pending rows in order, and for each key the earliest
-- pending row (one key's rows stay in order).
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_key ON outbox (msg_key, id) WHERE published_at IS NULL;
-- Retention deletes published rows by age.
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE IF EXISTS outbox;
