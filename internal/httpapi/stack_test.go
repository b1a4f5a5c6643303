package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every service answers what no route matches, a wrong method and a panic
// with problem+json, and the route reaches the log even through a service
// middleware that replaces the request.
func TestStackAnswersProblemsForUnroutedRequestsAndPanics(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { JSON(w, 200, map[string]string{"id": r.PathValue("id")}) })
	mux.HandleFunc("PUT /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	type key struct{}
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, 1)))
		})
	}
	h := Stack{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: NewMetrics(), Wrap: wrap}.Handler(mux)

	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"DELETE", "/v1/things/1", 405, "GET, HEAD, PUT"},
		{"GET", "/boom", 500, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != tc.status || p.Status != tc.status ||
			rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %v %q %v", tc.method, tc.path, rec.Code, rec.Header(), rec.Body, err)
		}
		if rec.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no request id", tc.method, tc.path)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/things/7", nil))
	if rec.Code != 200 {
		t.Fatalf("routed request: %d", rec.Code)
	}
	if !strings.Contains(logs.String(), `"route":"GET /v1/things/{id}"`) || !strings.Contains(logs.String(), `"panic":"kaboom"`) {
		t.Errorf("logs: %s", logs.String())
	}
}
