package outbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"kinoteka/internal/sqldb"
)

//go:embed migrations
var embedded embed.FS

// Migrations is the outbox table for both engines, rooted as sqldb.Migrate
// expects (sqlite/…, postgres/…). Apply it with Migrate, which keeps its
// versions in VersionTable.
var Migrations = func() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}()

// VersionTable is where goose records the outbox's applied migrations,
// apart from the owning service's goose_db_version: the outbox numbers its
// migrations on its own, so any service's database can hold one.
const VersionTable = "outbox_goose_db_version"

// Migrate creates the outbox table in db, or brings an existing one to the
// shape the relay expects. A service that writes events calls it next to
// its own migrations, wherever it applies them (at start, in a migrate
// command).
func Migrate(ctx context.Context, db *sqldb.DB) error {
	if err := addLaterColumns(ctx, db); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	if err := db.Migrate(ctx, Migrations, sqldb.VersionTable(VersionTable)); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// laterColumns are the columns auth's migrations 2 and 4 added to the table
// its migration 1 made, before this package owned the table.
var laterColumns = []struct{ name, sqlite, postgres string }{
	{"lease_owner", "TEXT", "TEXT"},
	{"lease_until", "TIMESTAMP", "TIMESTAMPTZ"},
	{"next_attempt_at", "TIMESTAMP", "TIMESTAMPTZ"},
	{"traceparent", "TEXT", "TEXT"},
}

// addLaterColumns completes an outbox table made by auth's migrations on a
// database that had not reached auth's migration 4 when those migrations
// stopped making it: CREATE TABLE IF NOT EXISTS leaves an existing table as
// it is, so the missing columns are added here. A new database has no
// table yet and a complete one lacks nothing: then this only reads the
// catalogue. (SQLite has no ADD COLUMN IF NOT EXISTS, hence the look first.)
func addLaterColumns(ctx context.Context, db *sqldb.DB) error {
	query := `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'outbox'`
	if db.Dialect == sqldb.SQLite {
		query = `SELECT name FROM pragma_table_info('outbox')`
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(have) == 0 {
		return nil // no table yet: the migration makes it whole
	}
	for _, c := range laterColumns {
		if have[c.name] {
			continue
		}
		typ := c.postgres
		if db.Dialect == sqldb.SQLite {
			typ = c.sqlite
		}
		if _, err := db.ExecContext(ctx, "ALTER TABLE outbox ADD COLUMN "+c.name+" "+typ); err != nil {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
	}
	return nil
}
