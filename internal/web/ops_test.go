package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The probes and /metrics are on the operators' listener only: on the site
// they are pages that do not exist. Ready means auth and films answer on
// their public APIs (their own probes are on listeners web is not given).
func TestOperatorEndpointsAreNotOnTheSite(t *testing.T) {
	var filmsDown atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" && (r.URL.Path != "/v1/genres" || filmsDown.Load()) {
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	cfg := DefaultConfig()
	cfg.AuthURL, cfg.FilmsURL, cfg.SessionKey = api.URL, api.URL, []byte(strings.Repeat("k", 32))
	site, ops, err := NewHandlers(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if w := get(site, path); w.Code != http.StatusNotFound {
			t.Errorf("site %s: %d, want 404", path, w.Code)
		}
		if w := get(ops, path); w.Code != http.StatusOK {
			t.Errorf("operators' %s: %d %s", path, w.Code, w.Body)
		}
	}
	if w := get(ops, "/metrics"); !strings.Contains(w.Body.String(), `route="GET /metrics"`) {
		t.Errorf("operators' /metrics lacks the HTTP series:\n%.300s", w.Body)
	}
	if w := get(ops, "/"); w.Code != http.StatusNotFound {
		t.Errorf("operators' /: %d, want 404 (the site is not there)", w.Code)
	}
	// films' catalogue gone: not ready, and /readyz says which.
	filmsDown.Store(true)
	if w := get(ops, "/readyz"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "films") {
		t.Errorf("readyz with films' API failing: %d %s", w.Code, w.Body)
	}
}
