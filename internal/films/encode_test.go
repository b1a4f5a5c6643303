package films

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// The hand-written encoder must give encoding/json's bytes (and so the same
// ETags) for every film of the demo catalogue, on both engines, one by one
// and as pages, with review aggregates of every shape.
func TestEncodeFilmMatchesEncodingJSON(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		store := NewStore(db, nil) // the real clock: timestamps with fractions of a second
		if _, _, err := SeedDemo(ctx, store); err != nil {
			t.Fatal(err)
		}
		// Averages that are whole, halves, thirds, sevenths…; some films
		// without reviews.
		if _, err := db.ExecContext(ctx, `UPDATE films SET review_count = id % 7,
			rating_sum = CASE WHEN id % 7 = 0 THEN 0 ELSE id % 7 + (id * 13) % (9 * (id % 7) + 1) END`); err != nil {
			t.Fatal(err)
		}
		films, pages := 0, 0
		q := FilmQuery{Limit: 100, Sort: SortByID}
		for {
			page, err := store.Films(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			want, err := encode(newPageResponse(page))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := encodePage(page); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("page %d: encodePage\n got %s (%v)\nwant %s", pages, got, err, want)
			}
			for _, f := range page.Items {
				films++
				one, err := store.Film(ctx, f.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !filmsEqual(one, f) {
					t.Fatalf("film %d: Film and Films disagree:\n%+v\n%+v", f.ID, one, f)
				}
			}
			for _, f := range page.Items {
				want, err := encode(newFilmResponse(f))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := encodeFilm(f); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("film %d: encodeFilm\n got %s (%v)\nwant %s", f.ID, got, err, want)
				}
			}
			if page.Next == nil {
				break
			}
			q.After = *page.Next
		}
		if films != demoKept {
			t.Errorf("compared %d films, want the demo catalogue's %d", films, demoKept)
		}
	})
}

