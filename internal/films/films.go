// Package films is Kinoteka's films service: the public catalogue (search,
// filters, sorting, keyset paging, genres), our users' reviews and
// favourites, the admin routes that edit the catalogue, and the importer of
// film files. It verifies access tokens locally against auth's JWK set (or a
// configured public key). It owns its database; users are auth's, known here
// only by the token's sub.
//
// Run serves it (run.go) with a Config that starts from DefaultConfig, the
// one place its defaults live; LoadConfig applies the FILMS_* variables of
// docs/operations.md on top. routes.go is the API on one screen. The film
// file importer is Import, which SeedDemo and the `kinoteka films import`
// tool (cmd/kinoteka) both use.
package films

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/apperr"
)

// Film is one catalogue entry. Zero values mean "unknown": the catalogue is
// imported from real, incomplete data.
type Film struct {
	ID          int64
	Title       string
	Year        int
	ReleaseDate time.Time // zero when only the year is known
	Genre       string
	Director    string
	RuntimeMin  int     // 0: unknown
	MPAARating  string  // as published, e.g. "PG-13", "Not Rated"
	IMDBRating  float64 // 0: unknown (IMDB ratings start at 1)

	AverageRating float64 // our users' mean rating; meaningful only when ReviewCount > 0
	ReviewCount   int
	RatingSum     int // the sum of our users' ratings: AverageRating = RatingSum / ReviewCount, exactly

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Genre is a genre and how many films of the catalogue have it.
type Genre struct {
	Name  string
	Films int
}

// Review is one user's rating of a film, with optional text. A user has at
// most one review per film; writing again replaces it.
type Review struct {
	FilmID    int64
	UserID    string
	Rating    int // 1..10
	Text      string
	CreatedAt time.Time // first written
	UpdatedAt time.Time // last written
	Seq       int64     // the film's review write counter at the last write: newest first
	// AuthorName is the author's display name as films last heard it from
	// the users topic; "" when it has not (events.DisplayName's default).
	AuthorName string
}

// Paging limits of every list route.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// The orders of GET /v1/films. Every order ends with the id, so equal keys
// still have one exact place and a cursor is never ambiguous.
const (
	SortByID          = "id"       // catalogue order: the order films were added (the default)
	SortByTitle       = "title"    // A to Z, case and accents ignored
	SortByYear        = "year"     // oldest first
	SortByYearDesc    = "-year"    // newest first
	SortByRatingDesc  = "-rating"  // our users' best average first; films without reviews last
	SortByReviewsDesc = "-reviews" // most reviewed first
)

// sortReviews is the order of review pages: newest write first.
const sortReviews = "new"

// sortKeyKind says what a cursor's Key holds for an order.
type sortKeyKind int

const (
	keyNone sortKeyKind = iota // the id alone
	keyText
	keyInt
)

// sortKinds lists every order a cursor may name.
var sortKinds = map[string]sortKeyKind{
	SortByID: keyNone, SortByTitle: keyText, SortByYear: keyInt, SortByYearDesc: keyInt,
	SortByRatingDesc: keyInt, SortByReviewsDesc: keyInt, sortReviews: keyNone,
}

// FilmSorts are the values the sort parameter accepts, for messages.
var FilmSorts = []string{SortByID, SortByTitle, SortByYear, SortByYearDesc, SortByRatingDesc, SortByReviewsDesc}

// ratingKey is the -rating sort key: round(1000 × average), 0 without
// reviews. Integer arithmetic, as in the migration, so Go and SQL agree.
func ratingKey(sum, count int) int {
	if count <= 0 {
		return 0
	}
	return (sum*1000 + count/2) / count
}

// sortKeyOf is f's key in order sort, as a cursor carries it.
func sortKeyOf(sort string, f Film) string {
	switch sort {
	case SortByTitle:
		return sortKey(f.Title)
	case SortByYear, SortByYearDesc:
		return strconv.Itoa(f.Year)
	case SortByRatingDesc:
		return strconv.Itoa(ratingKey(f.RatingSum, f.ReviewCount))
	case SortByReviewsDesc:
		return strconv.Itoa(f.ReviewCount)
	}
	return ""
}

// FilmQuery asks for one page of the catalogue.
type FilmQuery struct {
	Words         []string // search words (see searchWords): each must begin a word of the title
	DirectorWords []string // the same for the director's name
	Genre         string   // a genre's name, case-insensitive; empty: any
	YearFrom      int      // 0: no lower bound
	YearTo        int      // 0: no upper bound
	Sort          string   // one of FilmSorts
	Limit         int
	After         Cursor // zero: from the start
}

// Scope fingerprints the filters, so a cursor cut under one set of filters
// is refused under another (it would point into a different list). It is
// empty when there are none.
func (q FilmQuery) Scope() string {
	if len(q.Words) == 0 && len(q.DirectorWords) == 0 && q.Genre == "" && q.YearFrom == 0 && q.YearTo == 0 {
		return ""
	}
	return scopeOf("films", strings.Join(q.Words, " "), strings.Join(q.DirectorWords, " "),
		sortKey(q.Genre), strconv.Itoa(q.YearFrom), strconv.Itoa(q.YearTo))
}

// scopeOf hashes parts into a short fingerprint.
func scopeOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:9])
}

