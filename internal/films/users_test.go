package films

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

func apply(t *testing.T, s *Store, e events.UserEvent) bool {
	t.Helper()
	changed, err := s.ApplyUserEvent(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func renamed(id, name string, v int64) events.UserEvent {
	return events.UserEvent{Type: events.TypeUserUpdated, ID: id, Name: name, Version: v}
}

func deleted(id string, v int64) events.UserEvent {
	return events.UserEvent{Type: events.TypeUserDeleted, ID: id, Version: v}
}

// Reviews show their author's name from the users topic, the default
// before films heard of it; an event applies only when newer, so a
// re-delivered or late one changes nothing; a deletion takes the account's
// reviews and favourites, fixes the aggregates, refuses its token and
// survives any later update.
func TestUserEventsKeepFilmsCopy(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 2)
		anna, bob := bearer(a.auth.token(t, "anna")), bearer(a.auth.token(t, "bob"))
		for _, put := range []struct {
			tok    []string
			film   int
			rating int
		}{{anna, 1, 9}, {anna, 2, 3}, {bob, 1, 5}} {
			if r := a.doJSON("PUT", fmt.Sprintf("/v1/films/%d/reviews/me", put.film), fmt.Sprintf(`{"rating":%d}`, put.rating), put.tok...); r.status != http.StatusCreated {
				t.Fatalf("review: %d %s", r.status, r.body)
			}
		}
		if r := a.do("PUT", "/v1/me/favorites/1", anna...); r.status != http.StatusNoContent {
			t.Fatalf("favourite: %d %s", r.status, r.body)
		}
		names := func() map[string]string {
			out := map[string]string{}
			for _, r := range a.do("GET", "/v1/films/1/reviews").reviewPage(t).Items {
				if r.Author.ID != r.UserID {
					t.Errorf("author id %q, user id %q", r.Author.ID, r.UserID)
				}
				out[r.UserID] = r.Author.Name
			}
			return out
		}
		if got := names(); got["anna"] != events.DisplayName("anna", "") {
			t.Errorf("before any event: %v", got)
		}
		if !apply(t, a.store, renamed("anna", "Anna", 2)) || apply(t, a.store, renamed("anna", "Anna", 2)) {
			t.Error("a new version applies once; its re-delivery changes nothing")
		}
		if apply(t, a.store, renamed("anna", "Old name", 1)) {
			t.Error("a stale version applied")
		}
		if got := names(); got["anna"] != "Anna" {
			t.Errorf("after rename: %v", got)
		}

		if !apply(t, a.store, deleted("anna", 3)) {
			t.Fatal("the deletion changed nothing")
		}
		f1, _ := a.store.Film(context.Background(), 1)
		f2, _ := a.store.Film(context.Background(), 2)
		if f1.ReviewCount != 1 || f1.RatingSum != 5 || f2.ReviewCount != 0 || f2.RatingSum != 0 {
			t.Errorf("aggregates after the deletion: %+v / %+v", f1, f2)
		}
		if got := names(); len(got) != 1 || got["bob"] == "" {
			t.Errorf("reviews after the deletion: %v", got)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM favorites WHERE user_id = 'anna'"); n != 0 {
			t.Errorf("%d favourites left", n)
		}
		if r := a.do("GET", "/v1/me/favorites", anna...); r.status != http.StatusUnauthorized {
			t.Errorf("a deleted account's token: %d", r.status)
		}
		if r := a.doJSON("PUT", "/v1/films/1/reviews/me", `{"rating":1}`, anna...); r.status != http.StatusUnauthorized {
			t.Errorf("a deleted account wrote a review: %d", r.status)
		}
		if apply(t, a.store, deleted("anna", 3)) || apply(t, a.store, renamed("anna", "Back", 4)) {
			t.Error("a re-delivered deletion or a later update changed a deleted account")
		}
		if r := a.do("GET", "/v1/me/favorites", bob...); r.status != http.StatusOK {
			t.Errorf("bob: %d", r.status)
		}
	})
}

// Deletions race review writes on several films: whatever the
// interleaving, no deleted account keeps a review and every film's count
// and sum are exactly those of its reviews.
func TestDeletionsRacingWritesKeepAggregatesExact(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		const films, users = 3, 24
		addFilms(t, a.store, 0, films)
		toks := make([][]string, users)
		for i := range toks {
			toks[i] = bearer(a.auth.token(t, fmt.Sprintf("u%02d", i)))
		}
		if r := a.do("GET", "/v1/me/favorites", toks[0]...); r.status != http.StatusOK {
			t.Fatalf("warm-up: %d", r.status)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range users {
			wg.Go(func() {
				<-start
				for f := 1; f <= films; f++ {
					r := a.doJSON("PUT", fmt.Sprintf("/v1/films/%d/reviews/me", f), fmt.Sprintf(`{"rating":%d}`, (i+f)%10+1), toks[i]...)
					if r.status >= 300 && r.status != http.StatusUnauthorized {
						t.Errorf("user %d film %d: %d %s", i, f, r.status, r.body)
					}
				}
			})
			if i%3 == 0 {
				wg.Go(func() {
					<-start
					if _, err := a.store.ApplyUserEvent(context.Background(), deleted(fmt.Sprintf("u%02d", i), 2)); err != nil {
						t.Error(err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if n := count(t, db, "SELECT COUNT(*) FROM reviews r JOIN users u ON u.id = r.user_id WHERE u.deleted"); n != 0 {
			t.Errorf("%d reviews of deleted accounts survived", n)
		}
		for f := 1; f <= films; f++ {
			var n, sum, gotN, gotSum int
			if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(rating), 0) FROM reviews WHERE film_id = $1`, f).Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(`SELECT review_count, rating_sum FROM films WHERE id = $1`, f).Scan(&gotN, &gotSum); err != nil {
				t.Fatal(err)
			}
			if n != gotN || sum != gotSum || n != users-users/3 {
				t.Errorf("film %d: aggregate %d/%d, reviews %d/%d, want %d reviews", f, gotN, gotSum, n, sum, users-users/3)
			}
		}
	})
}

func count(t *testing.T, db *sqldb.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// A token's account is checked against films' copy on every request, but
// a "not deleted" answer is remembered for accountLiveTTL: a deletion that
// another replica applied (here a second store on the same database) is
// seen once it runs out, and from then on for good; one this store
// applies is seen at once.
func TestAccountDeletedElsewhereIsSeenWithinTheLiveTTL(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		here, elsewhere := NewStore(db, nil), NewStore(db, nil)
		clock := testNow
		here.accounts.now = func() time.Time { return clock }
		for _, id := range []string{"anna", "bob"} {
			if d, err := here.AccountDeleted(ctx, id); err != nil || d {
				t.Fatalf("%s before any event: %v, %v", id, d, err)
			}
		}
		apply(t, elsewhere, deleted("anna", 2))
		if d, _ := here.AccountDeleted(ctx, "anna"); d {
			t.Fatal("the answer was not remembered: every request queries the database")
		}
		clock = clock.Add(accountLiveTTL)
		if d, err := here.AccountDeleted(ctx, "anna"); err != nil || !d {
			t.Fatalf("after accountLiveTTL: deleted %v, %v", d, err)
		}
		clock = clock.Add(time.Hour)
		if d, _ := here.AccountDeleted(ctx, "anna"); !d {
			t.Error("a deletion was forgotten")
		}
		apply(t, here, deleted("bob", 2))
		if d, _ := here.AccountDeleted(ctx, "bob"); !d {
			t.Error("a deletion this store applied was not seen at once")
		}
	})
}
