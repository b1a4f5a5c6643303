package films

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// The catalogue fixture: titles, directors and genres chosen to tell the
// search, filter and sort rules apart. Ids follow the order, from 1.
var catalogue = []Film{
	{Title: "Star Wars", Year: 1977, Genre: "Adventure", Director: "George Lucas"},                    // 1
	{Title: "The Empire Strikes Back", Year: 1980, Genre: "Adventure", Director: "Irvin Kershner"},    // 2
	{Title: "Amélie", Year: 2001, Genre: "Comedy", Director: "Jean-Pierre Jeunet"},                    // 3
	{Title: "Schindler's List", Year: 1993, Genre: "Drama", Director: "Steven Spielberg"},             // 4
	{Title: "Jurassic Park", Year: 1993, Genre: "Adventure", Director: "Steven Spielberg"},            // 5
	{Title: "Сталкер", Year: 1979, Genre: "Drama", Director: "Андрей Тарковский"},                     // 6
	{Title: "1776", Year: 1972, Genre: "Musical"},                                                     // 7
	{Title: "Star Trek: The Motion Picture", Year: 1979, Genre: "Adventure", Director: "Robert Wise"}, // 8
	{Title: "starship troopers", Year: 1997, Genre: "Action", Director: "Paul Verhoeven"},             // 9
	{Title: "Heat", Year: 1995, Genre: "Action", Director: "Michael Mann"},                            // 10
	{Title: "The Heat", Year: 2013, Genre: "Comedy", Director: "Paul Feig"},                           // 11
}

// catalogueReviews gives films 1, 3, 4 and 10 reviews: averages 10, 8.5,
// 8.67 and 8.5 — a tie between 3 and 10.
var catalogueReviews = map[int64][]int{1: {10}, 3: {8, 9}, 4: {9, 9, 8}, 10: {9, 8}}

func seedCatalogue(t testing.TB, s *Store) {
	t.Helper()
	if added, err := s.insertFilms(context.Background(), catalogue); err != nil || added != len(catalogue) {
		t.Fatalf("insertFilms = %d, %v", added, err)
	}
	for id, ratings := range catalogueReviews {
		for i, r := range ratings {
			addReview(t, s, id, "user-"+strconv.Itoa(i), r)
		}
	}
}

func TestAPISearchAndFilters(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		for _, tc := range []struct {
			query string
			want  []int64
		}{
			{"q=star", []int64{1, 8, 9}}, // words that begin with "star", case ignored
			{"q=STAR+wars", []int64{1}},
			{"q=wars+star", []int64{1}}, // any order
			{"q=star%20%20wars!", []int64{1}},
			{"q=ars", nil}, // a word must begin with the query word
			{"q=amelie", []int64{3}},
			{"q=Am%C3%A9lie", []int64{3}}, // accents ignored both ways
			{"q=schindlers", []int64{4}},
			{"q=schindler%27s+list", []int64{4}},
			{"q=schindler", []int64{4}},
			{"q=list", []int64{4}},
			{"q=%D1%81%D1%82%D0%B0%D0%BB", []int64{6}},                   // "стал"
			{"q=%D0%A1%D0%A2%D0%90%D0%9B%D0%9A%D0%95%D0%A0", []int64{6}}, // "СТАЛКЕР"
			{"q=177", []int64{7}},
			{"q=trek+motion", []int64{8}},
			{"q=heat", []int64{10, 11}},
			{"q=the+heat", []int64{11}},
			{"q=xyz", nil},
			{"q=+++", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}, // blank: no search
			{"director=spielberg", []int64{4, 5}},
			{"director=Steven+Spielberg", []int64{4, 5}},
			{"director=jean+pierre", []int64{3}},
			{"director=%D1%82%D0%B0%D1%80%D0%BA", []int64{6}}, // "тарк"
			{"director=lucas&q=wars", []int64{1}},
			{"director=lucas&q=trek", nil},
			{"genre=drama", []int64{4, 6}},
			{"genre=DRAMA", []int64{4, 6}},
			{"genre=Western", nil},
			{"year_from=1979&year_to=1993", []int64{2, 4, 5, 6, 8}},
			{"year_from=2000", []int64{3, 11}},
			{"year_to=1972", []int64{7}},
			{"year_from=1993&year_to=1993", []int64{4, 5}},
			{"q=star&year_from=1978", []int64{8, 9}},
			{"genre=adventure&director=spielberg", []int64{5}},
			{"genre=adventure&q=star&sort=-year", []int64{8, 1}},
		} {
			t.Run(tc.query, func(t *testing.T) {
				ids := a.walk(t, "/v1/films?"+tc.query, 2, nil)
				if !slices.Equal(ids, tc.want) {
					t.Errorf("ids %v, want %v", ids, tc.want)
				}
			})
		}
	})
}