// The read path's SQLite columns (dates as text, read by parseStoredTime)
// give the very films the driver's own time parsing gives.
func TestSQLiteReadColumnsReadWhatTheDriverReads(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.SQLite(t, Migrations)
	store := NewStore(db, nil)
	if _, _, err := SeedDemo(ctx, store); err != nil {
		t.Fatal(err)
	}
	read := func(columns string) []Film {
		rows, err := db.QueryContext(ctx, `SELECT `+columns+filmFrom+` ORDER BY f.id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var films []Film
		for rows.Next() {
			f, err := scanFilm(rows)
			if err != nil {
				t.Fatal(err)
			}
			films = append(films, f)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return films
	}
	byDriver, byHand := read(filmColumns), read(sqliteReadColumns)
	if len(byDriver) != demoKept || len(byHand) != demoKept {
		t.Fatalf("%d and %d films, want %d", len(byDriver), len(byHand), demoKept)
	}
	dated := 0
	for i := range byDriver {
		if !filmsEqual(byDriver[i], byHand[i]) {
			t.Fatalf("film %d:\ndriver %+v\n  hand %+v", byDriver[i].ID, byDriver[i], byHand[i])
		}
		if !byHand[i].ReleaseDate.IsZero() {
			dated++
		}
	}
	if dated == 0 {
		t.Error("no film with a release date: the date layout was not exercised")
	}
}

func TestEncodeFilmEdgeCases(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	base := Film{ID: 7, Title: "Film", Year: 1999, CreatedAt: at, UpdatedAt: at}
	with := func(change func(*Film)) Film {
		f := base
		change(&f)
		return f
	}
	var ascii strings.Builder
	for c := range 128 {
		ascii.WriteByte(byte(c))
	}
	cases := map[string]Film{
		"nulls":            base,
		"every field":      with(func(f *Film) { *f = demoFilm() }),
		"ascii":            with(func(f *Film) { f.Title = ascii.String() }),
		"html":             with(func(f *Film) { f.Title, f.Director = `<script>alert("x")</script> & co`, `A\B "C"` }),
		"unicode":          with(func(f *Film) { f.Title, f.Genre = "Amélie — Ёжик 映画 🎬", "Ñ" }),
		"separators":       with(func(f *Film) { f.Title = "a\u2028b\u2029c\u2027" }),
		"invalid utf-8":    with(func(f *Film) { f.Title, f.Director = "a\xffb\xc3", "\xed\xa0\x80" }),
		"tiny rating":      with(func(f *Film) { f.IMDBRating = 1e-7 }),
		"huge rating":      with(func(f *Film) { f.IMDBRating = 1e21 }),
		"long rating":      with(func(f *Film) { f.IMDBRating = 0.1 + 0.2 }),
		"average rounding": with(func(f *Film) { f.ReviewCount, f.RatingSum, f.AverageRating = 3, 20, 20.0/3 }),
		"average exact":    with(func(f *Film) { f.ReviewCount, f.RatingSum, f.AverageRating = 8, 60, 7.5 }),
		"average .005":     with(func(f *Film) { f.ReviewCount, f.AverageRating = 200, 1.005 }),
		"whole second":     with(func(f *Film) { f.CreatedAt = at.Truncate(time.Second) }),
		"fractions": with(func(f *Film) {
			f.CreatedAt, f.UpdatedAt = at.Truncate(time.Second).Add(1), at.Truncate(time.Second).Add(100*time.Millisecond)
		}),
		"zero offset zone": with(func(f *Film) { f.UpdatedAt = at.In(time.FixedZone("UTC", 0)) }),
		"year 9999":        with(func(f *Film) { f.UpdatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }),
		"not utc":          with(func(f *Film) { f.UpdatedAt = at.In(time.FixedZone("X", -5*3600-1800)) }),
		"year 0":           with(func(f *Film) { f.CreatedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"old release":      with(func(f *Film) { f.ReleaseDate = time.Date(812, 3, 4, 0, 0, 0, 0, time.UTC) }),
		"negative id":      with(func(f *Film) { f.ID, f.Year, f.RuntimeMin = -3, -20, -1 }),
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := encode(newFilmResponse(f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeFilm(f)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("\n got %s (%v)\nwant %s", got, err, want)
			}
			page := Page{Items: []Film{f, base}, Next: &Cursor{Sort: SortByTitle, Key: "<&>", ID: 9}}
			wantPage, err := encode(newPageResponse(page))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := encodePage(page); err != nil || !bytes.Equal(got, wantPage) {
				t.Fatalf("page\n got %s (%v)\nwant %s", got, err, wantPage)
			}
		})
	}
	empty, err := encodePage(Page{Items: []Film{}})
	if want, _ := encode(newPageResponse(Page{Items: []Film{}})); err != nil || !bytes.Equal(empty, want) {
		t.Errorf("empty page: %s (%v), want %s", empty, err, want)
	}

	// encoding/json refuses a time it cannot write as RFC 3339; so does
	// the encoder.
	far := with(func(f *Film) { f.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })
	if _, err := encode(newFilmResponse(far)); err == nil {
		t.Fatal("encoding/json encoded the year 10000")
	}
	if b, err := encodeFilm(far); !errors.Is(err, errTimeRange) {
		t.Errorf("encodeFilm(year 10000) = %s, %v; want errTimeRange", b, err)
	}
}

func demoFilm() Film {
	return Film{ID: 42, Title: "The Shawshank Redemption", Year: 1994,
		ReleaseDate: time.Date(1994, 9, 23, 0, 0, 0, 0, time.UTC), Genre: "Drama", Director: "Frank Darabont",
		RuntimeMin: 142, MPAARating: "R", IMDBRating: 9.3, ReviewCount: 3, RatingSum: 29, AverageRating: 29.0 / 3,
		CreatedAt: time.Date(2026, 11, 27, 10, 0, 0, 120000, time.UTC), UpdatedAt: time.Date(2026, 11, 28, 9, 1, 2, 0, time.UTC)}
}

func TestParseStoredTime(t *testing.T) {
	// What the SQLite driver writes (t.String()) and nullDate writes, read
	// back as time.Parse reads them.
	zone := time.FixedZone("CET", 3600)
	times := []time.Time{
		time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 10, 0, 0, 1, time.UTC),
		time.Date(2026, 11, 27, 10, 0, 0, 120000, time.UTC),
		time.Date(2026, 11, 27, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 500000000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 12, 31, 12, 30, 1, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 5000, zone),
		time.Now(),                // with a monotonic reading: "… m=+0.0123"
		time.Now().UTC().Round(0), // what Store.stamp writes
	}
	for _, want := range times {
		for _, s := range []string{want.String(), want.Format(time.DateOnly)} {
			got, err := parseStoredTime(s)
			if err != nil {
				t.Errorf("parseStoredTime(%q): %v", s, err)
				continue
			}
			ref := want
			if s == want.Format(time.DateOnly) {
				ref = time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, time.UTC)
			}
			if !got.Equal(ref) {
				t.Errorf("parseStoredTime(%q) = %v, want %v", s, got, ref)
			}
		}
	}
	// The driver's other layouts still read; nonsense does not.
	for s, want := range map[string]time.Time{
		"2026-11-27T10:00:00Z":              time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		"2026-11-27 10:00:00.5+02:00":       time.Date(2026, 11, 27, 8, 0, 0, 500000000, time.UTC),
		"2026-11-27 10:00":                  time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		"2026-11-27 10:00:00.123 +0000 UTC": time.Date(2026, 11, 27, 10, 0, 0, 123000000, time.UTC),
	} {
		if got, err := parseStoredTime(s); err != nil || !got.Equal(want) {
			t.Errorf("parseStoredTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2026-13-01", "2026-02-30", "2026-11-27 24:00:00 +0000 UTC",
		"2026-11-27 10:00:60 +0000 UTC", "2026-11-27 10:00:00. +0000 UTC", "yesterday", "2026-1-27"} {
		if got, err := parseStoredTime(s); err == nil {
			t.Errorf("parseStoredTime(%q) = %v, want an error", s, got)
		}
	}
	// The hand-read layouts agree with time.Parse to the nanosecond on
	// every fraction length.
	for digits := 1; digits <= 9; digits++ {
		s := "2026-11-27 10:00:00." + strings.Repeat("7", digits) + " +0000 UTC"
		want, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseUTCStamp(s)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseUTCStamp(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	if _, ok := parseUTCStamp("2026-11-27 10:00:00.1234567891 +0000 UTC"); ok {
		t.Error("parseUTCStamp read ten digits of fraction; time.Parse's rounding is its own")
	}
}
