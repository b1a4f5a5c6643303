package films

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/httpapi"
)

// filmResponse is a film on the wire; unknown values are null.
type filmResponse struct {
	ID            int64     `json:"id"`
	Title         string    `json:"title"`
	Year          int       `json:"year"`
	ReleaseDate   *string   `json:"release_date"`
	Genre         *string   `json:"genre"`
	Director      *string   `json:"director"`
	RuntimeMin    *int      `json:"runtime_min"`
	MPAARating    *string   `json:"mpaa_rating"`
	IMDBRating    *float64  `json:"imdb_rating"`
	AverageRating *float64  `json:"average_rating"` // null: no reviews yet
	ReviewCount   int       `json:"review_count"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// pageResponse is one page of a list; next_cursor is null on the last page.
type pageResponse struct {
	Items      []filmResponse `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

func newFilmResponse(f Film) filmResponse {
	r := filmResponse{
		ID: f.ID, Title: f.Title, Year: f.Year,
		Genre: nonEmpty(f.Genre), Director: nonEmpty(f.Director), MPAARating: nonEmpty(f.MPAARating),
		ReviewCount: f.ReviewCount, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt,
	}
	if !f.ReleaseDate.IsZero() {
		d := f.ReleaseDate.Format(time.DateOnly)
		r.ReleaseDate = &d
	}
	if f.RuntimeMin > 0 {
		r.RuntimeMin = &f.RuntimeMin
	}
	if f.IMDBRating > 0 {
		r.IMDBRating = &f.IMDBRating
	}
	if f.ReviewCount > 0 {
		avg := math.Round(f.AverageRating*100) / 100
		r.AverageRating = &avg
	}
	return r
}

func newPageResponse(p Page) pageResponse {
	r := pageResponse{Items: make([]filmResponse, len(p.Items))}
	for i, f := range p.Items {
		r.Items[i] = newFilmResponse(f)
	}
	if p.Next != nil {
		c := p.Next.Encode()
		r.NextCursor = &c
	}
	return r
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// parsePageRequest reads limit, sort and cursor, reporting every bad one at
// once. Only sort=id exists so far; the parameter is accepted so clients can
// already name it.
func parsePageRequest(q url.Values) (PageRequest, error) {
	var (
		req    PageRequest
		fields []apperr.FieldError
		err    error
	)
	if req.Limit, err = ParseLimit(q.Get("limit")); err != nil {
		fields = append(fields, fieldErrors(err)...)
	}
	sort := q.Get("sort")
	switch sort {
	case "", SortByID:
		sort = SortByID
	default:
		fields = append(fields, apperr.FieldError{Field: "sort", Message: `must be "id"`})
	}
	if c := q.Get("cursor"); c != "" && sort == SortByID {
		if req.After, err = ParseCursor(c, sort); err != nil {
			fields = append(fields, fieldErrors(err)...)
		}
	}
	if len(fields) > 0 {
		return PageRequest{}, apperr.Validation(fields...)
	}
	return req, nil
}

func fieldErrors(err error) []apperr.FieldError {
	if e, ok := apperr.As(err); ok {
		return e.Fields
	}
	return nil
}

// handleFilmList serves GET /v1/films.
func handleFilmList(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := parsePageRequest(r.URL.Query())
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		page, err := store.Films(r.Context(), req)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusOK, newPageResponse(page))
	})
}

// handleFilmGet serves GET /v1/films/{id}.
func handleFilmGet(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		f, err := store.Film(r.Context(), id)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusOK, newFilmResponse(f))
	})
}

// handleFavoriteList serves GET /v1/me/favorites: the caller's favourite
// films, paged like the catalogue.
func handleFavoriteList(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principalFrom(r.Context())
		if !ok {
			httpapi.Error(w, r, log, errors.New("films: favourites route without a principal"))
			return
		}
		req, err := parsePageRequest(r.URL.Query())
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		page, err := store.Favorites(r.Context(), p.UserID, req)
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		httpapi.JSON(w, http.StatusOK, newPageResponse(page))
	})
}

// handleFavoritePut serves PUT /v1/me/favorites/{film_id}: 204 whether the
// film was already a favourite or not, so a retried request is harmless.
func handleFavoritePut(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principalFrom(r.Context())
		if !ok {
			httpapi.Error(w, r, log, errors.New("films: favourites route without a principal"))
			return
		}
		id, err := ParseID("film_id", r.PathValue("film_id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		if err := store.AddFavorite(r.Context(), p.UserID, id); err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
