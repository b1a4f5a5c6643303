package films

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/tokens"
)

const (
	testIssuer   = "http://auth.test"
	testAudience = "kinoteka"
)

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// RSA keys are slow to make; the tests share two.
var (
	authKey    = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	foreignKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// film returns a valid film to insert, numbered i.
func film(i int) Film {
	return Film{Title: fmt.Sprintf("Film %04d", i), Year: 1950 + i%70, Genre: []string{"Drama", "Comedy", ""}[i%3]}
}

// addFilms inserts n numbered films and fails the test unless all were new.
func addFilms(t testing.TB, s *Store, from, n int) {
	t.Helper()
	fs := make([]Film, n)
	for i := range fs {
		fs[i] = film(from + i)
	}
	added, err := s.insertFilms(context.Background(), fs)
	if err != nil {
		t.Fatal(err)
	}
	if added != n {
		t.Fatalf("inserted %d of %d films", added, n)
	}
}

// addReview writes userID's review of filmID through the store.
func addReview(t testing.TB, s *Store, filmID int64, userID string, rating int) {
	t.Helper()
	if _, _, err := s.PutReview(context.Background(), filmID, userID, ReviewInput{Rating: rating}); err != nil {
		t.Fatal(err)
	}
}

// authServer is auth as films sees it: a JWK set over HTTP and a signer.
type authServer struct {
	signer *tokens.Signer
	jwks   *httptest.Server
	hits   atomic.Int64
}

func newAuthServer(t testing.TB) *authServer {
	a := &authServer{signer: tokens.NewSigner(authKey(), testIssuer, testAudience, 15*time.Minute, func() time.Time { return testNow })}
	body, _ := json.Marshal(a.signer.JWKSet())
	a.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(a.jwks.Close)
	return a
}

func (a *authServer) verifier() *tokens.Verifier {
	return tokens.NewVerifier(tokens.VerifierConfig{
		JWKSURL: a.jwks.URL, Issuer: testIssuer, Audience: testAudience, Leeway: Leeway,
		Now: func() time.Time { return testNow },
	})
}

func (a *authServer) token(t testing.TB, userID string, roles ...string) string {
	t.Helper()
	tok, err := a.signer.Issue(tokens.Claims{Subject: userID, Email: userID + "@example.com", EmailVerified: true, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkSearchIndex has SQLite verify that the FTS5 index matches the films
// table (PostgreSQL's GIN index is the engine's own business).
func checkSearchIndex(t testing.TB, db *sqldb.DB) {
	t.Helper()
	if db.Dialect != sqldb.SQLite {
		return
	}
	if _, err := db.ExecContext(context.Background(), `INSERT INTO films_fts (films_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("FTS5 integrity check: %v", err)
	}
}
