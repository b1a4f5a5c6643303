package films

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"kinoteka/internal/apperr"
)

// The catalogue's rules for a film's fields, shared by the admin routes and
// the importer, so a film an import keeps is one an admin could have typed.
const (
	MinYear         = 1870 // the first moving pictures
	MaxTitleLen     = 300  // characters
	MaxNameLen      = 200  // characters of a director's name
	MaxGenreLen     = 50
	MaxMPAALen      = 20
	MaxRuntimeMin   = 1000
	MaxReviewText   = 5000 // characters
	MinReviewRating = 1
	MaxReviewRating = 10
)

// MaxYear is the latest year a film may have: next year, for announced
// releases.
func MaxYear(now time.Time) int { return now.UTC().Year() + 1 }

// textProblem says what is wrong with a text field of at most max
// characters, or "" when nothing is. Control characters are refused: they
// are never part of a name, and PostgreSQL cannot store NUL.
func textProblem(s string, max int) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

// titleProblem checks a title whose spaces are already collapsed.
func titleProblem(title string) string {
	if title == "" {
		return "must not be empty"
	}
	return textProblem(title, MaxTitleLen)
}

func yearProblem(year int, now time.Time) string {
	if year < MinYear || year > MaxYear(now) {
		return fmt.Sprintf("must be from %d to %d", MinYear, MaxYear(now))
	}
	return ""
}

// filmFields are the JSON members of a film an admin may write, in the
// order problems are reported.
var filmFields = []string{"title", "year", "release_date", "genre", "director", "runtime_min", "mpaa_rating", "imdb_rating"}

// applyFilmFields applies a JSON merge patch (RFC 7396) of a film's fields to
// f: a member sets the field, null clears it (title and year cannot be
// cleared). A POST body is a patch applied to an empty film. Every problem is
// reported at once; the genre's existence is the store's to check.
func applyFilmFields(f Film, patch map[string]json.RawMessage, now time.Time) (Film, error) {
	var fields []apperr.FieldError
	bad := func(field, msg string) { fields = append(fields, apperr.FieldError{Field: field, Message: msg}) }
	var unknown []string
	for k := range patch {
		if !slices.Contains(filmFields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		bad(k, "is not a field of a film")
	}
	for _, name := range filmFields {
		raw, ok := patch[name]
		if !ok {
			continue
		}
		null := string(raw) == "null"
		switch name {
		case "title":
			var s string
			if null || json.Unmarshal(raw, &s) != nil {
				bad(name, "must be a string")
				continue
			}
			f.Title = collapseSpaces(s)
			if p := titleProblem(f.Title); p != "" {
				bad(name, p)
			}
		case "year":
			n, ok := wholeNumber(raw)
			if null || !ok {
				bad(name, "must be an integer")
				continue
			}
			f.Year = int(n)
		case "release_date":
			f.ReleaseDate = time.Time{}
			if null {
				continue
			}
			var s string
			d, err := time.Time{}, json.Unmarshal(raw, &s)
			if err == nil {
				d, err = time.Parse(time.DateOnly, s)
			}
			if err != nil {
				bad(name, "must be a date, YYYY-MM-DD, or null")
				continue
			}
			f.ReleaseDate = d
		case "genre", "director", "mpaa_rating":
			dst, max := &f.Genre, MaxGenreLen
			switch name {
			case "director":
				dst, max = &f.Director, MaxNameLen
			case "mpaa_rating":
				dst, max = &f.MPAARating, MaxMPAALen
			}
			*dst = ""
			if null {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				bad(name, "must be a string or null")
				continue
			}
			*dst = collapseSpaces(s)
			if p := textProblem(*dst, max); p != "" {
				bad(name, p)
			}
		case "runtime_min":
			f.RuntimeMin = 0
			if null {
				continue
			}
			n, ok := wholeNumber(raw)
			if !ok || n < 1 || n > MaxRuntimeMin {
				bad(name, fmt.Sprintf("must be a whole number of minutes from 1 to %d, or null", MaxRuntimeMin))
				continue
			}
			f.RuntimeMin = int(n)
		case "imdb_rating":
			f.IMDBRating = 0
			if null {
				continue
			}
			var x float64
			if json.Unmarshal(raw, &x) != nil || x < 1 || x > 10 {
				bad(name, "must be a number from 1 to 10, or null")
				continue
			}
			f.IMDBRating = math.Round(x*10) / 10
		}
	}
	// The rules that need the whole film: a POST must name title and year,
	// and a patch must leave a consistent film.
	if _, ok := patch["title"]; !ok && f.Title == "" {
		bad("title", "is required")
	}
	if _, ok := patch["year"]; !ok && f.Year == 0 {
		bad("year", "is required")
	} else if f.Year != 0 {
		if p := yearProblem(f.Year, now); p != "" && !hasField(fields, "year") {
			bad("year", p)
		}
	}
	if !f.ReleaseDate.IsZero() && f.Year != 0 && f.ReleaseDate.Year() != f.Year && !hasField(fields, "release_date") {
		bad("release_date", fmt.Sprintf("must fall in the film's year, %d", f.Year))
	}
	if len(fields) > 0 {
		return Film{}, apperr.Validation(fields...)
	}
	return f, nil
}

func hasField(fields []apperr.FieldError, name string) bool {
	return slices.ContainsFunc(fields, func(e apperr.FieldError) bool { return e.Field == name })
}

// wholeNumber reads a JSON number without a fraction (1995 and 1995.0 both
// work) that fits an int32.
func wholeNumber(raw json.RawMessage) (int64, bool) {
	var x float64
	if json.Unmarshal(raw, &x) != nil || x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
		return 0, false
	}
	return int64(x), true
}

