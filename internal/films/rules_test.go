package films

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/apperr"
)

// applyFilmFields field by field: what each value does to the film, and the
// exact problems (field and message, in report order) of a refused patch.
func TestApplyFilmFields(t *testing.T) {
	now := testNow // MaxYear is 2027
	date := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	full := Film{ID: 7, Title: "Heat", Year: 1995, ReleaseDate: date("1995-12-15"), Genre: "Crime", Director: "Michael Mann",
		RuntimeMin: 170, MPAARating: "R", IMDBRating: 8.3}
	type problem struct{ field, message string }
	runtimeMsg := fmt.Sprintf("must be a whole number of minutes from 1 to %d, or null", MaxRuntimeMin)
	for _, tc := range []struct {
		name     string
		from     Film
		patch    string
		want     Film      // when problems is nil
		problems []problem // in report order
	}{
		{name: "a new film, every field", patch: `{"title":"  Heat  2 ","year":2027,"release_date":"2027-01-15","genre":" Crime ",` +
			`"director":"Michael  Mann","runtime_min":150.0,"mpaa_rating":"R","imdb_rating":7.95}`,
			want: Film{Title: "Heat 2", Year: 2027, ReleaseDate: date("2027-01-15"), Genre: "Crime", Director: "Michael Mann",
				RuntimeMin: 150, MPAARating: "R", IMDBRating: 8}},
		{name: "a new film, title and year alone", patch: `{"title":"Bare","year":1870}`, want: Film{Title: "Bare", Year: 1870}},
		{name: "an empty body", patch: `{}`, problems: []problem{{"title", "is required"}, {"year", "is required"}}},
		{name: "nulls clear what may be cleared", from: full,
			patch: `{"release_date":null,"genre":null,"director":null,"runtime_min":null,"mpaa_rating":null,"imdb_rating":null}`,
			want:  Film{ID: 7, Title: "Heat", Year: 1995}},
		{name: "a patch keeps what it does not name", from: full, patch: `{"runtime_min":171}`,
			want: func() Film { f := full; f.RuntimeMin = 171; return f }()},
		{name: "title and year cannot be cleared", from: full, patch: `{"title":null,"year":null}`,
			problems: []problem{{"title", "must be a string"}, {"year", "must be an integer"}}},
		{name: "unknown members, sorted, first", from: full, patch: `{"zeta":1,"title":"","alpha":2}`,
			problems: []problem{{"alpha", "is not a field of a film"}, {"zeta", "is not a field of a film"}, {"title", "must not be empty"}}},
		{name: "every field wrong at once", patch: `{"imdb_rating":"high","mpaa_rating":5,"runtime_min":0,"director":["x"],` +
			`"genre":true,"release_date":"15.12.1995","year":1995.5,"title":7}`,
			problems: []problem{{"title", "must be a string"}, {"year", "must be an integer"}, {"release_date", "must be a date, YYYY-MM-DD, or null"},
				{"genre", "must be a string or null"}, {"director", "must be a string or null"}, {"runtime_min", runtimeMsg},
				{"mpaa_rating", "must be a string or null"}, {"imdb_rating", "must be a number from 1 to 10, or null"}}},
		{name: "content problems", patch: `{"title":"   ","year":1869,"genre":"a\u0007b","director":"` + strings.Repeat("é", MaxNameLen+1) + `",` +
			`"mpaa_rating":"ABCDEFGHIJKLMNOPQRSTU","runtime_min":1001,"imdb_rating":10.5}`,
			problems: []problem{{"title", "must not be empty"}, {"genre", "must not contain control characters"},
				{"director", fmt.Sprintf("must be at most %d characters", MaxNameLen)}, {"runtime_min", runtimeMsg}, {"mpaa_rating", fmt.Sprintf("must be at most %d characters", MaxMPAALen)},
				{"imdb_rating", "must be a number from 1 to 10, or null"}, {"year", "must be from 1870 to 2027"}}},
		{name: "a title too long", patch: fmt.Sprintf(`{"title":%q,"year":2000}`, strings.Repeat("x", MaxTitleLen+1)),
			problems: []problem{{"title", fmt.Sprintf("must be at most %d characters", MaxTitleLen)}}},
		{name: "a year after next year", patch: `{"title":"Soon","year":2028}`, problems: []problem{{"year", "must be from 1870 to 2027"}}},
		{name: "a year too large for int32", patch: `{"title":"X","year":3000000000}`, problems: []problem{{"year", "must be an integer"}}},
		{name: "a release date outside the year", from: full, patch: `{"year":1996}`,
			problems: []problem{{"release_date", "must fall in the film's year, 1996"}}},
		{name: "a release date and a year moved together", from: full, patch: `{"year":1996,"release_date":"1996-02-01"}`,
			want: func() Film { f := full; f.Year, f.ReleaseDate = 1996, date("1996-02-01"); return f }()},
		{name: "a bad release date is not also out of the year", from: full, patch: `{"release_date":"1996-02-30"}`,
			problems: []problem{{"release_date", "must be a date, YYYY-MM-DD, or null"}}},
		{name: "a bad year is not also out of range", from: full, patch: `{"year":"1995"}`,
			problems: []problem{{"year", "must be an integer"}}},
		{name: "runtime bounds", patch: `{"title":"X","year":2000,"runtime_min":1000}`, want: Film{Title: "X", Year: 2000, RuntimeMin: 1000}},
		{name: "a fractional runtime", patch: `{"title":"X","year":2000,"runtime_min":90.5}`, problems: []problem{{"runtime_min", runtimeMsg}}},
		{name: "imdb bounds and rounding", patch: `{"title":"X","year":2000,"imdb_rating":1}`, want: Film{Title: "X", Year: 2000, IMDBRating: 1}},
		{name: "imdb rounding", from: full, patch: `{"imdb_rating":9.96}`, want: func() Film { f := full; f.IMDBRating = 10; return f }()},
		{name: "empty strings clear text fields", from: full, patch: `{"genre":"","director":"  ","mpaa_rating":""}`,
			want: func() Film { f := full; f.Genre, f.Director, f.MPAARating = "", "", ""; return f }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var patch map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.patch), &patch); err != nil {
				t.Fatal(err)
			}
			got, err := applyFilmFields(tc.from, patch, now)
			if tc.problems == nil {
				if err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %+v, %v\nwant %+v", got, err, tc.want)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.Invalid {
				t.Fatalf("got %v, want a validation error", err)
			}
			var problems []problem
			for _, fe := range e.Fields {
				problems = append(problems, problem{fe.Field, fe.Message})
			}
			if !reflect.DeepEqual(problems, tc.problems) {
				t.Errorf("got  %q\nwant %q", problems, tc.problems)
			}
			if got != (Film{}) {
				t.Errorf("a refused patch returned %+v", got)
			}
		})
	}
}
