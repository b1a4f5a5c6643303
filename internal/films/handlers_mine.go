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
	return callerFilm(log, "id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		rev, err := store.OwnReview(r.Context(), id, userID)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "private, no-store")
		httpapi.JSON(w, http.StatusOK, newReviewResponse(rev))
		return nil
	})
}

// handleFavoriteGet serves GET /v1/me/favorites/{film_id}: 204 when the
// film is a favourite of the caller, 404 not_a_favorite when it is not.
func handleFavoriteGet(log *slog.Logger, store *Store) http.Handler {
	return callerFilm(log, "film_id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		if err := store.IsFavorite(r.Context(), userID, id); err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "private, no-store")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
