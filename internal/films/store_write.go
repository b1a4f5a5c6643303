package films

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

// The catalogue's writes: the importer's bulk insert, the admin routes, and
// the start-up backfill of derived columns. Every write that commits calls
// changed, so this process's read cache never serves what it replaced.

// forUpdate locks the rows a SELECT reads until the transaction ends, on
// PostgreSQL; SQLite needs no lock clause: its transactions begin
// IMMEDIATE, so there is one writer at a time. table names the table to lock
// when the SELECT joins others ("" for a single-table SELECT).
func (s *Store) forUpdate(table string) string {
	switch {
	case s.db.Dialect != sqldb.Postgres:
		return ""
	case table == "":
		return " FOR UPDATE"
	}
	return " FOR UPDATE OF " + table
}

// filmArgs are a film's stored columns, derived keys included, in the order
// of filmInsertColumns minus the timestamps.
func filmArgs(f Film, genreID sql.NullInt64) []any {
	return []any{f.Title, f.Year, nullDate(f.ReleaseDate), genreID, nullString(f.Director),
		nullInt(int64(f.RuntimeMin)), nullString(f.MPAARating), nullFloat(f.IMDBRating),
		sortKey(f.Title), searchText(f.Title), nullString(searchText(f.Director))}
}

const filmInsertColumns = `title, year, release_date, genre_id, director, runtime_min, mpaa_rating,
	imdb_rating, sort_title, title_search, director_search, created_at, updated_at`

// filmInsertWidth is the number of filmInsertColumns.
const filmInsertWidth = 13

// filmsPerStatement is the rows of one multi-row INSERT. SQLite resolves $n
// parameters by a linear search, so very wide statements get slow; 50 rows
// (650 parameters), prepared once per transaction, is a good middle.
const filmsPerStatement = 50

// insertFilms adds films in one transaction, skipping those whose (title,
// year) is already in the catalogue; it returns how many it added. Genres
// the films name are created.
func (s *Store) insertFilms(ctx context.Context, films []Film) (added int, err error) {
	now := s.stamp()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		added = 0 // InTx may run this twice
		genres, err := ensureGenres(ctx, tx, films)
		if err != nil {
			return err
		}
		var full *sql.Stmt // the statement for a whole chunk, prepared once
		for start := 0; start < len(films); start += filmsPerStatement {
			chunk := films[start:min(start+filmsPerStatement, len(films))]
			args := make([]any, 0, len(chunk)*filmInsertWidth)
			for _, f := range chunk {
				gid := sql.NullInt64{}
				if f.Genre != "" {
					gid = sql.NullInt64{Int64: genres[sortKey(f.Genre)], Valid: true}
				}
				args = append(append(args, filmArgs(f, gid)...), now, now)
			}
			var res sql.Result
			if len(chunk) == filmsPerStatement {
				if full == nil {
					if full, err = tx.PrepareContext(ctx, insertFilmsSQL(filmsPerStatement)); err != nil {
						return fmt.Errorf("films: insert films: %w", err)
					}
					defer full.Close()
				}
				res, err = full.ExecContext(ctx, args...)
			} else {
				res, err = tx.ExecContext(ctx, insertFilmsSQL(len(chunk)), args...)
			}
			if err != nil {
				return fmt.Errorf("films: insert films: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("films: insert films: %w", err)
			}
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.changed()
	return added, nil
}

// insertFilmsSQL is an INSERT of rows films that skips existing (title, year).
func insertFilmsSQL(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO films (` + filmInsertColumns + `) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for j := 1; j <= filmInsertWidth; j++ {
			if j > 1 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(i*filmInsertWidth+j))
		}
		q.WriteString(")")
	}
	q.WriteString(" ON CONFLICT (title, year) DO NOTHING")
	return q.String()
}

