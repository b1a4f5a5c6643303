package apidocstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kinoteka/internal/apidocs"
)

const film = `{"id":7,"title":"Heat","year":1995,"release_date":"1995-12-15","genre":"Drama","director":null,
"runtime_min":170,"mpaa_rating":"R","imdb_rating":8.2,"average_rating":null,"review_count":0,
"created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:00:00.123456Z"}`

// The contract accepts answers that match the document and refuses every
// kind of drift: a field added, a type changed, a status or a media type not
// documented, a route not documented, a request body of the wrong shape.
func TestCheckFindsDrift(t *testing.T) {
	for _, c := range []struct {
		name        string
		method      string
		path        string
		reqBody     string
		status      int
		contentType string
		body        string
		wantErr     string // "" means the exchange is allowed
	}{
		{"a film", "GET", "/v1/films/7", "", 200, "application/json", film, ""},
		{"a page", "GET", "/v1/films", "", 200, "application/json", `{"items":[` + film + `],"next_cursor":"abc"}`, ""},
		{"a problem", "GET", "/v1/films/8", "", 404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"detail":"no film 8","code":"film_not_found"}`, ""},
		{"validation", "PUT", "/v1/films/7/reviews/me", `{"rating":7.5}`, 400, "application/problem+json",
			`{"type":"https://kinoteka.dev/problems/validation_failed","title":"Bad Request","status":400,"code":"validation_failed","errors":[{"field":"rating","message":"must be an integer"}]}`, ""},
		{"no content", "PUT", "/v1/me/favorites/7", "", 204, "", "", ""},
		{"a review", "PUT", "/v1/films/7/reviews/me", `{"rating":8,"text":"tense"}`, 201, "application/json",
			`{"user_id":"u1","author":{"id":"u1","name":"Reader 1a2b3c"},"rating":8,"text":"tense","created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:00:00Z"}`, ""},

		{"an undocumented field", "GET", "/v1/films/7", "", 200, "application/json", strings.Replace(film, `"id":7`, `"id":7,"budget":1`, 1), "budget"},
		{"a field of the wrong type", "GET", "/v1/films/7", "", 200, "application/json", strings.Replace(film, `"year":1995`, `"year":"1995"`, 1), "year"},
		{"a missing field", "GET", "/v1/films/7", "", 200, "application/json", strings.Replace(film, `"title":"Heat",`, ``, 1), "title"},
		{"a bad date-time", "GET", "/v1/films/7", "", 200, "application/json", strings.Replace(film, `2026-11-27T10:00:00Z`, `yesterday`, 1), "date-time"},
		{"an undocumented status", "GET", "/v1/genres", "", 404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404}`, "status 404 is not documented"},
		{"an undocumented media type", "GET", "/v1/films/8", "", 404, "text/plain", "404 page not found", `media type "text/plain"`},
		{"an undocumented route", "GET", "/v1/directors", "", 200, "application/json", `{}`, "not documented"},
		{"an empty body where one is promised", "GET", "/v1/films/7", "", 200, "", "", "empty body"},
		{"a request body of the wrong shape", "PUT", "/v1/films/7/reviews/me", `{"stars":8}`, 201, "application/json",
			`{"user_id":"u1","rating":8,"text":"","created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:00:00Z"}`, "request body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.contentType != "" {
					w.Header().Set("Content-Type", c.contentType)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			k, err := Load("films", apidocs.Films.JSON(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			rec := &Recorder{}
			client := &http.Client{Transport: rec}
			var body io.Reader
			if c.reqBody != "" {
				body = strings.NewReader(c.reqBody)
			}
			req, _ := http.NewRequest(c.method, srv.URL+c.path, body)
			if c.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != c.body {
				t.Fatalf("the recorder changed the body the client reads: %q", got)
			}
			ex := rec.Exchanges()
			if len(ex) != 1 || !k.Covers(ex[0]) {
				t.Fatalf("recorded %d exchanges", len(ex))
			}
			err = k.Check(ex[0])
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("want it allowed, got %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("want an error about %q, got none", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want an error about %q, got %v", c.wantErr, err)
			}
		})
	}
}
