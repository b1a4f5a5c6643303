package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"kinoteka/internal/apperr"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 64 << 10

// Decode reads exactly one JSON object from the request into dst. It demands
// a JSON content type, refuses unknown fields, trailing data and bodies over
// MaxBodyBytes, and says precisely what was wrong.
func Decode(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
		return &apperr.Error{Kind: apperr.Invalid, Code: "unsupported_media_type", Message: "Content-Type must be application/json"}
	}
	return DecodeReader(http.MaxBytesReader(w, r.Body, MaxBodyBytes), dst)
}

// DecodeReader is Decode without the HTTP parts; the fuzz tests drive it.
func DecodeReader(body io.Reader, dst any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Invalid, "malformed_json", "the body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return &apperr.Error{Kind: apperr.Invalid, Code: "body_too_large", Message: fmt.Sprintf("the body must not exceed %d bytes", maxErr.Limit)}
	case errors.As(err, &syntaxErr):
		return apperr.New(apperr.Invalid, "malformed_json", "malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "malformed_json", "the body ends in the middle of a JSON value")
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, "malformed_json", "the body is empty; a JSON object is required")
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return apperr.Validation(apperr.FieldError{Field: typeErr.Field, Message: "must be a JSON " + jsonType(typeErr.Type.Kind().String())})
		}
		return apperr.New(apperr.Invalid, "malformed_json", "the body must be a JSON object")
	default:
		// json's unknown-field error has no type of its own.
		const prefix = "json: unknown field "
		if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
			return apperr.New(apperr.Invalid, "unknown_field", "unknown field %s", msg[len(prefix):])
		}
		return apperr.Wrap(err, apperr.Invalid, "the body could not be read as JSON")
	}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return "number"
	}
}
