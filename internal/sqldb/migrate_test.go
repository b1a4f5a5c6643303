package sqldb_test

import (
	"context"
	"testing"
	"testing/fstest"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// set is a one-migration schema for both engines, numbered 1 like any set's
// first migration.
func set(table string) fstest.MapFS {
	sql := []byte("-- +goose Up\nCREATE TABLE " + table + " (id INTEGER PRIMARY KEY);\n-- +goose Down\nDROP TABLE " + table + ";\n")
	return fstest.MapFS{
		"sqlite/00001_" + table + ".sql":   {Data: sql},
		"postgres/00001_" + table + ".sql": {Data: sql},
	}
}

func tableExists(t *testing.T, db *sqldb.DB, table string) bool {
	t.Helper()
	_, err := db.Exec("SELECT COUNT(*) FROM " + table)
	return err == nil
}

// Two sets in one database, each with its own version table, are each
// applied in full, however their numbers overlap; applying them again
// changes nothing.
func TestMigrateVersionTableKeepsSetsApart(t *testing.T) {
	sqldbtest.Each(t, nil, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for range 2 {
			if err := db.Migrate(ctx, set("service_things")); err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx, set("package_things"), sqldb.VersionTable("package_goose_db_version")); err != nil {
				t.Fatal(err)
			}
		}
		if !tableExists(t, db, "service_things") || !tableExists(t, db, "package_things") {
			t.Fatal("a set was not applied")
		}
		var n int
		if err := db.QueryRow("SELECT MAX(version_id) FROM package_goose_db_version").Scan(&n); err != nil || n != 1 {
			t.Errorf("the package's version table: max %d, %v; want 1", n, err)
		}
	})
}

// Without its own table a second set numbered from 1 looks applied already:
// the reason VersionTable exists.
func TestMigrateSharedVersionTableSkipsTheSecondSet(t *testing.T) {
	db := sqldbtest.SQLite(t, nil)
	ctx := context.Background()
	if err := db.Migrate(ctx, set("service_things")); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, set("package_things")); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, db, "package_things") {
		t.Error("goose applied a second version 1 in the same version table; VersionTable would not be needed")
	}
}
