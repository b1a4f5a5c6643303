package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/testkit"
)

// Health follows the relay's attempts: an error from the first failure
// until an attempt succeeds, kept across the rounds in which the failed
// rows back off, and cleared once nothing of this relay can still be
// failing (another relay took the rows).
func TestRelayHealthFollowsItsAttempts(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := testkit.NewClock(t0)
		fake := newFake()
		fake.failCalls = 2
		r := stepRelay(db, fake, clk, "r1", Options{MinBackoff: time.Second, MaxBackoff: 4 * time.Second, Poll: time.Second})
		if err := r.Health(ctx); err != nil {
			t.Fatalf("a relay that has not tried yet: %v", err)
		}
		enqueue(t, db, msg("e1", "u1"))

		if _, err := r.publishBatch(ctx); !errors.Is(err, errBrokerDown) {
			t.Fatalf("first round: %v, want the broker's error", err)
		}
		err := r.Health(ctx)
		if !errors.Is(err, errBrokerDown) || !strings.Contains(err.Error(), "since 2026-11-27T10:00:00Z (1 failed attempts") {
			t.Fatalf("after one failure: Health = %v", err)
		}
		// The row backs off for a second: a round in between claims nothing
		// and changes nothing.
		clk.Advance(500 * time.Millisecond)
		if _, err := r.publishBatch(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Health(ctx); !errors.Is(err, errBrokerDown) {
			t.Fatalf("while the row backs off: Health = %v, want still failing", err)
		}
		clk.Advance(time.Second)
		if _, err := r.publishBatch(ctx); !errors.Is(err, errBrokerDown) {
			t.Fatalf("second attempt: %v", err)
		}
		if err := r.Health(ctx); err == nil || !strings.Contains(err.Error(), "since 2026-11-27T10:00:00Z (2 failed attempts") {
			t.Fatalf("after two failures: Health = %v", err)
		}
		clk.Advance(3 * time.Second)
		if _, err := r.publishBatch(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Health(ctx); err != nil {
			t.Fatalf("after a published batch: Health = %v", err)
		}

		// It fails again, and another relay takes the row: once the row
		// could no longer be waiting for this relay, Health clears.
		fake.failCalls = 1
		enqueue(t, db, msg("e2", "u2"))
		if _, err := r.publishBatch(ctx); err == nil {
			t.Fatal("the third attempt did not fail")
		}
		clk.Advance(2 * time.Second)
		if rows, err := claim(ctx, db, "r2", clk.Now(), clk.Now().Add(time.Minute), 10); err != nil || len(rows) != 1 {
			t.Fatalf("the other relay claimed %d rows, %v", len(rows), err)
		}
		if _, err := r.publishBatch(ctx); err != nil || r.Health(ctx) == nil {
			t.Fatalf("2s after the failure: %v, Health %v; want still failing", err, r.Health(ctx))
		}
		clk.Advance(4 * time.Second)
		if _, err := r.publishBatch(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Health(ctx); err != nil {
			t.Fatalf("MaxBackoff+Poll after the failure, with nothing to publish: Health = %v", err)
		}
	})
}
