package films

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

type reviewJSON struct {
	UserID    string                    `json:"user_id"`
	Author    struct{ ID, Name string } `json:"author"`
	Rating    int                       `json:"rating"`
	Text      string                    `json:"text"`
	CreatedAt time.Time                 `json:"created_at"`
	UpdatedAt time.Time                 `json:"updated_at"`
}

type reviewPageJSON struct {
	Items      []reviewJSON `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func (r response) reviewPage(t testing.TB) reviewPageJSON {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var p reviewPageJSON
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return p
}

// reviewers walks a film's reviews with limit and returns the user ids.
func (a *api) reviewers(t testing.TB, filmID, limit int) []string {
	t.Helper()
	var users []string
	cursor := ""
	for range 1000 {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p := a.do("GET", fmt.Sprintf("/v1/films/%d/reviews?%s", filmID, q.Encode())).reviewPage(t)
		for _, r := range p.Items {
			users = append(users, r.UserID)
		}
		if p.NextCursor == nil {
			return users
		}
		cursor = *p.NextCursor
	}
	t.Fatal("paging does not end")
	return nil
}

func (a *api) film(t testing.TB, id int) filmResponse {
	t.Helper()
	r := a.do("GET", fmt.Sprintf("/v1/films/%d", id))
	var f filmResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &f) != nil {
		t.Fatalf("GET film %d: %d %s", id, r.status, r.body)
	}
	return f
}

func TestAPIReviews(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 3)
		var tick atomic.Int64 // the store's clock moves a second per write
		a.store.now = func() time.Time { return testNow.Add(time.Duration(tick.Add(1)) * time.Second) }
		alice, bob, carol := bearer(a.auth.token(t, "alice")), bearer(a.auth.token(t, "bob")), bearer(a.auth.token(t, "carol"))

		if p := a.do("GET", "/v1/films/1/reviews").reviewPage(t); len(p.Items) != 0 || p.NextCursor != nil {
			t.Errorf("no reviews: %+v", p)
		}
		r := a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":7,"text":"  Slow,\nbut worth it.  "}`, alice...)
		var first reviewJSON
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &first) != nil || first.UserID != "alice" || first.Rating != 7 ||
			first.Text != "Slow,\nbut worth it." || !first.CreatedAt.Equal(first.UpdatedAt) {
			t.Fatalf("first PUT: %d %s", r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("PUT review Cache-Control %q", cc)
		}
		a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":10}`, bob...)
		a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":2,"text":"No."}`, carol...)
		if f := a.film(t, 1); f.ReviewCount != 3 || f.AverageRating == nil || *f.AverageRating != 6.33 {
			t.Errorf("film 1 after three reviews: %d, %v", f.ReviewCount, f.AverageRating)
		}
		if got := a.reviewers(t, 1, 2); !slices.Equal(got, []string{"carol", "bob", "alice"}) {
			t.Errorf("newest first: %v", got)
		}

		// Writing again replaces: one review per user, created_at kept, on top.
		r = a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":9}`, alice...)
		var again reviewJSON
		if r.status != http.StatusOK || json.Unmarshal(r.body, &again) != nil || again.Rating != 9 || again.Text != "" ||
			!again.CreatedAt.Equal(first.CreatedAt) || !again.UpdatedAt.After(first.UpdatedAt) {
			t.Errorf("replacing PUT: %d %s (first %+v)", r.status, r.body, first)
		}
		if got := a.reviewers(t, 1, 1); !slices.Equal(got, []string{"alice", "carol", "bob"}) {
			t.Errorf("after alice's rewrite: %v", got)
		}
		if f := a.film(t, 1); f.ReviewCount != 3 || *f.AverageRating != 7 {
			t.Errorf("film 1 after the rewrite: %d, %v", f.ReviewCount, *f.AverageRating)
		}

		// DELETE is idempotent; the aggregate follows; no reviews → null.
		for range 2 {
			if r := a.do("DELETE", "/v1/films/1/reviews/me", carol...); r.status != http.StatusNoContent {
				t.Errorf("DELETE: %d %s", r.status, r.body)
			}
		}
		if f := a.film(t, 1); f.ReviewCount != 2 || *f.AverageRating != 9.5 {
			t.Errorf("film 1 after carol's delete: %d, %v", f.ReviewCount, *f.AverageRating)
		}
		a.do("DELETE", "/v1/films/1/reviews/me", alice...)
		a.do("DELETE", "/v1/films/1/reviews/me", bob...)
		if f := a.film(t, 1); f.ReviewCount != 0 || f.AverageRating != nil {
			t.Errorf("film 1 without reviews: %d, %v", f.ReviewCount, f.AverageRating)
		}

		// Unknown films.
		a.doJSON("PUT", "/v1/films/99/reviews/me", `{"rating":5}`, alice...).problem(t, http.StatusNotFound)
		a.do("DELETE", "/v1/films/99/reviews/me", alice...).problem(t, http.StatusNotFound)
		a.do("GET", "/v1/films/99/reviews").problem(t, http.StatusNotFound)
		if got := a.do("GET", "/v1/films/x/reviews").problem(t, http.StatusBadRequest); !slices.Equal(got, []string{"id"}) {
			t.Errorf("bad id: %v", got)
		}

		long := strings.Repeat("ё", MaxReviewText)
		if r := a.doJSON("PUT", "/v1/films/2/reviews/me", `{"rating":1,"text":"`+long+`"}`, alice...); r.status != http.StatusCreated {
			t.Errorf("5000 characters of text: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			body   string
			fields []string
		}{
			{`{}`, []string{"rating"}},
			{`{"text":"great"}`, []string{"rating"}},
			{`{"rating":0}`, []string{"rating"}},
			{`{"rating":11}`, []string{"rating"}},
			{`{"rating":7.5}`, []string{"rating"}},
			{`{"rating":"7"}`, []string{"rating"}},
			{`{"rating":null}`, []string{"rating"}},
			{`{"rating":5,"text":"` + long + `x"}`, []string{"text"}},
			{`{"rating":5,"text":"bell\u0007"}`, []string{"text"}},
			{`{"rating":0,"text":"` + long + `x"}`, []string{"rating", "text"}},
		} {
			if got := a.doJSON("PUT", "/v1/films/3/reviews/me", tc.body, alice...).problem(t, http.StatusBadRequest); !slices.Equal(got, tc.fields) {
				t.Errorf("%.40s: fields %v, want %v", tc.body, got, tc.fields)
			}
		}
		a.doJSON("PUT", "/v1/films/3/reviews/me", `{"rating":5,"stars":5}`, alice...).problem(t, http.StatusBadRequest)
		if f := a.film(t, 3); f.ReviewCount != 0 {
			t.Errorf("refused reviews were counted: %d", f.ReviewCount)
		}
	})
}

