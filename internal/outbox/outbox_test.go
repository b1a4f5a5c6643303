package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// each runs fn once per engine (sqldbtest.Each) on a database migrated by
// Migrate, exactly as a service migrates its own.
func each(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.Each(t, nil, func(t *testing.T, db *sqldb.DB) { fn(t, migrated(t, db)) })
}

// sqliteDB is a migrated SQLite database.
func sqliteDB(t testing.TB) *sqldb.DB {
	t.Helper()
	return migrated(t, sqldbtest.SQLite(t, nil))
}

func migrated(t testing.TB, db *sqldb.DB) *sqldb.DB {
	t.Helper()
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func enqueue(t *testing.T, db *sqldb.DB, msgs ...Message) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			if err := Enqueue(context.Background(), tx, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func msg(id, key string) Message {
	return Message{
		EventID: id, Topic: "mail.requests", Key: key, EventType: "verification_code",
		Payload: []byte(`{"id":"` + id + `"}`), Headers: map[string]string{"traceparent": "00-abc-def-01"},
		CreatedAt: t0,
	}
}

type rowState struct {
	published  bool
	hasPayload bool
	attempts   int
	lastError  string
}

func state(t *testing.T, db *sqldb.DB, eventID string) rowState {
	t.Helper()
	var (
		s         rowState
		published sql.NullTime
		payload   []byte
		lastErr   sql.NullString
	)
	err := db.QueryRow("SELECT published_at, payload, attempts, last_error FROM outbox WHERE event_id = $1", eventID).
		Scan(&published, &payload, &s.attempts, &lastErr)
	if err != nil {
		t.Fatalf("row %s: %v", eventID, err)
	}
	s.published, s.hasPayload, s.lastError = published.Valid, payload != nil, lastErr.String
	return s
}

func TestEnqueue(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		enqueue(t, db, msg("e1", "u1"))

		var (
			topic, key, typ, headers string
			payload                  []byte
			created                  time.Time
		)
		err := db.QueryRow("SELECT topic, msg_key, event_type, payload, headers, created_at FROM outbox WHERE event_id = 'e1'").
			Scan(&topic, &key, &typ, &payload, &headers, &created)
		if err != nil {
			t.Fatal(err)
		}
		if topic != "mail.requests" || key != "u1" || typ != "verification_code" || string(payload) != `{"id":"e1"}` ||
			headers != `{"traceparent":"00-abc-def-01"}` || !created.Equal(t0.Truncate(time.Microsecond)) {
			t.Errorf("stored row = %q %q %q %q %q %v", topic, key, typ, payload, headers, created)
		}

		// The same event twice is a conflict, and a failed transaction leaves nothing.
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			if err := Enqueue(ctx, tx, msg("e2", "u2")); err != nil {
				return err
			}
			return Enqueue(ctx, tx, msg("e1", "u1"))
		})
		if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate event id: err = %v, want a conflict", err)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE event_id = 'e2'").Scan(&n); err != nil || n != 0 {
			t.Errorf("rolled-back row e2: count = %d, err = %v", n, err)
		}

		err = db.InTx(ctx, func(tx *sql.Tx) error { return Enqueue(ctx, tx, Message{EventID: "e3"}) })
		if err == nil {
			t.Error("an incomplete message was accepted")
		}
	})
}

// fakePublisher fails its first failCalls calls, and the records of a key in
// failKeys in one call; it keeps what it published.
type fakePublisher struct {
	mu        sync.Mutex
	failCalls int
	failKeys  map[string]bool
	block     bool // wait for the context to end instead of answering
	published []string

	// hold keeps each call open for a while, so that relays racing for the
	// same rows would overlap; inFlight and maxInFlight count the overlap.
	hold                  time.Duration
	inFlight, maxInFlight int
}

func newFake() *fakePublisher { return &fakePublisher{failKeys: map[string]bool{}} }

var errBrokerDown = errors.New("broker down")

