// Package httpapi is the HTTP plumbing the services share: JSON in and out,
// RFC 9457 problem+json errors, logging and recovery middleware, health
// endpoints and a server that shuts down gracefully.
package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"kinoteka/internal/apperr"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Code   string         `json:"code,omitempty"`
	Errors []ProblemField `json:"errors,omitempty"`
}

// ProblemField is one entry of a validation problem's errors list.
type ProblemField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

var kindStatus = map[apperr.Kind]int{
	apperr.Internal:        http.StatusInternalServerError,
	apperr.Invalid:         http.StatusBadRequest,
	apperr.Unauthenticated: http.StatusUnauthorized,
	apperr.Forbidden:       http.StatusForbidden,
	apperr.NotFound:        http.StatusNotFound,
	apperr.Conflict:        http.StatusConflict,
	apperr.RateLimited:     http.StatusTooManyRequests,
	apperr.Unavailable:     http.StatusServiceUnavailable,
}

// StatusOf maps an error's kind to its HTTP status.
func StatusOf(err error) int { return kindStatus[apperr.KindOf(err)] }

// Error writes err as problem+json. Internal errors are logged with their
// cause and shown to the client without it.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := StatusOf(err)
	p := Problem{Status: status, Title: http.StatusText(status)}
	if e, ok := apperr.As(err); ok && e.Kind != apperr.Internal {
		p.Detail, p.Code = e.Message, e.Code
		for _, f := range e.Fields {
			p.Errors = append(p.Errors, ProblemField(f))
		}
	} else {
		p.Detail = "an internal error occurred"
		if log != nil {
			log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	p.Type = "about:blank"
	if p.Code != "" {
		p.Type = "https://kinoteka.dev/problems/" + p.Code
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kinoteka"`)
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// JSON writes v with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"title":"Internal Server Error","status":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
