//go:build !unix

package sqldb

import "context"

// lockMigrations: without flock, SQLite migrations are not serialised
// across processes (see migratelock_unix.go).
func lockMigrations(context.Context, string) (func(), error) { return func() {}, nil }
