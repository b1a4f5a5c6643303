// Package apperr gives every error a kind, so that transports (HTTP today)
// can answer with the right status without knowing where the error came from.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds, in the order a client would meet them.
const (
	Internal        Kind = iota // a bug or an unavailable dependency; logged with its cause
	Invalid                     // the request is malformed or fails validation
	Unauthenticated             // no or bad credentials
	Forbidden                   // authenticated, but not allowed
	NotFound                    // the thing does not exist
	Conflict                    // the request contradicts the current state
	RateLimited                 // too many requests
	Unavailable                 // a dependency is down; try again later
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case RateLimited:
		return "rate_limited"
	case Unavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// FieldError names one bad input field.
type FieldError struct {
	Field   string
	Message string
}

// Error is an error with a kind, a machine-readable code and a message that is
// safe to show to the client. Cause is for logs only.
type Error struct {
	Kind    Kind
	Code    string // e.g. "email_not_verified"; optional
	Message string // safe for clients
	Fields  []FieldError
	Cause   error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	if e.Cause != nil {
		return msg + ": " + e.Cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an error of kind k with a client-safe message.
func New(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a kind and a client-safe message to cause.
func Wrap(cause error, k Kind, message string) *Error {
	return &Error{Kind: k, Message: message, Cause: cause}
}

// Validation returns an Invalid error listing every bad field at once.
func Validation(fields ...FieldError) *Error {
	return &Error{Kind: Invalid, Code: "validation_failed", Message: "the request has invalid fields", Fields: fields}
}

// KindOf reports the kind of err; errors without one are Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
