package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/telemetry"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the id the middleware gave this request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Observe wraps h with a request id, panic recovery and one JSON log line per
// request: request id, method, route pattern, path, status, size, duration,
// and the trace id when the request is traced (never bodies, query strings or
// headers, so no password, code or token is logged).
//
// Put it right around the ServeMux, inside telemetry's HTTP middleware: the
// mux records the matched pattern on the request it is given, and Observe
// copies it back onto the request it received, so that the middlewares
// outside (the tracing span's name, metrics) see the route too.
func Observe(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, orig *http.Request) {
		r := orig
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(r.Context(), "panic", "request_id", id, "panic", p)
				if rec.status == 0 {
					JSON(rec, http.StatusInternalServerError, Problem{Type: "about:blank", Title: "Internal Server Error", Status: 500, Detail: "an internal error occurred"})
				}
			}
			orig.Pattern = r.Pattern
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", r.Pattern),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
			}
			if tid := telemetry.TraceID(r.Context()); tid != "" {
				attrs = append(attrs, slog.String("trace_id", tid))
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "http", attrs...)
		}()
		h.ServeHTTP(rec, r)
	})
}
