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

// filmField is one JSON member of a film an admin may write: how its value
// is read and checked, and where it goes.
type filmField struct {
	name string
	// set reads raw into f and returns what is wrong with it, "" when
	// nothing is. It gets every value but a null the field accepts.
	set func(f *Film, raw json.RawMessage) string
	// clear is what null does; nil when the film cannot be without the
	// field, and set then answers null as a value of the wrong type.
	clear func(f *Film)
}

// filmFields are the members of a film an admin may write, in the order
// their problems are reported.
var filmFields = []filmField{
	{name: "title", set: func(f *Film, raw json.RawMessage) string {
		s, ok := jsonString(raw)
		if !ok {
			return "must be a string"
		}
		f.Title = collapseSpaces(s)
		return titleProblem(f.Title)
	}},
	// The year's range is checked with the whole film (required, and
	// the release date must fall in it).
	{name: "year", set: func(f *Film, raw json.RawMessage) string {
		n, ok := wholeNumber(raw)
		if !ok {
			return "must be an integer"
		}
		f.Year = int(n)
		return ""
	}},
	{name: "release_date", clear: func(f *Film) { f.ReleaseDate = time.Time{} }, set: func(f *Film, raw json.RawMessage) string {
		s, ok := jsonString(raw)
		d, err := time.Parse(time.DateOnly, s)
		if !ok || err != nil {
			return "must be a date, YYYY-MM-DD, or null"
		}
		f.ReleaseDate = d
		return ""
	}},
	textField("genre", MaxGenreLen, func(f *Film) *string { return &f.Genre }),
	textField("director", MaxNameLen, func(f *Film) *string { return &f.Director }),
	{name: "runtime_min", clear: func(f *Film) { f.RuntimeMin = 0 }, set: func(f *Film, raw json.RawMessage) string {
		n, ok := wholeNumber(raw)
		if !ok || n < 1 || n > MaxRuntimeMin {
			return fmt.Sprintf("must be a whole number of minutes from 1 to %d, or null", MaxRuntimeMin)
		}
		f.RuntimeMin = int(n)
		return ""
	}},
	textField("mpaa_rating", MaxMPAALen, func(f *Film) *string { return &f.MPAARating }),
	{name: "imdb_rating", clear: func(f *Film) { f.IMDBRating = 0 }, set: func(f *Film, raw json.RawMessage) string {
		x, ok := jsonNumber(raw)
		if !ok || x < 1 || x > 10 {
			return "must be a number from 1 to 10, or null"
		}
		f.IMDBRating = math.Round(x*10) / 10
		return ""
	}},
}

// textField is an optional text member of at most max characters, spaces
// collapsed; null and "" both clear it.
func textField(name string, max int, field func(*Film) *string) filmField {
	return filmField{
		name:  name,
		clear: func(f *Film) { *field(f) = "" },
		set: func(f *Film, raw json.RawMessage) string {
			s, ok := jsonString(raw)
			if !ok {
				return "must be a string or null"
			}
			*field(f) = collapseSpaces(s)
			return textProblem(*field(f), max)
		},
	}
}

// applyFilmFields applies a JSON merge patch (RFC 7396) of a film's fields to
// f: a member sets the field, null clears it (title and year cannot be
// cleared). A POST body is a patch applied to an empty film. Every problem is
// reported at once; the genre's existence is the store's to check.
func applyFilmFields(f Film, patch map[string]json.RawMessage, now time.Time) (Film, error) {
	var fields []apperr.FieldError
	bad := func(field, msg string) { fields = append(fields, apperr.FieldError{Field: field, Message: msg}) }
	var unknown []string
	for k := range patch {
		if !slices.ContainsFunc(filmFields, func(fld filmField) bool { return fld.name == k }) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		bad(k, "is not a field of a film")
	}
	for _, fld := range filmFields {
		raw, ok := patch[fld.name]
		switch {
		case !ok:
		case fld.clear != nil && string(raw) == "null":
			fld.clear(&f)
		default:
			if p := fld.set(&f, raw); p != "" {
				bad(fld.name, p)
			}
		}
	}
	fields = append(fields, wholeFilmProblems(f, patch, fields, now)...)
	if len(fields) > 0 {
		return Film{}, apperr.Validation(fields...)
	}
	return f, nil
}

// wholeFilmProblems are the rules that need the whole film: a POST must name
// title and year, and a patch must leave a consistent film. A field that
// already has a problem gets no second one.
func wholeFilmProblems(f Film, patch map[string]json.RawMessage, fields []apperr.FieldError, now time.Time) []apperr.FieldError {
	var out []apperr.FieldError
	if _, ok := patch["title"]; !ok && f.Title == "" {
		out = append(out, apperr.FieldError{Field: "title", Message: "is required"})
	}
	if _, ok := patch["year"]; !ok && f.Year == 0 {
		out = append(out, apperr.FieldError{Field: "year", Message: "is required"})
	} else if p := yearProblem(f.Year, now); f.Year != 0 && p != "" && !hasField(fields, "year") {
		out = append(out, apperr.FieldError{Field: "year", Message: p})
	}
	if !f.ReleaseDate.IsZero() && f.Year != 0 && f.ReleaseDate.Year() != f.Year && !hasField(fields, "release_date") {
		out = append(out, apperr.FieldError{Field: "release_date", Message: fmt.Sprintf("must fall in the film's year, %d", f.Year)})
	}
	return out
}

func hasField(fields []apperr.FieldError, name string) bool {
	return slices.ContainsFunc(fields, func(e apperr.FieldError) bool { return e.Field == name })
}

// jsonString reads a JSON string; null is none (encoding/json would leave
// the target alone and report no error).
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if string(raw) == "null" || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonNumber reads a JSON number; null is none.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	var x float64
	if string(raw) == "null" || json.Unmarshal(raw, &x) != nil {
		return 0, false
	}
	return x, true
}

// wholeNumber reads a JSON number without a fraction (1995 and 1995.0 both
// work) that fits an int32.
func wholeNumber(raw json.RawMessage) (int64, bool) {
	x, ok := jsonNumber(raw)
	if !ok || x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
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