// ParseGenreName checks the name of a new genre: 1 to MaxGenreLen
// characters, spaces collapsed.
func ParseGenreName(s string) (string, error) {
	name := collapseSpaces(s)
	msg := textProblem(name, MaxGenreLen)
	if name == "" {
		msg = "must not be empty"
	}
	if msg != "" {
		return "", apperr.Validation(apperr.FieldError{Field: "name", Message: msg})
	}
	return name, nil
}

// ReviewInput is a valid review to write: a rating from 1 to 10 and up to
// MaxReviewText characters of text.
type ReviewInput struct {
	Rating int
	Text   string
}

// ParseReview checks a review's fields, reporting both at once. The text
// keeps its line breaks; only its ends are trimmed.
func ParseReview(rating *float64, text *string) (ReviewInput, error) {
	var (
		in     ReviewInput
		fields []apperr.FieldError
	)
	switch {
	case rating == nil:
		fields = append(fields, apperr.FieldError{Field: "rating", Message: "is required"})
	case *rating != math.Trunc(*rating) || *rating < MinReviewRating || *rating > MaxReviewRating:
		fields = append(fields, apperr.FieldError{Field: "rating", Message: fmt.Sprintf("must be an integer from %d to %d", MinReviewRating, MaxReviewRating)})
	default:
		in.Rating = int(*rating)
	}
	if text != nil {
		in.Text = strings.TrimSpace(*text)
		switch {
		case !utf8.ValidString(in.Text):
			fields = append(fields, apperr.FieldError{Field: "text", Message: "is not valid UTF-8"})
		case utf8.RuneCountInString(in.Text) > MaxReviewText:
			fields = append(fields, apperr.FieldError{Field: "text", Message: fmt.Sprintf("must be at most %d characters", MaxReviewText)})
		case strings.ContainsFunc(in.Text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }):
			fields = append(fields, apperr.FieldError{Field: "text", Message: "must not contain control characters other than line breaks and tabs"})
		}
	}
	if len(fields) > 0 {
		return ReviewInput{}, apperr.Validation(fields...)
	}
	return in, nil
}
