package films

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kinoteka/internal/sqldb"
)

// filmLoader reads films by id for concurrent callers in shared queries:
// while a query is running, the ids asked for meanwhile wait, and go
// together in the next one (… WHERE f.id IN ($1, …, $n)). A lone request is
// read at once, alone; under load, a query's fixed cost — on PostgreSQL a
// round trip and the backend's work per statement, on SQLite the statement's
// steps and the driver's per-query setup — is shared by the batch
// (docs/benchmarks.md, "uncached read path").
//
// Every caller's id is read by a query that starts after the call: a
// batch only ever takes ids that are waiting, never joins one in flight. So
// a film reads as fresh as it would alone, which a cache could not say.
type filmLoader struct {
	s        *Store
	inFlight int // at most this many queries at once
	maxBatch int // ids per query

	mu      sync.Mutex
	running int
	pending []*filmWait

	queries atomic.Int64 // run so far, for tests
}

// filmWait is one caller's id and, once ready is closed, its answer — or
// the news that it is to run the next batch (lead).
type filmWait struct {
	id    int64
	film  Film
	err   error
	lead  []*filmWait // set when ready is closed to make this caller run lead
	ready chan struct{}
}

func newFilmLoader(s *Store, inFlight int) *filmLoader {
	return &filmLoader{s: s, inFlight: inFlight, maxBatch: 64}
}

// load returns film id, or a NotFound error.
func (l *filmLoader) load(ctx context.Context, id int64) (Film, error) {
	w := &filmWait{id: id, ready: make(chan struct{})}
	l.mu.Lock()
	l.pending = append(l.pending, w)
	if l.running < l.inFlight {
		l.running++
		batch := l.take()
		l.mu.Unlock()
		l.lead(ctx, batch)
	} else {
		l.mu.Unlock()
	}
	<-w.ready
	for w.lead != nil {
		// Elected by the query before: run the batch waiting behind it.
		batch := w.lead
		w.lead, w.ready = nil, make(chan struct{})
		l.lead(ctx, batch)
		<-w.ready
	}
	return w.film, w.err
}

// take removes the next batch from pending; l.mu is held.
func (l *filmLoader) take() []*filmWait {
	n := min(len(l.pending), l.maxBatch)
	batch := l.pending[:n:n]
	l.pending = l.pending[n:]
	if len(l.pending) == 0 {
		l.pending = nil
	}
	return batch
}

// lead runs batch and answers its callers.
func (l *filmLoader) lead(ctx context.Context, batch []*filmWait) {
	l.run(ctx, batch)
	l.done()
	for _, w := range batch {
		close(w.ready)
	}
}

// done ends a query: the ids that waited meanwhile go to one of their
// callers to read, so that the queries in flight stay at most inFlight.
func (l *filmLoader) done() {
	l.mu.Lock()
	var next []*filmWait
	if len(l.pending) > 0 {
		next = l.take()
	} else {
		l.running--
	}
	l.mu.Unlock()
	if next != nil {
		next[0].lead = next
		close(next[0].ready)
	}
}

// run reads batch's films in one query and gives each caller its film or
// error. The query is shared, so no caller's cancellation ends it; on
// PostgreSQL a timeout bounds it instead (on SQLite it takes microseconds in
// this process: see boundedRead).
func (l *filmLoader) run(ctx context.Context, batch []*filmWait) {
	ctx = context.WithoutCancel(ctx)
	if l.s.db.Dialect != sqldb.SQLite {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	err := l.query(ctx, batch)
	for _, w := range batch {
		switch {
		case err != nil:
			w.err = fmt.Errorf("films: get film %d: %w", w.id, err)
		case w.film.ID == 0:
			w.err = errFilmNotFound(w.id)
		}
	}
}

// query reads batch's films, once more on another connection when its own
// was lost (sqldb.DB.RetryRead): it only fills in the waits' films.
func (l *filmLoader) query(ctx context.Context, batch []*filmWait) error {
	l.queries.Add(1)
	return l.s.db.RetryRead(ctx, func() error { return l.queryOnce(ctx, batch) })
}

func (l *filmLoader) queryOnce(ctx context.Context, batch []*filmWait) error {
	// The statements come in powers of two of ids, the last id repeated to
	// fill one: seven statements serve every batch size.
	n := 1
	for n < len(batch) {
		n *= 2
	}
	args := make([]any, n)
	for i := range args {
		args[i] = batch[min(i, len(batch)-1)].id
	}
	row := newFilmRow()
	genres := make(map[int64]int64, len(batch)) // film id → genre id
	take := func(r scanner) error {
		f, genreID, err := row.scan(r)
		if err != nil {
			return err
		}
		genres[f.ID] = genreID
		for _, w := range batch { // the same id may be asked for twice
			if w.id == f.ID {
				w.film = f
			}
		}
		return nil
	}
	if err := l.s.readRows(ctx, l.s.filmsByID(n), args, take); err != nil {
		return err
	}
	for _, w := range batch {
		if genreID, found := genres[w.id]; found {
			var err error
			if w.film.Genre, err = l.s.genres.lookup(ctx, l.s.db, genreID); err != nil {
				return err
			}
		}
	}
	return nil
}

// filmsByID is the query for n ids.
func (s *Store) filmsByID(n int) string {
	if n == 1 {
		return s.filmByID
	}
	var q strings.Builder
	q.WriteString(s.selectFilm + ` WHERE f.id IN (`)
	for i := 1; i <= n; i++ {
		if i > 1 {
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(i))
	}
	q.WriteString(")")
	return q.String()
}
