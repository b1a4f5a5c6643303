// Package events is the Kafka contract between auth (producer, through its
// outbox) and mailer (consumer): topic names, event types and the JSON
// envelope described in docs/events.md.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Topic is the default topic for mail requests; DLQ(topic) is its dead-letter topic.
const Topic = "mail.requests"

// DLQ returns the dead-letter topic of topic.
func DLQ(topic string) string { return topic + ".dlq" }

// Event types. The set is open: a consumer must reject types it does not know.
const (
	TypeVerificationCode  = "verification_code"
	TypePasswordResetCode = "password_reset_code"
	// TypeEmailChangeCode carries the code that confirms a new address; it
	// goes to the new address.
	TypeEmailChangeCode = "email_change_code"
	// The notices: mail that tells the account's owner what happened, with
	// no code (CodeMail.Code is empty).
	TypePasswordChanged = "password_changed" // to the account's address
	TypeEmailChanged    = "email_changed"    // to the old address, after the change
	TypeAccountDeleted  = "account_deleted"  // the goodbye, to the erased address
)

// mailTypes are the types the mail topic carries; CodeTypes those with a
// code (the mailer checks its templates for each).
var (
	mailTypes = []string{TypeVerificationCode, TypePasswordResetCode, TypeEmailChangeCode,
		TypePasswordChanged, TypeEmailChanged, TypeAccountDeleted}
	CodeTypes = []string{TypeVerificationCode, TypePasswordResetCode, TypeEmailChangeCode}
)

// HasCode reports whether mail of type typ carries a one-time code.
func HasCode(typ string) bool { return slices.Contains(CodeTypes, typ) }

// Version is the envelope version this code writes and understands.
const Version = 1

// Header names carried on every Kafka record.
const (
	HeaderContentType = "content-type"
	HeaderEventType   = "event-type"
	HeaderEventID     = "event-id"
	HeaderTraceparent = "traceparent"
)

// Envelope is one event as it travels on the topic.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// CodeMail is the data of every mail event: the code events carry Code,
// the notices leave it empty.
type CodeMail struct {
	Email     string    `json:"email"`
	Code      string    `json:"code"`
	Locale    string    `json:"locale,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// NewCodeMail builds the envelope of a code mail event.
func NewCodeMail(id, typ string, occurredAt time.Time, data CodeMail) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{ID: id, Type: typ, Version: Version, OccurredAt: occurredAt.UTC(), Data: raw}, nil
}

// Encode returns the envelope's wire form.
func (e Envelope) Encode() ([]byte, error) { return json.Marshal(e) }

// ErrPoison marks a record that can never be handled, however often it is
// retried: it belongs in the dead-letter topic.
var ErrPoison = errors.New("poison message")

// Decoded is a record understood by the consumer.
type Decoded struct {
	ID   string // de-duplication key
	Type string
	Mail CodeMail
	// Legacy is true for the original task's bare {"email","code"} payload.
	Legacy bool
}

// Decode parses a record value: the versioned envelope, or the original bare
// {"email","code"} payload (then legacyID, which the consumer derives from
// the record's position and time, is its de-duplication key). Errors wrap
// ErrPoison.
func Decode(value []byte, legacyID string) (Decoded, error) {
	// json.Unmarshal refuses trailing data and, so that producers can add
	// optional fields within a version, tolerates unknown fields.
	// Which shape it is: an envelope has a type, a bare payload an email.
	// A field that is present reads as non-nil raw JSON, even a null.
	var probe struct {
		Type  json.RawMessage `json:"type"`
		Email json.RawMessage `json:"email"`
	}
	if err := json.Unmarshal(value, &probe); err != nil {
		return Decoded{}, fmt.Errorf("%w: not a JSON object: %v", ErrPoison, err)
	}
	if probe.Type == nil {
		if probe.Email != nil {
			var m CodeMail
			if err := json.Unmarshal(value, &m); err != nil {
				return Decoded{}, fmt.Errorf("%w: bare payload: %v", ErrPoison, err)
			}
			d := Decoded{ID: legacyID, Type: TypeVerificationCode, Mail: m, Legacy: true}
			return d, validate(d)
		}
		return Decoded{}, fmt.Errorf("%w: neither an event envelope nor a bare mail payload", ErrPoison)
	}
	var env Envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return Decoded{}, fmt.Errorf("%w: envelope: %v", ErrPoison, err)
	}
	if env.Version != Version {
		return Decoded{}, fmt.Errorf("%w: unsupported version %d", ErrPoison, env.Version)
	}
	if !slices.Contains(mailTypes, env.Type) {
		return Decoded{}, fmt.Errorf("%w: unknown event type %q", ErrPoison, env.Type)
	}
	if env.ID == "" {
		return Decoded{}, fmt.Errorf("%w: event without id", ErrPoison)
	}
	var m CodeMail
	if err := json.Unmarshal(env.Data, &m); err != nil {
		return Decoded{}, fmt.Errorf("%w: data: %v", ErrPoison, err)
	}
	d := Decoded{ID: env.ID, Type: env.Type, Mail: m}
	return d, validate(d)
}

func validate(d Decoded) error {
	if at := strings.LastIndexByte(d.Mail.Email, '@'); at < 1 || at == len(d.Mail.Email)-1 || strings.ContainsAny(d.Mail.Email, " \r\n<>") {
		return fmt.Errorf("%w: invalid email address", ErrPoison)
	}
	switch {
	case HasCode(d.Type) && (d.Mail.Code == "" || strings.ContainsAny(d.Mail.Code, "\r\n")):
		return fmt.Errorf("%w: missing code", ErrPoison)
	case !HasCode(d.Type) && d.Mail.Code != "":
		return fmt.Errorf("%w: a %s notice carries no code", ErrPoison, d.Type)
	}
	return nil
}
