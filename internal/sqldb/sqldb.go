// Package sqldb opens a service's database — SQLite (pure Go) for the embedded
// mode, PostgreSQL (pgx) in production — and applies its embedded goose
// migrations. Both engines are reached through database/sql with $n
// placeholders, so one set of queries serves both.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
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

	pool *poolHealth // PostgreSQL only
	path string      // a SQLite file's path; "" otherwise
}

// Open connects to url: "postgres://…" (or "postgresql://…") for PostgreSQL,
// "sqlite:PATH" or a plain file path for SQLite. It pings before returning.
func Open(ctx context.Context, url string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
		pool := &poolHealth{}
		sdb := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(pool.shouldPing))
		sdb.SetMaxOpenConns(16)
		sdb.SetMaxIdleConns(16)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: sdb, Dialect: Postgres, pool: pool}
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
		} else {
			// Keep every connection open: database/sql keeps only 2 idle by
			// default, and each new SQLite connection re-reads the schema and
			// re-applies the pragmas, so concurrent reads would pay that on
			// most queries (and lose each connection's prepared statements).
			sdb.SetMaxOpenConns(sqliteConns)
			sdb.SetMaxIdleConns(sqliteConns)
		}
		db = &DB{DB: sdb, Dialect: SQLite}
		if path != ":memory:" {
			db.path = path
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		err := db.PingContext(pingCtx)
		if err == nil {
			return db, nil
		}
		// A new SQLite connection beside another process that is creating
		// the file or switching it to WAL can fail with SQLITE_BUSY at
		// once: SQLite does not call the busy handler there. Try again.
		if !isBusy(err) || !pause(pingCtx, 20*time.Millisecond) {
			db.Close()
			return nil, fmt.Errorf("sqldb: connect: %w", err)
		}
	}
}

// isBusy reports SQLite's SQLITE_BUSY (any extended code of it).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// pause waits d, or less if ctx ends first; it reports whether ctx is live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
	versionTable := goose.DefaultTablename
	if o.versionTable != "" {
		versionTable = o.versionTable
	}
	gooseOpts := []goose.ProviderOption{goose.WithTableName(versionTable)}
	if db.Dialect == Postgres {
		// Replicas that start together (two mailers sharing a delivery
		// log) would otherwise run the same CREATE at once and one of them
		// fail on PostgreSQL's catalogue ("pg_type_typname_nsp_index").
		gooseOpts = append(gooseOpts, goose.WithSessionLocker(advisoryLock(versionTable)))
	}
	if db.path != "" {
		unlock, err := lockMigrations(ctx, db.path)
		if err != nil {
			return err
		}
		defer unlock()
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

// advisoryLock serialises the migrations of one set across processes with
// a PostgreSQL session advisory lock keyed by the set's version table. It
// waits in pg_advisory_lock, so the second process starts the moment the
// first is done (goose's own locker polls every 5 s), and gives up only
// with ctx.
type advisoryLock string

func (l advisoryLock) key() int64 {
	h := fnv.New64a()
	h.Write([]byte("kinoteka migrations " + string(l)))
	return int64(h.Sum64())
}

func (l advisoryLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.key())
	return err
}

func (l advisoryLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", l.key())
	return err
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
//
// When the transaction fails before its commit because the connection was
// lost (IsConnLost), nothing of it happened, and InTx runs it once more on
// another connection: fn may run twice, so it must act only through tx and
// set, not accumulate, what it hands out (reset its results first). A
// commit that fails is not repeated: the server may have committed.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	committing, err := db.inTx(ctx, fn)
	if !committing && db.lost(ctx, err) {
		_, err = db.inTx(ctx, fn)
	}
	return err
}

// inTx runs fn in one transaction; committing reports that err, if any,
// came from the commit.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (committing bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return false, err
	}
	return true, tx.Commit()
}

// RetryRead runs fn, a read, and once more when it failed because its
// connection was lost (IsConnLost). fn must be safe to repeat — it only
// reads — and set, not accumulate, its results.
func (db *DB) RetryRead(ctx context.Context, fn func() error) error {
	err := fn()
	if db.lost(ctx, err) {
		err = fn()
	}
	return err
}

// lost reports whether err is a lost connection worth another try (ctx
// still live), and if so makes the pool check connections before reusing
// them for a while: a server that terminated one connection — a restart,
// a failover, an administrator — has usually terminated them all, and
// each would otherwise fail the next request that draws it.
func (db *DB) lost(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !IsConnLost(err) {
		return false
	}
	if db.pool != nil {
		db.pool.suspect(time.Now())
	}
	return true
}

// IsConnLost reports whether err says that the database connection was
// lost rather than that the statement failed: the server terminated it
// (SQLSTATE 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
// cannot_connect_now, 57P05 idle_session_timeout), a connection exception
// (class 08), or the socket broke (EOF, reset, broken pipe, closed).
func IsConnLost(err error) bool {
	if err == nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "57P05":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	for _, lost := range []error{driver.ErrBadConn, io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.EPIPE, net.ErrClosed} {
		if errors.Is(err, lost) {
			return true
		}
	}
	return false
}

// poolHealth decides when the pool checks a connection before reusing it.
//
// pgx's database/sql driver pings a connection that sat idle for over a
// second; one used more recently is handed out unchecked, so each
// connection the server terminated meanwhile fails the next statement that
// draws it. Once a lost connection has been seen, every reuse is pinged for
// suspectFor: a dead connection then fails its ping instead, and
// database/sql discards it and draws another. suspectFor only needs to
// cover the second in which an unchecked connection may still be dead.
type poolHealth struct {
	until atomic.Int64 // unix nanoseconds; ping every reuse until then
}

const suspectFor = 5 * time.Second

func (p *poolHealth) suspect(now time.Time) { p.until.Store(now.Add(suspectFor).UnixNano()) }

func (p *poolHealth) shouldPing(_ context.Context, sp stdlib.ShouldPingParams) bool {
	return sp.IdleDuration > time.Second || time.Now().UnixNano() < p.until.Load()
}
