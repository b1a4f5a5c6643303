package sqldb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
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

// Replicas that start together on one database (two mailers sharing a
// delivery log) migrate it once between them: on PostgreSQL the same
// CREATE run twice at once fails on the catalogue
// ("pg_type_typname_nsp_index"), on SQLite the second replica's first
// migration fails on "table already exists" (goose reads the version before
// its transaction).
func TestMigrateConcurrentReplicas(t *testing.T) {
	var sql strings.Builder
	sql.WriteString("-- +goose Up\n")
	for i := range 20 {
		fmt.Fprintf(&sql, "CREATE TABLE race_%d (id INTEGER PRIMARY KEY, body TEXT);\n", i)
	}
	race := set("before_the_race")
	race["postgres/00002_race.sql"] = &fstest.MapFile{Data: []byte(sql.String())}
	race["sqlite/00002_race.sql"] = &fstest.MapFile{Data: []byte(sql.String())}
	for _, engine := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			if engine == sqldb.Postgres {
				sqldbtest.NeedPostgres(t, "migrates one PostgreSQL database from four handles at once")
			}
			for round := range 5 {
				u := "sqlite:" + filepath.Join(t.TempDir(), "race.db")
				if engine == sqldb.Postgres {
					u = sqldbtest.FreshPostgresURL(t)
				}
				// The version table exists already, as it does for every
				// upgrade: goose retries its own creation, not a migration's.
				if err := sqldbtest.Open(t, u).Migrate(context.Background(), set("before_the_race")); err != nil {
					t.Fatal(err)
				}
				migrateTogether(t, round, u, race)
			}
		})
	}
}

// migrateTogether migrates the database at u from four handles at once.
func migrateTogether(t *testing.T, round int, u string, migrations fstest.MapFS) {
	t.Helper()
	const replicas = 4
	dbs := make([]*sqldb.DB, replicas)
	for i := range dbs {
		dbs[i] = sqldbtest.Open(t, u)
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = db.Migrate(context.Background(), migrations)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("round %d, replica %d: %v", round, i, err)
		}
	}
	var n int
	if err := dbs[0].QueryRow("SELECT COUNT(*) FROM goose_db_version WHERE version_id = 2").Scan(&n); err != nil || n != 1 {
		t.Fatalf("round %d: version 2 recorded %d times (%v); want once", round, n, err)
	}
}
