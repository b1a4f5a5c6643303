package films

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// Concurrent Film calls each get their own film (or NotFound), whatever
// batches they were read in, duplicates and missing ids included.
func TestFilmLoaderConcurrentReads(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		store := NewStore(db, nil)
		if _, _, err := SeedDemo(ctx, store); err != nil {
			t.Fatal(err)
		}
		want := map[int64]Film{}
		for q := (FilmQuery{Limit: MaxLimit}); ; {
			page, err := store.Films(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range page.Items {
				want[f.ID] = f
			}
			if page.Next == nil {
				break
			}
			q.After = *page.Next
		}
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Go(func() {
				for i := range 60 {
					id := int64(1 + (g*977+i*131)%(demoKept+40)) // some past the last film
					if i%10 == 0 {
						id = 7 // everyone asks for one film now and then
					}
					f, err := store.Film(ctx, id)
					w, ok := want[id]
					switch {
					case !ok && !isNotFound(err):
						t.Errorf("film %d: %+v, %v; want NotFound", id, f, err)
					case ok && (err != nil || !filmsEqual(f, w)):
						t.Errorf("film %d: %+v, %v\nwant %+v", id, f, err, w)
					}
				}
			})
		}
		wg.Wait()
	})
}

func isNotFound(err error) bool {
	e, ok := apperr.As(err)
	return ok && e.Kind == apperr.NotFound
}

// Ids asked for while the queries in flight are all busy go in one query,
// once one of those ends.
func TestFilmLoaderBatchesWaitingIDs(t *testing.T) {
	ctx := context.Background()
	store := NewStore(sqldbtest.SQLite(t, Migrations), nil)
	if _, _, err := SeedDemo(ctx, store); err != nil {
		t.Fatal(err)
	}
	l := store.films
	l.mu.Lock()
	l.running = l.inFlight // as if every query slot were busy
	l.mu.Unlock()

	ids := []int64{3, 1, 4, 1, 5, 9999}
	results := make([]error, len(ids))
	films := make([]Film, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { films[i], results[i] = store.Film(ctx, id) })
	}
	for { // until every caller waits
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == len(ids) {
			break
		}
		runtime.Gosched()
	}
	l.done() // a busy query ends: the waiting ids go together
	wg.Wait()

	if q := l.queries.Load(); q != 1 {
		t.Errorf("%d queries for %d waiting ids, want 1", q, len(ids))
	}
	for i, id := range ids {
		switch {
		case id == 9999:
			if !isNotFound(results[i]) {
				t.Errorf("film 9999: %v, want NotFound", results[i])
			}
		case results[i] != nil || films[i].ID != id:
			t.Errorf("film %d: %+v, %v", id, films[i], results[i])
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running != l.inFlight-1 || len(l.pending) != 0 {
		t.Errorf("after: %d running, %d pending; want %d and 0", l.running, len(l.pending), l.inFlight-1)
	}
}
