package main

import (
	"net/http"
	"strings"
	"testing"
)

// Every service's operators' endpoints are on its own operators' port,
// which the banner names; the public ports (what a proxy would publish)
// answer 404 for them.
func TestOperatorsPortsAreSeparateAndNamed(t *testing.T) {
	s, _, _ := runSystem(t)
	var b strings.Builder
	printBanner(&b, s)
	for _, u := range []string{s.authOpsURL(), s.filmsOpsURL(), s.mailerOpsURL(), s.webOpsURL()} {
		if !strings.Contains(b.String(), u) {
			t.Errorf("the banner does not name the operators' port %s:\n%s", u, b.String())
		}
	}
	status := func(u string) int {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ public, ops string }{
		{s.authURL(), s.authOpsURL()},
		{s.filmsURL(), s.filmsOpsURL()},
		{s.webURL(), s.webOpsURL()},
	} {
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			if got := status(c.public + path); got != http.StatusNotFound {
				t.Errorf("public %s%s: %d, want 404", c.public, path, got)
			}
			if got := status(c.ops + path); got != http.StatusOK {
				t.Errorf("operators' %s%s: %d, want 200", c.ops, path, got)
			}
		}
	}
}
