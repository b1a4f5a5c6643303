package films

import (
	"context"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/sqldb/sqldbtest"
)

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
		var genreIDs []int64
		for rows.Next() {
			f, genreID, err := newFilmRow().scan(rows)
			if err != nil {
				t.Fatal(err)
			}
			films, genreIDs = append(films, f), append(genreIDs, genreID)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		for i, id := range genreIDs {
			if films[i].Genre, err = store.genres.lookup(ctx, db, id); err != nil {
				t.Fatal(err)
			}
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

// An unfiltered page on PostgreSQL runs on a generic plan once its
// statement is warm (postgresPage): without the constant cap, every
// execution was planned anew.
func TestPostgresPageSettlesOnAGenericPlan(t *testing.T) {
	sqldbtest.NeedPostgres(t, "reads PostgreSQL's query plans")
	db := sqldbtest.Postgres(t, Migrations)
	db.SetMaxOpenConns(1) // one session: its prepared statements are the ones we look at
	ctx := context.Background()
	store := NewStore(db, nil)
	if _, _, err := SeedDemo(ctx, store); err != nil {
		t.Fatal(err)
	}
	for _, sort := range FilmSorts {
		for range 8 {
			if _, err := store.Films(ctx, FilmQuery{Sort: sort, Limit: 20}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE '%LIMIT 101)%' AND statement NOT LIKE '%pg_prepared_statements%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			statement       string
			generic, custom int
		)
		if err := rows.Scan(&statement, &generic, &custom); err != nil {
			t.Fatal(err)
		}
		n++
		if generic < 3 {
			t.Errorf("%d generic and %d custom plans for\n%s", generic, custom, statement)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(FilmSorts) {
		t.Errorf("%d prepared page statements, want one per order (%d)", n, len(FilmSorts))
	}
}
