-- +goose Up
-- This version added the outbox's traceparent column. The outbox package
-- owns that table now (outbox.Migrate) and makes it whole, so the version
-- stays, empty, to keep auth's numbering.

-- +goose Down
