package films

import (
	"context"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// The store contract: the same tests on SQLite and, when configured,
// PostgreSQL.

func TestStoreFilmRoundTrip(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, func() time.Time { return testNow.Add(123456789 * time.Nanosecond) })
		full := Film{Title: "Сталкер", Year: 1979, ReleaseDate: date(1979, 5, 25), Genre: "Drama",
			Director: "Андрей Тарковский", RuntimeMin: 161, MPAARating: "Not Rated", IMDBRating: 8.1}
		bare := Film{Title: "Unknown", Year: 2001}
		if added, err := s.insertFilms(ctx, []Film{full, bare}); err != nil || added != 2 {
			t.Fatalf("insertFilms = %d, %v", added, err)
		}
		page, err := s.Films(ctx, FilmQuery{Limit: 10})
		if err != nil || len(page.Items) != 2 || page.Next != nil {
			t.Fatalf("Films = %+v, %v", page, err)
		}
		stamp := testNow.Add(123456 * time.Microsecond) // truncated to the microsecond
		for i, want := range []Film{full, bare} {
			want.ID, want.CreatedAt, want.UpdatedAt = page.Items[i].ID, stamp, stamp
			got, err := s.Film(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !filmsEqual(got, want) || !filmsEqual(page.Items[i], want) {
				t.Errorf("film %d:\n got %+v\nlist %+v\nwant %+v", i, got, page.Items[i], want)
			}
		}
		if page.Items[0].ID >= page.Items[1].ID {
			t.Errorf("ids %d, %d are not in insertion order", page.Items[0].ID, page.Items[1].ID)
		}
	})
}

func TestStoreFilmNotFound(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		_, err := NewStore(db, nil).Film(context.Background(), 404)
		if !apperr.Is(err, apperr.NotFound) {
			t.Errorf("Film(404) = %v, want NotFound", err)
		}
	})
}

// (title, year) is the catalogue's key, on both engines.
func TestStoreTitleYearIsUnique(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, nil)
		a := Film{Title: "Solaris", Year: 1972}
		added, err := s.insertFilms(ctx, []Film{a, {Title: "Solaris", Year: 2002}, {Title: "solaris", Year: 1972}})
		if err != nil || added != 3 {
			t.Fatalf("insertFilms = %d, %v; want 3 distinct films", added, err)
		}
		if added, err := s.insertFilms(ctx, []Film{a}); err != nil || added != 0 {
			t.Errorf("insertFilms(existing) = %d, %v; want 0, nil", added, err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO films (title, year, created_at, updated_at) VALUES ('Solaris', 1972, $1, $1)`, testNow)
		if !sqldb.IsUniqueViolation(err) {
			t.Errorf("plain INSERT of a duplicate = %v, want a unique violation", err)
		}
	})
}

func TestStoreReviewAggregate(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, nil)
		addFilms(t, s, 0, 2)
		addReview(t, s, 1, "u1", 7)
		addReview(t, s, 1, "u2", 8)
		addReview(t, s, 1, "u3", 10)
		f, err := s.Film(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if f.ReviewCount != 3 || f.AverageRating < 8.333 || f.AverageRating > 8.334 {
			t.Errorf("film 1: %d reviews, average %v; want 3, 8.333…", f.ReviewCount, f.AverageRating)
		}
		page, err := s.Films(ctx, FilmQuery{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if p := page.Items; p[0].ReviewCount != 3 || p[1].ReviewCount != 0 || p[1].AverageRating != 0 {
			t.Errorf("list: %+v", p)
		}
		// One review per user and film; ratings 1..10.
		for _, bad := range []struct {
			user   string
			rating int
		}{{"u1", 5}, {"u4", 0}, {"u4", 11}} {
			_, err := db.ExecContext(ctx, `INSERT INTO reviews (film_id, user_id, rating, created_at, updated_at) VALUES (1, $1, $2, $3, $3)`, bad.user, bad.rating, testNow)
			if err == nil {
				t.Errorf("review (%s, %d) was accepted", bad.user, bad.rating)
			}
		}
	})
}

// Keyset paging visits every film exactly once, and a film added between
// two pages neither repeats nor hides another.
func TestStorePaging(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, nil)
		addFilms(t, s, 0, 25)
		seen := map[int64]int{}
		req := FilmQuery{Limit: 10}
		var sizes []int
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			p, err := s.Films(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(p.Items))
			for _, f := range p.Items {
				seen[f.ID]++
			}
			if pages == 0 {
				addFilms(t, s, 100, 1) // lands after everything: ids only grow
			}
			if p.Next == nil {
				break
			}
			if p.Next.ID != p.Items[len(p.Items)-1].ID || p.Next.Sort != SortByID {
				t.Fatalf("next cursor %+v does not point at the last item %d", p.Next, p.Items[len(p.Items)-1].ID)
			}
			req.After = *p.Next
		}
		if len(seen) != 26 {
			t.Errorf("saw %d films, want 26", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("film %d seen %d times", id, n)
			}
		}
		if want := []int{10, 10, 6}; len(sizes) != 3 || sizes[0] != want[0] || sizes[1] != want[1] || sizes[2] != want[2] {
			t.Errorf("page sizes %v, want %v (no empty last page)", sizes, want)
		}
		// Past the end: an empty page, no cursor.
		p, err := s.Films(ctx, FilmQuery{Limit: 10, After: Cursor{Sort: SortByID, ID: 1 << 40}})
		if err != nil || len(p.Items) != 0 || p.Next != nil {
			t.Errorf("page past the end = %+v, %v", p, err)
		}
	})
}

func TestStoreFavorites(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, nil)
		addFilms(t, s, 0, 5)
		for _, id := range []int64{4, 2, 5, 2} { // 2 twice: idempotent
			if err := s.AddFavorite(ctx, "alice", id); err != nil {
				t.Fatalf("AddFavorite(alice, %d) = %v", id, err)
			}
		}
		if err := s.AddFavorite(ctx, "bob", 3); err != nil {
			t.Fatal(err)
		}
		if err := s.AddFavorite(ctx, "alice", 99); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("AddFavorite(unknown film) = %v, want NotFound", err)
		}
		var ids []int64
		req := PageRequest{Limit: 2}
		for {
			p, err := s.Favorites(ctx, "alice", req)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range p.Items {
				ids = append(ids, f.ID)
			}
			if p.Next == nil {
				break
			}
			req.After = *p.Next
		}
		if len(ids) != 3 || ids[0] != 2 || ids[1] != 4 || ids[2] != 5 {
			t.Errorf("alice's favourites = %v, want [2 4 5]", ids)
		}
		p, err := s.Favorites(ctx, "carol", PageRequest{Limit: 10})
		if err != nil || len(p.Items) != 0 || p.Next != nil {
			t.Errorf("carol's favourites = %+v, %v; want none", p, err)
		}
	})
}

func TestStoreHasFilms(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, nil)
		if has, err := s.HasFilms(ctx); err != nil || has {
			t.Errorf("HasFilms(empty) = %v, %v", has, err)
		}
		addFilms(t, s, 0, 1)
		if has, err := s.HasFilms(ctx); err != nil || !has {
			t.Errorf("HasFilms(one film) = %v, %v", has, err)
		}
	})
}
