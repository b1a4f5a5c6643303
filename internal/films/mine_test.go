package films

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// code is a problem answer's code.
func (r response) code(t testing.TB) string {
	t.Helper()
	var p struct{ Code string }
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return p.Code
}

// A client showing one film reads the caller's own review and favourite
// state in one request each, however many reviews and favourites there are.
func TestAPIOwnReviewAndFavorite(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 3)
		alice, bob := bearer(a.auth.token(t, "alice")), bearer(a.auth.token(t, "bob"))

		r := a.do("GET", "/v1/films/1/reviews/me", alice...)
		r.problem(t, http.StatusNotFound)
		if c := r.code(t); c != "review_not_found" {
			t.Errorf("no review: code %q", c)
		}
		if c := a.do("GET", "/v1/films/99/reviews/me", alice...).code(t); c != "film_not_found" {
			t.Errorf("no film: code %q", c)
		}
		a.do("GET", "/v1/films/1/reviews/me").problem(t, http.StatusUnauthorized)
		a.do("GET", "/v1/films/x/reviews/me", alice...).problem(t, http.StatusBadRequest)

		a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":8,"text":"Mine."}`, alice...)
		a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":3}`, bob...)
		r = a.do("GET", "/v1/films/1/reviews/me", alice...)
		var mine reviewJSON
		if r.status != http.StatusOK || json.Unmarshal(r.body, &mine) != nil || mine.UserID != "alice" || mine.Rating != 8 || mine.Text != "Mine." || mine.Author.ID != "alice" {
			t.Fatalf("alice's review: %d %s", r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("own review Cache-Control %q", cc)
		}

		r = a.do("GET", "/v1/me/favorites/2", alice...)
		r.problem(t, http.StatusNotFound)
		if c := r.code(t); c != "not_a_favorite" {
			t.Errorf("not a favourite: code %q", c)
		}
		a.do("PUT", "/v1/me/favorites/2", alice...)
		if r := a.do("GET", "/v1/me/favorites/2", alice...); r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
			t.Errorf("a favourite: %d %q", r.status, r.header.Get("Cache-Control"))
		}
		a.do("GET", "/v1/me/favorites/2", bob...).problem(t, http.StatusNotFound)
		a.do("GET", "/v1/me/favorites/99", alice...).problem(t, http.StatusNotFound)
		a.do("GET", "/v1/me/favorites/2").problem(t, http.StatusUnauthorized)
		a.do("DELETE", "/v1/me/favorites/2", alice...)
		a.do("GET", "/v1/me/favorites/2", alice...).problem(t, http.StatusNotFound)
	})
}
