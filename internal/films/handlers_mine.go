package films

import (
	"log/slog"
	"net/http"

	"kinoteka/internal/httpapi"
)

// handleOwnReview serves GET /v1/films/{id}/reviews/me: 200 with the
// caller's review, 404 review_not_found without one (film_not_found when
// the film does not exist). Personal: never cached.
func handleOwnReview(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r, log)
		if !ok {
			return
		}
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		rev, err := store.OwnReview(r.Context(), id, p.UserID)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		httpapi.JSON(w, http.StatusOK, newReviewResponse(rev))
	})
}

// handleFavoriteGet serves GET /v1/me/favorites/{film_id}: 204 when the
// film is a favourite of the caller, 404 not_a_favorite when it is not.
func handleFavoriteGet(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r, log)
		if !ok {
			return
		}
		id, err := ParseID("film_id", r.PathValue("film_id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		if err := store.IsFavorite(r.Context(), p.UserID, id); err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}
