package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// answer is what a client sees of a response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string {
	return fmt.Sprintf("%d %v %s", a.status, a.header, a.body)
}

func sameAnswer(a, b answer) bool {
	if a.status != b.status || !bytes.Equal(a.body, b.body) || len(a.header) != len(b.header) {
		return false
	}
	for k, v := range a.header {
		if !slices.Equal(v, b.header[k]) {
			return false
		}
	}
	return true
}

// Register, resend and forgot answer byte for byte alike — status, headers
// and body — for an unknown address, a pending account and a verified one,
// including when the address has had its fill of mail; so do verify and
// reset with a wrong code.
func TestEnumerationAnswersAreIdentical(t *testing.T) {
	f := newFixture(t, sqliteDB(t), func(c *serviceConfig) { c.Limiter = newMemoryLimiter(1000) })
	f.register(t, "pending@example.com")
	f.registerVerified(t, "verified@example.com")
	f.clock.Advance(time.Hour)
	h := testRoutes(f)
	send := func(path, body string) answer {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Request-Id", "fixed") // echoed back; random otherwise
		r.RemoteAddr = "203.0.113.7:1000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return answer{w.Code, w.Header(), w.Body.Bytes()}
	}
	for _, ep := range []struct {
		path, body string
		status     int
	}{
		{"/v1/auth/register", `{"email":"%s","password":"correct horse battery"}`, http.StatusAccepted},
		{"/v1/auth/verify/resend", `{"email":"%s"}`, http.StatusAccepted},
		{"/v1/auth/password/forgot", `{"email":"%s"}`, http.StatusAccepted},
		{"/v1/auth/verify", `{"email":"%s","code":"000000","password":"correct horse"}`, http.StatusBadRequest},
		{"/v1/auth/password/reset", `{"email":"%s","code":"000000","new_password":"another fine secret"}`, http.StatusBadRequest},
	} {
		t.Run(ep.path, func(t *testing.T) {
			// Twice each: the second answer comes after a mail was just
			// sent (so mail limits hold it back) and must not differ either.
			var first answer
			for i, addr := range []string{"nobody@example.com", "pending@example.com", "verified@example.com",
				"nobody@example.com", "pending@example.com", "verified@example.com"} {
				got := send(ep.path, fmt.Sprintf(ep.body, addr))
				if i == 0 {
					first = got
					if got.status != ep.status {
						t.Fatalf("%s: %s", addr, got)
					}
					continue
				}
				if !sameAnswer(first, got) {
					t.Errorf("%s answered\n%s\nbut %s answered\n%s", "nobody@example.com", first, addr, got)
				}
			}
		})
	}
}

// Nothing secret reaches the audit table or the log: not a password, code,
// refresh token or access token, over a session that uses them all.
func TestAuditHoldsNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	db := sqliteDB(t)
	f := newFixture(t, db, func(c *serviceConfig) { c.Limiter = newMemoryLimiter(1000) })
	f.svc.log = slog.New(slog.NewJSONHandler(&logs, nil))
	h := testRoutes(f)
	call := func(path, body string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("User-Agent", "audit-test")
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		r.RemoteAddr = "203.0.113.7:1000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	const password, newPassword = "correct horse battery", "another fine secret"
	secrets := []string{password, newPassword}
	call("/v1/auth/register", `{"email":"a@example.com","password":"`+password+`"}`)
	code := lastMail(t, db).mail.Code
	secrets = append(secrets, code)
	w := call("/v1/auth/verify", `{"email":"a@example.com","code":"`+code+`","password":"`+password+`"}`)
	tok := decodeTokens(t, w)
	secrets = append(secrets, tok.RefreshToken, tok.AccessToken)
	call("/v1/auth/login", `{"email":"a@example.com","password":"wrong password here"}`)
	secrets = append(secrets, "wrong password here")
	w = call("/v1/auth/refresh", `{"refresh_token":"`+tok.RefreshToken+`"}`)
	tok2 := decodeTokens(t, w)
	secrets = append(secrets, tok2.RefreshToken, tok2.AccessToken)
	f.clock.Advance(time.Minute)
	call("/v1/auth/refresh", `{"refresh_token":"`+tok.RefreshToken+`"}`) // a reuse
	call("/v1/auth/password/forgot", `{"email":"a@example.com"}`)
	reset := lastMail(t, db).mail.Code
	secrets = append(secrets, reset)
	call("/v1/auth/password/reset", `{"email":"a@example.com","code":"`+reset+`","new_password":"`+newPassword+`"}`)
	w = call("/v1/auth/login", `{"email":"a@example.com","password":"`+newPassword+`"}`)
	tok3 := decodeTokens(t, w)
	secrets = append(secrets, tok3.RefreshToken, tok3.AccessToken)
	call("/v1/auth/logout-all", ``, "Authorization", "Bearer "+tok3.AccessToken)

	recs, err := f.svc.store.AuditEvents(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	var table strings.Builder
	for _, r := range slices.Backward(recs) {
		events = append(events, r.Event)
		fmt.Fprintf(&table, "%+v\n", r)
		if r.IP != "203.0.113.7" || r.UserAgent != "audit-test" || r.OccurredAt.IsZero() {
			t.Errorf("record without its client: %+v", r)
		}
	}
	want := []string{evRegistered, evVerified, evLoginFailed, evRefreshReused, evResetRequested, evPasswordReset, evLoginOK, evLogoutAll}
	if !slices.Equal(events, want) {
		t.Errorf("audit events = %v, want %v", events, want)
	}
	for _, s := range secrets {
		if strings.Contains(table.String(), s) {
			t.Errorf("the audit table holds a secret: %q", s)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a secret: %q", s)
		}
	}
	if got := strings.Count(logs.String(), `"msg":"audit"`); got != len(want) {
		t.Errorf("%d audit log lines, want %d", got, len(want))
	}
}

func decodeTokens(t *testing.T, w *httptest.ResponseRecorder) tokenResponse {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("want tokens, got %d %s", w.Code, w.Body)
	}
	var tok tokenResponse
	if err := json.NewDecoder(w.Body).Decode(&tok); err != nil || tok.RefreshToken == "" {
		t.Fatalf("tokens: %v %s", err, w.Body)
	}
	return tok
}
