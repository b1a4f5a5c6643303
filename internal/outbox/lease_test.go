package outbox

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/testkit"
)

// stepRelay is a relay the test drives one round at a time (no Run loop),
// on a clock the test moves.
func stepRelay(db *sqldb.DB, pub Publisher, clk *testkit.Clock, owner string, opts Options) *Relay {
	opts.Now, opts.Owner = clk.Now, owner
	return NewRelay(db, pub, discard, opts)
}

// round runs one claim-produce-settle round and returns what it published.
func round(t *testing.T, r *Relay) batch {
	t.Helper()
	b, _, _ := r.produceBatch(context.Background())
	return b
}

func TestLeaseOfACrashedRelayExpires(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		clk := testkit.NewClock(t0)
		enqueue(t, db, msg("e1", "u1"), msg("e2", "u2"))
		// A relay claims the rows and dies before producing them.
		rows, err := claim(context.Background(), db, "crashed", t0, t0.Add(time.Minute), 100)
		if err != nil || len(rows) != 2 {
			t.Fatalf("claim = %d rows, %v", len(rows), err)
		}
		fake := newFake()
		r := stepRelay(db, fake, clk, "survivor", Options{Lease: time.Minute})

		clk.Advance(59 * time.Second)
		if b := round(t, r); len(b.published) != 0 {
			t.Fatalf("published %v while another relay's lease was live", b.published)
		}
		clk.Advance(time.Second)
		if b := round(t, r); !slices.Equal(b.published, []string{"e1", "e2"}) {
			t.Fatalf("after the lease expired: published %v, want e1 e2", b.published)
		}
		if s := state(t, db, "e1"); !s.published || s.attempts != 0 {
			t.Errorf("e1 = %+v: a crash is not a failed attempt", s)
		}
	})
}

func TestFailedRowBacksOffAloneAndKeepsItsKeyInOrder(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		clk := testkit.NewClock(t0)
		fake := newFake()
		enqueue(t, db, msg("e1", "u1"), msg("e2", "u2"), msg("e3", "u1"))
		r := stepRelay(db, fake, clk, "r", Options{MinBackoff: time.Second, MaxBackoff: 4 * time.Second})

		// e3 rides in the same batch as e1, and fails with it: the producer
		// keeps one key in order, so it must not overtake.
		fake.failKeys["u1"] = true
		if b := round(t, r); !slices.Equal(b.published, []string{"e2"}) || b.failed != 2 {
			t.Fatalf("first round = %+v, want e2 published and e1, e3 failed", b)
		}
		// Backing off: nothing is due for a second.
		clk.Advance(999 * time.Millisecond)
		if b := round(t, r); len(b.published)+b.failed != 0 {
			t.Fatalf("round during the backoff = %+v, want nothing claimed", b)
		}
		// A newcomer of the same key waits behind them; another key does not.
		enqueue(t, db, msg("e4", "u1"), msg("e5", "u3"))
		if b := round(t, r); !slices.Equal(b.published, []string{"e5"}) {
			t.Fatalf("round with newcomers = %+v, want only e5", b)
		}
		clk.Advance(time.Millisecond)
		if b := round(t, r); !slices.Equal(b.published, []string{"e1", "e3", "e4"}) {
			t.Fatalf("after the backoff = %+v, want e1 e3 e4 in order", b)
		}
		if s := state(t, db, "e1"); !s.published || s.attempts != 1 || s.lastError == "" {
			t.Errorf("e1 = %+v", s)
		}
	})
}

func TestRowBackoffDoublesUpToTheCap(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		clk := testkit.NewClock(t0)
		fake := newFake()
		fake.failCalls = 1000
		enqueue(t, db, msg("e1", "u1"))
		r := stepRelay(db, fake, clk, "r", Options{MinBackoff: time.Second, MaxBackoff: 5 * time.Second})
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
			if b := round(t, r); b.failed != 1 {
				t.Fatalf("attempt %d = %+v, want a failure", i+1, b)
			}
			var next time.Time
			if err := db.QueryRow("SELECT next_attempt_at FROM outbox WHERE event_id = 'e1'").Scan(&next); err != nil {
				t.Fatal(err)
			}
			if got := next.Sub(clk.Now().Truncate(time.Microsecond)); got != want {
				t.Errorf("after attempt %d the row waits %v, want %v", i+1, got, want)
			}
			clk.Advance(want)
		}
		if s := state(t, db, "e1"); s.published || !s.hasPayload || s.attempts != 5 {
			t.Errorf("e1 = %+v, want still pending with its payload after 5 attempts", s)
		}
	})
}

func TestShutdownHandsClaimedRowsBack(t *testing.T) {
	db := sqliteDB(t)
	clk := testkit.NewClock(t0)
	fake := newFake()
	fake.block = true
	enqueue(t, db, msg("e1", "u1"))
	r := stepRelay(db, fake, clk, "r", Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the produce call is under way.
		for {
			fake.mu.Lock()
			started := fake.inFlight > 0
			fake.mu.Unlock()
			if started {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, _, err := r.produceBatch(ctx); err == nil {
		t.Fatal("a cancelled round reported success")
	}
	var owner sql.NullString
	if err := db.QueryRow("SELECT lease_owner FROM outbox WHERE event_id = 'e1'").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if s := state(t, db, "e1"); s.published || s.attempts != 0 || owner.Valid {
		t.Errorf("e1 = %+v, lease owner %v; want pending, no attempt counted, no lease", s, owner)
	}
	// Another relay takes it at once, not after the lease.
	fake.block = false
	if b := round(t, stepRelay(db, fake, clk, "other", Options{})); !slices.Equal(b.published, []string{"e1"}) {
		t.Errorf("the other relay published %v", b.published)
	}
}

func TestRetentionDeletesOnlyOldPublishedRows(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		clk := testkit.NewClock(t0)
		enqueue(t, db, msg("old", "u1"), msg("recent", "u2"))
		r := stepRelay(db, newFake(), clk, "r", Options{Retention: 24 * time.Hour})
		if b := round(t, r); len(b.published) != 2 {
			t.Fatalf("published %v", b.published)
		}
		if _, err := db.Exec("UPDATE outbox SET published_at = $1 WHERE event_id = 'recent'", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		enqueue(t, db, Message{EventID: "pending", Topic: "t", Key: "u3", EventType: "x", Payload: []byte("{}"), CreatedAt: t0.Add(-48 * time.Hour)})

		clk.Advance(25 * time.Hour)
		r.housekeeping(context.Background())
		var left []string
		rs, err := db.Query("SELECT event_id FROM outbox ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				t.Fatal(err)
			}
			left = append(left, id)
		}
		if !slices.Equal(left, []string{"recent", "pending"}) {
			t.Errorf("rows left %v, want recent and pending", left)
		}
	})
}

func TestStats(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		clk := testkit.NewClock(t0.Add(time.Minute))
		fake := newFake()
		fake.failKeys["u1"] = true
		enqueue(t, db, msg("e1", "u1"), msg("e2", "u2"), msg("e3", "u3"))
		r := stepRelay(db, fake, clk, "r", Options{BatchSize: 2})
		round(t, r) // e1 fails, e2 goes; e3 not claimed yet
		st, err := r.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		oldest := t0.Truncate(time.Microsecond)
		want := Stats{Pending: 2, Failing: 1, Oldest: oldest, OldestAge: clk.Now().Sub(oldest)}
		if st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}
