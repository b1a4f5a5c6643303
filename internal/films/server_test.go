package films

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
	"kinoteka/internal/tokens"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cfg, err := LoadConfig(env())
	want := Config{DatabaseURL: "sqlite:data/films.db", JWKSURL: "http://127.0.0.1:8081/.well-known/jwks.json",
		Issuer: "http://127.0.0.1:8081", Audience: "kinoteka", SeedDemo: true,
		TokenCacheSize: DefaultTokenCacheSize, ReadCacheTTL: DefaultReadCacheTTL}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = LoadConfig(env("FILMS_DATABASE_URL", "postgres://films:secret@db:5432/films", "FILMS_JWKS_URL", "https://auth.example/.well-known/jwks.json",
		"FILMS_ISSUER", "https://auth.example", "FILMS_AUDIENCE", "kino", "FILMS_SEED_DEMO", "false",
		"FILMS_JWT_PUBLIC_KEY_FILE", "/keys/auth.pem", "FILMS_TOKEN_CACHE_SIZE", "500", "FILMS_READ_CACHE_TTL", "30s",
		"FILMS_ALGORITHMS", "RS256, EdDSA"))
	want = Config{DatabaseURL: "postgres://films:secret@db:5432/films", JWKSURL: "https://auth.example/.well-known/jwks.json",
		Issuer: "https://auth.example", Audience: "kino", SeedDemo: false,
		PublicKeyFile: "/keys/auth.pem", TokenCacheSize: 500, ReadCacheTTL: 30 * time.Second,
		Algorithms: []string{"RS256", "EdDSA"}}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Errorf("set: %+v, %v", cfg, err)
	}
	// A key file without a JWK set URL: static keys alone; 0 turns caches off.
	cfg, err = LoadConfig(env("FILMS_JWT_PUBLIC_KEY_FILE", "/keys/auth.pem", "FILMS_TOKEN_CACHE_SIZE", "0", "FILMS_READ_CACHE_TTL", "0"))
	if err != nil || cfg.JWKSURL != "" || cfg.PublicKeyFile != "/keys/auth.pem" || cfg.TokenCacheSize >= 0 || cfg.ReadCacheTTL >= 0 {
		t.Errorf("static keys, caches off: %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		env     []string
		mention []string
	}{
		{[]string{"FILMS_DATABASE_URL", "mysql://x"}, []string{"FILMS_DATABASE_URL"}},
		{[]string{"FILMS_DATABASE_URL", "sqlite:"}, []string{"FILMS_DATABASE_URL"}},
		{[]string{"FILMS_JWKS_URL", "ftp://auth/jwks"}, []string{"FILMS_JWKS_URL"}},
		{[]string{"FILMS_JWKS_URL", "/jwks.json"}, []string{"FILMS_JWKS_URL"}},
		{[]string{"FILMS_SEED_DEMO", "yes please"}, []string{"FILMS_SEED_DEMO"}},
		{[]string{"FILMS_SEED_DEMO", "maybe", "FILMS_JWKS_URL", "nope"}, []string{"FILMS_SEED_DEMO", "FILMS_JWKS_URL"}},
		{[]string{"FILMS_TOKEN_CACHE_SIZE", "-1"}, []string{"FILMS_TOKEN_CACHE_SIZE"}},
		{[]string{"FILMS_TOKEN_CACHE_SIZE", "many"}, []string{"FILMS_TOKEN_CACHE_SIZE"}},
		{[]string{"FILMS_READ_CACHE_TTL", "5"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_READ_CACHE_TTL", "-1s"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_READ_CACHE_TTL", "2h"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_ALGORITHMS", "HS256"}, []string{"FILMS_ALGORITHMS"}},
		{[]string{"FILMS_ALGORITHMS", "none"}, []string{"FILMS_ALGORITHMS"}},
	} {
		_, err := LoadConfig(env(tc.env...))
		if err == nil {
			t.Errorf("%v: accepted", tc.env)
			continue
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%v: error %q does not name %s", tc.env, err, m)
			}
		}
	}
	if got := redactedDatabaseURL("postgres://films:secret@db:5432/films"); strings.Contains(got, "secret") {
		t.Errorf("redacted URL %q shows the password", got)
	}
}

// running is one Run in a goroutine.
type running struct {
	url  string
	logs *testkit.SyncBuffer
	stop func() error
}

func startRun(t *testing.T, cfg Config) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)), ln) }()
	r := &running{url: "http://" + ln.Addr().String(), logs: logs}
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })

	// Poll /readyz: Run migrates and seeds before it serves.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-errc:
			t.Fatalf("Run returned early: %v\n%s", err, logs)
		default:
		}
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("films never became ready\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// Run starts with auth down, seeds once, serves, stops cleanly; restarted
// with auth up, it serves personal routes.
func TestRun(t *testing.T) {
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "films.db")}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		urls["postgres"] = sqldbtest.FreshPostgresURL(t)
	}
	for engine, dbURL := range urls {
		t.Run(engine, func(t *testing.T) {
			// A port nobody listens on: auth is down.
			deadURL := "http://" + testkit.FreeAddr(t) + "/.well-known/jwks.json"
			auth := newAuthServer(t)

			cfg := Config{DatabaseURL: dbURL, JWKSURL: deadURL, Issuer: testIssuer, Audience: testAudience, SeedDemo: true}
			r := startRun(t, cfg)
			status, body := get(t, r.url+"/v1/films", "")
			var page pageJSON
			if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != DefaultLimit || page.NextCursor == nil {
				t.Fatalf("GET /v1/films with auth down: %d %s", status, body)
			}
			if !strings.Contains(r.logs.String(), `"msg":"demo catalogue loaded"`) || !strings.Contains(r.logs.String(), `"kept":3200`) {
				t.Errorf("the seed was not logged:\n%s", r.logs)
			}
			// A genuine token cannot be checked while auth is down and no key
			// is cached: 401, not 500, and the catalogue still answers.
			if status, body := get(t, r.url+"/v1/films", liveToken(t)); status != http.StatusUnauthorized {
				t.Errorf("token with auth down: %d %s", status, body)
			}
			if err := r.stop(); err != nil {
				t.Fatalf("Run = %v after a clean stop", err)
			}

			// Restart on the same database with auth up: no second seed, and
			// the personal routes work with a real token.
			cfg.JWKSURL = auth.jwks.URL
			r = startRun(t, cfg)
			if strings.Contains(r.logs.String(), "demo catalogue loaded") {
				t.Error("the demo catalogue was seeded again")
			}
			tok := liveToken(t)
			req, _ := http.NewRequest("PUT", r.url+"/v1/me/favorites/7", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("PUT favourite: %d", resp.StatusCode)
			}
			status, body = get(t, r.url+"/v1/me/favorites", tok)
			if status != http.StatusOK || !strings.Contains(string(body), `"id":7`) {
				t.Errorf("GET favourites: %d %s", status, body)
			}
			if err := r.stop(); err != nil {
				t.Fatalf("Run = %v after a clean stop", err)
			}
		})
	}
}