// The catalogue fixture in every order, with the reviews of
// catalogueReviews. Equal keys are ordered by id, in the order's direction.
var catalogueOrders = map[string][]int64{
	SortByID:          {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
	SortByTitle:       {7, 3, 10, 5, 4, 8, 1, 9, 2, 11, 6}, // 1776, amelie, heat, … byte order: Cyrillic last
	SortByYear:        {7, 1, 6, 8, 2, 4, 5, 10, 9, 3, 11},
	SortByYearDesc:    {11, 3, 9, 10, 5, 4, 2, 8, 6, 1, 7},
	SortByRatingDesc:  {1, 4, 10, 3, 11, 9, 8, 7, 6, 5, 2}, // 10, 8.67, 8.5, 8.5, then unreviewed
	SortByReviewsDesc: {4, 10, 3, 1, 11, 9, 8, 7, 6, 5, 2},
}

func TestAPISorts(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		for _, sort := range FilmSorts {
			want := catalogueOrders[sort]
			for _, limit := range []int{1, 3, len(want), MaxLimit} {
				t.Run(fmt.Sprintf("%s/limit=%d", sort, limit), func(t *testing.T) {
					if got := a.walk(t, "/v1/films?sort="+url.QueryEscape(sort), limit, nil); !slices.Equal(got, want) {
						t.Errorf("order %v, want %v", got, want)
					}
				})
			}
		}
		// The default order is the catalogue's.
		if got := a.walk(t, "/v1/films", 4, nil); !slices.Equal(got, catalogueOrders[SortByID]) {
			t.Errorf("default order %v", got)
		}
	})
}

