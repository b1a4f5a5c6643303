package films

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// genreNames maps genre ids to names, so that reading a film needs no join
// to genres. A genre is only ever added — never renamed, never removed — so
// a name once read stays true for good; only an id this process has not
// seen yet (a genre added since, here or by another replica or `kinoteka
// import`) sends it back to the database. On PostgreSQL the join was most
// of the backend's cost of a page of 20 (docs/benchmarks.md, "The uncached
// read path").
type genreNames struct {
	byID atomic.Pointer[map[int64]string] // never changed once published
	mu   sync.Mutex                       // one reload at a time
}

// queryer is what reads genres: the store's database or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// name returns genre id's name; id 0 is a film without a genre, "".
func (g *genreNames) name(id int64) (string, bool) {
	if id == 0 {
		return "", true
	}
	m := g.byID.Load()
	if m == nil {
		return "", false
	}
	name, ok := (*m)[id]
	return name, ok
}

// lookup is name, reading the genres again through q when id is not known
// yet. Readers that miss together share one reload.
func (g *genreNames) lookup(ctx context.Context, q queryer, id int64) (string, error) {
	if name, ok := g.name(id); ok {
		return name, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if name, ok := g.name(id); ok {
		return name, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, name FROM genres`)
	if err != nil {
		return "", fmt.Errorf("films: genres: %w", err)
	}
	defer rows.Close()
	next := make(map[int64]string)
	if old := g.byID.Load(); old != nil {
		maps.Copy(next, *old)
	}
	for rows.Next() {
		var (
			gid  int64
			name string
		)
		if err := rows.Scan(&gid, &name); err != nil {
			return "", fmt.Errorf("films: genres: %w", err)
		}
		next[gid] = name
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("films: genres: %w", err)
	}
	g.byID.Store(&next)
	name, ok := next[id]
	if !ok {
		// films.genre_id references genres.id: a film's genre exists.
		return "", fmt.Errorf("films: a film names genre %d, which the genres table does not hold", id)
	}
	return name, nil
}