func (f *fakePublisher) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	f.mu.Lock()
	block, hold := f.block, f.hold
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	if block {
		<-ctx.Done()
	}
	time.Sleep(hold)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	var published []string
	results := make(kgo.ProduceResults, 0, len(rs))
	failAll := f.failCalls > 0
	if failAll {
		f.failCalls--
	}
	// Answer in reverse order: kgo does not promise input order either.
	for _, r := range slices.Backward(rs) {
		var err error
		switch {
		case block:
			err = ctx.Err()
		case failAll:
			err = errBrokerDown
		case f.failKeys[string(r.Key)]:
			err = errBrokerDown
		}
		if err == nil {
			published = append([]string{eventID(r)}, published...)
		}
		results = append(results, kgo.ProduceResult{Record: r, Err: err})
	}
	// A failing key fails every record of it in this call, then recovers.
	for _, r := range rs {
		delete(f.failKeys, string(r.Key))
	}
	f.published = append(f.published, published...)
	return results
}

func eventID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == "event-id" {
			return string(h.Value)
		}
	}
	return ""
}

// testRelay is a running relay whose batches the test can wait for.
type testRelay struct {
	*Relay
	batches chan batch
}

// next returns the relay's next recorded batch, failing the test if none comes.
func (r testRelay) next(t *testing.T) batch {
	t.Helper()
	select {
	case b := <-r.batches:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("the relay produced no batch")
		return batch{}
	}
}

// startRelay runs a relay until the test ends.
func startRelay(t *testing.T, db *sqldb.DB, pub Publisher, opts Options) testRelay {
	t.Helper()
	return startRelayInto(t, db, pub, opts, make(chan batch, 1000))
}

// startRelayInto runs a relay reporting its batches on batches.
func startRelayInto(t *testing.T, db *sqldb.DB, pub Publisher, opts Options, batches chan batch) testRelay {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 2*time.Millisecond
	}
	if opts.Poll == 0 {
		opts.Poll = time.Hour // only Notify wakes it, so the tests show Notify works
	}
	r := testRelay{NewRelay(db, pub, discard, opts), batches}
	r.onBatch = func(b batch) { r.batches <- b }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func TestRelayRetriesUntilPublishedInOrderOnce(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		fake := newFake()
		fake.failCalls = 3
		enqueue(t, db, msg("e1", "u1"), msg("e2", "u2"), msg("e3", "u1"))
		r := startRelay(t, db, fake, Options{})
		r.Notify()

		for i := range 3 {
			if c := r.next(t); c.failed != 3 || len(c.published) != 0 {
				t.Fatalf("call %d = %+v, want 3 failures", i, c)
			}
		}
		if c := r.next(t); !slices.Equal(c.published, []string{"e1", "e2", "e3"}) {
			t.Fatalf("published %v, want e1 e2 e3 in order", c.published)
		}

		// A later row goes out alone: the earlier ones are not sent twice.
		enqueue(t, db, msg("e4", "u3"))
		r.Notify()
		if c := r.next(t); !slices.Equal(c.published, []string{"e4"}) {
			t.Fatalf("second round published %v, want only e4", c.published)
		}
		for _, id := range []string{"e1", "e2", "e3"} {
			s := state(t, db, id)
			if !s.published || s.hasPayload || s.attempts != 3 || s.lastError == "" {
				t.Errorf("row %s = %+v, want published, payload dropped, 3 failed attempts recorded", id, s)
			}
		}
		if n, oldest, err := r.Pending(context.Background()); err != nil || n != 0 || !oldest.IsZero() {
			t.Errorf("Pending = %d, %v, %v; want 0", n, oldest, err)
		}
	})
}

func TestRelayKeepsFailedRecordsPending(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		fake := newFake()
		fake.failKeys["bad"] = true
		enqueue(t, db, msg("e1", "good"), msg("e2", "bad"), msg("e3", "good"))
		r := startRelay(t, db, fake, Options{})
		r.Notify()

		if c := r.next(t); !slices.Equal(c.published, []string{"e1", "e3"}) || c.failed != 1 {
			t.Fatalf("first call = %+v, want e1 and e3 published, one failure", c)
		}
		if c := r.next(t); !slices.Equal(c.published, []string{"e2"}) {
			t.Fatalf("retry published %v, want only e2", c.published)
		}
		if s := state(t, db, "e2"); !s.published || s.attempts != 1 {
			t.Errorf("e2 = %+v, want published after one failed attempt", s)
		}
		if s := state(t, db, "e1"); !s.published || s.attempts != 0 {
			t.Errorf("e1 = %+v, want published at once", s)
		}
	})
}

