package auth

import (
	"net/http"
	"strings"
	"testing"

	"kinoteka/internal/httpapi"
)

// The operators' endpoints are on the operators' listener only. On the
// public one /metrics would be an enumeration oracle — its login failures
// by reason (unknown_email against wrong_password) tell which addresses
// have accounts, whatever the login answers say — so there it, the probes
// and the docs get the same problem+json 404 as a route that does not exist.
func TestOperatorEndpointsAreNotPublic(t *testing.T) {
	f := sqliteFixture(t)
	metrics := httpapi.NewMetrics()
	public, ops := routes(discard, f.svc, metrics), opsRoutes(discard, f.svc, metrics)
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/docs", "/openapi.json"} {
		w := do(t, public, "GET", path, "", "")
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("public %s: %d %s %.100s, want a problem+json 404", path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if w := do(t, ops, "GET", path, "", ""); w.Code != http.StatusOK {
			t.Errorf("operators' %s: %d", path, w.Code)
		}
	}
	// A failed login is counted, and the count is read on the operators'
	// listener only.
	do(t, public, "POST", "/v1/auth/login", "application/json", `{"email":"nobody@example.com","password":"correct horse"}`)
	if w := do(t, ops, "GET", "/metrics", "", ""); !strings.Contains(w.Body.String(), `route="POST /v1/auth/login",status="401"`) {
		t.Errorf("operators' /metrics lacks the public listener's requests:\n%.500s", w.Body)
	}
	// And the API is not on the operators' listener.
	if w := do(t, ops, "POST", "/v1/auth/login", "application/json", `{}`); w.Code != http.StatusNotFound {
		t.Errorf("operators' login: %d, want 404", w.Code)
	}
}
