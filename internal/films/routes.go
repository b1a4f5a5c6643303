package films

import (
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/telemetry"
)

// routes is films' whole HTTP API on one screen, served through the shared
// httpapi.Stack (tracing nil: not traced): public is the API, ops what the
// operators' listener serves — probes, metrics and the API docs, never on
// the public listener. Catalogue reads are public and go through the read
// cache (cacheTTL 0: no cache, ETags still); a token that is present is
// checked on every /v1 route all the same.
func routes(log *slog.Logger, store *Store, v verifier, cacheTTL time.Duration, tracing *telemetry.Tracing) (public, ops http.Handler) {
	metrics, tokenFailures := newMetrics()
	auth := authn{log: log, v: liveAccounts{v, store}, failures: tokenFailures}
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

	mux.Handle("GET /v1/films/{id}/reviews/me", auth.required(handleOwnReview(log, store)))
	mux.Handle("PUT /v1/films/{id}/reviews/me", auth.required(handleReviewPut(log, store)))
	mux.Handle("DELETE /v1/films/{id}/reviews/me", auth.required(handleReviewDelete(log, store)))

	mux.Handle("GET /v1/me/favorites", auth.required(handleFavoriteList(log, store)))
	mux.Handle("GET /v1/me/favorites/{film_id}", auth.required(handleFavoriteGet(log, store)))
	mux.Handle("PUT /v1/me/favorites/{film_id}", auth.required(handleFavoritePut(log, store)))
	mux.Handle("DELETE /v1/me/favorites/{film_id}", auth.required(handleFavoriteDelete(log, store)))

	opsMux := http.NewServeMux()
	httpapi.Health(opsMux, map[string]httpapi.Check{"database": store.Ping})
	opsMux.Handle("GET /metrics", metrics.Handler())
	opsMux.Handle("GET /openapi.json", apidocs.Films.ServeJSON())
	opsMux.Handle("GET /docs", apidocs.Films.ServePage())

	stack := httpapi.Stack{Log: log, Metrics: metrics, Tracing: tracing}
	return stack.Handler(mux), stack.Handler(opsMux)
}
