package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"kinoteka/internal/e2e"
)

// waitFor polls cond until it holds, failing after a generous bound (a
// broken pipeline, not a slow one); it returns how long it took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

type reviewAuthors struct {
	Items []struct {
		UserID string `json:"user_id"`
		Rating int    `json:"rating"`
		Author struct{ ID, Name string }
	} `json:"items"`
}

// The account's lifecycle crosses the services through the users topic
// only: a rename shows on films' reviews; a deletion removes the account's
// reviews and favourites and fixes the film's figures, ends its refresh
// token at once and its access token at films.
func TestAccountChangesReachFilms(t *testing.T) {
	_, env, _ := runSystem(t)
	anna := env.SignUp(t, "anna@example.com", "correct horse battery")
	bob := env.SignUp(t, "bob@example.com", "correct horse battery")
	const film = "/v1/films/1"
	for _, w := range []struct {
		tok    e2e.Tokens
		rating int
	}{{anna, 9}, {bob, 4}} {
		if r := env.Do(t, "PUT", env.FilmsURL+film+"/reviews/me", map[string]int{"rating": w.rating}, w.tok.AccessToken); r.Status != http.StatusCreated {
			t.Fatalf("review: %d %s", r.Status, r.Body)
		}
	}
	if r := env.Do(t, "PUT", env.FilmsURL+"/v1/me/favorites/1", nil, anna.AccessToken); r.Status != http.StatusNoContent {
		t.Fatalf("favourite: %d %s", r.Status, r.Body)
	}
	authors := func() map[string]string {
		var page reviewAuthors
		r := env.Do(t, "GET", env.FilmsURL+film+"/reviews", nil, "")
		r.JSON(t, &page)
		out := map[string]string{}
		for _, it := range page.Items {
			out[it.UserID] = it.Author.Name
		}
		return out
	}
	var me struct{ ID, Name string }
	r := env.Do(t, "PATCH", env.AuthURL+"/v1/auth/me", map[string]string{"name": "Anna K."}, anna.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &me)
	took := waitFor(t, "the new name on films' reviews", func() bool { return authors()[me.ID] == "Anna K." })
	t.Logf("rename visible at films after %s", took)

	r = env.Do(t, "DELETE", env.AuthURL+"/v1/auth/me", map[string]string{"password": "correct horse battery"}, anna.AccessToken)
	if r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", env.AuthURL+"/v1/auth/refresh", map[string]string{"refresh_token": anna.RefreshToken}, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("the deleted account's refresh token: %d", r.Status)
	}
	took = waitFor(t, "the deleted account's token refused at films", func() bool {
		return env.Do(t, "GET", env.FilmsURL+"/v1/me/favorites", nil, anna.AccessToken).Status == http.StatusUnauthorized
	})
	t.Logf("deletion visible at films after %s", took)
	waitFor(t, "the deleted account's review gone", func() bool { _, ok := authors()[me.ID]; return !ok })
	var f struct {
		ReviewCount   int      `json:"review_count"`
		AverageRating *float64 `json:"average_rating"`
	}
	waitFor(t, "film figures fixed", func() bool {
		env.Do(t, "GET", env.FilmsURL+film, nil, "").JSON(t, &f)
		return f.ReviewCount == 1
	})
	if f.AverageRating == nil || *f.AverageRating != 4 {
		t.Errorf("average after the deletion: %v, want 4", fmt.Sprint(f.AverageRating))
	}
	if r := env.Register(t, "anna@example.com", "another good secret"); r.Status != http.StatusAccepted {
		t.Errorf("register the address again: %d %s", r.Status, r.Body)
	}
}
