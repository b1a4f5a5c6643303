package films

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"kinoteka/internal/apperr"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/tokens"
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
	r.NextCursor = encodeCursor(p.Next)
	return r
}

func encodeCursor(c *Cursor) *string {
	if c == nil {
		return nil
	}
	s := c.Encode()
	return &s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// encode is httpapi.JSON's encoding, for answers the read cache keeps.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func fieldErrors(err error) []apperr.FieldError {
	if e, ok := apperr.As(err); ok {
		return e.Fields
	}
	return nil
}

// parsePageRequest reads limit, sort and cursor of a list with one order,
// sort, whose cursors are bound to scope. Every bad parameter is reported at
// once.
func parsePageRequest(q url.Values, sort, scope string) (PageRequest, error) {
	var (
		req    PageRequest
		fields []apperr.FieldError
		err    error
	)
	if req.Limit, err = ParseLimit(q.Get("limit")); err != nil {
		fields = append(fields, fieldErrors(err)...)
	}
	sortOK := true
	if s := q.Get("sort"); s != "" && s != sort {
		sortOK = false
		fields = append(fields, apperr.FieldError{Field: "sort", Message: strconv.Quote(sort) + " is the only order of this list"})
	}
	if c := q.Get("cursor"); c != "" && sortOK {
		if req.After, err = ParseCursor(c, sort, scope); err != nil {
			fields = append(fields, fieldErrors(err)...)
		}
	}
	if len(fields) > 0 {
		return PageRequest{}, apperr.Validation(fields...)
	}
	return req, nil
}

// parseFilmQuery reads GET /v1/films's parameters, reporting every bad one
// at once. Unknown parameters are ignored, as the web does.
func parseFilmQuery(q url.Values) (FilmQuery, error) {
	var (
		fq     FilmQuery
		fields []apperr.FieldError
		err    error
	)
	bad := func(field, msg string) { fields = append(fields, apperr.FieldError{Field: field, Message: msg}) }
	if fq.Limit, err = ParseLimit(q.Get("limit")); err != nil {
		fields = append(fields, fieldErrors(err)...)
	}
	fq.Sort = q.Get("sort")
	if fq.Sort == "" {
		fq.Sort = SortByID
	}
	if _, ok := sortColumns[fq.Sort]; !ok && fq.Sort != SortByID {
		bad("sort", "must be one of "+strings.Join(FilmSorts, ", "))
	}
	words := func(field string) []string {
		s := q.Get(field)
		w := searchWords(s)
		switch {
		case utf8.RuneCountInString(s) > maxSearchLen:
			bad(field, "must be at most "+strconv.Itoa(maxSearchLen)+" characters")
		case strings.TrimSpace(s) != "" && len(w) == 0:
			bad(field, "must contain a letter or a digit")
		case len(w) > maxSearchWords:
			bad(field, "must be at most "+strconv.Itoa(maxSearchWords)+" words")
		}
		return w
	}
	fq.Words, fq.DirectorWords = words("q"), words("director")
	fq.Genre = collapseSpaces(q.Get("genre"))
	if utf8.RuneCountInString(fq.Genre) > MaxGenreLen {
		bad("genre", "must be at most "+strconv.Itoa(MaxGenreLen)+" characters")
	}
	year := func(field string) int {
		s := q.Get(field)
		if s == "" {
			return 0
		}
		y, err := strconv.Atoi(s)
		if err != nil || y < 1 || y > 9999 {
			bad(field, "must be a year, e.g. 1995")
			return 0
		}
		return y
	}
	fq.YearFrom, fq.YearTo = year("year_from"), year("year_to")
	if fq.YearFrom != 0 && fq.YearTo != 0 && fq.YearFrom > fq.YearTo {
		bad("year_to", "must not be before year_from")
	}
	// A cursor is checked against the order and filters only when those
	// are valid: otherwise the message would be about the wrong thing.
	if c := q.Get("cursor"); c != "" && !slices.ContainsFunc(fields, func(e apperr.FieldError) bool { return e.Field != "limit" }) {
		if fq.After, err = ParseCursor(c, fq.Sort, fq.Scope()); err != nil {
			fields = append(fields, fieldErrors(err)...)
		}
	}
	if len(fields) > 0 {
		return FilmQuery{}, apperr.Validation(fields...)
	}
	return fq, nil
}

// renderFilmList answers GET /v1/films.
func renderFilmList(store *Store) renderFunc {
	return func(ctx context.Context, r *http.Request) ([]byte, error) {
		q, err := parseFilmQuery(r.URL.Query())
		if err != nil {
			return nil, err
		}
		e := newPageEncoder()
		next, err := store.EachFilm(ctx, q, e.add)
		if err != nil {
			recycleBody(e.b)
			return nil, err
		}
		return e.end(next), nil
	}
}

// renderFilm answers GET /v1/films/{id}.
func renderFilm(store *Store) renderFunc {
	return func(ctx context.Context, r *http.Request) ([]byte, error) {
		id, err := ParseID("id", r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		f, err := store.Film(ctx, id)
		if err != nil {
			return nil, err
		}
		return encodeFilm(f)
	}
}

// genreResponse is a genre with its number of films.
type genreResponse struct {
	Name      string `json:"name"`
	FilmCount int    `json:"film_count"`
}

type genresResponse struct {
	Items []genreResponse `json:"items"`
}

// renderGenres answers GET /v1/genres.
func renderGenres(store *Store) renderFunc {
	return func(ctx context.Context, r *http.Request) ([]byte, error) {
		genres, err := store.Genres(ctx)
		if err != nil {
			return nil, err
		}
		resp := genresResponse{Items: make([]genreResponse, len(genres))}
		for i, g := range genres {
			resp.Items[i] = genreResponse{Name: g.Name, FilmCount: g.Films}
		}
		return encode(resp)
	}
}

// principal returns the caller that auth.required let through; its absence
// is a wiring bug, answered 500.
func principal(w http.ResponseWriter, r *http.Request, log *slog.Logger) (tokens.Principal, bool) {
	p, ok := principalFrom(r.Context())
	if !ok {
		httpapi.Error(w, r, log, errors.New("films: personal route without a principal"))
	}
	return p, ok
}

// callerFilm serves a personal route about one film, named by the path
// value param: it reads the caller and the film id (a bad id is 400), then
// serve, whose error becomes the problem+json answer.
func callerFilm(log *slog.Logger, param string, serve func(w http.ResponseWriter, r *http.Request, userID string, id int64) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r, log)
		if !ok {
			return
		}
		id, err := ParseID(param, r.PathValue(param))
		if err == nil {
			err = serve(w, r, p.UserID, id)
		}
		if err != nil {
			httpapi.Error(w, r, log, err)
		}
	})
}

// handleFavoriteList serves GET /v1/me/favorites: the caller's favourite
// films, in catalogue order.
func handleFavoriteList(log *slog.Logger, store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r, log)
		if !ok {
			return
		}
		req, err := parsePageRequest(r.URL.Query(), SortByID, favoritesScope(p.UserID))
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
	return callerFilm(log, "film_id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		if err := store.AddFavorite(r.Context(), userID, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleFavoriteDelete serves DELETE /v1/me/favorites/{film_id}: 204 whether
// or not it was a favourite.
func handleFavoriteDelete(log *slog.Logger, store *Store) http.Handler {
	return callerFilm(log, "film_id", func(w http.ResponseWriter, r *http.Request, userID string, id int64) error {
		if err := store.RemoveFavorite(r.Context(), userID, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
