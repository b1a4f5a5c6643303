-- +goose Up
-- Self-service accounts (issue 13). name is the display name people see
-- (NULL: "Reader" and a tag derived from the id); version counts the changes
-- other services follow on the users topic, so they can drop stale events.
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Sessions are refresh families; each token remembers the client that got
-- it, so the session list can show where a login was used last.
ALTER TABLE refresh_tokens ADD COLUMN user_agent TEXT;
ALTER TABLE refresh_tokens ADD COLUMN ip TEXT;

-- An email change code is mailed to the new address, which is kept with it
-- until the code is confirmed.
ALTER TABLE one_time_codes ADD COLUMN target TEXT;

-- +goose Down
ALTER TABLE one_time_codes DROP COLUMN target;
ALTER TABLE refresh_tokens DROP COLUMN ip;
ALTER TABLE refresh_tokens DROP COLUMN user_agent;
ALTER TABLE users DROP COLUMN version;
ALTER TABLE users DROP COLUMN name;
