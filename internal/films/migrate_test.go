package films

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// A database written by the walking skeleton (schema version 1) gains the
// review aggregates in SQL and the search and sort keys from the start-up
// backfill, on both engines.
func TestMigrateFromSkeleton(t *testing.T) {
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "films.db")}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		urls["postgres"] = sqldbtest.FreshPostgresURL(t)
	}
	for engine, url := range urls {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			sub, err := fs.Sub(Migrations, string(db.Dialect))
			if err != nil {
				t.Fatal(err)
			}
			dialect := goose.DialectPostgres
			if db.Dialect == sqldb.SQLite {
				dialect = goose.DialectSQLite3
			}
			p, err := goose.NewProvider(dialect, db.DB, sub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			// The skeleton's rows: films from the demo seed, reviews written
			// straight into the table.
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`INSERT INTO genres (name) VALUES ('Drama'), ('Comedy')`)
			for _, f := range []struct {
				title, director string
				year            int
				genre           any
			}{
				{"Amélie", "Jean-Pierre Jeunet", 2001, 2},
				{"Сталкер", "Андрей Тарковский", 1979, 1},
				{"Heat", "", 1995, nil},
			} {
				var director any = f.director
				if f.director == "" {
					director = nil
				}
				exec(`INSERT INTO films (title, year, genre_id, director, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
					f.title, f.year, f.genre, director, testNow)
			}
			for i, r := range []struct {
				film   int
				user   string
				rating int
			}{{1, "a", 7}, {1, "b", 8}, {1, "c", 10}, {3, "a", 4}} {
				exec(`INSERT INTO reviews (film_id, user_id, rating, text, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $4)`,
					r.film, r.user, r.rating, testNow.Add(time.Duration(i)*time.Minute))
			}

			if err := db.Migrate(ctx, Migrations); err != nil {
				t.Fatal(err)
			}
			s := NewStore(db, func() time.Time { return testNow })
			if err := s.backfill(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.backfill(ctx); err != nil { // nothing left to do
				t.Fatal(err)
			}

			f, err := s.Film(ctx, 1)
			if err != nil || f.ReviewCount != 3 || f.RatingSum != 25 {
				t.Errorf("film 1: %d reviews, sum %d (%v)", f.ReviewCount, f.RatingSum, err)
			}
			var key int
			if err := db.QueryRowContext(ctx, `SELECT rating_key FROM films WHERE id = 1`).Scan(&key); err != nil || key != 8333 {
				t.Errorf("film 1's rating key %d (%v), want 8333", key, err)
			}
			rp, err := s.Reviews(ctx, 1, PageRequest{Limit: 10})
			if err != nil || len(rp.Items) != 3 || rp.Items[0].UserID != "c" || rp.Items[2].UserID != "a" {
				t.Errorf("reviews of film 1 after the migration: %+v, %v", rp.Items, err)
			}
			// A new review goes on top of the migrated ones.
			addReview(t, s, 1, "d", 1)
			if rp, _ := s.Reviews(ctx, 1, PageRequest{Limit: 1}); rp.Items[0].UserID != "d" {
				t.Errorf("newest review: %+v", rp.Items)
			}

			ids := func(q FilmQuery) []int64 {
				t.Helper()
				q.Limit = 10
				p, err := s.Films(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var ids []int64
				for _, f := range p.Items {
					ids = append(ids, f.ID)
				}
				return ids
			}
			for name, tc := range map[string]struct {
				q    FilmQuery
				want []int64
			}{
				"title word":    {FilmQuery{Words: searchWords("amelie")}, []int64{1}},
				"cyrillic":      {FilmQuery{Words: searchWords("сталк")}, []int64{2}},
				"director":      {FilmQuery{DirectorWords: searchWords("jeunet")}, []int64{1}},
				"genre":         {FilmQuery{Genre: "DRAMA"}, []int64{2}},
				"title order":   {FilmQuery{Sort: SortByTitle}, []int64{1, 3, 2}},
				"rating order":  {FilmQuery{Sort: SortByRatingDesc}, []int64{1, 3, 2}},
				"reviews order": {FilmQuery{Sort: SortByReviewsDesc}, []int64{1, 3, 2}},
			} {
				if got := ids(tc.q); !slices.Equal(got, tc.want) {
					t.Errorf("%s: %v, want %v", name, got, tc.want)
				}
			}
			checkSearchIndex(t, db)
		})
	}
}