// PageRequest asks for up to Limit items after the cursor.
type PageRequest struct {
	Limit int
	After Cursor // zero: from the start
}

// Page is one page of films; Next is nil on the last page.
type Page struct {
	Items []Film
	Next  *Cursor
}

// ReviewPage is one page of a film's reviews, newest first.
type ReviewPage struct {
	Items []Review
	Next  *Cursor
}

// Cursor is the opaque keyset position a page ended at: the last item's sort
// key and id, for the order named by Sort, under the filters fingerprinted by
// Scope. The id breaks ties, so a position stays exact when keys are equal,
// and a film added while someone pages is seen once or not at all — never
// twice, and it never hides another.
type Cursor struct {
	Sort  string
	Key   string // the last item's sort key as text; empty when sorting by id
	ID    int64  // the last item's id (a review's Seq on review pages)
	Scope string // fingerprint of the filters; empty when there are none to bind
}

// cursorJSON is the cursor's wire form before base64url.
type cursorJSON struct {
	Sort  string `json:"s"`
	Key   string `json:"k,omitempty"`
	ID    int64  `json:"i"`
	Scope string `json:"f,omitempty"`
}

// maxCursorLen bounds what ParseCursor will decode.
const maxCursorLen = 2048

// Encode returns the cursor as base64url text, safe in a query string.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(cursorJSON(c)) // cannot fail: strings and an int
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a cursor made by Encode for the order sort under the
// filters fingerprinted by scope. Anything else — bad base64, bad JSON,
// another order, other filters, a key of the wrong kind, a non-positive id —
// is an Invalid error on the field "cursor".
func ParseCursor(s, sort, scope string) (Cursor, error) {
	bad := func(msg string) (Cursor, error) {
		return Cursor{}, apperr.Validation(apperr.FieldError{Field: "cursor", Message: msg})
	}
	const notOurs = "is not a cursor returned by this API"
	if len(s) > maxCursorLen {
		return bad("is too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad(notOurs)
	}
	var cj cursorJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil || dec.More() {
		return bad(notOurs)
	}
	kind, known := sortKinds[cj.Sort]
	switch {
	case !known || cj.ID <= 0:
		return bad(notOurs)
	case cj.Sort != sort:
		return bad("belongs to another sort order; start again without a cursor")
	case cj.Scope != scope:
		return bad("belongs to other filters; start again without a cursor")
	case kind == keyNone && cj.Key != "":
		return bad(notOurs)
	case kind == keyInt:
		if _, err := strconv.ParseInt(cj.Key, 10, 64); err != nil {
			return bad(notOurs)
		}
	}
	return Cursor(cj), nil
}

// ParseLimit reads the limit parameter: empty means DefaultLimit, otherwise an
// integer from 1 to MaxLimit.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, apperr.Validation(apperr.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(MaxLimit)})
	}
	return n, nil
}

// ParseID reads a film id from a path: a positive decimal integer.
func ParseID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, apperr.Validation(apperr.FieldError{Field: field, Message: "must be a positive integer"})
	}
	return id, nil
}
