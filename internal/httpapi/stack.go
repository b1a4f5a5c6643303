package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"kinoteka/internal/telemetry"
)

// Stack is the one HTTP stack every Kinoteka service serves its routes
// through, in this order from the outside in:
//
//  1. tracing (continues a caller's traceparent; off when Tracing is nil),
//  2. request id (X-Request-Id, kept from the caller when sane), panic
//     recovery as a problem+json 500, one JSON log line and the HTTP
//     metrics by route pattern,
//  3. Wrap, the service's own middleware (auth reads the client address),
//  4. the routes, where a request no route matches gets a problem+json 404,
//     or 405 with Allow, instead of ServeMux's plain text.
//
// The server's timeouts and graceful drain are launch.Lifecycle's.
type Stack struct {
	Log     *slog.Logger
	Metrics *Metrics           // nil: no HTTP series
	Tracing *telemetry.Tracing // nil: not traced
	Wrap    func(http.Handler) http.Handler
}

// Handler serves mux through the stack.
func (s Stack) Handler(mux *http.ServeMux) http.Handler {
	var h http.Handler = routed(mux)
	if s.Wrap != nil {
		h = s.Wrap(h)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return s.Tracing.HTTP(observe(log, s.Metrics, h))
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	routeKey
)

// RequestID returns the id the stack gave this request ("" outside it).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// route is where the innermost layer leaves the matched pattern for the
// outer ones, whatever requests the middlewares in between made.
type route struct{ pattern string }

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

// observe gives the request its id, recovers a panic, logs one line and
// counts the request. The line has the request id, method, route pattern,
// path, status, size, duration and trace id — never bodies, query strings or
// headers, so no password, code or token is logged.
func observe(log *slog.Logger, m *Metrics, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, orig *http.Request) {
		start := time.Now()
		id := orig.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		rt := &route{}
		ctx := context.WithValue(context.WithValue(orig.Context(), requestIDKey, id), routeKey, rt)
		r := orig.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "panic", "request_id", id, "route", rt.pattern, "panic", p)
				if rec.status == 0 {
					writeProblem(rec, http.StatusInternalServerError, "an internal error occurred")
				}
			}
			// The tracing span outside is named after the route.
			orig.Pattern = rt.pattern
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.observe(rt.pattern, r.Method, status, elapsed)
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", rt.pattern),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", elapsed),
			}
			if tid := telemetry.TraceID(ctx); tid != "" {
				attrs = append(attrs, slog.String("trace_id", tid))
			}
			log.LogAttrs(ctx, slog.LevelInfo, "http", attrs...)
		}()
		h.ServeHTTP(rec, r)
	})
}

// routed serves mux, records the matched pattern for observe, and answers
// the requests no route matches (404, 405) with problem+json like every
// other error instead of ServeMux's plain text.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if rt, ok := r.Context().Value(routeKey).(*route); ok {
			rt.pattern = pattern
		}
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// ServeMux's own answer: a redirect to the clean path, 404 or 405
		// (with its Allow header). Keep its status and headers, replace the
		// plain-text body.
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusNotFound
		}
		if cw.status < 400 {
			for k, v := range cw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(cw.status)
			return
		}
		detail := "there is no such route"
		if allow := cw.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
			detail = r.Method + " is not allowed here; the Allow header lists what is"
		}
		writeProblem(w, cw.status, detail)
	})
}

// writeProblem answers a bare problem+json with status and detail.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// captureWriter records ServeMux's fallback answer without sending it.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
