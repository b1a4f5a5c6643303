package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
	"kinoteka/internal/tokens"
)

// testArgon2 keeps the rule tests fast; TestDefaultArgon2MeetsOWASP and
// TestRunUsesProductionArgon2 guard what production uses.
var testArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// testKey is generated once per test binary: RSA key generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// fixture is a service on a real database with a controlled clock and
// predictable codes: 100001, 100002, … in issue order.
type fixture struct {
	svc      *service
	db       *sqldb.DB
	clock    *testkit.Clock
	codes    atomic.Int64
	notified atomic.Int64
}

func newFixture(t testing.TB, db *sqldb.DB, opts ...func(*serviceConfig)) *fixture {
	t.Helper()
	return newFixtureWith(t, db, testArgon2, opts...)
}

func newFixtureWith(t testing.TB, db *sqldb.DB, params Argon2Params, opts ...func(*serviceConfig)) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: testkit.NewClock(start)}
	f.codes.Store(100000)
	cfg := serviceConfig{
		Config:  testConfig(),
		Argon2:  params,
		Now:     f.clock.Now,
		Rand:    rand.Reader,
		NewCode: func() (string, error) { return fmt.Sprint(f.codes.Add(1)), nil },
		Notify:  func() { f.notified.Add(1) },
	}
	for _, o := range opts {
		o(&cfg)
	}
	signer := tokens.NewSigner(testKey(), cfg.Issuer, cfg.Audience, cfg.AccessTTL, f.clock.Now)
	svc, err := newService(NewStore(db), signer, discard, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// testConfig is DefaultConfig with what every test needs: an issuer of its
// own and a code secret.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Issuer = "http://auth.test"
	cfg.CodeSecret = testSecret
	return cfg
}

// eachDB runs fn once per engine (sqldbtest.Each) on a database migrated
// as Run migrates it.
func eachDB(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.Each(t, nil, func(t *testing.T, db *sqldb.DB) { fn(t, migrated(t, db)) })
}

// sqliteDB is a SQLite database migrated as Run migrates it.
func sqliteDB(t testing.TB) *sqldb.DB {
	t.Helper()
	return migrated(t, sqldbtest.SQLite(t, nil))
}

func migrated(t testing.TB, db *sqldb.DB) *sqldb.DB {
	t.Helper()
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

func sqliteFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, sqliteDB(t))
}

// register registers email with a fixed password and returns the code the
// outbox would mail.
func (f *fixture) register(t testing.TB, email string) string {
	t.Helper()
	if err := f.svc.Register(context.Background(), email, "correct horse", "en"); err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return lastMail(t, f.db).mail.Code
}

// registerVerified registers and verifies email.
func (f *fixture) registerVerified(t testing.TB, email string) Tokens {
	t.Helper()
	tok, err := f.svc.Verify(context.Background(), email, f.register(t, email), "correct horse")
	if err != nil {
		t.Fatalf("verify %s: %v", email, err)
	}
	return tok
}

// outboxMail is one outbox row, decoded.
type outboxMail struct {
	key   string
	raw   []byte
	env   events.Envelope
	mail  events.CodeMail
	count int // rows in the outbox
}

func lastMail(t testing.TB, db *sqldb.DB) outboxMail {
	t.Helper()
	var m outboxMail
	// Mail only: the users topic's events share the outbox (account_test.go).
	if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE topic <> 'users'").Scan(&m.count); err != nil {
		t.Fatal(err)
	}
	err := db.QueryRow("SELECT msg_key, payload FROM outbox WHERE topic <> 'users' ORDER BY id DESC LIMIT 1").Scan(&m.key, &m.raw)
	if err != nil {
		t.Fatalf("no outbox row: %v", err)
	}
	if err := json.Unmarshal(m.raw, &m.env); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m.env.Data, &m.mail); err != nil {
		t.Fatal(err)
	}
	return m
}

func count(t testing.TB, db *sqldb.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// do sends one request to h.
func do(t *testing.T, h http.Handler, method, path, contentType, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
