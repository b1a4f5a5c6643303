-- +goose Up
-- films' copy of what it shows of auth's accounts, kept from the users
-- topic (issue 13): the display name, or that the account was deleted (a
-- tombstone, so a late user.updated never brings it back). version is the
-- newest event applied; older ones change nothing.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    version    BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE users;
