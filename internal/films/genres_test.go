package films

import (
	"context"
	"slices"
	"testing"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// Films are read without a join: their genre's name comes from the store's
// map of genre ids. A genre added since the map was read — by another
// replica on the same database — is read again, not left out, on every
// read path: a film, a page (the film with the new genre in the middle,
// its order kept), a filtered page, favourites and an update.
func TestGenreAddedElsewhereIsRead(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		here, elsewhere := NewStore(db, nil), NewStore(db, nil)
		addFilms(t, here, 0, 3) // Drama, Comedy, none
		page, err := here.Films(ctx, FilmQuery{Limit: 10})
		if err != nil || len(page.Items) != 3 {
			t.Fatalf("Films = %+v, %v", page, err)
		}
		if _, err := elsewhere.CreateGenre(ctx, "Film noir"); err != nil {
			t.Fatal(err)
		}
		noir, err := elsewhere.CreateFilm(ctx, Film{Title: "The Third Man", Year: 1949, Genre: "Film noir"})
		if err != nil {
			t.Fatal(err)
		}
		addFilms(t, elsewhere, 3, 2)
		if _, ok := here.genres.name(mustGenreID(t, db, "Film noir")); ok {
			t.Fatal("the store knew the new genre before reading it: the test would prove nothing")
		}

		page, err = here.Films(ctx, FilmQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var titles, genres []string
		for _, f := range page.Items {
			titles, genres = append(titles, f.Title), append(genres, f.Genre)
		}
		wantTitles := []string{"Film 0000", "Film 0001", "Film 0002", "The Third Man", "Film 0003", "Film 0004"}
		wantGenres := []string{"Drama", "Comedy", "", "Film noir", "Drama", "Comedy"}
		if !slices.Equal(titles, wantTitles) || !slices.Equal(genres, wantGenres) {
			t.Errorf("page: titles %q genres %q\nwant titles %q genres %q", titles, genres, wantTitles, wantGenres)
		}

		fresh := NewStore(db, nil) // knows no genre at all
		if f, err := fresh.Film(ctx, noir.ID); err != nil || f.Genre != "Film noir" {
			t.Errorf("Film = %q, %v; want Film noir", f.Genre, err)
		}
		fresh = NewStore(db, nil)
		if p, err := fresh.Films(ctx, FilmQuery{Genre: "film NOIR", Limit: 5}); err != nil || len(p.Items) != 1 || p.Items[0].Genre != "Film noir" {
			t.Errorf("filtered page = %+v, %v", p, err)
		}
		fresh = NewStore(db, nil)
		if err := fresh.AddFavorite(ctx, "u1", noir.ID); err != nil {
			t.Fatal(err)
		}
		if p, err := fresh.Favorites(ctx, "u1", PageRequest{Limit: 5}); err != nil || len(p.Items) != 1 || p.Items[0].Genre != "Film noir" {
			t.Errorf("favourites = %+v, %v", p, err)
		}
		fresh = NewStore(db, nil)
		updated, err := fresh.UpdateFilm(ctx, noir.ID, func(f Film) (Film, error) {
			if f.Genre != "Film noir" {
				t.Errorf("UpdateFilm read genre %q", f.Genre)
			}
			f.RuntimeMin = 104
			return f, nil
		})
		if err != nil || updated.Genre != "Film noir" || updated.RuntimeMin != 104 {
			t.Errorf("UpdateFilm = %+v, %v", updated, err)
		}
	})
}

func mustGenreID(t *testing.T, db *sqldb.DB, name string) int64 {
	t.Helper()
	var id int64
	if err := db.QueryRow(`SELECT id FROM genres WHERE name = $1`, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
