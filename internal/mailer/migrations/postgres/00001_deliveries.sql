-- +goose Up
-- The mailer's delivery log: one row per event, for de-duplication (an event
-- already sent is never sent again) and for operators ("what happened to the
-- mail of event X"). It holds no address and no code.
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY,               -- the event id, or kafka:<topic>/<partition>/<offset> for a bare payload
    event_type       TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,                  -- sent, retrying or dead_lettered
    attempts         INTEGER NOT NULL DEFAULT 0,     -- SMTP attempts, over every delivery of the record
    last_error       TEXT NOT NULL DEFAULT '',
    topic            TEXT NOT NULL,                  -- where the record was last read
    kafka_partition  INTEGER NOT NULL,
    kafka_offset     BIGINT NOT NULL,
    first_seen_at    TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ                             -- when the SMTP server accepted it
);
CREATE INDEX deliveries_updated ON deliveries (updated_at);

-- +goose Down
DROP TABLE deliveries;