func TestRelayAttemptEndsWhenThePublisherHangs(t *testing.T) {
	db := sqliteDB(t)
	fake := newFake()
	fake.block = true
	enqueue(t, db, msg("e1", "u1"))
	r := startRelay(t, db, fake, Options{AttemptTimeout: 20 * time.Millisecond})
	r.Notify()

	if c := r.next(t); c.failed != 1 {
		t.Fatalf("hung attempt = %+v, want one failed record", c)
	}
	fake.mu.Lock()
	fake.block = false
	fake.mu.Unlock()
	// The relay retries on its own after the backoff, without a Notify.
	for {
		c := r.next(t)
		if slices.Equal(c.published, []string{"e1"}) {
			break
		}
	}
	if s := state(t, db, "e1"); !s.published || s.attempts == 0 || s.lastError == "" {
		t.Errorf("e1 = %+v, want published after a recorded timeout", s)
	}
}

func TestPending(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		r := NewRelay(db, newFake(), discard, Options{})
		ctx := context.Background()
		if n, oldest, err := r.Pending(ctx); err != nil || n != 0 || !oldest.IsZero() {
			t.Fatalf("empty outbox: Pending = %d, %v, %v", n, oldest, err)
		}
		later := msg("e2", "u")
		later.CreatedAt = t0.Add(time.Minute)
		enqueue(t, db, msg("e1", "u"), later)
		n, oldest, err := r.Pending(ctx)
		if err != nil || n != 2 || !oldest.Equal(t0.Truncate(time.Microsecond)) {
			t.Errorf("Pending = %d, %v, %v; want 2, %v", n, oldest, err, t0)
		}
	})
}

func TestRelaysOfSeveralReplicasPublishEachRowOnce(t *testing.T) {
	tests := []struct {
		name     string
		keys     int    // events are spread over this many keys
		parallel string // whether produce calls must overlap: "yes", "no" or "any"
	}{
		// One event per user, the usual case: the replicas claim disjoint
		// batches and work at once.
		{"one event per key", 250, "yes"},
		// A few users with many events each: every key stays in order.
		{"few keys", 10, "any"},
		// One user: the key's order forces the replicas to take turns.
		{"one key", 1, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			each(t, func(t *testing.T, db *sqldb.DB) {
				fake := newFake()
				fake.hold = 20 * time.Millisecond
				var msgs []Message
				for i := range 250 {
					msgs = append(msgs, msg(fmt.Sprintf("e%03d", i), fmt.Sprintf("u%d", i%tt.keys)))
				}
				enqueue(t, db, msgs...)
				// Three replicas' relays report into one channel.
				shared := make(chan batch, 1000)
				for range 3 {
					startRelayInto(t, db, fake, Options{Poll: 5 * time.Millisecond, BatchSize: 10}, shared).Notify()
				}
				merged := testRelay{batches: shared}
				total := 0
				for total < len(msgs) {
					total += len(merged.next(t).published)
				}
				fake.mu.Lock()
				defer fake.mu.Unlock()
				if len(fake.published) != len(msgs) {
					t.Errorf("published %d records, want each of %d once", len(fake.published), len(msgs))
				}
				// Each key's events in enqueue order, each once.
				perKey := map[string][]string{}
				for _, id := range fake.published {
					var n int
					fmt.Sscanf(id, "e%d", &n)
					key := fmt.Sprintf("u%d", n%tt.keys)
					perKey[key] = append(perKey[key], id)
				}
				for key, got := range perKey {
					if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
						t.Errorf("key %s published out of order or twice: %v", key, got)
					}
				}
				if parallel := fake.maxInFlight > 1; tt.parallel != "any" && parallel != (tt.parallel == "yes") {
					t.Errorf("at most %d produce calls overlapped; want parallel: %s", fake.maxInFlight, tt.parallel)
				}
			})
		})
	}
}
