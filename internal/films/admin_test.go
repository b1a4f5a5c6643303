package films

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// Who may call what: no token → 401 on every non-public route, a user's
// token → 403 on the admin routes, an admin's token → through.
func TestAPIRoles(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	seedCatalogue(t, a.store)
	user, admin := bearer(a.auth.token(t, "u1", "user")), bearer(a.auth.token(t, "root", "user", RoleAdmin))
	adminRoutes := []struct{ method, path, body string }{
		{"POST", "/v1/films", `{"title":"New","year":2000}`},
		{"PATCH", "/v1/films/2", `{"runtime_min":124}`},
		{"POST", "/v1/genres", `{"name":"Western"}`},
		{"DELETE", "/v1/films/3", ``},
	}
	personalRoutes := []struct{ method, path, body string }{
		{"PUT", "/v1/films/1/reviews/me", `{"rating":7}`},
		{"DELETE", "/v1/films/1/reviews/me", ``},
		{"GET", "/v1/me/favorites", ``},
		{"PUT", "/v1/me/favorites/1", ``},
		{"DELETE", "/v1/me/favorites/1", ``},
	}
	for _, rt := range append(adminRoutes, personalRoutes...) {
		a.doJSON(rt.method, rt.path, rt.body).problem(t, http.StatusUnauthorized)
	}
	for _, rt := range adminRoutes {
		r := a.doJSON(rt.method, rt.path, rt.body, user...)
		if fields := r.problem(t, http.StatusForbidden); fields != nil || !strings.Contains(string(r.body), "admin_only") {
			t.Errorf("%s %s as a user: %s", rt.method, rt.path, r.body)
		}
	}
	for _, rt := range personalRoutes {
		if r := a.doJSON(rt.method, rt.path, rt.body, user...); r.status >= 300 {
			t.Errorf("%s %s as a user: %d %s", rt.method, rt.path, r.status, r.body)
		}
	}
	for _, rt := range adminRoutes {
		if r := a.doJSON(rt.method, rt.path, rt.body, admin...); r.status >= 300 {
			t.Errorf("%s %s as an admin: %d %s", rt.method, rt.path, r.status, r.body)
		}
	}
	// Nothing the user tried changed the catalogue; the admin's calls did.
	if n := countFilms(t, db); n != len(catalogue) { // one created, one deleted
		t.Errorf("%d films, want %d", n, len(catalogue))
	}
}

