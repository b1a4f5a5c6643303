package outbox

import (
	"errors"
	"sync"
	"testing"

	"kinoteka/internal/sqldb"
)

func TestRelayReportsPublishErrors(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		fake := newFake()
		fake.failCalls = 2
		fake.failKeys["bad"] = true
		var (
			mu      sync.Mutex
			records []int
			errs    []error
		)
		enqueue(t, db, msg("e1", "good"), msg("e2", "bad"), msg("e3", "good"))
		r := startRelay(t, db, fake, Options{OnPublishError: func(n int, err error) {
			mu.Lock()
			defer mu.Unlock()
			records = append(records, n)
			errs = append(errs, err)
		}})
		r.Notify()
		// Two calls fail all three rows; the third publishes them all (the
		// failing key fails only once, and the broker-down calls came first).
		r.next(t)
		r.next(t)
		if c := r.next(t); len(c.published) != 3 {
			t.Fatalf("third call = %+v, want all three published", c)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(records) != 2 || records[0] != 3 || records[1] != 3 {
			t.Errorf("OnPublishError heard %v, want [3 3]", records)
		}
		for _, err := range errs {
			if !errors.Is(err, errBrokerDown) {
				t.Errorf("OnPublishError got %v, want the publisher's error", err)
			}
		}
	})
}
