package auth

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/tokens"
)

func testRoutes(f *fixture) http.Handler { return routes(discard, f.svc, httpapi.NewMetrics()) }

func TestRegisterAnswersAlikeForNewAndKnownAddresses(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	f.registerVerified(t, "verified@example.com")
	f.register(t, "pending@example.com")
	register := func(email string) (int, string) {
		w := do(t, h, "POST", "/v1/auth/register", "application/json",
			`{"email":"`+email+`","password":"some password"}`)
		return w.Code, w.Body.String()
	}
	newStatus, newBody := register("new@example.com")
	if newStatus != http.StatusAccepted {
		t.Fatalf("new address: %d %s", newStatus, newBody)
	}
	for _, email := range []string{"verified@example.com", "Verified@Example.com", "pending@example.com", "new@example.com"} {
		if status, body := register(email); status != newStatus || body != newBody {
			t.Errorf("%s: %d %q; a new address got %d %q", email, status, body, newStatus, newBody)
		}
	}
}

func TestMalformedRequestsGetClearProblems(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	big := `{"email":"a@example.com","password":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, path, contentType, body string
		code                          string // problem code
		field                         string // for validation problems
	}{
		{"malformed JSON", "/v1/auth/register", "application/json", `{"email":`, "malformed_json", ""},
		{"not an object", "/v1/auth/login", "application/json", `[1,2]`, "malformed_json", ""},
		{"empty body", "/v1/auth/verify", "application/json", ``, "malformed_json", ""},
		{"trailing data", "/v1/auth/login", "application/json", `{"email":"a@example.com","password":"x"} {}`, "malformed_json", ""},
		{"unknown field", "/v1/auth/register", "application/json", `{"email":"a@example.com","password":"12345678","admin":true}`, "unknown_field", ""},
		{"wrong content type", "/v1/auth/login", "text/plain", `{"email":"a@example.com","password":"x"}`, "unsupported_media_type", ""},
		{"no content type", "/v1/auth/verify", "", `{"email":"a@example.com","code":"123456"}`, "unsupported_media_type", ""},
		{"body over 64 KiB", "/v1/auth/register", "application/json", big, "body_too_large", ""},
		{"number for a string", "/v1/auth/register", "application/json", `{"email":42,"password":"12345678"}`, "validation_failed", "email"},
		{"object for a string", "/v1/auth/verify", "application/json", `{"email":"a@example.com","code":{"x":1},"password":"correct horse"}`, "validation_failed", "code"},
		{"bad code shape", "/v1/auth/verify", "application/json", `{"email":"a@example.com","code":"12345","password":"correct horse"}`, "validation_failed", "code"},
		{"verify without the password", "/v1/auth/verify", "application/json", `{"email":"a@example.com","code":"123456"}`, "validation_failed", "password"},
		{"bad email", "/v1/auth/login", "application/json", `{"email":"a@b","password":"x"}`, "validation_failed", "email"},
		{"missing password", "/v1/auth/login", "application/json", `{"email":"a@example.com"}`, "validation_failed", "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, "POST", tc.path, tc.contentType, tc.body)
			var p httpapi.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" ||
				p.Status != 400 || p.Code != tc.code || p.Detail == "" {
				t.Errorf("%d %s %+v, want 400 problem+json %s with a detail", w.Code, w.Header().Get("Content-Type"), p, tc.code)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors = %+v, want one for %s", p.Errors, tc.field)
			}
		})
	}
}

func TestMeWithoutAValidTokenIs401(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	tok := f.registerVerified(t, "a@example.com")
	for name, header := range map[string]string{
		"no header":    "",
		"basic scheme": "Basic YTpi",
		"empty bearer": "Bearer ",
		"garbage":      "Bearer abc.def.ghi",
		"refresh":      "Bearer " + tok.Refresh,
	} {
		w := do(t, h, "GET", "/v1/auth/me", "", "", "Authorization", header)
		if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(w.Body.String(), "invalid_token") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	w := do(t, h, "GET", "/v1/auth/me", "", "", "Authorization", "bearer "+tok.Access)
	var me struct {
		ID            string
		Email         string
		EmailVerified bool `json:"email_verified"`
		Roles         []string
		CreatedAt     string `json:"created_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &me); err != nil || w.Code != http.StatusOK {
		t.Fatalf("me: %d %s", w.Code, w.Body)
	}
	if me.ID == "" || me.Email != "a@example.com" || !me.EmailVerified || len(me.Roles) != 1 || me.CreatedAt != "2026-11-27T10:00:00Z" {
		t.Errorf("me = %+v", me)
	}
}