func TestAPIFilmCreate(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		admin := bearer(a.auth.token(t, "root", RoleAdmin))

		body := `{"title":"  Heat  2 ","year":2027,"release_date":"2027-01-15","genre":"action","director":"Michael Mann",
			"runtime_min":150,"mpaa_rating":"R","imdb_rating":7.95}`
		r := a.doJSON("POST", "/v1/films", body, admin...)
		if r.status != http.StatusCreated || r.header.Get("Location") != "/v1/films/12" {
			t.Fatalf("POST: %d %q %s", r.status, r.header.Get("Location"), r.body)
		}
		stamp := testNow.Format("2006-01-02T15:04:05Z")
		want := `{"id":12,"title":"Heat 2","year":2027,"release_date":"2027-01-15","genre":"Action","director":"Michael Mann",` +
			`"runtime_min":150,"mpaa_rating":"R","imdb_rating":8,"average_rating":null,"review_count":0,` +
			`"created_at":"` + stamp + `","updated_at":"` + stamp + `"}` + "\n"
		if string(r.body) != want {
			t.Errorf("created:\n got %s\nwant %s", r.body, want)
		}
		if got := a.do("GET", "/v1/films/12"); string(got.body) != want {
			t.Errorf("GET after POST: %s", got.body)
		}
		if ids := a.walk(t, "/v1/films?q=heat", 10, nil); !slices.Equal(ids, []int64{10, 11, 12}) {
			t.Errorf("search after POST: %v", ids)
		}
		// Only title and year are required.
		if r := a.doJSON("POST", "/v1/films", `{"title":"Bare","year":1870}`, admin...); r.status != http.StatusCreated {
			t.Errorf("minimal film: %d %s", r.status, r.body)
		}
		a.doJSON("POST", "/v1/films", `{"title":"Heat 2","year":2027}`, admin...).problem(t, http.StatusConflict)

		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"empty object", `{}`, []string{"title", "year"}},
			{"no year", `{"title":"X"}`, []string{"year"}},
			{"blank title", `{"title":"   ","year":2000}`, []string{"title"}},
			{"title of 301", `{"title":"` + strAt(301) + `","year":2000}`, []string{"title"}},
			{"title with NUL", `{"title":"a\u0000b","year":2000}`, []string{"title"}},
			{"title a number", `{"title":1776,"year":2000}`, []string{"title"}},
			{"title null", `{"title":null,"year":2000}`, []string{"title"}},
			{"year 1869", `{"title":"X","year":1869}`, []string{"year"}},
			{"year after next", `{"title":"X","year":2028}`, []string{"year"}},
			{"year fractional", `{"title":"X","year":1999.5}`, []string{"year"}},
			{"year a string", `{"title":"X","year":"1999"}`, []string{"year"}},
			{"runtime 0", `{"title":"X","year":2000,"runtime_min":0}`, []string{"runtime_min"}},
			{"runtime 1001", `{"title":"X","year":2000,"runtime_min":1001}`, []string{"runtime_min"}},
			{"runtime 90.5", `{"title":"X","year":2000,"runtime_min":90.5}`, []string{"runtime_min"}},
			{"imdb 0", `{"title":"X","year":2000,"imdb_rating":0}`, []string{"imdb_rating"}},
			{"imdb 10.5", `{"title":"X","year":2000,"imdb_rating":10.5}`, []string{"imdb_rating"}},
			{"date format", `{"title":"X","year":2000,"release_date":"15/01/2000"}`, []string{"release_date"}},
			{"date in another year", `{"title":"X","year":2000,"release_date":"2001-01-01"}`, []string{"release_date"}},
			{"unknown genre", `{"title":"X","year":2000,"genre":"Western"}`, []string{"genre"}},
			{"long director", `{"title":"X","year":2000,"director":"` + strAt(201) + `"}`, []string{"director"}},
			{"unknown field", `{"title":"X","year":2000,"rating":5}`, []string{"rating"}},
			{"all at once", `{"title":"","year":1,"runtime_min":-1,"imdb_rating":"high","colour":true}`,
				[]string{"colour", "title", "runtime_min", "imdb_rating", "year"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := a.doJSON("POST", "/v1/films", tc.body, admin...).problem(t, http.StatusBadRequest); !slices.Equal(got, tc.fields) {
					t.Errorf("fields %v, want %v", got, tc.fields)
				}
			})
		}
		for _, body := range []string{``, `[]`, `null`, `{"title":"X",`, `"x"`} {
			a.doJSON("POST", "/v1/films", body, admin...).problem(t, http.StatusBadRequest)
		}
		// A new genre is created on purpose, then films may use it.
		a.doJSON("POST", "/v1/genres", `{"name":"Western"}`, admin...)
		if r := a.doJSON("POST", "/v1/films", `{"title":"X","year":2000,"genre":"western"}`, admin...); r.status != http.StatusCreated || !strings.Contains(string(r.body), `"genre":"Western"`) {
			t.Errorf("film of a new genre: %d %s", r.status, r.body)
		}
		if n := countFilms(t, db); n != len(catalogue)+3 {
			t.Errorf("%d films, want %d", n, len(catalogue)+3)
		}
	})
}

