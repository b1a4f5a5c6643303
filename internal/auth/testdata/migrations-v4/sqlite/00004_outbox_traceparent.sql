-- +goose Up
-- The W3C traceparent of the request that wrote the row: the relay's publish
-- span continues that trace, so one trace follows a registration from the
-- HTTP request through Kafka to the SMTP send. NULL when it was not traced.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;

-- +goose Down
ALTER TABLE outbox DROP COLUMN traceparent;
