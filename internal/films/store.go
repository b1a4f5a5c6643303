package films

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
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
}

// NewStore wraps a migrated database. now stamps created_at/updated_at; nil
// means time.Now.
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
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
	return NewStore(db, nil), nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// stamp is the store's clock in UTC at the microsecond, the precision both
// engines keep, so a time written reads back equal.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// filmColumns reads a film with its genre and review aggregate; the
// subqueries run only for the rows a page returns, through reviews' primary
// key (film_id, user_id).
const filmColumns = `f.id, f.title, f.year, f.release_date, g.name, f.director, f.runtime_min,
	f.mpaa_rating, f.imdb_rating,
	(SELECT CAST(AVG(r.rating) AS DOUBLE PRECISION) FROM reviews r WHERE r.film_id = f.id),
	(SELECT COUNT(*) FROM reviews r WHERE r.film_id = f.id),
	f.created_at, f.updated_at`

const filmFrom = ` FROM films f LEFT JOIN genres g ON g.id = f.genre_id`

type scanner interface{ Scan(dest ...any) error }

func scanFilm(row scanner) (Film, error) {
	var (
		f                     Film
		release               sql.NullTime
		genre, director, mpaa sql.NullString
		runtime, reviews      sql.NullInt64
		imdb, average         sql.NullFloat64
		createdAt, updatedAt  time.Time
	)
	err := row.Scan(&f.ID, &f.Title, &f.Year, &release, &genre, &director, &runtime,
		&mpaa, &imdb, &average, &reviews, &createdAt, &updatedAt)
	if err != nil {
		return Film{}, err
	}
	if release.Valid {
		f.ReleaseDate = release.Time.UTC()
	}
	f.Genre, f.Director, f.MPAARating = genre.String, director.String, mpaa.String
	f.RuntimeMin = int(runtime.Int64)
	f.IMDBRating = imdb.Float64
	f.AverageRating, f.ReviewCount = average.Float64, int(reviews.Int64)
	f.CreatedAt, f.UpdatedAt = createdAt.UTC(), updatedAt.UTC()
	return f, nil
}

// Film returns the film with id, or a NotFound error.
func (s *Store) Film(ctx context.Context, id int64) (Film, error) {
	f, err := scanFilm(s.db.QueryRowContext(ctx, `SELECT `+filmColumns+filmFrom+` WHERE f.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Film{}, apperr.New(apperr.NotFound, "film_not_found", "there is no film %d", id)
	}
	if err != nil {
		return Film{}, fmt.Errorf("films: get film %d: %w", id, err)
	}
	return f, nil
}

// Films returns a page of the catalogue in id order.
func (s *Store) Films(ctx context.Context, req PageRequest) (Page, error) {
	return s.page(ctx, req, `SELECT `+filmColumns+filmFrom+`
		WHERE f.id > $1 ORDER BY f.id LIMIT $2`, req.After.ID, req.Limit+1)
}

// Favorites returns a page of userID's favourite films in film id order.
func (s *Store) Favorites(ctx context.Context, userID string, req PageRequest) (Page, error) {
	return s.page(ctx, req, `SELECT `+filmColumns+filmFrom+`
		JOIN favorites fav ON fav.film_id = f.id
		WHERE fav.user_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3`, userID, req.After.ID, req.Limit+1)
}

// page runs a keyset query that asked for one row more than req.Limit: that
// extra row only tells whether a next page exists.
func (s *Store) page(ctx context.Context, req PageRequest, query string, args ...any) (Page, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return Page{}, fmt.Errorf("films: list: %w", err)
	}
	defer rows.Close()
	p := Page{Items: make([]Film, 0, req.Limit)}
	for rows.Next() {
		f, err := scanFilm(rows)
		if err != nil {
			return Page{}, fmt.Errorf("films: list: %w", err)
		}
		p.Items = append(p.Items, f)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("films: list: %w", err)
	}
	if len(p.Items) > req.Limit {
		p.Items = p.Items[:req.Limit]
		p.Next = &Cursor{Sort: SortByID, ID: p.Items[req.Limit-1].ID}
	}
	return p, nil
}

// AddFavorite marks filmID as a favourite of userID. Adding it again changes
// nothing; an unknown film is a NotFound error.
func (s *Store) AddFavorite(ctx context.Context, userID string, filmID int64) error {
	// One statement: no window between "the film exists" and the insert.
	// (SQLite needs the WHERE for ON CONFLICT to parse after a SELECT.)
	res, err := s.db.ExecContext(ctx, `INSERT INTO favorites (user_id, film_id, created_at)
		SELECT $1, f.id, $3 FROM films f WHERE f.id = $2
		ON CONFLICT (user_id, film_id) DO NOTHING`, userID, filmID, s.stamp())
	if err != nil {
		return fmt.Errorf("films: add favourite: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	// Nothing inserted: either it was already there or there is no such film.
	if _, err := s.Film(ctx, filmID); err != nil {
		return err
	}
	return nil
}

// HasFilms reports whether the catalogue holds at least one film.
func (s *Store) HasFilms(ctx context.Context) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM films LIMIT 1`).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("films: count films: %w", err)
	}
	return true, nil
}

// filmsPerStatement is the rows of one multi-row INSERT. SQLite resolves $n
// parameters by a linear search, so very wide statements get slow; 50 rows
// (500 parameters), prepared once per transaction, is a good middle.
const filmsPerStatement = 50

// insertFilms adds films in one transaction, skipping those whose (title,
// year) is already in the catalogue; it returns how many it added.
func (s *Store) insertFilms(ctx context.Context, films []Film) (added int, err error) {
	now := s.stamp()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		genres, err := ensureGenres(ctx, tx, films)
		if err != nil {
			return err
		}
		var full *sql.Stmt // the statement for a whole chunk, prepared once
		for start := 0; start < len(films); start += filmsPerStatement {
			chunk := films[start:min(start+filmsPerStatement, len(films))]
			args := make([]any, 0, len(chunk)*10)
			for _, f := range chunk {
				args = append(args, f.Title, f.Year, nullDate(f.ReleaseDate), nullInt(genres[f.Genre]),
					nullString(f.Director), nullInt(int64(f.RuntimeMin)), nullString(f.MPAARating),
					nullFloat(f.IMDBRating), now, now)
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
	return added, nil
}

// insertFilmsSQL is an INSERT of rows films that skips existing (title, year).
func insertFilmsSQL(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO films (title, year, release_date, genre_id, director, runtime_min,
		mpaa_rating, imdb_rating, created_at, updated_at) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for j := 1; j <= 10; j++ {
			if j > 1 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(i*10+j))
		}
		q.WriteString(")")
	}
	q.WriteString(" ON CONFLICT (title, year) DO NOTHING")
	return q.String()
}

// ensureGenres creates the genres films name and returns every genre's id by
// name.
func ensureGenres(ctx context.Context, tx *sql.Tx, films []Film) (map[string]int64, error) {
	seen := map[string]bool{}
	for _, f := range films {
		if f.Genre == "" || seen[f.Genre] {
			continue
		}
		seen[f.Genre] = true
		if _, err := tx.ExecContext(ctx, `INSERT INTO genres (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, f.Genre); err != nil {
			return nil, fmt.Errorf("films: add genre: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM genres`)
	if err != nil {
		return nil, fmt.Errorf("films: genres: %w", err)
	}
	defer rows.Close()
	ids := map[string]int64{}
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("films: genres: %w", err)
		}
		ids[name] = id
	}
	return ids, rows.Err()
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
