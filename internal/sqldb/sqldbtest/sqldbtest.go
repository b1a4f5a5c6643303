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
	"testing"

	"kinoteka/internal/sqldb"
)

// EnvPostgres names the variable holding an admin connection URL for the
// PostgreSQL test server, e.g. postgres://postgres@127.0.0.1:5432/postgres.
const EnvPostgres = "KINOTEKA_TEST_POSTGRES_URL"

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