func TestAPIReviewPaging(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 2)
		var want []string
		for i := range 7 {
			user := fmt.Sprintf("user-%d", i)
			addReview(t, a.store, 1, user, i%10+1)
			want = append([]string{user}, want...)
		}
		for _, limit := range []int{1, 3, 7, 100} {
			if got := a.reviewers(t, 1, limit); !slices.Equal(got, want) {
				t.Errorf("limit %d: %v, want %v", limit, got, want)
			}
		}
		// A review written between two pages lands on top: not seen, and
		// nothing repeats.
		p := a.do("GET", "/v1/films/1/reviews?limit=3").reviewPage(t)
		addReview(t, a.store, 1, "late", 5)
		rest := a.do("GET", "/v1/films/1/reviews?limit=10&cursor="+url.QueryEscape(*p.NextCursor)).reviewPage(t)
		if len(p.Items)+len(rest.Items) != 7 || rest.NextCursor != nil || rest.Items[0].UserID != want[3] {
			t.Errorf("pages around an insert: %+v then %+v", p.Items, rest.Items)
		}
		// A cursor belongs to its film and to the review order.
		a.do("GET", "/v1/films/2/reviews?cursor="+url.QueryEscape(*p.NextCursor)).problem(t, http.StatusBadRequest)
		a.do("GET", "/v1/films?cursor="+url.QueryEscape(*p.NextCursor)).problem(t, http.StatusBadRequest)
		a.do("GET", "/v1/films/1/reviews?cursor=nope!").problem(t, http.StatusBadRequest)
		a.do("GET", "/v1/films/1/reviews?sort=-rating").problem(t, http.StatusBadRequest)
		a.do("GET", "/v1/films/1/reviews?limit=101").problem(t, http.StatusBadRequest)
	})
}

// Many users review one film at once, some twice, some deleting: the
// film's count and average are exactly those of the reviews left.
func TestAPIConcurrentReviewsKeepTheAggregateExact(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 1)
		const users = 40
		tokens := make([][]string, users)
		for i := range tokens {
			tokens[i] = bearer(a.auth.token(t, fmt.Sprintf("user-%02d", i)))
		}
		// One request first, so the JWK set is fetched before the burst:
		// internal/tokens answers 401 to tokens that arrive while the first
		// fetch is in flight (reported to its owner).
		if r := a.do("GET", "/v1/me/favorites", tokens[0]...); r.status != http.StatusOK {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
		var (
			wg     sync.WaitGroup
			failed atomic.Int64
		)
		start := make(chan struct{})
		for i := range users {
			wg.Go(func() {
				<-start
				do := func(method, body string) {
					r := a.doJSON(method, "/v1/films/1/reviews/me", body, tokens[i]...)
					if r.status >= 300 {
						failed.Add(1)
						t.Errorf("user %d %s: %d %s", i, method, r.status, r.body)
					}
				}
				do("PUT", fmt.Sprintf(`{"rating":%d}`, (i%10)+1))
				do("PUT", fmt.Sprintf(`{"rating":%d}`, ((i+3)%10)+1)) // replace
				if i%4 == 0 {
					do("DELETE", "")
				}
			})
		}
		close(start)
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}
		wantCount, wantSum := 0, 0
		for i := range users {
			if i%4 != 0 {
				wantCount++
				wantSum += ((i + 3) % 10) + 1
			}
		}
		f, err := a.store.Film(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if f.ReviewCount != wantCount || f.RatingSum != wantSum {
			t.Errorf("aggregate: %d reviews, sum %d; want %d, %d", f.ReviewCount, f.RatingSum, wantCount, wantSum)
		}
		var count, sum, key int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*), SUM(rating) FROM reviews WHERE film_id = 1`).Scan(&count, &sum); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(context.Background(), `SELECT rating_key FROM films WHERE id = 1`).Scan(&key); err != nil {
			t.Fatal(err)
		}
		if count != wantCount || sum != wantSum || key != ratingKey(wantSum, wantCount) {
			t.Errorf("reviews table: %d, sum %d, key %d", count, sum, key)
		}
		// The HTTP answer is the exact figure, not a cached one.
		if got := a.film(t, 1); got.ReviewCount != wantCount || *got.AverageRating != float64(int(float64(wantSum)/float64(wantCount)*100+0.5))/100 {
			t.Errorf("GET film: %d, %v", got.ReviewCount, *got.AverageRating)
		}
		if got := a.reviewers(t, 1, 7); len(got) != wantCount {
			t.Errorf("%d reviews listed, want %d", len(got), wantCount)
		}
	})
}
