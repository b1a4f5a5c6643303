package outbox

import (
	"context"
	"testing"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// Migrate makes the table on an empty database, records its versions in
// its own table only (the service's goose_db_version stays the service's),
// and changes nothing when run again. (auth's TestMigrateUpgradesOldDatabases
// covers tables that auth's older migrations made.)
func TestMigrateOwnsItsVersionTable(t *testing.T) {
	sqldbtest.Each(t, nil, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for range 2 {
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
		}
		var versions, latest int
		if err := db.QueryRow("SELECT COUNT(*), MAX(version_id) FROM "+VersionTable+" WHERE version_id > 0").Scan(&versions, &latest); err != nil {
			t.Fatal(err)
		}
		if versions != 1 || latest != 1 {
			t.Errorf("%s holds %d versions up to %d, want 1 up to 1", VersionTable, versions, latest)
		}
		if _, err := db.Exec("SELECT COUNT(*) FROM goose_db_version"); err == nil {
			t.Error("the outbox's migrations wrote into goose_db_version, the service's table")
		}
		// Every column the relay and Enqueue use exists.
		if _, err := db.Exec(`SELECT id, event_id, topic, msg_key, event_type, payload, headers, created_at, published_at,
			attempts, last_error, lease_owner, lease_until, next_attempt_at, traceparent FROM outbox`); err != nil {
			t.Errorf("outbox table: %v", err)
		}
	})
}
