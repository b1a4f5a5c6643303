package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"kinoteka/internal/apidocs/apidocstest"
	"kinoteka/internal/e2e"
	"kinoteka/internal/sqldb"
)

// The OpenAPI documents the services serve describe what they really
// answer: every request of the end-to-end walkthrough and of a tour of the
// rest of the API is recorded, then checked against the document fetched
// from the service that answered it (operation, status, media type, body
// schema, and request body for the requests that succeeded).
func TestOpenAPIMatchesRealAnswers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	args := freeArgs(t, dir)
	env, done := startEmbedded(t, ctx, args)
	addr := func(flag string) string { return "http://" + args[slices.Index(args, flag)+1] }
	mailerURL := addr("-mailer-addr")
	ops := map[string]string{"auth": addr("-auth-ops-addr"), "films": addr("-films-ops-addr"), "mailer": mailerURL}

	rec := &apidocstest.Recorder{}
	env.Client = &http.Client{Timeout: 15 * time.Second, Transport: rec}

	env.Walkthrough(t)
	tour(t, env, ops, dir)

	contracts, checked := apidocstest.CheckServices(t, rec, map[string]apidocstest.Service{
		"auth":   {API: env.AuthURL, Ops: ops["auth"]},
		"films":  {API: env.FilmsURL, Ops: ops["films"]},
		"mailer": {API: mailerURL, Ops: mailerURL},
	})
	if checked < 50 {
		t.Errorf("only %d exchanges with the services were checked", checked)
	}
	t.Logf("checked %d exchanges against the documents", checked)
	for _, k := range contracts {
		if left := k.Unexercised(); len(left) > 0 {
			t.Logf("%s: operations the test does not exercise: %v", k.Name, left)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// tour calls what the walkthrough does not: sessions, recovery, keys,
// reviews, genres, catalogue edits by an admin, the errors and the
// operators' endpoints of all three services (ops: each one's operators'
// listener by name).
func tour(t *testing.T, env e2e.Env, ops map[string]string, dataDir string) {
	t.Helper()
	mailerURL := ops["mailer"]
	const password = "correct horse battery staple"
	addr := fmt.Sprintf("tour-%d@example.com", time.Now().UnixNano())
	expect := func(r e2e.Response, status int, what string) e2e.Response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: want %d, got %d %s", what, status, r.Status, r.Body)
		}
		return r
	}
	a, f := env.AuthURL, env.FilmsURL
	tk := env.SignUp(t, addr, password)

	// Sessions and recovery.
	var next e2e.Tokens
	expect(env.Do(t, "POST", a+"/v1/auth/refresh", map[string]string{"refresh_token": tk.RefreshToken}, ""), 200, "refresh").JSON(t, &next)
	expect(env.Do(t, "POST", a+"/v1/auth/logout", map[string]string{"refresh_token": next.RefreshToken}, ""), 204, "logout")
	expect(env.Do(t, "POST", a+"/v1/auth/refresh", map[string]string{"refresh_token": "not-a-token"}, ""), 401, "refresh with a bad token")
	expect(env.Do(t, "POST", a+"/v1/auth/verify/resend", map[string]string{"email": addr}, ""), 202, "resend")
	expect(env.Do(t, "POST", a+"/v1/auth/password/forgot", map[string]string{"email": addr}, ""), 202, "forgot")
	expect(env.Do(t, "POST", a+"/v1/auth/password/reset", map[string]string{"email": addr, "code": "000000", "new_password": password + "!"}, ""), 400, "reset with a wrong code")
	expect(env.Do(t, "POST", a+"/v1/auth/register", map[string]string{"email": "short@example.com", "password": "short"}, ""), 400, "register a short password")
	expect(env.Do(t, "POST", a+"/v1/auth/login", map[string]any{"email": addr, "password": password, "remember": true}, ""), 400, "login with an unknown field")
	expect(env.Do(t, "GET", a+"/v1/auth/me", nil, ""), 401, "me without a token")
	expect(env.Do(t, "GET", a+"/.well-known/jwks.json", nil, ""), 200, "jwks")
	expect(env.Do(t, "GET", a+"/.well-known/oauth-authorization-server", nil, ""), 200, "server metadata")
	expect(env.Do(t, "GET", a+"/.well-known/openid-configuration", nil, ""), 404, "not an OpenID provider")

	// The admin role, granted as an operator would, shows in a new token.
	if err := runAdmin(context.Background(), []string{"grant-role", "-db", "sqlite:" + filepath.Join(dataDir, "auth.db"), addr, "admin"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	expect(env.Do(t, "POST", a+"/v1/auth/login", map[string]string{"email": addr, "password": password}, ""), 200, "login").JSON(t, &tk)
	admin := tk.AccessToken

	// The catalogue.
	var genres struct{ Items []struct{ Name string } }
	expect(env.Do(t, "GET", f+"/v1/genres", nil, ""), 200, "genres").JSON(t, &genres)
	if len(genres.Items) == 0 {
		t.Fatal("no genres in the demo catalogue")
	}
	q := url.Values{"q": {"the"}, "genre": {genres.Items[0].Name}, "year_from": {"1950"}, "year_to": {"2030"}, "sort": {"-year"}, "limit": {"3"}}
	expect(env.Do(t, "GET", f+"/v1/films?"+q.Encode(), nil, ""), 200, "search")
	expect(env.Do(t, "GET", f+"/v1/films?director=a&sort=-rating", nil, admin), 200, "search by director, with a token")
	expect(env.Do(t, "GET", f+"/v1/films?limit=1000&sort=best", nil, ""), 400, "search with bad parameters")
	expect(env.Do(t, "GET", f+"/v1/films/999999999", nil, ""), 404, "a film that does not exist")

	expect(env.Do(t, "POST", f+"/v1/genres", map[string]string{"name": "Tour Genre"}, admin), 201, "add a genre")
	var film struct{ ID int64 }
	expect(env.Do(t, "POST", f+"/v1/films", map[string]any{"title": "The Tour", "year": 2001, "genre": "Tour Genre", "runtime_min": 99}, admin), 201, "add a film").JSON(t, &film)
	filmURL := fmt.Sprintf("%s/v1/films/%d", f, film.ID)
	expect(env.Do(t, "POST", f+"/v1/films", map[string]any{"title": "The Tour", "year": 2001}, admin), 409, "add it again")
	expect(env.Do(t, "PATCH", filmURL, map[string]any{"director": "A. Guide", "runtime_min": nil}, admin), 200, "change the film")
	expect(env.Do(t, "POST", f+"/v1/genres", map[string]string{"name": "Not Allowed"}, next.AccessToken), 403, "add a genre without the admin role")

	expect(env.Do(t, "PUT", filmURL+"/reviews/me", map[string]any{"rating": 8, "text": "A fine tour."}, admin), 201, "write a review")
	expect(env.Do(t, "PUT", filmURL+"/reviews/me", map[string]any{"rating": 9}, admin), 200, "replace the review")
	expect(env.Do(t, "PUT", filmURL+"/reviews/me", map[string]any{"rating": 11}, admin), 400, "a rating out of range")
	expect(env.Do(t, "GET", filmURL+"/reviews?limit=5", nil, ""), 200, "the film's reviews")
	expect(env.Do(t, "GET", filmURL+"/reviews/me", nil, admin), 200, "the caller's own review")
	expect(env.Do(t, "GET", filmURL, nil, ""), 200, "the reviewed film")
	expect(env.Do(t, "DELETE", filmURL+"/reviews/me", nil, admin), 204, "remove the review")
	expect(env.Do(t, "GET", filmURL+"/reviews/me", nil, admin), 404, "no own review")
	expect(env.Do(t, "PUT", fmt.Sprintf("%s/v1/me/favorites/%d", f, film.ID), nil, admin), 204, "add a favourite")
	expect(env.Do(t, "GET", f+"/v1/me/favorites?limit=2", nil, admin), 200, "favourites")
	expect(env.Do(t, "GET", fmt.Sprintf("%s/v1/me/favorites/%d", f, film.ID), nil, admin), 204, "is a favourite")
	expect(env.Do(t, "DELETE", fmt.Sprintf("%s/v1/me/favorites/%d", f, film.ID), nil, admin), 204, "remove the favourite")
	expect(env.Do(t, "GET", fmt.Sprintf("%s/v1/me/favorites/%d", f, film.ID), nil, admin), 404, "not a favourite")
	expect(env.Do(t, "DELETE", filmURL, nil, admin), 204, "remove the film")
	expect(env.Do(t, "DELETE", filmURL, nil, admin), 404, "remove it again")

	expect(env.Do(t, "POST", a+"/v1/auth/logout-all", nil, admin), 204, "logout everywhere")

	// The mailer's delivery log knows the first mail of this run.
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	var eventID string
	err = db.QueryRowContext(context.Background(), `SELECT event_id FROM outbox ORDER BY id LIMIT 1`).Scan(&eventID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := env.Do(t, "GET", mailerURL+"/v1/deliveries/"+url.PathEscape(eventID), nil, ""); r.Status == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("delivery of %s: %d %s", eventID, r.Status, r.Body)
		}
	}
	expect(env.Do(t, "GET", mailerURL+"/v1/deliveries/no-such-event", nil, ""), 404, "an unknown delivery")

	// What every service serves besides its API, on its operators'
	// listener only: the API's answers 404.
	for name, base := range ops {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"} {
			expect(env.Do(t, "GET", base+path, nil, ""), 200, name+" operators' "+path)
		}
	}
	// (Not recorded: the documents describe these paths as the operators'
	// listener answers them.)
	for _, base := range []string{a, f} {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s%s on the public listener: %d, want 404", base, path, resp.StatusCode)
			}
		}
	}
}
