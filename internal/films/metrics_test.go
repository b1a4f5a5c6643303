package films

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/tokens"
)

func TestMetrics(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	addFilms(t, a.store, 0, 2)
	expired, _ := tokens.NewSigner(authKey(), testIssuer, testAudience, 15*time.Minute,
		func() time.Time { return testNow.Add(-time.Hour) }).Issue(tokens.Claims{Subject: "u1"})
	unknownKid, _ := tokens.NewSigner(foreignKey(), testIssuer, testAudience, 15*time.Minute,
		func() time.Time { return testNow }).Issue(tokens.Claims{Subject: "u1"})
	// Signed with a foreign key under auth's kid: the signature is wrong.
	forged := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "u1", "exp": testNow.Add(time.Hour).Unix()})
	forged.Header["typ"], forged.Header["kid"] = tokens.TokenType, a.auth.signer.KeyID()
	forgedToken, err := forged.SignedString(foreignKey())
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path    string
		headers []string
		want    int
	}{
		{"/v1/films", nil, http.StatusOK},
		{"/v1/films", bearer(a.auth.token(t, "u1")), http.StatusOK},
		{"/v1/films/1", nil, http.StatusOK},
		{"/v1/films", bearer(forgedToken), http.StatusUnauthorized},
		{"/v1/films/1", bearer(unknownKid), http.StatusUnauthorized},
		{"/v1/films", bearer(expired), http.StatusUnauthorized},
		{"/v1/me/favorites", bearer(expired), http.StatusUnauthorized},
		{"/v1/films", bearer("garbage"), http.StatusUnauthorized},
		{"/v1/films", []string{"Authorization", "Basic dTE6cGFzcw=="}, http.StatusUnauthorized},
		{"/nowhere", nil, http.StatusNotFound},
	} {
		if r := a.do("GET", tc.path, tc.headers...); r.status != tc.want {
			t.Fatalf("GET %s: %d, want %d", tc.path, r.status, tc.want)
		}
	}

	r := a.ops().do("GET", "/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	body := string(r.body)
	for _, want := range []string{
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films",status="200"} 2`,
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films",status="401"} 4`,
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films/{id}",status="200"} 1`,
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films/{id}",status="401"} 1`,
		`kinoteka_http_requests_total{method="GET",route="GET /v1/me/favorites",status="401"} 1`,
		`kinoteka_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`kinoteka_http_request_duration_seconds_count{method="GET",route="GET /v1/films"} 6`,
		`kinoteka_films_token_failures_total{reason="signature"} 1`,
		`kinoteka_films_token_failures_total{reason="expired"} 2`,
		`kinoteka_films_token_failures_total{reason="malformed"} 1`,
		`kinoteka_films_token_failures_total{reason="bad_header"} 1`,
		`kinoteka_films_token_failures_total{reason="unknown_kid"} 1`,
		`kinoteka_films_token_failures_total{reason="claims"} 0`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !hasSample(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// hasSample reports whether the exposition body has the line want, or, when
// want ends with a space, a line starting with it (any value).
func hasSample(body, want string) bool {
	for line := range strings.SplitSeq(body, "\n") {
		if line == want || strings.HasSuffix(want, " ") && strings.HasPrefix(line, want) {
			return true
		}
	}
	return false
}
