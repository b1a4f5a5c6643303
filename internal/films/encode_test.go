package films

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// The hand-written encoder must give encoding/json's bytes (and so the same
// ETags) for every film of the demo catalogue, on both engines, one by one
// and as pages, with review aggregates of every shape: as the API answers
// them, with the read cache off and on.
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
		auth := newAuthServer(t)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		handlers := map[string]http.Handler{
			"cache off": apiOnly(routes(log, store, auth.verifier(), 0, nil)),
			"cache on":  apiOnly(routes(log, store, auth.verifier(), time.Hour, nil)),
		}
		check := func(path string, want []byte) {
			t.Helper()
			for name, h := range handlers {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
				if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), want) {
					t.Fatalf("%s: GET %s: %d\n got %s\nwant %s", name, path, w.Code, w.Body, want)
				}
				if etag := w.Header().Get("ETag"); etag != etagOf(want) {
					t.Fatalf("%s: GET %s: ETag %s, want %s", name, path, etag, etagOf(want))
				}
			}
		}
		films, cursor := 0, ""
		for {
			q := FilmQuery{Limit: 100, Sort: SortByID}
			path := "/v1/films?limit=100"
			if cursor != "" {
				var err error
				if q.After, err = ParseCursor(cursor, SortByID, ""); err != nil {
					t.Fatal(err)
				}
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			page, err := store.Films(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := encode(newPageResponse(page))
			if err != nil {
				t.Fatal(err)
			}
			check(path, want)
			for _, f := range page.Items {
				films++
				want, err := encode(newFilmResponse(f))
				if err != nil {
					t.Fatal(err)
				}
				check("/v1/films/"+strconv.FormatInt(f.ID, 10), want)
			}
			if page.Next == nil {
				break
			}
			cursor = page.Next.Encode()
		}
		if films != demoKept {
			t.Errorf("compared %d films, want the demo catalogue's %d", films, demoKept)
		}
	})
}

// Without the cache, answer buffers are reused once written: concurrent
// requests must still each get their own bytes.
func TestUncachedAnswersUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	store := NewStore(sqldbtest.SQLite(t, Migrations), nil)
	if _, _, err := SeedDemo(ctx, store); err != nil {
		t.Fatal(err)
	}
	h := apiOnly(routes(slog.New(slog.NewTextHandler(io.Discard, nil)), store, newAuthServer(t).verifier(), 0, nil))
	get := func(path string) []byte {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	paths := []string{"/v1/films?limit=100", "/v1/films?limit=3&sort=title", "/v1/films?limit=50&sort=-year"}
	for id := 1; id <= 40; id++ {
		paths = append(paths, "/v1/films/"+strconv.Itoa(id*79))
	}
	want := map[string][]byte{}
	for _, p := range paths {
		want[p] = bytes.Clone(get(p))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				p := paths[(g*31+i*7)%len(paths)]
				if got := get(p); !bytes.Equal(got, want[p]) {
					t.Errorf("GET %s:\n got %s\nwant %s", p, got, want[p])
					return
				}
			}
		})
	}
	wg.Wait()
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
