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
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/launch"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
	"kinoteka/internal/tokens"
)

// running is one Run in a goroutine.
type running struct {
	url    string // the API
	opsURL string // the operators' endpoints
	logs   *testkit.SyncBuffer
	stop   func() error
}

// loopback is a public and an operators' listener on free loopback ports.
func loopback(t *testing.T) launch.Listeners {
	t.Helper()
	var ln launch.Listeners
	var err error
	if ln.Public, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if ln.Ops, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return ln
}

func startRun(t *testing.T, cfg Config) *running {
	t.Helper()
	ln := loopback(t)
	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)), ln) }()
	r := &running{url: "http://" + ln.Public.Addr().String(), opsURL: "http://" + ln.Ops.Addr().String(), logs: logs}
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
		resp, err := http.Get(r.opsURL + "/readyz")
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

			cfg := DefaultConfig()
			cfg.DatabaseURL, cfg.JWKSURL, cfg.Issuer, cfg.Audience = dbURL, deadURL, testIssuer, testAudience
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
	ln := loopback(t)
	cfg := DefaultConfig()
	cfg.DatabaseURL = "mysql://x"
	err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), ln)
	if err == nil || !strings.Contains(err.Error(), "FILMS_DATABASE_URL") {
		t.Errorf("Run(bad config) = %v", err)
	}
	// Both listeners were released.
	if _, err := ln.Public.Accept(); err == nil {
		t.Error("the public listener is still open")
	}
	if _, err := ln.Ops.Accept(); err == nil {
		t.Error("the operators' listener is still open")
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
			cfg := DefaultConfig()
			cfg.DatabaseURL, cfg.JWKSURL, cfg.Issuer, cfg.Audience = "sqlite:"+filepath.Join(t.TempDir(), "films.db"), jwksURL, testIssuer, testAudience
			cfg.PublicKeyFile, cfg.TokenCacheSize = keyFile, 10
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
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.JWKSURL, cfg.PublicKeyFile = "sqlite:"+filepath.Join(t.TempDir(), "films.db"), "", bad
	err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), loopback(t))
	if err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("Run with a bad key file = %v", err)
	}
}

// Run stops the JWK-set refresh and waits for it before it returns, even
// when the refresh is stuck on an auth that does not answer: no goroutine
// of the service outlives Run.
func TestRunWaitsForKeyRefresh(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // hang like an auth that accepted the connection and froze
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer jwks.Close()
	defer close(release)

	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.JWKSURL, cfg.Issuer, cfg.Audience = "sqlite:"+filepath.Join(t.TempDir(), "films.db"), jwks.URL, testIssuer, testAudience
	cfg.SeedDemo = false
	r := startRun(t, cfg)
	<-arrived // the refresh at start is in flight
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v after a clean stop", err)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "films.refreshKeys") {
		t.Errorf("the key refresh still runs after Run returned:\n%s", stacks)
	}
}

// Run takes the configuration as it is: DefaultConfig's read cache is on
// (answers may be reused for its TTL), and a ReadCacheTTL of 0 is off, not
// "the default".
func TestRunReadCacheFollowsConfig(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want string
	}{{DefaultConfig().ReadCacheTTL, "public, max-age=5"}, {0, "public, no-cache"}} {
		cfg := DefaultConfig()
		cfg.DatabaseURL, cfg.JWKSURL, cfg.ReadCacheTTL = "sqlite:"+filepath.Join(t.TempDir(), "films.db"), "", tc.ttl
		cfg.PublicKeyFile = writePublicKeyPEM(t)
		r := startRun(t, cfg)
		resp, err := http.Get(r.url + "/v1/films/1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || cc != tc.want {
			t.Errorf("ReadCacheTTL %v: %d, Cache-Control %q; want 200, %q", tc.ttl, resp.StatusCode, cc, tc.want)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
