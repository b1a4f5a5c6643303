package films

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// The figures of the shipped movies.json, derived once outside Go with
//
//	python3 -c 'import json; d=json.load(open("movies.json"))
//	  print(len(d), [i for i,r in enumerate(d) if r["Title"] is None],
//	        sum(int(r["Release Date"][-4:]) > 2011 for r in d))'
//
// → 3201 rows, a null Title at index 3053 only, 22 dates after 2011; every
// date matches "Mon DD YYYY"; no (title, year) pair repeats (the 24 repeated
// titles are remakes from other years), with or without the century fix.
//
// Without the century fix, 15 rows are dated after 2027 (next year at
// testNow) and are refused with the null title:
//
//	sum(int(r["Release Date"][-4:]) > 2027 for r in d)  → 15
const (
	demoRows      = 3201
	demoKept      = 3200
	demoNullTitle = 3053
	demoCorrected = 22

	demoPlainRejected = 16
	demoPlainKept     = demoRows - demoPlainRejected
)

func countFilms(t testing.TB, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM films`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func filmByTitleYear(t testing.TB, s *Store, title string, year int) Film {
	t.Helper()
	var id int64
	err := s.db.QueryRowContext(context.Background(), `SELECT id FROM films WHERE title = $1 AND year = $2`, title, year).Scan(&id)
	if err != nil {
		t.Fatalf("film %q (%d): %v", title, year, err)
	}
	f, err := s.Film(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestImportDemoCatalogue(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, func() time.Time { return testNow })
		start := time.Now()
		rep, seeded, err := SeedDemo(ctx, s)
		took := time.Since(start)
		if err != nil || !seeded {
			t.Fatalf("SeedDemo = %v, seeded %v", err, seeded)
		}
		t.Logf("%s: demo catalogue imported in %s", db.Dialect, took) // a figure for the docs, not an assertion
		want := ImportReport{Rows: demoRows, Kept: demoKept, Duplicates: 0, Corrected: demoCorrected,
			Rejected: []RejectedRow{{Index: demoNullTitle, Title: "", Reason: "missing title"}}}
		if got := fmt.Sprintf("%+v", rep); got != fmt.Sprintf("%+v", want) {
			t.Errorf("report = %s\nwant     %s", got, fmt.Sprintf("%+v", want))
		}
		if n := countFilms(t, db); n != demoKept {
			t.Errorf("%d films in the database, want %d", n, demoKept)
		}

		for _, tc := range []struct {
			title string
			year  int
			want  Film
		}{
			// every column, nulls included
			{"The Land Girls", 1998, Film{ReleaseDate: date(1998, 6, 12), MPAARating: "R", IMDBRating: 6.1}},
			{"Casino Royale", 2006, Film{ReleaseDate: date(2006, 11, 17), Genre: "Action", Director: "Martin Campbell", RuntimeMin: 144, MPAARating: "PG-13", IMDBRating: 8}},
			// a title stored as a JSON number
			{"1776", 1972, Film{ReleaseDate: date(1972, 11, 9), Genre: "Drama", MPAARating: "PG", IMDBRating: 7}},
			// a two-digit year put back in its century
			{"Gone with the Wind", 1939, Film{ReleaseDate: date(1939, 12, 15), Genre: "Drama", Director: "George Cukor", RuntimeMin: 222, MPAARating: "G", IMDBRating: 8.2}},
			{"Ben-Hur", 1925, Film{ReleaseDate: date(1925, 12, 30), Genre: "Adventure", IMDBRating: 8.2}},
			{"Ben-Hur", 1959, Film{ReleaseDate: date(1959, 11, 18), Genre: "Adventure", Director: "William Wyler", IMDBRating: 8.2}},
			// runs of spaces collapsed
			{"Halloween: The Curse of Michael Myers", 1995, Film{ReleaseDate: date(1995, 9, 29), Genre: "Horror", MPAARating: "R", IMDBRating: 4.4}},
		} {
			got := filmByTitleYear(t, s, tc.title, tc.year)
			want := tc.want
			want.ID, want.Title, want.Year, want.CreatedAt, want.UpdatedAt = got.ID, tc.title, tc.year, testNow, testNow
			if !filmsEqual(got, want) {
				t.Errorf("%s (%d):\n got %+v\nwant %+v", tc.title, tc.year, got, want)
			}
		}

		// Again: nothing new, every row a duplicate of the catalogue.
		again, err := Import(ctx, s, bytes.NewReader(DemoCatalogue), ImportOptions{CenturyShiftAfter: demoCenturyShiftAfter})
		if err != nil {
			t.Fatal(err)
		}
		if again.Kept != 0 || again.Duplicates != demoKept || len(again.Rejected) != 1 {
			t.Errorf("re-import: kept %d, duplicates %d, rejected %d; want 0, %d, 1", again.Kept, again.Duplicates, len(again.Rejected), demoKept)
		}
		if _, seeded, err := SeedDemo(ctx, s); err != nil || seeded {
			t.Errorf("SeedDemo on a full catalogue: seeded %v, %v", seeded, err)
		}
		if n := countFilms(t, db); n != demoKept {
			t.Errorf("%d films after re-import, want %d", n, demoKept)
		}
		checkSearchIndex(t, db)
	})
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func filmsEqual(a, b Film) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Year == b.Year && a.ReleaseDate.Equal(b.ReleaseDate) &&
		a.Genre == b.Genre && a.Director == b.Director && a.RuntimeMin == b.RuntimeMin &&
		a.MPAARating == b.MPAARating && a.IMDBRating == b.IMDBRating && a.AverageRating == b.AverageRating &&
		a.ReviewCount == b.ReviewCount && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// Without the option, an import keeps the years it is given.
// Without the option, an import keeps the years it is given — and refuses
// the ones after next year, as an admin's film would be refused.
func TestParseDemoCatalogueWithoutCenturyShift(t *testing.T) {
	films, rep, err := parseCatalogue(bytes.NewReader(DemoCatalogue), ImportOptions{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(films) != demoPlainKept || rep.Corrected != 0 || len(rep.Rejected) != demoPlainRejected || rep.Duplicates != 0 {
		t.Fatalf("%d films, report %+v", len(films), rep)
	}
	if want := (RejectedRow{Index: 9, Title: "Duel in the Sun", Reason: "release year 2046 must be from 1870 to 2027"}); rep.Rejected[0] != want {
		t.Errorf("first rejected row %+v, want %+v", rep.Rejected[0], want)
	}
	for _, f := range films {
		if f.Title == "The Birth of a Nation" && f.Year != 2015 {
			t.Errorf("The Birth of a Nation: year %d, want the file's 2015", f.Year)
		}
	}
	// Far enough in the future, every dated row is plausible.
	films, rep, err = parseCatalogue(bytes.NewReader(DemoCatalogue), ImportOptions{}, time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(films) != demoKept || len(rep.Rejected) != 1 {
		t.Errorf("in 2050: %d films, %d rejected, %v", len(films), len(rep.Rejected), err)
	}
}

func TestParseRow(t *testing.T) {
	base := map[string]any{"Title": "Heat", "Release Date": "Dec 15 1995", "Major Genre": "Action",
		"Director": "Michael Mann", "Running Time min": 170, "MPAA Rating": "R", "IMDB Rating": 8.2}
	heat := Film{Title: "Heat", Year: 1995, ReleaseDate: date(1995, 12, 15), Genre: "Action",
		Director: "Michael Mann", RuntimeMin: 170, MPAARating: "R", IMDBRating: 8.2}
	row := func(kv ...any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<absent>" {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	change := func(f func(*Film)) Film { g := heat; f(&g); return g }
	for _, tc := range []struct {
		name   string
		row    string
		want   Film
		reject string // the reason, when the row must be rejected
	}{
		{"complete", row(), heat, ""},
		{"numeric title", row("Title", 1776), change(func(f *Film) { f.Title = "1776" }), ""},
		{"numeric title in exponent form", row("Title", json.Number("3e2")), change(func(f *Film) { f.Title = "300" }), ""},
		{"spaces in title", row("Title", "  Heat \t and  Dust "), change(func(f *Film) { f.Title = "Heat and Dust" }), ""},
		{"null title", row("Title", nil), Film{}, "missing title"},
		{"blank title", row("Title", "   "), Film{}, "missing title"},
		{"no Title column", row("Title", "<absent>"), Film{}, "missing title"},
		{"title is a list", row("Title", []string{"Heat"}), Film{}, "title is not text"},
		{"title is true", row("Title", true), Film{}, "title is not text"},
		{"very long title", row("Title", strings.Repeat("x", 301)), Film{}, "title must be at most 300 characters"},
		{"300 characters, 600 bytes", row("Title", strings.Repeat("я", 300)), change(func(f *Film) { f.Title = strings.Repeat("я", 300) }), ""},
		{"control character in title", row("Title", "Heat\u0000"), Film{}, "title must not contain control characters"},
		{"long genre", row("Major Genre", strings.Repeat("g", 51)), Film{}, "Major Genre must be at most 50 characters"},
		{"day without zero", row("Release Date", "Dec 5 1995"), change(func(f *Film) { f.ReleaseDate = date(1995, 12, 5) }), ""},
		{"long month and comma", row("Release Date", "December 15, 1995"), heat, ""},
		{"ISO date", row("Release Date", "1995-12-15"), heat, ""},
		{"day first", row("Release Date", "15 Dec 1995"), heat, ""},
		{"bare year text", row("Release Date", "1995"), change(func(f *Film) { f.ReleaseDate = time.Time{} }), ""},
		{"bare year number", row("Release Date", 1995), change(func(f *Film) { f.ReleaseDate = time.Time{} }), ""},
		{"null date", row("Release Date", nil), Film{}, "missing release date"},
		{"unreadable date", row("Release Date", "someday"), Film{}, `unreadable release date "someday"`},
		{"impossible date", row("Release Date", "Feb 30 1995"), Film{}, `unreadable release date "Feb 30 1995"`},
		{"implausible year", row("Release Date", "Jan 01 1700"), Film{}, "release year 1700 must be from 1870 to 2027"},
		{"first allowed year", row("Release Date", "1870"), change(func(f *Film) { f.Year, f.ReleaseDate = 1870, time.Time{} }), ""},
		{"next year", row("Release Date", "Jan 01 2027"), change(func(f *Film) { f.Year, f.ReleaseDate = 2027, date(2027, 1, 1) }), ""},
		{"in two years", row("Release Date", "Jan 01 2028"), Film{}, "release year 2028 must be from 1870 to 2027"},
		{"nulls everywhere else", row("Major Genre", nil, "Director", nil, "Running Time min", nil, "MPAA Rating", nil, "IMDB Rating", nil),
			Film{Title: "Heat", Year: 1995, ReleaseDate: date(1995, 12, 15)}, ""},
		{"columns missing", `{"Title":"Heat","Release Date":"Dec 15 1995"}`, Film{Title: "Heat", Year: 1995, ReleaseDate: date(1995, 12, 15)}, ""},
		{"runtime as text", row("Running Time min", "170"), heat, ""},
		{"runtime 170.0", row("Running Time min", 170.0), heat, ""},
		{"runtime fractional", row("Running Time min", 170.5), Film{}, "Running Time min 170.5 is not a whole number of minutes from 1 to 1000"},
		{"runtime negative", row("Running Time min", -3), Film{}, "Running Time min -3 is not a whole number of minutes from 1 to 1000"},
		{"runtime not a number", row("Running Time min", "long"), Film{}, "Running Time min is not a number"},
		{"rating as text", row("IMDB Rating", "8.2"), heat, ""},
		{"rating above 10", row("IMDB Rating", 11), Film{}, "IMDB Rating 11 is outside 0–10"},
		{"rating is an object", row("IMDB Rating", map[string]int{"x": 1}), Film{}, "IMDB Rating is not a number"},
		{"genre is a number", row("Major Genre", 7), Film{}, "Major Genre is not text"},
		{"blank director", row("Director", "  "), change(func(f *Film) { f.Director = "" }), ""},
		{"not an object", `42`, Film{}, "not a JSON object"},
		{"an array", `["Heat"]`, Film{}, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := parseRow(json.RawMessage(tc.row), ImportOptions{}, testNow)
			if tc.reject != "" {
				if err == nil || err.Error() != tc.reject {
					t.Fatalf("parseRow = %+v, %v; want rejected with %q", got, err, tc.reject)
				}
				return
			}
			if err != nil || !filmsEqual(got, tc.want) {
				t.Errorf("parseRow = %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseRowCenturyShift(t *testing.T) {
	for _, tc := range []struct {
		date    string
		want    time.Time
		year    int
		shifted bool
	}{
		{"Dec 15 2039", date(1939, 12, 15), 1939, true},
		{"Feb 29 2044", date(1944, 2, 29), 1944, true},
		{"Dec 23 2011", date(2011, 12, 23), 2011, false},
		{"2040", time.Time{}, 1940, true},
	} {
		f, shifted, err := parseRow(json.RawMessage(`{"Title":"X","Release Date":"`+tc.date+`"}`), ImportOptions{CenturyShiftAfter: 2011}, testNow)
		if err != nil || f.Year != tc.year || !f.ReleaseDate.Equal(tc.want) || shifted != tc.shifted {
			t.Errorf("%s: year %d, date %v, shifted %v, %v; want %d, %v, %v", tc.date, f.Year, f.ReleaseDate, shifted, err, tc.year, tc.want, tc.shifted)
		}
	}
}

// Duplicates within a file and against the catalogue, across batch borders.
func TestImportDuplicatesAndRejects(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db, func() time.Time { return testNow })
		addFilms(t, s, 0, 1) // "Film 0000" (1950) is already in the catalogue
		var rows []string
		for i := range 20 {
			rows = append(rows, fmt.Sprintf(`{"Title":"Film %04d","Release Date":"%d"}`, 100+i, 1950+i))
		}
		rows[15] = rows[3]                                        // an in-file duplicate, in another batch
		rows[7] = `{"Title":"film 0103","Release Date":"1953"}`   // case differs: another film
		rows[9] = `{"Title":"Film 0000","Release Date":"1950"}`   // already in the catalogue
		rows[11] = `{"Title":null,"Release Date":"1950"}`         // rejected
		rows[12] = `{"Title":"No date","Release Date":"someday"}` // rejected
		file := "[" + strings.Join(rows, ",\n") + "]"

		rep, err := Import(ctx, s, strings.NewReader(file), ImportOptions{BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		want := ImportReport{Rows: 20, Kept: 16, Duplicates: 2, Rejected: []RejectedRow{
			{Index: 11, Reason: "missing title"},
			{Index: 12, Title: "No date", Reason: `unreadable release date "someday"`},
		}}
		if got := fmt.Sprintf("%+v", rep); got != fmt.Sprintf("%+v", want) {
			t.Errorf("report = %s\nwant     %s", got, fmt.Sprintf("%+v", want))
		}
		if n := countFilms(t, db); n != 17 {
			t.Errorf("%d films, want 17", n)
		}
		again, err := Import(ctx, s, strings.NewReader(file), ImportOptions{})
		if err != nil || again.Kept != 0 || again.Duplicates != 18 || countFilms(t, db) != 17 {
			t.Errorf("re-import: %+v, %v; want nothing added, 18 duplicates", again, err)
		}
	})
}

// A file that is not a JSON array of values is refused before anything is
// written.
func TestImportBrokenFileWritesNothing(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	s := NewStore(db, nil)
	good := `{"Title":"A","Release Date":"Jan 01 2000"}`
	for _, tc := range []struct{ name, file string }{
		{"empty", ""},
		{"an object", good},
		{"cut short", "[" + good + ", {\"Title\":"},
		{"unclosed", "[" + good},
		{"trailing data", "[" + good + "] []"},
		{"not JSON", "Title,Year\nA,2000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Import(context.Background(), s, strings.NewReader(tc.file), ImportOptions{}); err == nil {
				t.Error("Import accepted a broken file")
			}
			if n := countFilms(t, db); n != 0 {
				t.Errorf("%d films written from a broken file", n)
			}
		})
	}
}

// BenchmarkParseDemoCatalogue measures reading the 3,201 rows, without the
// database.
func BenchmarkParseDemoCatalogue(b *testing.B) {
	for b.Loop() {
		if _, _, err := parseCatalogue(bytes.NewReader(DemoCatalogue), ImportOptions{CenturyShiftAfter: demoCenturyShiftAfter}, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
