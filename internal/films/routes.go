package films

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
)

// newHandler is films' whole HTTP API. Catalogue reads are public and go
// through the read cache (cacheTTL <= 0: no cache, ETags still); a token that
// is present is checked on every /v1 route all the same.
func newHandler(log *slog.Logger, store *Store, v verifier, cacheTTL time.Duration) http.Handler {
	metrics, tokenFailures := newMetrics()
	auth := authn{log: log, v: v, failures: tokenFailures}
	admin := func(h http.Handler) http.Handler { return auth.required(requireRole(log, RoleAdmin, h)) }
	cache := newReadCache(log, cacheTTL, store.Generation, time.Now)
	mux := http.NewServeMux()

	mux.Handle("GET /v1/films", auth.optional(cache.serve(renderFilmList(store))))
	mux.Handle("GET /v1/films/{id}", auth.optional(cache.serve(renderFilm(store))))
	mux.Handle("GET /v1/films/{id}/reviews", auth.optional(cache.serve(renderReviews(store))))
	mux.Handle("GET /v1/genres", auth.optional(cache.serve(renderGenres(store))))

	mux.Handle("POST /v1/films", admin(handleFilmCreate(log, store)))
	mux.Handle("PATCH /v1/films/{id}", admin(handleFilmPatch(log, store)))
	mux.Handle("DELETE /v1/films/{id}", admin(handleFilmDelete(log, store)))
	mux.Handle("POST /v1/genres", admin(handleGenreCreate(log, store)))

	mux.Handle("PUT /v1/films/{id}/reviews/me", auth.required(handleReviewPut(log, store)))
	mux.Handle("DELETE /v1/films/{id}/reviews/me", auth.required(handleReviewDelete(log, store)))

	mux.Handle("GET /v1/me/favorites", auth.required(handleFavoriteList(log, store)))
	mux.Handle("PUT /v1/me/favorites/{film_id}", auth.required(handleFavoritePut(log, store)))
	mux.Handle("DELETE /v1/me/favorites/{film_id}", auth.required(handleFavoriteDelete(log, store)))

	mux.Handle("GET /openapi.json", apidocs.Films.ServeJSON())
	mux.Handle("GET /docs", apidocs.Films.ServePage())
	httpapi.Health(mux, map[string]httpapi.Check{"database": store.Ping})
	mux.Handle("GET /metrics", metrics.Handler())

	return httpapi.Observe(log, metrics.Instrument(problemFallback(mux)))
}

// problemFallback answers the requests no route matches (404, 405) with
// problem+json like every other error, instead of ServeMux's plain text.
func problemFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// ServeMux's own answer: a redirect to the clean path, 404 or 405
		// (with its Allow header). Keep its status and headers, replace the
		// plain-text body.
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusNotFound
		}
		if cw.status < 400 {
			for k, v := range cw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(cw.status)
			return
		}
		if allow := cw.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		detail := "there is no such route"
		if cw.status == http.StatusMethodNotAllowed {
			detail = r.Method + " is not allowed here; the Allow header lists what is"
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(cw.status)
		_ = json.NewEncoder(w).Encode(httpapi.Problem{
			Type: "about:blank", Title: http.StatusText(cw.status), Status: cw.status, Detail: detail,
		})
	})
}

// captureWriter records ServeMux's fallback answer without sending it.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
