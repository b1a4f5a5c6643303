package auth

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Fuzz targets for every JSON request body auth reads, driven through the
// real handler, decoder, rules and a SQLite store: whatever the body, the
// answer is never a 5xx, always JSON (problem+json for errors), and a
// success has the shape of its route. In `go test` the seeds run as tests;
// `go test -fuzz=FuzzX -fuzztime=10s ./internal/auth/` explores.

// fuzzRoute fuzzes POST path; ok is the success status.
func fuzzRoute(f *testing.F, path string, ok int, seeds ...string) {
	fx := newFixture(f, sqliteDB(f))
	tok := fx.registerVerified(f, "known@example.com")
	h := testRoutes(fx)
	common := []string{``, `{}`, `null`, `[]`, `"x"`, `{"email":1}`, `{"email":"a@example.com"}{}`,
		`{"unknown":1}`, `{"email":"` + strings.Repeat("a", 70000) + `"}`, "\xff\xfe",
		`{"email":"known@example.com","refresh_token":"` + tok.Refresh + `"}`}
	for _, s := range append(common, seeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %q: %d %s", path, body, w.Code, w.Body)
		case w.Code == ok && ok == http.StatusNoContent:
			if w.Body.Len() != 0 {
				t.Fatalf("204 with a body: %s", w.Body)
			}
		case w.Code == ok:
			if !json.Valid(w.Body.Bytes()) || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("success that is not JSON: %s", w.Body)
			}
		case w.Code >= 400:
			var p struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Title == "" ||
				w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("error that is no problem+json: %d %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body)
		}
	})
}

func FuzzRegisterRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/register", http.StatusAccepted,
		`{"email":"new@example.com","password":"correct horse","locale":"ru-RU"}`,
		`{"email":"known@example.com","password":"known@example.com"}`,
		`{"email":"x@y.z","password":"12345678","locale":"xx-"}`)
}

func FuzzVerifyRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/verify", http.StatusOK,
		`{"email":"known@example.com","code":"100001","password":"correct horse"}`,
		`{"email":"known@example.com","code":" 123456 ","password":"wrong horse"}`,
		`{"email":"nobody@example.com","code":"12345a","password":"x"}`,
		`{"email":"known@example.com","code":"100001","password":"`+strings.Repeat("p", 600)+`"}`)
}

func FuzzResendRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/verify/resend", http.StatusAccepted, `{"email":"known@example.com"}`, `{"email":" A@B.CO "}`)
}

func FuzzLoginRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/login", http.StatusOK,
		`{"email":"known@example.com","password":"correct horse"}`, `{"email":"known@example.com","password":""}`)
}

func FuzzRefreshRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/refresh", http.StatusOK,
		`{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, `{"refresh_token":""}`)
}

func FuzzLogoutRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/logout", http.StatusNoContent,
		`{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, `{"refresh_token":"x"}`)
}

func FuzzForgotRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/password/forgot", http.StatusAccepted, `{"email":"known@example.com"}`)
}

func FuzzResetRequest(f *testing.F) {
	fuzzRoute(f, "/v1/auth/password/reset", http.StatusNoContent,
		`{"email":"known@example.com","code":"100002","new_password":"a brand new secret"}`,
		`{"email":"known@example.com","code":"100002","new_password":"password"}`)
}
