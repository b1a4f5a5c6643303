// Package films is Kinoteka's films service: the public catalogue, and the
// personal routes (favourites, later reviews) of users whose access tokens it
// verifies locally against auth's JWK set. It owns its database; users are
// auth's, known here only by the token's sub.
package films

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
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

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Paging limits of every list route.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// SortByID is the only order so far. The cursor records the order it was cut
// from, so a cursor from one order is refused by another.
const SortByID = "id"

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

// Cursor is the opaque keyset position a page ended at: the last item's sort
// key and id, for the order named by Sort. The id breaks ties, so a position
// stays exact when later orders (title, year, rating) have equal keys.
type Cursor struct {
	Sort string
	Key  string // the last item's sort key as text; empty when sorting by id
	ID   int64
}

// cursorJSON is the cursor's wire form before base64url.
type cursorJSON struct {
	Sort string `json:"s"`
	Key  string `json:"k,omitempty"`
	ID   int64  `json:"i"`
}

// maxCursorLen bounds what ParseCursor will decode.
const maxCursorLen = 1024

// Encode returns the cursor as base64url text, safe in a query string.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(cursorJSON(c)) // cannot fail: strings and an int
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a cursor made by Encode for the order sort. Anything
// else — bad base64, bad JSON, another order, a non-positive id — is an
// Invalid error on the field "cursor".
func ParseCursor(s, sort string) (Cursor, error) {
	bad := func(msg string) (Cursor, error) {
		return Cursor{}, apperr.Validation(apperr.FieldError{Field: "cursor", Message: msg})
	}
	if len(s) > maxCursorLen {
		return bad("is too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("is not a cursor returned by this API")
	}
	var cj cursorJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil || dec.More() {
		return bad("is not a cursor returned by this API")
	}
	switch {
	case cj.Sort != sort:
		return bad("belongs to another sort order; start again without a cursor")
	case cj.ID <= 0:
		return bad("is not a cursor returned by this API")
	case sort == SortByID && cj.Key != "":
		return bad("is not a cursor returned by this API")
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
