-- +goose Up
-- Leases and per-row backoff for the outbox relay (see package
-- kinoteka/internal/outbox): several replicas claim disjoint batches, a
-- crashed replica's claim expires, and a failing row waits before its next try.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE outbox ADD COLUMN next_attempt_at TIMESTAMP;
-- The claim keeps one key's rows in order: it looks for an earlier pending row of the same key.
CREATE INDEX outbox_pending_key ON outbox (msg_key, id) WHERE published_at IS NULL;
-- Retention deletes published rows by age.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP INDEX outbox_published;
DROP INDEX outbox_pending_key;
ALTER TABLE outbox DROP COLUMN next_attempt_at;
ALTER TABLE outbox DROP COLUMN lease_until;
ALTER TABLE outbox DROP COLUMN lease_owner;
