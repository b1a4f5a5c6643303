-- +goose Up
-- Times are stored in UTC. Emails are stored normalised (lower case), so a
-- plain UNIQUE constraint makes addresses case-insensitive.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash TEXT NOT NULL,                       -- argon2id PHC string
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    verified_at   TIMESTAMP,
    locale        TEXT NOT NULL,
    roles         TEXT NOT NULL,                       -- JSON array of strings
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- One-time codes are kept only as HMAC-SHA256(server secret, purpose, user id,
-- code). The newest row of a user and purpose is the live one.
CREATE TABLE one_time_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    code_mac   TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX one_time_codes_user ON one_time_codes (user_id, purpose, id);

-- Refresh tokens are kept only as the hex SHA-256 of the token.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The transactional outbox (see package kinoteka/internal/outbox).
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
DROP TABLE refresh_tokens;
DROP TABLE one_time_codes;
DROP TABLE users;
