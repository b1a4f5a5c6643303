package films

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

//go:embed migrations
var migrationFiles embed.FS

// Migrations holds the schema as goose migrations in postgres/ and sqlite/,
// for sqldb.DB.Migrate (and a "migrate" command).
var Migrations, _ = fs.Sub(migrationFiles, "migrations")

// Store is films' database: one set of SQL for SQLite and PostgreSQL.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
	gen atomic.Uint64 // see Generation

	stmts      sync.Map    // query text → *sql.Stmt; see prepared
	selectFilm string      // the read path's SELECT … FROM of a film, for the engine
	filmByID   string      // selectFilm … WHERE f.id = $1
	films      *filmLoader // Film reads, batched when concurrent (batch.go)
	genres     genreNames  // genre id → name, for reads without a join
	accounts   accountStates
}

// NewStore wraps a migrated database. now stamps created_at/updated_at; nil
// means time.Now.
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	selectFilm := `SELECT ` + filmColumns + filmFrom
	if db.Dialect == sqldb.SQLite {
		selectFilm = `SELECT ` + sqliteReadColumns + filmFrom
	}
	s := &Store{db: db, now: now, selectFilm: selectFilm, filmByID: selectFilm + ` WHERE f.id = $1`}
	s.accounts.now = time.Now
	s.films = newFilmLoader(s, 2*runtime.GOMAXPROCS(0))
	return s
}

