// Package sqldbtest runs a store's contract tests on every engine: SQLite
// always, PostgreSQL when KINOTEKA_TEST_POSTGRES_URL names a server (each test
// then gets a fresh database of its own, dropped afterwards).
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kinoteka/internal/sqldb"
)

// EnvPostgres names the variable holding an admin connection URL for the
// PostgreSQL test server, e.g. postgres://postgres@127.0.0.1:5432/postgres.
const EnvPostgres = "KINOTEKA_TEST_POSTGRES_URL"

// NeedPostgres skips a test that has no meaning without a PostgreSQL
// server, naming the variable that provides one (.ci/run sets it); what
// says what the test does there.
func NeedPostgres(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(EnvPostgres) == "" {
		t.Skipf("no PostgreSQL server: %s is not set (.ci/run sets it); this test %s", EnvPostgres, what)
	}
}

// Each runs fn as a subtest once per available engine, with a freshly
// migrated database.
func Each(t *testing.T, migrations fs.FS, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, migrations)) })
	if os.Getenv(EnvPostgres) != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, migrations)) })
	}
}

// SQLite opens a migrated SQLite database in a temporary folder.
func SQLite(t testing.TB, migrations fs.FS) *sqldb.DB {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"), migrations)
}

// Postgres creates, migrates and (at cleanup) drops a PostgreSQL database.
// It fails the test when KINOTEKA_TEST_POSTGRES_URL is not set.
func Postgres(t testing.TB, migrations fs.FS) *sqldb.DB {
	t.Helper()
	u := FreshPostgresURL(t)
	return open(t, u, migrations)
}

// FreshPostgresURL creates an empty PostgreSQL database, dropped at cleanup,
// and returns its URL.
func FreshPostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		t.Fatalf("%s is not set: no PostgreSQL server to test against", EnvPostgres)
	}
	ctx := context.Background()
	adb, err := sqldb.Open(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgres, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "kinoteka_test_" + hex.EncodeToString(b[:])
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = adb.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		adb.Close()
	})
	pu, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	pu.Path = "/" + name
	return pu.String()
}

// Open connects to dsn, closing the handle at cleanup.
func Open(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	return open(t, dsn, nil)
}

func open(t testing.TB, dsn string, migrations fs.FS) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if migrations != nil {
		if err := db.Migrate(context.Background(), migrations); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// TerminateConnections ends, on the server, every connection to the
// database that dbURL names (as an administrator does with
// pg_terminate_backend, or a restart would), waits until they are gone, and
// returns how many there were. The pools holding them find out at their
// next use.
func TerminateConnections(t testing.TB, dbURL string) int {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, os.Getenv(EnvPostgres))
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgres, err)
	}
	defer admin.Close()
	// The call stays in the select list, never in WHERE, where PostgreSQL
	// may run it before the filter, on every backend; the 5 s argument
	// makes it wait for each backend to exit.
	rows, err := admin.QueryContext(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	if err != nil {
		t.Fatalf("terminate the connections to %s: %v", name, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ok bool
		if err := rows.Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("a connection to %s did not end", name)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
