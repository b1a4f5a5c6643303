-- +goose Up
-- Refresh token families (issue 4). A used token keeps the hash of the token
-- that replaced it and, for the grace window, that successor pair sealed
-- with AES-256-GCM under a key derived from the used token itself: only a
-- client holding the used token can open it, and the database alone reveals
-- nothing.
ALTER TABLE refresh_tokens ADD COLUMN parent_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_box BLOB;
ALTER TABLE refresh_tokens ADD COLUMN revoke_reason TEXT;
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Security events: who did what from where. No secret, code or token is
-- ever written here. user_id has no foreign key: the record outlives the account.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TIMESTAMP NOT NULL,
    event       TEXT NOT NULL,
    user_id     TEXT,
    email       TEXT,
    ip          TEXT,
    user_agent  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'          -- JSON object of strings
);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_time ON audit_events (occurred_at);

-- Token buckets of the shared throttle (AUTH_THROTTLE_STORE=database), keyed
-- by a SHA-256 of action, scope and client, so no address is stored here.
-- version makes each update a compare-and-swap.
CREATE TABLE throttle_buckets (
    bucket     TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    full_at    TIMESTAMP NOT NULL,                -- when it would be full again: then it can go
    denied_at  TIMESTAMP,                         -- set while requests are being refused
    version    INTEGER NOT NULL
);
CREATE INDEX throttle_buckets_full ON throttle_buckets (full_at);

-- +goose Down
DROP TABLE throttle_buckets;
DROP TABLE audit_events;
DROP INDEX refresh_tokens_expires;
ALTER TABLE refresh_tokens DROP COLUMN revoke_reason;
ALTER TABLE refresh_tokens DROP COLUMN successor_box;
ALTER TABLE refresh_tokens DROP COLUMN successor_hash;
ALTER TABLE refresh_tokens DROP COLUMN parent_hash;
