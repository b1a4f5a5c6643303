package films

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/httpapi"
)

// The writes: the admins' catalogue edits and the users' reviews.

// RoleAdmin is the token role (claim "roles") that may edit the catalogue.
const RoleAdmin = "admin"

var errNotAdmin = apperr.New(apperr.Forbidden, "admin_only", "only an admin may change the catalogue")

// requireRole answers 403 unless the authenticated caller holds role; it
// goes inside auth.required, which answers 401 first.
func requireRole(log *slog.Logger, role string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r, log)
		if !ok {
			return
		}
		if !p.HasRole(role) {
			httpapi.Error(w, r, log, errNotAdmin)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// decodePatch reads a JSON object body as its raw members: a merge patch
// (RFC 7396) for PATCH, the new film for POST. application/json and
// application/merge-patch+json are both accepted.
func decodePatch(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	var patch map[string]json.RawMessage
	if err := httpapi.Decode(w, r, &patch); err != nil {
		return nil, err
	}
	if patch == nil { // the body was null
		return nil, apperr.New(apperr.Invalid, "malformed_json", "the body must be a JSON object")
	}
	return patch, nil
}

// handleFilmCreate serves POST /v1/films: 201 with the film and its
// Location. title and year are required; genre must exist.
func handleFilmCreate(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		patch, err := decodePatch(w, r)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		f, err := applyFilmFields(Film{}, patch, store.now())
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		if f, err = store.CreateFilm(r.Context(), f); err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/v1/films/"+strconv.FormatInt(f.ID, 10))
		httpapi.JSON(w, http.StatusCreated, newFilmResponse(f))
	})
}

// handleFilmPatch serves PATCH /v1/films/{id}: a JSON merge patch; null
// clears an optional field.
func handleFilmPatch(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		patch, err := decodePatch(w, r)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		now := store.now()
		f, err := store.UpdateFilm(r.Context(), id, func(cur Film) (Film, error) {
			return applyFilmFields(cur, patch, now)
		})
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusOK, newFilmResponse(f))
	})
}

// handleFilmDelete serves DELETE /v1/films/{id}: 204, or 404 when there is
// no such film.
func handleFilmDelete(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		if err := store.DeleteFilm(r.Context(), id); err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type genreRequest struct {
	Name string `json:"name"`
}

// handleGenreCreate serves POST /v1/genres: the explicit way a new genre
// enters the catalogue (a film naming an unknown genre is refused, so a typo
// never becomes a genre).
func handleGenreCreate(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req genreRequest
		if err := httpapi.Decode(w, r, &req); err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		name, err := ParseGenreName(req.Name)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		g, err := store.CreateGenre(r.Context(), name)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusCreated, genreResponse{Name: g.Name, FilmCount: g.Films})
	})
}

// reviewRequest is PUT /v1/films/{id}/reviews/me's body. The rating is read
// as a number so that 7.5 gets a clear message rather than a type error.
type reviewRequest struct {
	Rating *float64 `json:"rating"`
	Text   *string  `json:"text"`
}

// reviewResponse is a review on the wire. user_id is auth's opaque id;
// author.name is the name films keeps from the users topic.
type reviewResponse struct {
	UserID    string    `json:"user_id"`
	Author    author    `json:"author"`
	Rating    int       `json:"rating"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// author is who wrote a review, as people see them.
type author struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type reviewPageResponse struct {
	Items      []reviewResponse `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func newReviewResponse(r Review) reviewResponse {
	return reviewResponse{UserID: r.UserID, Author: author{r.UserID, events.DisplayName(r.UserID, r.AuthorName)}, Rating: r.Rating, Text: r.Text, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// renderReviews answers GET /v1/films/{id}/reviews: newest first.
func renderReviews(store *Store) renderFunc {
	return func(ctx context.Context, r *http.Request) ([]byte, error) {
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		req, err := parsePageRequest(r.URL.Query(), sortReviews, reviewsScope(id))
		if err != nil {
			return nil, err
		}
		page, err := store.Reviews(ctx, id, req)
		if err != nil {
			return nil, err
		}
		resp := reviewPageResponse{Items: make([]reviewResponse, len(page.Items)), NextCursor: encodeCursor(page.Next)}
		for i, rev := range page.Items {
			resp.Items[i] = newReviewResponse(rev)
		}
		return encode(resp)
	}
}

// handleReviewPut serves PUT /v1/films/{id}/reviews/me: 201 for a new
// review, 200 for a replaced one, with the review either way.
func handleReviewPut(log *slog.Logger, store *Store) http.Handler {
	return callerFilm(log, "id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		var req reviewRequest
		if err := httpapi.Decode(w, r, &req); err != nil {
			return err
		}
		in, err := ParseReview(req.Rating, req.Text)
		if err != nil {
			return err
		}
		rev, created, err := store.PutReview(r.Context(), id, userID, in)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		w.Header().Set("Cache-Control", "private, no-store")
		httpapi.JSON(w, status, newReviewResponse(rev))
		return nil
	})
}

// handleReviewDelete serves DELETE /v1/films/{id}/reviews/me: 204 whether
// or not there was a review; 404 only when there is no such film.
func handleReviewDelete(log *slog.Logger, store *Store) http.Handler {
	return callerFilm(log, "id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		if err := store.DeleteReview(r.Context(), id, userID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
