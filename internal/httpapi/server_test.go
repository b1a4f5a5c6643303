package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("no answer") }
	slow := func(context.Context) error { return Degraded(errors.New("behind")) }
	tests := []struct {
		name       string
		checks     map[string]Check
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{"all pass", map[string]Check{"db": ok}, 200, "OK", map[string]string{"db": "ok"}},
		{"degraded", map[string]Check{"db": ok, "relay": slow}, 200, "degraded",
			map[string]string{"db": "ok", "relay": "degraded: behind"}},
		{"down wins", map[string]Check{"db": down, "relay": slow}, 503, "Service Unavailable",
			map[string]string{"db": "no answer", "relay": "degraded: behind"}},
		{"Degraded(nil) passes", map[string]Check{"relay": func(context.Context) error { return Degraded(nil) }}, 200, "OK",
			map[string]string{"relay": "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			Health(mux, tt.checks)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			var body struct {
				Status string
				Checks map[string]string
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.wantCode || body.Status != tt.wantStatus || len(body.Checks) != len(tt.wantChecks) {
				t.Fatalf("readyz = %d %s", w.Code, w.Body)
			}
			for k, v := range tt.wantChecks {
				if body.Checks[k] != v {
					t.Errorf("check %s = %q, want %q", k, body.Checks[k], v)
				}
			}
		})
	}
}
