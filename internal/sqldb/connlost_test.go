package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

func TestIsConnLost(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"terminated by an administrator", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{"server crashed", fmt.Errorf("query: %w", &pgconn.PgError{Code: "57P02"}), true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, false},
		{"broken socket", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"no rows", sql.ErrNoRows, false},
		{"cancelled", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqldb.IsConnLost(tt.err); got != tt.want {
				t.Errorf("IsConnLost(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// Every pooled connection terminated on the server used to fail the next
// statement that drew it. Now a read and a transaction that failed before
// its commit run again, and the pool checks what it hands out once it has
// seen a lost connection: after the server ends all of them, every
// statement of a burst succeeds.
func TestTerminatedConnectionsCostNoStatement(t *testing.T) {
	sqldbtest.NeedPostgres(t, "terminates the server's connections")
	dbURL := sqldbtest.FreshPostgresURL(t)
	db, err := sqldb.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Migrate(ctx, set("items")); err != nil {
		t.Fatal(err)
	}

	const burst = 8
	next := 0
	for round := range 3 {
		// A burst fills the pool with connections used a moment ago…
		if err := errors.Join(run(t, burst, func(int) error { return read(ctx, db) })...); err != nil {
			t.Fatalf("round %d, before terminating: %v", round, err)
		}
		// …which the server then ends.
		if n := sqldbtest.TerminateConnections(t, dbURL); n < 2 {
			t.Fatalf("round %d: terminated %d connections, want the pool's", round, n)
		}
		errs := run(t, burst, func(i int) error {
			if i%2 == 0 {
				return read(ctx, db)
			}
			return db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO items (id) VALUES ($1)", next+i)
				return err
			})
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, statement %d after the connections were terminated: %v", round, i, err)
			}
		}
		next += burst
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 3*burst/2 {
		t.Errorf("items = %d, %v; want each transaction committed once (%d)", n, err, 3*burst/2)
	}
}

func read(ctx context.Context, db *sqldb.DB) error {
	return db.RetryRead(ctx, func() error {
		var n int
		return db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n)
	})
}

// run runs fn(0) … fn(n-1) at once and returns their errors.
func run(t *testing.T, n int, fn func(i int) error) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Logf("%d statements: %v", n, err)
	}
	return errs
}
