// Package sqldb opens a service's database — SQLite (pure Go) for the embedded
// mode, PostgreSQL (pgx) in production — and applies its embedded goose
// migrations. Both engines are reached through database/sql with $n
// placeholders, so one set of queries serves both.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the engine behind a DB.
type Dialect string

// The supported engines.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is a database handle that knows its engine.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open connects to url: "postgres://…" (or "postgresql://…") for PostgreSQL,
// "sqlite:PATH" or a plain file path for SQLite. It pings before returning.
func Open(ctx context.Context, url string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		sdb, err := sql.Open("pgx", url)
		if err != nil {
			return nil, err
		}
		sdb.SetMaxOpenConns(16)
		sdb.SetMaxIdleConns(16)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: sdb, Dialect: Postgres}
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite://"), "sqlite:")
		if path == "" {
			return nil, errors.New("sqldb: empty database path")
		}
		if path != ":memory:" {
			if err := privateFiles(path); err != nil {
				return nil, err
			}
		}
		// WAL lets readers run beside the single writer; busy_timeout makes a
		// writer wait for the lock instead of failing with SQLITE_BUSY.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		if path == ":memory:" {
			dsn = "file::memory:?_pragma=foreign_keys(ON)"
		}
		sdb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		if path == ":memory:" {
			sdb.SetMaxOpenConns(1) // each connection would get its own empty database
		}
		db = &DB{DB: sdb, Dialect: SQLite}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: connect: %w", err)
	}
	return db, nil
}

// privateFiles creates the SQLite database at path, if it is new, readable
// by its owner alone, and takes group and other permissions off an existing
// one and its journals. SQLite would create the file with the process's
// umask (0644 commonly) and gives its -wal and -shm files the database's
// mode; the databases hold password hashes, codes' MACs and sessions.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqldb: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqldb: %w", err)
		}
		if mode := info.Mode().Perm(); mode&0o077 != 0 {
			if err := os.Chmod(p, mode&^0o077); err != nil {
				return fmt.Errorf("sqldb: %s is open to other users (%#o) and cannot be made private: %w", p, mode, err)
			}
		}
	}
	return nil
}

// MigrateOption changes how Migrate keeps track of a set of migrations.
type MigrateOption func(*migrateOptions)

type migrateOptions struct {
	versionTable string
}

// VersionTable keeps the set's applied versions in table instead of goose's
// default goose_db_version. Two sets that share a database — a service's
// own schema and a package's such as the outbox's — each need their own
// table, because each numbers its migrations from 1.
func VersionTable(table string) MigrateOption {
	return func(o *migrateOptions) { o.versionTable = table }
}

// Migrate applies every pending migration found in migrations/<dialect>/*.sql.
func (db *DB) Migrate(ctx context.Context, migrations fs.FS, opts ...MigrateOption) error {
	var o migrateOptions
	for _, opt := range opts {
		opt(&o)
	}
	sub, err := fs.Sub(migrations, string(db.Dialect))
	if err != nil {
		return err
	}
	dialect := goose.DialectPostgres
	if db.Dialect == SQLite {
		dialect = goose.DialectSQLite3
	}
	var gooseOpts []goose.ProviderOption
	if o.versionTable != "" {
		gooseOpts = append(gooseOpts, goose.WithTableName(o.versionTable))
	}
	p, err := goose.NewProvider(dialect, db.DB, sub, gooseOpts...)
	if err != nil {
		return fmt.Errorf("sqldb: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqldb: migrate: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// InTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