// liveToken is a token of the test auth key valid now: Run's verifier uses
// the real clock.
func liveToken(t *testing.T) string {
	t.Helper()
	s := tokens.NewSigner(authKey(), testIssuer, testAudience, 15*time.Minute, time.Now)
	tok, err := s.Issue(tokens.Claims{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRunRejectsBadConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Config{DatabaseURL: "mysql://x", JWKSURL: DefaultJWKSURL, Issuer: "i", Audience: "a"},
		slog.New(slog.DiscardHandler), ln)
	if err == nil || !strings.Contains(err.Error(), "DatabaseURL") {
		t.Errorf("Run(bad config) = %v", err)
	}
	// The listener was released.
	if _, err := ln.Accept(); err == nil {
		t.Error("the listener is still open")
	}
}

// Once films has the JWK set, auth may go away: new tokens of known keys
// keep verifying, an unknown key is still refused (401, not 500), and the
// failed re-fetch it causes does not drop the keys films has.
func TestAPIKeepsVerifyingWithAuthDown(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	addFilms(t, a.store, 0, 3)
	put := func(token string) int {
		return a.do("PUT", "/v1/me/favorites/1", bearer(token)...).status
	}
	if s := put(a.auth.token(t, "first")); s != http.StatusNoContent {
		t.Fatalf("with auth up: %d", s)
	}
	a.auth.jwks.Close()
	if s := put(a.auth.token(t, "second")); s != http.StatusNoContent {
		t.Errorf("a new token with auth down: %d", s)
	}
	foreign, err := tokens.NewSigner(foreignKey(), testIssuer, testAudience, 15*time.Minute, func() time.Time { return testNow }).Issue(tokens.Claims{Subject: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if s := put(foreign); s != http.StatusUnauthorized {
		t.Errorf("an unknown key with auth down: %d", s)
	}
	if s := put(a.auth.token(t, "third")); s != http.StatusNoContent {
		t.Errorf("a new token after a failed re-fetch: %d", s)
	}
	if n := a.auth.hits.Load(); n != 1 {
		t.Errorf("JWK set fetched %d times; want 1 (the unknown kid's re-fetch found auth down)", n)
	}
}

// writePublicKeyPEM writes the test auth key's public half as PEM.
func writePublicKeyPEM(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&authKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth-public.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// With a configured public key, films verifies tokens without ever reaching
// auth: alone (no JWK set URL), or beside a JWK set URL that is down.
func TestRunWithStaticPublicKey(t *testing.T) {
	keyFile := writePublicKeyPEM(t)
	deadURL := "http://" + testkit.FreeAddr(t) + "/.well-known/jwks.json"
	for name, jwksURL := range map[string]string{"static only": "", "beside a dead JWK set": deadURL} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "films.db"), JWKSURL: jwksURL,
				Issuer: testIssuer, Audience: testAudience, PublicKeyFile: keyFile, TokenCacheSize: 10}
			r := startRun(t, cfg)
			if status, body := get(t, r.url+"/v1/me/favorites", liveToken(t)); status != http.StatusOK {
				t.Errorf("a personal route with a static key: %d %s", status, body)
			}
			foreign, _ := tokens.NewSigner(foreignKey(), testIssuer, testAudience, 15*time.Minute, time.Now).Issue(tokens.Claims{Subject: "x"})
			if status, body := get(t, r.url+"/v1/me/favorites", foreign); status != http.StatusUnauthorized {
				t.Errorf("a token of another key: %d %s", status, body)
			}
		})
	}
	// A key file that is not one is a start-up error, not a service that
	// refuses every token.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a key"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Config{DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "films.db"), Issuer: "i", Audience: "a", PublicKeyFile: bad},
		slog.New(slog.DiscardHandler), ln)
	if err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("Run with a bad key file = %v", err)
	}
}