func TestHTTPFlow(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	if w := do(t, h, "POST", "/v1/auth/register", "application/json", `{"email":"a@example.com","password":"correct horse","locale":"ru"}`); w.Code != 202 {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	w := do(t, h, "POST", "/v1/auth/login", "application/json", `{"email":"a@example.com","password":"correct horse"}`)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "email_not_verified") {
		t.Errorf("login before verifying: %d %s", w.Code, w.Body)
	}
	w = do(t, h, "POST", "/v1/auth/verify", "application/json", `{"email":"a@example.com","code":"`+lastMail(t, f.db).mail.Code+`","password":"correct horse"}`)
	var tok tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || w.Code != 200 {
		t.Fatalf("verify: %d %s", w.Code, w.Body)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || tok.AccessToken == "" || tok.RefreshToken == "" ||
		w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("tokens = %+v, Cache-Control %q", tok, w.Header().Get("Cache-Control"))
	}
	w = do(t, h, "POST", "/v1/auth/login", "application/json", `{"email":"a@example.com","password":"wrong horse"}`)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "invalid_credentials") {
		t.Errorf("wrong password: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/login", "application/json", `{"email":"a@example.com","password":"correct horse"}`); w.Code != 200 {
		t.Errorf("login: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "GET", "/v1/auth/me", "", "", "Authorization", "Bearer "+tok.AccessToken); w.Code != 200 {
		t.Errorf("me: %d %s", w.Code, w.Body)
	}
	if w = do(t, opsRoutes(discard, f.svc, httpapi.NewMetrics()), "GET", "/readyz", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "database") {
		t.Errorf("readyz: %d %s", w.Code, w.Body)
	}
}

func TestKeyDiscovery(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	w := do(t, h, "GET", "/.well-known/jwks.json", "", "")
	var set struct {
		Keys []struct{ Kty, Use, Alg, Kid, N, E string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || w.Code != 200 || len(set.Keys) != 1 {
		t.Fatalf("jwks: %d %s", w.Code, w.Body)
	}
	if k := set.Keys[0]; k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.Kid == "" || k.N == "" || k.E != "AQAB" {
		t.Errorf("key = %+v", k)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("jwks Cache-Control = %q", cc)
	}

}

// The RFC 8414 metadata holds exactly what is true of auth — its issuer
// (the iss of its tokens) and its keys — and leads a verifier from the
// issuer to the key that signed a token; openid-configuration, which auth
// cannot fill honestly, is a 404 problem that points there (issue 11,
// finding 10).
func TestServerMetadata(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	tok := f.registerVerified(t, "a@example.com")

	w := do(t, h, "GET", "/.well-known/oauth-authorization-server", "", "")
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %s", w.Code, w.Body)
	}
	want := map[string]any{"issuer": "http://auth.test", "jwks_uri": "http://auth.test/.well-known/jwks.json"}
	if !maps.Equal(doc, want) {
		t.Errorf("metadata = %v, want exactly %v", doc, want)
	}
	if cc := w.Header().Get("Cache-Control"); cc != publicMaxAge {
		t.Errorf("metadata Cache-Control = %q", cc)
	}
	// RFC 8414 §3.3: the issuer in the document is the one the document
	// was fetched for, and the tokens carry it.
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok.Access, claims)
	if err != nil || claims["iss"] != doc["issuer"] {
		t.Fatalf("token iss %v, metadata issuer %v (%v)", claims["iss"], doc["issuer"], err)
	}
	// jwks_uri names this service's key set, which holds the token's key.
	path := strings.TrimPrefix(doc["jwks_uri"].(string), "http://auth.test")
	w = do(t, h, "GET", path, "", "")
	var set tokens.JWKSet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || w.Code != 200 {
		t.Fatalf("jwks_uri %s: %d %s", path, w.Code, w.Body)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kid != parsed.Header["kid"] {
		t.Errorf("the key set %+v does not hold the token's kid %v", set.Keys, parsed.Header["kid"])
	}

	w = do(t, h, "GET", "/.well-known/openid-configuration", "", "")
	var p httpapi.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != http.StatusNotFound ||
		w.Header().Get("Content-Type") != "application/problem+json" || p.Code != "not_an_openid_provider" ||
		!strings.Contains(p.Detail, "/.well-known/oauth-authorization-server") {
		t.Errorf("openid-configuration: %d %s, want a 404 problem pointing to the RFC 8414 metadata", w.Code, w.Body)
	}
}

// Requests no route takes get problem+json like every other error: 404 for
// an unknown path, 405 with Allow for a known path and a wrong method.
func TestUnroutedRequestsGetProblems(t *testing.T) {
	h := testRoutes(sqliteFixture(t))
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string // the method Allow must list; "" for none
	}{
		{"GET", "/nope", http.StatusNotFound, ""},
		{"GET", "/v1/auth/login", http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/v1/auth/me", http.StatusMethodNotAllowed, "GET"},
	} {
		w := do(t, h, tc.method, tc.path, "", "")
		var p httpapi.Problem
		err := json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != tc.status || w.Header().Get("Content-Type") != "application/problem+json" || err != nil || p.Status != tc.status {
			t.Errorf("%s %s: %d %q %s, want a problem+json %d", tc.method, tc.path, w.Code, w.Header().Get("Content-Type"), w.Body, tc.status)
		}
		allow := w.Header().Get("Allow")
		if (tc.allow == "") != (allow == "") || !strings.Contains(allow, tc.allow) {
			t.Errorf("%s %s: Allow = %q, want one listing %q", tc.method, tc.path, allow, tc.allow)
		}
	}
}

// Pre-hijacking (issue 11, finding 2), both orders, through HTTP: an
// attacker who registers the victim's address before the victim verifies
// never gets a password onto the account. The victim reads each code from
// the newest mail (the outbox row); CODE in a body stands for it.
func TestPreHijackingEitherOrder(t *testing.T) {
	const victim, attacker = `"victim password"`, `"attacker password"`
	register := func(password string) string { return `{"email":"%s","password":` + password + `}` }
	verify := `{"email":"%s","code":"CODE","password":` + victim + `}`
	type step struct {
		who, path, body string
		status          int
		code            string // problem code
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"victim first, attacker second", []step{
			{"victim", "/v1/auth/register", register(victim), 202, ""},
			{"attacker", "/v1/auth/register", register(attacker), 202, ""},
			// The newest code came with the attacker's registration.
			{"victim", "/v1/auth/verify", verify, 400, "register_again"},
			{"victim", "/v1/auth/register", register(victim), 202, ""},
			{"victim", "/v1/auth/verify", verify, 200, ""},
		}},
		{"attacker first, victim second", []step{
			{"attacker", "/v1/auth/register", register(attacker), 202, ""},
			{"victim", "/v1/auth/register", register(victim), 202, ""},
			{"victim", "/v1/auth/verify", verify, 200, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *sqldb.DB) {
				f := newFixture(t, db)
				h := testRoutes(f)
				for i, s := range tc.steps {
					body := fmt.Sprintf(s.body, "v@example.com")
					if strings.Contains(body, "CODE") {
						body = strings.Replace(body, "CODE", lastMail(t, db).mail.Code, 1)
					}
					w := do(t, h, "POST", s.path, "application/json", body)
					var p httpapi.Problem
					_ = json.Unmarshal(w.Body.Bytes(), &p)
					if w.Code != s.status || p.Code != s.code {
						t.Fatalf("step %d (%s %s): %d %s, want %d %s", i+1, s.who, s.path, w.Code, w.Body, s.status, s.code)
					}
				}
				login := func(password string) *httptest.ResponseRecorder {
					return do(t, h, "POST", "/v1/auth/login", "application/json", `{"email":"v@example.com","password":`+password+`}`)
				}
				if w := login(attacker); w.Code != http.StatusUnauthorized {
					t.Errorf("the attacker's password: %d %s, want 401", w.Code, w.Body)
				}
				if w := login(victim); w.Code != http.StatusOK {
					t.Errorf("the victim's password: %d %s, want 200", w.Code, w.Body)
				}
			})
		})
	}
}
