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

// sqliteConns bounds a SQLite database's connections: WAL lets them all
// read at once beside the one writer; more than a few per core only adds
// page caches and lock traffic (docs/benchmarks.md, "uncached read path").
const sqliteConns = 8

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
		} else {
			// Keep every connection open: database/sql keeps only 2 idle by
			// default, and each new SQLite connection re-reads the schema and
			// re-applies the pragmas, so concurrent reads would pay that on
			// most queries (and lose each connection's prepared statements).
			sdb.SetMaxOpenConns(sqliteConns)
			sdb.SetMaxIdleConns(sqliteConns)
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

// Migrate applies every pending migration found in migrations/<dialect>/*.sql.
func (db *DB) Migrate(ctx context.Context, migrations fs.FS) error {
	sub, err := fs.Sub(migrations, string(db.Dialect))
	if err != nil {
		return err
	}
	dialect := goose.DialectPostgres
	if db.Dialect == SQLite {
		dialect = goose.DialectSQLite3
	}
	p, err := goose.NewProvider(dialect, db.DB, sub)
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
