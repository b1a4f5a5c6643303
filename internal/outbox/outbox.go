// Package outbox is the transactional outbox: a service writes an event as one
// more statement inside the transaction that changes its own data (Enqueue),
// and a Relay publishes the committed rows to Kafka. So a state change and the
// event that announces it are never half-done: if Kafka is down the rows wait,
// and they go out when it returns.
//
// The package owns its table: Migrate creates it in the service's database
// (migrations/ holds the DDL for both engines) and records its versions in
// a goose table of its own, so a service applies it next to its own
// schema. The columns that need a word: payload is the record value, set to
// NULL once published because it may hold a secret; headers is a JSON
// object of extra record headers; attempts and last_error count and explain
// failed produce attempts; lease_owner and lease_until are a relay's claim
// on a row; next_attempt_at is when a failed row is tried again;
// traceparent is the W3C trace context of the writer.
//
// Delivery is at least once: a crash between Kafka's acknowledgement and the
// published_at update, or an attempt cut short by its bound while its
// request was on the wire (the broker may have written it), publishes a row
// again, so consumers de-duplicate on the event id (the mailer does).
package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

// Message is one event waiting to be published.
type Message struct {
	EventID   string // UUID; also the event-id header and the consumers' de-duplication key
	Topic     string
	Key       string // record key; the user id, so one user's events stay in order
	EventType string // the event-type header
	Payload   []byte // the record value (an events.Envelope in JSON)
	// Headers are extra record headers; content-type, event-type and event-id
	// are always added by the relay.
	Headers   map[string]string
	CreatedAt time.Time
	// Traceparent is the W3C trace context of the operation that wrote the
	// event (telemetry.Traceparent(ctx)); the relay's publish span continues
	// it and hands its own on in the traceparent header. Empty: not traced.
	Traceparent string
}

// Enqueue writes m into the outbox as part of tx. The caller commits tx and
// then wakes the relay (Relay.Notify); until then the row is invisible to it.
func Enqueue(ctx context.Context, tx *sql.Tx, m Message) error {
	if m.EventID == "" || m.Topic == "" || m.EventType == "" || len(m.Payload) == 0 || m.CreatedAt.IsZero() {
		return errors.New("outbox: message needs an event id, topic, event type, payload and creation time")
	}
	headers := m.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	hb, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("outbox: headers: %w", err)
	}
	var traceparent sql.NullString
	if m.Traceparent != "" {
		traceparent = sql.NullString{String: m.Traceparent, Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (event_id, topic, msg_key, event_type, payload, headers, created_at, traceparent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		m.EventID, m.Topic, m.Key, m.EventType, m.Payload, string(hb), dbTime(m.CreatedAt), traceparent)
	switch {
	case sqldb.IsUniqueViolation(err):
		return apperr.Wrap(err, apperr.Conflict, "the event is already in the outbox")
	case err != nil:
		return fmt.Errorf("outbox: enqueue %s: %w", m.EventID, err)
	}
	return nil
}

// dbTime is how times go into the database: UTC, at PostgreSQL's microsecond
// precision, so a value reads back equal on both engines.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
