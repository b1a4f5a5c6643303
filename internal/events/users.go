package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// UsersTopic is the default topic of account changes: auth owns the
// accounts, other services keep a copy of what they show (the display
// name). The key of every record is the user id, so a log-compacted topic
// keeps each account's latest state.
const UsersTopic = "users"

// The account events.
const (
	TypeUserUpdated = "user.updated" // data UserUpdated
	TypeUserDeleted = "user.deleted" // data UserDeleted
)

// UserUpdated is the data of user.updated: the account's state as others
// may show it. Name is the display name people see (DisplayName applied).
type UserUpdated struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// UserDeleted is the data of user.deleted: the account and everything its
// person wrote are to be forgotten.
type UserDeleted struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// UserEvent is a decoded record of the users topic. Version orders the
// events of one account: a consumer applies an event only when its version
// is newer than the one it holds, so a re-delivered or late event changes
// nothing.
type UserEvent struct {
	EventID string
	Type    string
	ID      string
	Name    string // user.updated only
	Version int64
}

// Deleted reports whether e is a user.deleted.
func (e UserEvent) Deleted() bool { return e.Type == TypeUserDeleted }

// NewUserEvent builds the envelope of a user.updated (deleted false) or
// user.deleted event.
func NewUserEvent(eventID string, occurredAt time.Time, u UserUpdated, deleted bool) (Envelope, error) {
	var (
		raw []byte
		err error
		typ = TypeUserUpdated
	)
	if deleted {
		typ = TypeUserDeleted
		raw, err = json.Marshal(UserDeleted{ID: u.ID, Version: u.Version})
	} else {
		raw, err = json.Marshal(u)
	}
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{ID: eventID, Type: typ, Version: Version, OccurredAt: occurredAt.UTC(), Data: raw}, nil
}

// DecodeUserEvent parses a record of the users topic. Errors wrap
// ErrPoison: such a record belongs in the dead-letter topic.
func DecodeUserEvent(value []byte) (UserEvent, error) {
	var env Envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return UserEvent{}, fmt.Errorf("%w: envelope: %v", ErrPoison, err)
	}
	if env.Version != Version {
		return UserEvent{}, fmt.Errorf("%w: unsupported version %d", ErrPoison, env.Version)
	}
	if !slices.Contains([]string{TypeUserUpdated, TypeUserDeleted}, env.Type) {
		return UserEvent{}, fmt.Errorf("%w: unknown event type %q", ErrPoison, env.Type)
	}
	var d UserUpdated // user.deleted's fields are a subset
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return UserEvent{}, fmt.Errorf("%w: data: %v", ErrPoison, err)
	}
	e := UserEvent{EventID: env.ID, Type: env.Type, ID: d.ID, Version: d.Version}
	switch {
	case d.ID == "" || len(d.ID) > 64:
		return UserEvent{}, fmt.Errorf("%w: user id missing or too long", ErrPoison)
	case d.Version < 1:
		return UserEvent{}, fmt.Errorf("%w: version must be at least 1", ErrPoison)
	case env.Type == TypeUserUpdated && (d.Name == "" || len(d.Name) > 200):
		return UserEvent{}, fmt.Errorf("%w: user.updated without a name", ErrPoison)
	}
	if env.Type == TypeUserUpdated {
		e.Name = d.Name
	}
	return e, nil
}

// DisplayName is the name people see for an account: its own name, or
// "Reader" and a short tag derived from the id — stable, different for
// nearly every account, and telling nothing about the address.
func DisplayName(id, name string) string {
	if name != "" {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	return "Reader " + hex.EncodeToString(sum[:3])
}