// ensureGenres creates the genres films name and returns every genre's id by
// its key (sortKey of the name): "drama" in a file joins "Drama".
func ensureGenres(ctx context.Context, tx *sql.Tx, films []Film) (map[string]int64, error) {
	seen := map[string]bool{}
	for _, f := range films {
		key := sortKey(f.Genre)
		if f.Genre == "" || seen[key] {
			continue
		}
		seen[key] = true
		// No conflict target: a clash on the name or on its key both mean
		// "already there".
		if _, err := tx.ExecContext(ctx, `INSERT INTO genres (name, name_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, f.Genre, key); err != nil {
			return nil, fmt.Errorf("films: add genre: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, name_key FROM genres WHERE name_key IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("films: genres: %w", err)
	}
	defer rows.Close()
	ids := map[string]int64{}
	for rows.Next() {
		var (
			id  int64
			key string
		)
		if err := rows.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("films: genres: %w", err)
		}
		ids[key] = id
	}
	return ids, rows.Err()
}

// genreID finds a genre by name, case- and accent-insensitively. An unknown
// genre is an Invalid error: genres are created on purpose (CreateGenre),
// never by a typo in a film.
func genreID(ctx context.Context, tx *sql.Tx, name string) (sql.NullInt64, error) {
	if name == "" {
		return sql.NullInt64{}, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM genres WHERE name_key = $1`, sortKey(name)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, apperr.Validation(apperr.FieldError{Field: "genre",
			Message: fmt.Sprintf("%q is not a known genre (GET /v1/genres lists them; an admin adds one with POST /v1/genres)", name)})
	}
	if err != nil {
		return sql.NullInt64{}, fmt.Errorf("films: find genre: %w", err)
	}
	return sql.NullInt64{Int64: id, Valid: true}, nil
}

// wrapStoreErr names the operation of a driver error; errors that already
// have a kind (not found, invalid, conflict) pass unchanged.
func wrapStoreErr(op string, err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	return fmt.Errorf("films: %s: %w", op, err)
}

func errFilmExists(f Film) error {
	return apperr.New(apperr.Conflict, "film_exists", "the catalogue already has %q (%d)", f.Title, f.Year)
}

// CreateFilm adds a film that passed applyFilmFields. Its genre must exist;
// (title, year) must be new (a Conflict error otherwise).
func (s *Store) CreateFilm(ctx context.Context, f Film) (Film, error) {
	now := s.stamp()
	var id int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		gid, err := genreID(ctx, tx, f.Genre)
		if err != nil {
			return err
		}
		args := append(filmArgs(f, gid), now, now)
		err = tx.QueryRowContext(ctx, `INSERT INTO films (`+filmInsertColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`, args...).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errFilmExists(f)
		}
		return err
	})
	if err != nil {
		return Film{}, wrapStoreErr("create film", err)
	}
	s.changed()
	return s.Film(ctx, id)
}

// UpdateFilm changes film id: inside one transaction, with the row locked,
// it reads the film, lets change compute the new version (applyFilmFields
// with the request's patch), and writes it. A NotFound, Invalid or Conflict
// error says why nothing changed.
func (s *Store) UpdateFilm(ctx context.Context, id int64, change func(Film) (Film, error)) (Film, error) {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.scanFilm(ctx, tx, tx.QueryRowContext(ctx, `SELECT `+filmColumns+filmFrom+` WHERE f.id = $1`+s.forUpdate("f"), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errFilmNotFound(id)
		}
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		gid, err := genreID(ctx, tx, next.Genre)
		if err != nil {
			return err
		}
		args := append(filmArgs(next, gid), s.stamp(), id)
		_, err = tx.ExecContext(ctx, `UPDATE films SET title = $1, year = $2, release_date = $3, genre_id = $4,
			director = $5, runtime_min = $6, mpaa_rating = $7, imdb_rating = $8, sort_title = $9,
			title_search = $10, director_search = $11, updated_at = $12 WHERE id = $13`, args...)
		if sqldb.IsUniqueViolation(err) {
			return errFilmExists(next)
		}
		return err
	})
	if err != nil {
		return Film{}, wrapStoreErr("update film", err)
	}
	s.changed()
	return s.Film(ctx, id)
}

// DeleteFilm removes film id with its reviews and everyone's favourite marks
// of it (ON DELETE CASCADE). A film that is not there is a NotFound error.
func (s *Store) DeleteFilm(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM films WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("films: delete film %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errFilmNotFound(id)
	}
	s.changed()
	return nil
}

// CreateGenre adds a genre named name (checked by ParseGenreName). A genre
// whose name differs only in case or accents already exists: Conflict.
func (s *Store) CreateGenre(ctx context.Context, name string) (Genre, error) {
	_, err := s.db.ExecContext(ctx, `INSERT INTO genres (name, name_key) VALUES ($1, $2)`, name, sortKey(name))
	if sqldb.IsUniqueViolation(err) {
		return Genre{}, apperr.New(apperr.Conflict, "genre_exists", "the genre %q already exists", name)
	}
	if err != nil {
		return Genre{}, fmt.Errorf("films: create genre: %w", err)
	}
	s.changed()
	return Genre{Name: name}, nil
}

// backfill computes the derived columns (sort and search keys) of rows
// written before they existed: the migration that added them cannot run Go.
// It is a no-op once every row has them.
func (s *Store) backfill(ctx context.Context) error {
	type row struct {
		id              int64
		title, director string
	}
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT id, title, director FROM films WHERE sort_title IS NULL ORDER BY id LIMIT 500`)
		if err != nil {
			return fmt.Errorf("films: backfill: %w", err)
		}
		var batch []row
		for rows.Next() {
			var (
				r        row
				director sql.NullString
			)
			if err := rows.Scan(&r.id, &r.title, &director); err != nil {
				rows.Close()
				return fmt.Errorf("films: backfill: %w", err)
			}
			r.director = director.String
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("films: backfill: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			for _, r := range batch {
				if _, err := tx.ExecContext(ctx, `UPDATE films SET sort_title = $1, title_search = $2, director_search = $3 WHERE id = $4`,
					sortKey(r.title), searchText(r.title), nullString(searchText(r.director)), r.id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("films: backfill: %w", err)
		}
	}
	return s.backfillGenres(ctx)
}

// backfillGenres sets each genre's name_key to sortKey(name) where it is
// missing or differs. Genres are few: it reads them all.
func (s *Store) backfillGenres(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, name_key FROM genres`)
	if err != nil {
		return fmt.Errorf("films: backfill genres: %w", err)
	}
	fix := map[int64]string{}
	for rows.Next() {
		var (
			id   int64
			name string
			key  sql.NullString
		)
		if err := rows.Scan(&id, &name, &key); err != nil {
			rows.Close()
			return fmt.Errorf("films: backfill genres: %w", err)
		}
		if !key.Valid || key.String != sortKey(name) {
			fix[id] = sortKey(name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("films: backfill genres: %w", err)
	}
	for id, key := range fix {
		if _, err := s.db.ExecContext(ctx, `UPDATE genres SET name_key = $1 WHERE id = $2`, key, id); err != nil {
			return fmt.Errorf("films: backfill genre %d: %w", id, err)
		}
	}
	return nil
}

// The null* helpers turn the domain's "zero means unknown" into SQL NULL.

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
func nullInt(n int64) sql.NullInt64      { return sql.NullInt64{Int64: n, Valid: n != 0} }
func nullFloat(f float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: f, Valid: f != 0}
}

// nullDate binds a date as YYYY-MM-DD text: PostgreSQL reads it as a date,
// SQLite stores it as sortable text that its driver reads back as a time.
func nullDate(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: t.Format(time.DateOnly), Valid: true}
}
