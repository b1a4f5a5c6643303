//go:build unix

package sqldb

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockMigrations serialises the migrations of one SQLite file across
// processes: goose reads the version before its transaction, so two
// replicas opening a new file together both apply the first migration and
// one fails on "table already exists". The lock is an flock on a file
// beside the database — not on the database itself, as closing any
// descriptor of that file would drop SQLite's own POSIX locks.
func lockMigrations(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+"-migrate.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqldb: migration lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			_ = f.Close()
			return nil, fmt.Errorf("sqldb: migration lock: %w", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("sqldb: waiting for another process's migrations: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