func TestAPIFilmPatchAndDelete(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		seedCatalogue(t, a.store)
		admin := bearer(a.auth.token(t, "root", RoleAdmin))
		get := func(id string) map[string]any {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal(a.do("GET", "/v1/films/"+id).body, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		before := a.do("GET", "/v1/films/10")

		// Rename "Heat", give it a date, clear its director: one patch.
		r := a.doJSON("PATCH", "/v1/films/10", `{"title":"Collateral","release_date":"1995-12-15","director":null}`, admin...)
		if r.status != http.StatusOK {
			t.Fatalf("PATCH: %d %s", r.status, r.body)
		}
		f := get("10")
		if f["title"] != "Collateral" || f["release_date"] != "1995-12-15" || f["director"] != nil || f["genre"] != "Action" || f["year"] != 1995.0 || f["review_count"] != 2.0 {
			t.Errorf("after PATCH: %v", f)
		}
		if before.header.Get("ETag") == a.do("GET", "/v1/films/10").header.Get("ETag") {
			t.Error("the film's ETag did not change with it")
		}
		// The search index and the title order follow the new title.
		if ids := a.walk(t, "/v1/films?q=heat", 10, nil); !slices.Equal(ids, []int64{11}) {
			t.Errorf("q=heat after the rename: %v", ids)
		}
		if ids := a.walk(t, "/v1/films?q=collateral", 10, nil); !slices.Equal(ids, []int64{10}) {
			t.Errorf("q=collateral: %v", ids)
		}
		if ids := a.walk(t, "/v1/films?director=mann", 10, nil); len(ids) != 0 {
			t.Errorf("director=mann after clearing it: %v", ids)
		}
		if ids := a.walk(t, "/v1/films?sort=title", 3, nil); !slices.Equal(ids[:3], []int64{7, 3, 10}) {
			t.Errorf("title order after the rename: %v", ids)
		}
		// merge-patch+json is the patch's own media type.
		req := a.doJSONType("PATCH", "/v1/films/10", "application/merge-patch+json", `{"runtime_min":120}`, admin...)
		if req.status != http.StatusOK || get("10")["runtime_min"] != 120.0 {
			t.Errorf("merge-patch+json: %d %s", req.status, req.body)
		}
		// Year and date must agree, whichever the patch touches.
		if got := a.doJSON("PATCH", "/v1/films/10", `{"year":1996}`, admin...).problem(t, http.StatusBadRequest); !slices.Equal(got, []string{"release_date"}) {
			t.Errorf("year away from the date: %v", got)
		}
		if r := a.doJSON("PATCH", "/v1/films/10", `{"year":1996,"release_date":"1996-02-01"}`, admin...); r.status != http.StatusOK {
			t.Errorf("year and date together: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			body   string
			fields []string
		}{
			{`{"title":null}`, []string{"title"}},
			{`{"year":null}`, []string{"year"}},
			{`{"genre":"Western"}`, []string{"genre"}},
			{`{"id":3}`, []string{"id"}},
			{`{"runtime_min":0,"imdb_rating":11}`, []string{"runtime_min", "imdb_rating"}},
		} {
			if got := a.doJSON("PATCH", "/v1/films/10", tc.body, admin...).problem(t, http.StatusBadRequest); !slices.Equal(got, tc.fields) {
				t.Errorf("PATCH %s: fields %v, want %v", tc.body, got, tc.fields)
			}
		}
		// Renaming onto another film's (title, year) is a conflict.
		a.doJSON("PATCH", "/v1/films/5", `{"title":"Schindler's List"}`, admin...).problem(t, http.StatusConflict)
		a.doJSON("PATCH", "/v1/films/99", `{"title":"X"}`, admin...).problem(t, http.StatusNotFound)
		if f := get("5"); f["title"] != "Jurassic Park" {
			t.Errorf("a refused patch changed the film: %v", f)
		}

		// DELETE takes the film's reviews and favourite marks with it.
		user := bearer(a.auth.token(t, "fan"))
		a.do("PUT", "/v1/me/favorites/4", user...)
		if r := a.do("DELETE", "/v1/films/4", admin...); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		a.do("GET", "/v1/films/4").problem(t, http.StatusNotFound)
		a.do("GET", "/v1/films/4/reviews").problem(t, http.StatusNotFound)
		a.do("DELETE", "/v1/films/4", admin...).problem(t, http.StatusNotFound)
		if ids := a.walk(t, "/v1/films?q=schindler", 10, nil); len(ids) != 0 {
			t.Errorf("a deleted film is still found: %v", ids)
		}
		if ids := a.walk(t, "/v1/me/favorites", 10, nil, user...); len(ids) != 0 {
			t.Errorf("a deleted film is still a favourite: %v", ids)
		}
		var reviews int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM reviews WHERE film_id = 4`).Scan(&reviews); err != nil || reviews != 0 {
			t.Errorf("%d reviews of the deleted film left (%v)", reviews, err)
		}
		checkSearchIndex(t, db)
	})
}

// doJSONType is doJSON with another Content-Type.
func (a *api) doJSONType(method, path, contentType, body string, headers ...string) response {
	a.t.Helper()
	return a.doJSON(method, path, body, append([]string{"Content-Type", contentType}, headers...)...)
}
