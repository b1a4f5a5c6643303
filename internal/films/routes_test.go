package films

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/tokens"
)

// api is films' HTTP API over a real database, with auth played by a real
// signer and JWK set server.
type api struct {
	t     testing.TB
	db    *sqldb.DB
	store *Store
	auth  *authServer
	srv   *httptest.Server // the public listener
	opsLn *httptest.Server // the operators' listener
}

func newAPI(t testing.TB, db *sqldb.DB) *api {
	a := &api{t: t, db: db, store: NewStore(db, func() time.Time { return testNow }), auth: newAuthServer(t)}
	public, ops := routes(testLogger(t), a.store, a.auth.verifier(), DefaultConfig().ReadCacheTTL, nil)
	a.srv, a.opsLn = httptest.NewServer(public), httptest.NewServer(ops)
	t.Cleanup(a.srv.Close)
	t.Cleanup(a.opsLn.Close)
	return a
}

// ops is the same service seen through its operators' listener.
func (a *api) ops() *api {
	o := *a
	o.srv = a.opsLn
	return &o
}

// apiOnly is the public handler of routes' two.
func apiOnly(public, _ http.Handler) http.Handler { return public }

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; headers come in pairs ("Authorization", "Bearer x").
func (a *api) do(method, path string, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	client := a.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// doJSON sends a request with a JSON body.
func (a *api) doJSON(method, path, body string, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Content-Type" {
			req.Header.Set(headers[i], headers[i+1])
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

type pageJSON struct {
	Items      []map[string]any `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func (r response) page(t testing.TB) pageJSON {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var p pageJSON
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	if !bytes.Contains(r.body, []byte(`"next_cursor":`)) {
		t.Errorf("next_cursor is missing: %s", r.body)
	}
	return p
}

// problem checks an RFC 9457 answer and returns its invalid field names.
func (r response) problem(t testing.TB, status int) []string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("problem body %s (%v)", r.body, err)
	}
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	return fields
}

// walk follows next_cursor from the first page and returns every id seen.
// between runs after each page.
func (a *api) walk(t testing.TB, path string, limit int, between func(page int), headers ...string) []int64 {
	t.Helper()
	var ids []int64
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("paging does not end")
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := a.do("GET", path+sep+q.Encode(), headers...).page(t)
		if len(p.Items) == 0 && page > 0 {
			t.Errorf("page %d is empty; the previous page should have had no cursor", page)
		}
		if len(p.Items) > limit {
			t.Fatalf("page of %d items, limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			ids = append(ids, int64(it["id"].(float64)))
		}
		if between != nil {
			between(page)
		}
		if p.NextCursor == nil {
			return ids
		}
		cursor = *p.NextCursor
	}
}

func TestAPIFilmList(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		empty := a.do("GET", "/v1/films").page(t)
		if len(empty.Items) != 0 || empty.NextCursor != nil || !bytes.Contains(a.do("GET", "/v1/films").body, []byte(`"items":[]`)) {
			t.Errorf("empty catalogue: %+v", empty)
		}

		addFilms(t, a.store, 0, 45)
		first := a.do("GET", "/v1/films")
		if ct := first.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if p := first.page(t); len(p.Items) != DefaultLimit || p.NextCursor == nil {
			t.Errorf("default page: %d items, cursor %v; want %d and a cursor", len(p.Items), p.NextCursor, DefaultLimit)
		}
		if p := a.do("GET", "/v1/films?limit=100").page(t); len(p.Items) != 45 || p.NextCursor != nil {
			t.Errorf("limit=100: %d items, cursor %v; want 45 and none", len(p.Items), p.NextCursor)
		}
		if p := a.do("GET", "/v1/films?limit=1").page(t); len(p.Items) != 1 || p.NextCursor == nil {
			t.Errorf("limit=1: %d items", len(p.Items))
		}
		if p := a.do("GET", "/v1/films?limit=45").page(t); len(p.Items) != 45 || p.NextCursor != nil {
			t.Errorf("limit = catalogue size: %d items, cursor %v; want no empty last page", len(p.Items), p.NextCursor)
		}
		for _, limit := range []int{1, 7, 20} {
			ids := a.walk(t, "/v1/films", limit, nil)
			if len(ids) != 45 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 45 {
				t.Errorf("limit=%d walk: %d ids %v", limit, len(ids), ids)
			}
		}
	})
}

// The whole demo catalogue, page by page, with films added mid-walk.
func TestAPIFilmListWalksWholeCatalogue(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		if _, _, err := SeedDemo(context.Background(), a.store); err != nil {
			t.Fatal(err)
		}
		ids := a.walk(t, "/v1/films", MaxLimit, func(page int) {
			if page == 3 {
				addFilms(t, a.store, 9000, 2) // new films get higher ids: seen once, at the end
			}
		})
		if len(ids) != demoKept+2 {
			t.Errorf("walk saw %d films, want %d", len(ids), demoKept+2)
		}
		seen := map[int64]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("film %d seen twice", id)
			}
			seen[id] = true
		}
		if !slices.IsSorted(ids) {
			t.Error("films are not in id order")
		}
		if n := countFilms(t, db); n != len(seen) {
			t.Errorf("walk saw %d distinct films, the database has %d", len(seen), n)
		}
	})
}

func TestAPIFilmListRejectsBadParameters(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	addFilms(t, a.store, 0, 3)
	titleCursor := Cursor{Sort: "title", Key: "A", ID: 1}.Encode()
	for _, tc := range []struct {
		query  string
		fields []string
	}{
		{"limit=0", []string{"limit"}},
		{"limit=-1", []string{"limit"}},
		{"limit=101", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"cursor=garbage!", []string{"cursor"}},
		{"cursor=" + base64URL(`{"s":"id","i":0}`), []string{"cursor"}},
		{"cursor=" + titleCursor, []string{"cursor"}},
		{"sort=rating", []string{"sort"}},
		{"limit=0&cursor=nope!", []string{"limit", "cursor"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			for _, path := range []string{"/v1/films?", "/v1/me/favorites?"} {
				got := a.do("GET", path+tc.query, bearer(a.auth.token(t, "u1"))...).problem(t, http.StatusBadRequest)
				if !slices.Equal(got, tc.fields) {
					t.Errorf("%s: invalid fields %v, want %v", path, got, tc.fields)
				}
			}
		})
	}
	// A cursor that points past the end is valid: an empty last page.
	p := a.do("GET", "/v1/films?cursor="+Cursor{Sort: SortByID, ID: 1000}.Encode()).page(t)
	if len(p.Items) != 0 || p.NextCursor != nil {
		t.Errorf("cursor past the end: %+v", p)
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestAPIFilmGet(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		full := Film{Title: "Heat", Year: 1995, ReleaseDate: date(1995, 12, 15), Genre: "Action",
			Director: "Michael Mann", RuntimeMin: 170, MPAARating: "R", IMDBRating: 8.2}
		if _, err := a.store.insertFilms(context.Background(), []Film{full, {Title: "Bare", Year: 2000}}); err != nil {
			t.Fatal(err)
		}
		addReview(t, a.store, 1, "u1", 7)
		addReview(t, a.store, 1, "u2", 8)
		addReview(t, a.store, 1, "u3", 8)
		stamp := testNow.Format(time.RFC3339)
		for _, tc := range []struct {
			path string
			want string
		}{
			{"/v1/films/1", `{"id":1,"title":"Heat","year":1995,"release_date":"1995-12-15","genre":"Action",
				"director":"Michael Mann","runtime_min":170,"mpaa_rating":"R","imdb_rating":8.2,
				"average_rating":7.67,"review_count":3,"created_at":"` + stamp + `","updated_at":"` + stamp + `"}`},
			{"/v1/films/2", `{"id":2,"title":"Bare","year":2000,"release_date":null,"genre":null,
				"director":null,"runtime_min":null,"mpaa_rating":null,"imdb_rating":null,
				"average_rating":null,"review_count":0,"created_at":"` + stamp + `","updated_at":"` + stamp + `"}`},
		} {
			r := a.do("GET", tc.path)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
			}
			var got, want any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if g, w := mustMarshal(t, got), mustMarshal(t, want); g != w {
				t.Errorf("%s:\n got %s\nwant %s", tc.path, g, w)
			}
		}
		// The list shows the same fields.
		if p := a.do("GET", "/v1/films").page(t); mustMarshal(t, p.Items[0]) != mustMarshal(t, mustDecode(t, a.do("GET", "/v1/films/1").body)) {
			t.Errorf("list item differs from the film: %v", p.Items[0])
		}

		a.do("GET", "/v1/films/3").problem(t, http.StatusNotFound)
		a.do("GET", "/v1/films/999999999999").problem(t, http.StatusNotFound)
		for _, bad := range []string{"abc", "0", "-1", "1.5", "1e3", "99999999999999999999"} {
			if got := a.do("GET", "/v1/films/"+bad).problem(t, http.StatusBadRequest); !slices.Equal(got, []string{"id"}) {
				t.Errorf("%s: invalid fields %v, want [id]", bad, got)
			}
		}
	})
}

func mustMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustDecode(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAPIAuthentication(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	addFilms(t, a.store, 0, 2)
	valid := a.auth.token(t, "u1")
	expired, _ := tokens.NewSigner(authKey(), testIssuer, testAudience, 15*time.Minute,
		func() time.Time { return testNow.Add(-time.Hour) }).Issue(tokens.Claims{Subject: "u1"})
	foreign, _ := tokens.NewSigner(foreignKey(), testIssuer, testAudience, 15*time.Minute,
		func() time.Time { return testNow }).Issue(tokens.Claims{Subject: "u1"})
	wrongAud, _ := tokens.NewSigner(authKey(), testIssuer, "another-service", 15*time.Minute,
		func() time.Time { return testNow }).Issue(tokens.Claims{Subject: "u1"})
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "u1", "exp": testNow.Add(time.Hour).Unix()})
		tok.Header["typ"], tok.Header["kid"] = tokens.TokenType, a.auth.signer.KeyID()
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	routes := []struct{ method, path string }{
		{"GET", "/v1/films"},
		{"GET", "/v1/films/1"},
		{"GET", "/v1/me/favorites"},
		{"PUT", "/v1/me/favorites/1"},
	}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"garbage token", bearer("garbage")},
		{"expired token", bearer(expired)},
		{"foreign key", bearer(foreign)},
		{"wrong audience", bearer(wrongAud)},
		{"alg none", bearer(none)},
		{"Basic scheme", []string{"Authorization", "Basic dTE6cGFzcw=="}},
		{"scheme only", []string{"Authorization", "Bearer"}},
		{"scheme and space", []string{"Authorization", "Bearer "}},
		{"empty header", []string{"Authorization", ""}},
		{"token with a space", []string{"Authorization", "Bearer " + valid + " x"}},
		{"token without scheme", []string{"Authorization", valid}},
		{"two headers", append(bearer(valid), bearer(valid)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rt := range routes {
				r := a.do(rt.method, rt.path, tc.headers...)
				r.problem(t, http.StatusUnauthorized)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate %q", rt.method, rt.path, r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	// No token: the catalogue is public, the personal routes are not.
	for _, rt := range routes {
		r := a.do(rt.method, rt.path)
		want := http.StatusOK
		if strings.HasPrefix(rt.path, "/v1/me/") {
			want = http.StatusUnauthorized
		}
		if r.status != want {
			t.Errorf("%s %s without a token: %d, want %d", rt.method, rt.path, r.status, want)
		}
	}
	// A valid token works everywhere; the scheme is case-insensitive (RFC 7235).
	for _, h := range [][]string{bearer(valid), {"Authorization", "bearer " + valid}, {"Authorization", "Bearer   " + valid}} {
		for _, rt := range routes {
			if r := a.do(rt.method, rt.path, h...); r.status >= 300 {
				t.Errorf("%s %s with %q…: %d %s", rt.method, rt.path, h[1][:8], r.status, r.body)
			}
		}
	}
	// One JWK set fetch served every genuine token and every forgery.
	if n := a.auth.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestAPIFavorites(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		a := newAPI(t, db)
		addFilms(t, a.store, 0, 5)
		alice, bob := bearer(a.auth.token(t, "alice")), bearer(a.auth.token(t, "bob"))

		if p := a.do("GET", "/v1/me/favorites", alice...).page(t); len(p.Items) != 0 || p.NextCursor != nil {
			t.Errorf("no favourites yet: %+v", p)
		}
		for _, id := range []string{"3", "3", "1", "5"} { // 3 twice: idempotent
			if r := a.do("PUT", "/v1/me/favorites/"+id, alice...); r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Errorf("PUT %s: %d %s, want 204", id, r.status, r.body)
			}
		}
		a.do("PUT", "/v1/me/favorites/99", alice...).problem(t, http.StatusNotFound)
		if got := a.do("PUT", "/v1/me/favorites/x", alice...).problem(t, http.StatusBadRequest); !slices.Equal(got, []string{"film_id"}) {
			t.Errorf("bad film id: fields %v", got)
		}

		r := a.do("GET", "/v1/me/favorites", alice...)
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("personal list Cache-Control %q, want no-store", cc)
		}
		p := r.page(t)
		if len(p.Items) != 3 || p.Items[0]["title"] != film(0).Title || p.Items[1]["id"] != 3.0 || p.Items[2]["id"] != 5.0 {
			t.Errorf("alice's favourites: %v", p.Items)
		}
		if keys := len(p.Items[0]); keys != 13 {
			t.Errorf("a favourite has %d fields, want the film's 13", keys)
		}
		if ids := a.walk(t, "/v1/me/favorites", 1, nil, alice...); !slices.Equal(ids, []int64{1, 3, 5}) {
			t.Errorf("alice's favourites one by one: %v", ids)
		}
		if p := a.do("GET", "/v1/me/favorites", bob...).page(t); len(p.Items) != 0 {
			t.Errorf("bob sees %d favourites, want none", len(p.Items))
		}
	})
}

func TestAPIHealthAndFallbacks(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	if r := a.ops().do("GET", "/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz: %d", r.status)
	}
	if r := a.ops().do("GET", "/readyz"); r.status != http.StatusOK {
		t.Errorf("/readyz: %d %s", r.status, r.body)
	}
	// Unknown routes and wrong methods get problem+json (the shared stack),
	// not ServeMux's plain text.
	a.do("GET", "/nope").problem(t, http.StatusNotFound)
	a.do("GET", "/v1/nothing").problem(t, http.StatusNotFound)
	a.do("GET", "/v1/films/").problem(t, http.StatusNotFound)
	r := a.do("PUT", "/v1/films")
	r.problem(t, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("405 Allow %q, want GET and POST among them", allow)
	}
	if r := a.do("GET", "/v1//films"); r.status/100 != 3 || r.header.Get("Location") != "/v1/films" {
		t.Errorf("unclean path: %d to %q, want ServeMux's redirect to /v1/films", r.status, r.header.Get("Location"))
	}
	db.Close()
	if r := a.ops().do("GET", "/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database closed: %d, want 503", r.status)
	}
}

// The operators' endpoints — probes, metrics, the API docs — are on the
// operators' listener only: the public one answers them with the same
// problem+json 404 as any route it does not have, so nothing there counts
// token failures for the world or maps the API for it.
func TestOperatorEndpointsAreNotPublic(t *testing.T) {
	a := newAPI(t, sqldbtest.SQLite(t, Migrations))
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/docs", "/openapi.json"} {
		a.do("GET", path).problem(t, http.StatusNotFound)
		if r := a.ops().do("GET", path); r.status != http.StatusOK {
			t.Errorf("operators' %s: %d", path, r.status)
		}
	}
	if r := a.ops().do("GET", "/metrics"); !bytes.Contains(r.body, []byte("kinoteka_films_token_failures_total")) {
		t.Errorf("operators' /metrics lacks films' series:\n%.300s", r.body)
	}
	// And the API is not on the operators' listener.
	a.ops().do("GET", "/v1/films").problem(t, http.StatusNotFound)
}
