-- +goose Up
-- A copy of the outbox table in auth's migrations (internal/auth/migrations),
-- so the relay is tested without the auth schema; auth's tests cover the original.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    msg_key      TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BLOB,                                 -- NULL once published
    headers      TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- +goose Down
DROP TABLE outbox;