// Films added while someone pages: a film that sorts after the position is
// seen once, one before it is not seen, and no film already in the
// catalogue is missed or repeated — in every order.
func TestAPICursorSurvivesInserts(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		for i, sort := range FilmSorts {
			t.Run(sort, func(t *testing.T) {
				// The first page of 4 ends at catalogueOrders[sort][3]; "Aaa"
				// from year 1870 and "Zzz" from next year land at the ends of
				// the title and year orders; unreviewed films land last in the
				// review orders, where higher ids come first.
				early := Film{Title: fmt.Sprintf("Aaa %d", i), Year: 1870}
				late := Film{Title: fmt.Sprintf("Zzz %d", i), Year: 2027}
				var added []int64
				ids := a.walk(t, "/v1/films?sort="+url.QueryEscape(sort), 4, func(page int) {
					if page != 0 {
						return
					}
					for _, f := range []Film{early, late} {
						created, err := a.store.CreateFilm(context.Background(), f)
						if err != nil {
							t.Fatal(err)
						}
						added = append(added, created.ID)
					}
				})
				seen := map[int64]int{}
				for _, id := range ids {
					seen[id]++
				}
				for id := int64(1); id <= int64(len(catalogue)); id++ {
					if seen[id] != 1 {
						t.Errorf("film %d seen %d times", id, seen[id])
					}
				}
				for id, n := range seen {
					if n > 1 {
						t.Errorf("film %d seen %d times", id, n)
					}
				}
				// Where the new films must (not) appear, order by order.
				want := map[string]struct{ early, late bool }{
					SortByID:          {true, true},  // new ids come last
					SortByTitle:       {false, true}, // "aaa" sorts before the position, "zzz" after
					SortByYear:        {false, true},
					SortByYearDesc:    {true, false},
					SortByRatingDesc:  {true, true}, // unreviewed: after every reviewed film
					SortByReviewsDesc: {true, true},
				}[sort]
				wantEarly, wantLate := want.early, want.late
				if (seen[added[0]] == 1) != wantEarly || (seen[added[1]] == 1) != wantLate {
					t.Errorf("new films seen: early %v (want %v), late %v (want %v); walk %v",
						seen[added[0]] == 1, wantEarly, seen[added[1]] == 1, wantLate, ids)
				}
				for _, id := range added {
					if err := a.store.DeleteFilm(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	})
}

func TestAPIFilmListCursorEdges(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		first := func(query string) pageJSON { return a.do("GET", "/v1/films?"+query).page(t) }

		// Last page: exactly the remaining films, no cursor; an exact fit
		// does not leave an empty page behind.
		p := first("sort=title&limit=10")
		last := a.do("GET", "/v1/films?sort=title&limit=10&cursor="+url.QueryEscape(*p.NextCursor)).page(t)
		if len(last.Items) != 1 || last.NextCursor != nil || last.Items[0]["id"] != 6.0 {
			t.Errorf("last page: %+v", last)
		}
		if p := first("sort=title&limit=11"); len(p.Items) != 11 || p.NextCursor != nil {
			t.Errorf("exact fit: %d items, cursor %v", len(p.Items), p.NextCursor)
		}
		// Empty result: [] and null.
		if p := first("q=nothing+like+this"); len(p.Items) != 0 || p.NextCursor != nil {
			t.Errorf("empty result: %+v", p)
		}
		// A cursor past the end of its order: an empty last page.
		end := Cursor{Sort: SortByYear, Key: "3000", ID: 1}.Encode()
		if p := first("sort=year&cursor=" + end); len(p.Items) != 0 || p.NextCursor != nil {
			t.Errorf("past the end: %+v", p)
		}

		// A cursor is valid only for its order and filters.
		cursorOf := func(query string) string {
			t.Helper()
			p := first(query + "&limit=1")
			if p.NextCursor == nil {
				t.Fatalf("%s: no cursor", query)
			}
			return url.QueryEscape(*p.NextCursor)
		}
		titleCursor, starCursor, dramaCursor := cursorOf("sort=title"), cursorOf("q=star"), cursorOf("genre=Drama&sort=-year")
		for _, tc := range []struct {
			query  string
			fields []string
		}{
			{"sort=year&cursor=" + titleCursor, []string{"cursor"}},
			{"cursor=" + titleCursor, []string{"cursor"}},
			{"sort=title&q=star&cursor=" + titleCursor, []string{"cursor"}},
			{"q=wars&cursor=" + starCursor, []string{"cursor"}},
			{"cursor=" + starCursor, []string{"cursor"}},
			{"sort=-year&cursor=" + dramaCursor, []string{"cursor"}},
			{"sort=-year&genre=Comedy&cursor=" + dramaCursor, []string{"cursor"}},
			{"sort=-year&genre=drama&year_from=1900&cursor=" + dramaCursor, []string{"cursor"}},
			{"sort=year&cursor=" + base64URL(`{"s":"year","k":"nineteen","i":3}`), []string{"cursor"}},
			{"sort=-reviews&cursor=" + base64URL(`{"s":"-reviews","i":3}`), []string{"cursor"}},
			{"sort=price", []string{"sort"}},
			{"sort=-title", []string{"sort"}},
			{"sort=price&cursor=" + titleCursor, []string{"sort"}}, // the cursor is not judged against a bad order
			{"year_from=abc", []string{"year_from"}},
			{"year_from=1990&year_to=1980", []string{"year_to"}},
			{"year_to=0", []string{"year_to"}},
			{"q=%21%21%21", []string{"q"}},
			{"q=" + url.QueryEscape(strAt(201)), []string{"q"}},
			{"q=a+b+c+d+e+f+g+h+i+j+k", []string{"q"}},
			{"director=%2A", []string{"director"}},
			{"genre=" + strAt(51), []string{"genre"}},
			{"limit=0&sort=price&year_from=x", []string{"limit", "sort", "year_from"}},
		} {
			t.Run(tc.query, func(t *testing.T) {
				if got := a.do("GET", "/v1/films?"+tc.query).problem(t, http.StatusBadRequest); !slices.Equal(got, tc.fields) {
					t.Errorf("invalid fields %v, want %v", got, tc.fields)
				}
			})
		}
		// The same filters spelled differently keep their cursor.
		if r := a.do("GET", "/v1/films?sort=-year&genre=DRAMA&cursor="+dramaCursor); r.status != http.StatusOK {
			t.Errorf("genre in capitals with its cursor: %d %s", r.status, r.body)
		}
	})
}

func strAt(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

func TestAPIGenres(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		if got := string(a.do("GET", "/v1/genres").body); got != `{"items":[]}`+"\n" {
			t.Errorf("no genres: %s", got)
		}
		seedCatalogue(t, a.store)
		admin := bearer(a.auth.token(t, "root", RoleAdmin))
		if r := a.doJSON("POST", "/v1/genres", `{"name":"  Film   Noir "}`, admin...); r.status != http.StatusCreated || string(r.body) != `{"name":"Film Noir","film_count":0}`+"\n" {
			t.Errorf("POST /v1/genres: %d %s", r.status, r.body)
		}
		want := `{"items":[{"name":"Action","film_count":2},{"name":"Adventure","film_count":4},{"name":"Comedy","film_count":2},` +
			`{"name":"Drama","film_count":2},{"name":"Film Noir","film_count":0},{"name":"Musical","film_count":1}]}` + "\n"
		if got := string(a.do("GET", "/v1/genres").body); got != want {
			t.Errorf("genres:\n got %s\nwant %s", got, want)
		}
		// Genres are one per name, whatever the case or accents.
		for _, body := range []string{`{"name":"drama"}`, `{"name":"FILM NOIR"}`} {
			a.doJSON("POST", "/v1/genres", body, admin...).problem(t, http.StatusConflict)
		}
		for _, body := range []string{`{"name":""}`, `{"name":"   "}`, `{"name":"` + strAt(51) + `"}`, `{"name":"a\u0007b"}`} {
			if got := a.doJSON("POST", "/v1/genres", body, admin...).problem(t, http.StatusBadRequest); !slices.Equal(got, []string{"name"}) {
				t.Errorf("%s: fields %v", body, got)
			}
		}
		a.doJSON("POST", "/v1/genres", `{"name":"Western"}`, bearer(a.auth.token(t, "u1"))...).problem(t, http.StatusForbidden)
		a.doJSON("POST", "/v1/genres", `{"name":"Western"}`).problem(t, http.StatusUnauthorized)
	})
}
