package sqldb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"kinoteka/internal/sqldb"
)

// Replicas starting at once on a new SQLite file all connect. The first to
// get there creates the file and switches it to WAL; a connection opened
// meanwhile can fail with SQLITE_BUSY without waiting for the busy timeout
// (it did for about one round in a hundred here, and for a mailer in
// TestResumeAfterKill), so Open tries again.
func TestOpenTogetherOnANewSQLiteFile(t *testing.T) {
	const rounds, replicas = 200, 4
	for round := range rounds {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("new-%d.db", round))
		var wg sync.WaitGroup
		errs := make([]error, replicas)
		for i := range replicas {
			wg.Go(func() {
				db, err := sqldb.Open(context.Background(), "sqlite:"+path)
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, replica %d: %v", round, i, err)
			}
		}
	}
}