// OpenStore connects to url ("sqlite:PATH" or "postgres://…") and applies
// pending migrations.
func OpenStore(ctx context.Context, url string) (*Store, error) {
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, Migrations); err != nil {
		db.Close()
		return nil, err
	}
	s := NewStore(db, nil)
	if err := s.backfill(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the prepared statements and the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool {
		_ = st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// prepared returns query as a statement prepared once for the store, which
// database/sql then prepares once on each connection: the read path's
// queries skip SQLite's parser and planner (most of a point lookup's cost)
// and PostgreSQL's parse. The keys are query texts built from fixed
// fragments — the parameters' values are always arguments — so there are a
// few hundred at most.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if old, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// Ping checks that the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// stamp is the store's clock in UTC at the microsecond, the precision both
// engines keep, so a time written reads back equal.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Generation counts this store's committed writes. Read caches tag what they
// keep with it and drop it when it moved: a write through this process is
// visible at once.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// changed is called after every committed write.
func (s *Store) changed() { s.gen.Add(1) }

// filmColumns reads a film with its genre's id (genreNames has the names)
// and its review aggregate, which is kept on the film row (see PutReview),
// so a page costs one index range scan and no join.
const filmColumns = `f.id, f.title, f.year, f.release_date, f.genre_id, f.director, f.runtime_min,
	f.mpaa_rating, f.imdb_rating, f.review_count, f.rating_sum, f.created_at, f.updated_at`

// sqliteReadColumns are filmColumns with the dates read as the text SQLite
// holds: the driver would parse each with time.Parse, trying up to eight
// layouts (a release date matches the last), which was a tenth of a page's
// cost; storedTime reads the two layouts this store writes by hand.
const sqliteReadColumns = `f.id, f.title, f.year, CAST(f.release_date AS TEXT), f.genre_id, f.director, f.runtime_min,
	f.mpaa_rating, f.imdb_rating, f.review_count, f.rating_sum, CAST(f.created_at AS TEXT), CAST(f.updated_at AS TEXT)`

const filmFrom = ` FROM films f`

// boundedRead is the context for a read that visits at most a page of one
// index. On SQLite such a read takes microseconds in this process, and
// following the request's context costs more than that: database/sql and the
// driver each start a goroutine per query when the context can end (a tenth
// of an uncached film, profiled). So it runs to its end even if the client
// leaves. PostgreSQL's reads keep the request's context: they cross a
// network, which can stall.
func (s *Store) boundedRead(ctx context.Context) context.Context {
	if s.db.Dialect == sqldb.SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func errFilmNotFound(id int64) error {
	return apperr.New(apperr.NotFound, "film_not_found", "there is no film %d", id)
}

// Film returns the film with id, or a NotFound error.
func (s *Store) Film(ctx context.Context, id int64) (Film, error) {
	return s.films.load(ctx, id)
}

// sortColumns maps an order to the column holding its key; the id order has
// none. Each has an index (key, id) that serves both directions.
var sortColumns = map[string]string{
	SortByTitle: "f.sort_title", SortByYear: "f.year", SortByYearDesc: "f.year",
	SortByRatingDesc: "f.rating_key", SortByReviewsDesc: "f.review_count",
}

// Films returns one page of the catalogue: the films matching q's filters in
// q's order, after q's cursor.
func (s *Store) Films(ctx context.Context, q FilmQuery) (Page, error) {
	p := Page{Items: make([]Film, 0, min(q.Limit, MaxLimit))}
	next, err := s.EachFilm(ctx, q, func(f Film) error {
		p.Items = append(p.Items, f)
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	p.Next = next
	return p, nil
}

// EachFilm is Films for a caller that takes the films one at a time, as
// they are read (the list answer encodes each at once instead of keeping the
// page): each gets the page's films in order, and EachFilm returns the next
// page's cursor, nil on the last page. An error from each ends the read and
// is returned. The cursor's key and id are compared as a row, (key, id) >
// (k, i), which both engines answer from the (key, id) index.
func (s *Store) EachFilm(ctx context.Context, q FilmQuery, each func(Film) error) (*Cursor, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(q.Words) > 0 {
		where = append(where, s.searchClause("title_search", q.Words, arg))
	}
	if len(q.DirectorWords) > 0 {
		where = append(where, s.searchClause("director_search", q.DirectorWords, arg))
	}
	if q.Genre != "" {
		where = append(where, `f.genre_id = (SELECT id FROM genres WHERE name_key = `+arg(sortKey(q.Genre))+`)`)
	}
	if q.YearFrom != 0 {
		where = append(where, `f.year >= `+arg(q.YearFrom))
	}
	if q.YearTo != 0 {
		where = append(where, `f.year <= `+arg(q.YearTo))
	}
	unfiltered := len(where) == 0
	sort := q.Sort
	if sort == "" {
		sort = SortByID
	}
	column := sortColumns[sort]
	op, dir := ">", "ASC"
	if strings.HasPrefix(sort, "-") {
		op, dir = "<", "DESC"
	}
	if q.After.ID != 0 {
		switch {
		case column == "":
			where = append(where, `f.id `+op+` `+arg(q.After.ID))
		case sortKinds[sort] == keyInt:
			k, _ := strconv.ParseInt(q.After.Key, 10, 64) // ParseCursor checked it
			where = append(where, `(`+column+`, f.id) `+op+` (`+arg(k)+`, `+arg(q.After.ID)+`)`)
		default:
			where = append(where, `(`+column+`, f.id) `+op+` (`+arg(q.After.Key)+`, `+arg(q.After.ID)+`)`)
		}
	}
	order := `f.id ` + dir
	if column != "" {
		order = column + ` ` + dir + `, f.id ` + dir
	}
	var query string
	switch {
	case unfiltered && s.db.Dialect == sqldb.Postgres:
		query = postgresPage(where, order, column, dir) + arg(q.Limit+1)
	default:
		query = s.selectFilm
		if len(where) > 0 {
			query += ` WHERE ` + strings.Join(where, ` AND `)
		}
		query += ` ORDER BY ` + order + ` LIMIT ` + arg(q.Limit+1)
	}
	if unfiltered {
		// A range of one index, at most a page long.
		ctx = s.boundedRead(ctx)
	}
	last, more, err := s.eachRow(ctx, q.Limit, query, args, each)
	if err != nil || !more {
		return nil, err
	}
	return &Cursor{Sort: sort, Key: sortKeyOf(sort, last), ID: last.ID, Scope: q.Scope()}, nil
}

// postgresPage is an unfiltered page's query on PostgreSQL, up to its LIMIT
// parameter, which the caller appends. "ORDER BY … LIMIT $n" alone made
// PostgreSQL plan every execution anew: not knowing $n, the generic plan
// expects to read a tenth of the table, so it never looks cheaper than a
// custom plan, and planning the join cost the backend more than running it
// (three quarters of its CPU per page, measured). Capped inside at a
// constant MaxLimit+1, the page's cost is known without $n: the prepared
// statement settles on the generic plan after five executions. The outer
// ORDER BY follows the inner one's index order: no sort is added.
func postgresPage(where []string, order, column, dir string) string {
	inner, outer := `SELECT `+filmColumns, `f.id `+dir
	if column != "" {
		inner += `, ` + column + ` AS sort_key`
		outer = `f.sort_key ` + dir + `, f.id ` + dir
	}
	inner += filmFrom
	if len(where) > 0 {
		inner += ` WHERE ` + strings.Join(where, ` AND `)
	}
	inner += ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(MaxLimit+1)
	return `SELECT ` + pageColumns + ` FROM (` + inner + `) f ORDER BY ` + outer + ` LIMIT `
}

// pageColumns are filmColumns as postgresPage's subquery names them.
const pageColumns = `f.id, f.title, f.year, f.release_date, f.genre_id, f.director, f.runtime_min,
	f.mpaa_rating, f.imdb_rating, f.review_count, f.rating_sum, f.created_at, f.updated_at`

// searchClause matches films whose column (title_search or director_search)
// has, for every word, a word beginning with it. The words are letters and
// digits only (searchWords), so they need no escaping in either syntax.
func (s *Store) searchClause(column string, words []string, arg func(any) string) string {
	terms := make([]string, len(words))
	if s.db.Dialect == sqldb.Postgres {
		for i, w := range words {
			terms[i] = "'" + w + "':*"
		}
		return `to_tsvector('simple', f.` + column + `) @@ to_tsquery('simple', ` + arg(strings.Join(terms, " & ")) + `)`
	}
	for i, w := range words {
		terms[i] = column + ` : "` + w + `"*`
	}
	return `f.id IN (SELECT rowid FROM films_fts WHERE films_fts MATCH ` + arg(strings.Join(terms, " AND ")) + `)`
}

// Favorites returns a page of userID's favourite films in film id order.
func (s *Store) Favorites(ctx context.Context, userID string, req PageRequest) (Page, error) {
	p := Page{Items: make([]Film, 0, min(req.Limit, MaxLimit))}
	last, more, err := s.eachRow(ctx, req.Limit, s.selectFilm+`
		JOIN favorites fav ON fav.film_id = f.id
		WHERE fav.user_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3`, []any{userID, req.After.ID, req.Limit + 1},
		func(f Film) error {
			p.Items = append(p.Items, f)
			return nil
		})
	if err != nil {
		return Page{}, err
	}
	if more {
		p.Next = &Cursor{Sort: SortByID, ID: last.ID, Scope: favoritesScope(userID)}
	}
	return p, nil
}

// favoritesScope binds a favourites cursor to its user.
func favoritesScope(userID string) string { return scopeOf("favorites", userID) }

// eachRow runs a keyset query that asked for one row more than limit,
// passing the first limit films to each; the extra row only tells whether a
// next page exists (more), and is not read. last is the last film passed.
// The query is tried again on a lost connection (sqldb.DB.RetryRead) only
// while no film was read: once rows flow, each has written them out.
func (s *Store) eachRow(ctx context.Context, limit int, query string, args []any, each func(Film) error) (last Film, more bool, err error) {
	if limit < 1 {
		return Film{}, false, errors.New("films: list: a page needs a limit of at least 1")
	}
	out := filmStream{store: s, each: each}
	row := newFilmRow()
	var (
		n      int   // rows read
		failed error // the error of a read that had read rows: not repeated
	)
	err = s.db.RetryRead(ctx, func() error {
		if failed != nil {
			return failed
		}
		err := s.readRows(ctx, query, args, func(r scanner) error {
			if n == limit {
				more = true
				return errPageFull
			}
			n++
			f, genreID, err := row.scan(r)
			if err != nil {
				return err
			}
			return out.add(f, genreID)
		})
		if n > 0 && err != nil && !errors.Is(err, errPageFull) {
			failed = err
		}
		return err
	})
	switch {
	case out.err != nil:
		return Film{}, false, out.err
	case err != nil && !errors.Is(err, errPageFull):
		return Film{}, false, fmt.Errorf("films: list: %w", err)
	}
	if err := out.finish(ctx); err != nil {
		return Film{}, false, err
	}
	return out.last, more, nil
}

// errPageFull ends a read at its extra row.
var errPageFull = errors.New("films: the page is full")

// readRows runs query, passing each row to take, and stops at take's first
// error. It has given its connection back when it returns. PostgreSQL's
// rows come through sqldb.DB.QueryRaw (decoded by pgScanner), SQLite's
// through the store's prepared statements.
func (s *Store) readRows(ctx context.Context, query string, args []any, take func(scanner) error) error {
	if s.db.Dialect == sqldb.Postgres {
		return s.db.QueryRaw(ctx, query, args, func(r sqldb.PGRow) error { return take(pgScanner{r}) })
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := take(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// filmStream passes a read's films on as they come, with their genres'
// names, until one has a genre this process does not know yet: from there
// the films wait for finish, which runs after the read has given its
// connection back, reads the genres again and passes them on — so a read
// never holds two connections. err is each's error, if it gave one.
type filmStream struct {
	store   *Store
	each    func(Film) error
	waiting []heldFilm
	last    Film
	err     error
}

type heldFilm struct {
	film    Film
	genreID int64
}

func (fs *filmStream) add(f Film, genreID int64) error {
	name, known := fs.store.genres.name(genreID)
	if !known || fs.waiting != nil {
		fs.waiting = append(fs.waiting, heldFilm{f, genreID})
		return nil
	}
	f.Genre = name
	return fs.pass(f)
}

func (fs *filmStream) pass(f Film) error {
	if fs.err = fs.each(f); fs.err != nil {
		return fs.err
	}
	fs.last = f
	return nil
}

func (fs *filmStream) finish(ctx context.Context) error {
	for _, w := range fs.waiting {
		var err error
		if w.film.Genre, err = fs.store.genres.lookup(ctx, fs.store.db, w.genreID); err != nil {
			return err
		}
		if err := fs.pass(w.film); err != nil {
			return err
		}
	}
	return nil
}

// Genres returns every genre with its number of films, by name.
func (s *Store) Genres(ctx context.Context) ([]Genre, error) {
	var genres []Genre
	err := s.db.RetryRead(ctx, func() (err error) {
		genres, err = s.readGenres(ctx)
		return err
	})
	return genres, err
}

func (s *Store) readGenres(ctx context.Context) ([]Genre, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT g.name, COUNT(f.id) FROM genres g
		LEFT JOIN films f ON f.genre_id = g.id GROUP BY g.id, g.name`)
	if err != nil {
		return nil, fmt.Errorf("films: genres: %w", err)
	}
	defer rows.Close()
	genres := []Genre{}
	for rows.Next() {
		var g Genre
		if err := rows.Scan(&g.Name, &g.Films); err != nil {
			return nil, fmt.Errorf("films: genres: %w", err)
		}
		genres = append(genres, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("films: genres: %w", err)
	}
	// Sorted here, not in SQL: the engines' collations differ.
	slices.SortFunc(genres, func(a, b Genre) int { return cmp.Compare(sortKey(a.Name), sortKey(b.Name)) })
	return genres, nil
}

// HasFilms reports whether the catalogue holds at least one film.
func (s *Store) HasFilms(ctx context.Context) (bool, error) {
	var one int
	err := s.db.RetryRead(ctx, func() error {
		return s.db.QueryRowContext(ctx, `SELECT 1 FROM films LIMIT 1`).Scan(&one)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("films: count films: %w", err)
	}
	return true, nil
}
