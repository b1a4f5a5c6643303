package films

import (
	"encoding/base64"
	"strings"
	"testing"

	"kinoteka/internal/apperr"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		invalid bool
	}{
		{"", DefaultLimit, false},
		{"1", 1, false},
		{"100", 100, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"101", 0, true},
		{"abc", 0, true},
		{"2.5", 0, true},
		{"99999999999999999999", 0, true},
	} {
		got, err := ParseLimit(tc.in)
		if tc.invalid != (err != nil) || got != tc.want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d, invalid %v", tc.in, got, err, tc.want, tc.invalid)
		}
		if err != nil && !apperr.Is(err, apperr.Invalid) {
			t.Errorf("ParseLimit(%q) error kind %v, want invalid", tc.in, apperr.KindOf(err))
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{Sort: SortByID, ID: 1},
		{Sort: SortByID, ID: 1<<63 - 1},
		{Sort: SortByTitle, Key: "ночной дозор \"2004\"", ID: 42, Scope: "abc"},
		{Sort: SortByYearDesc, Key: "1995", ID: 7, Scope: FilmQuery{Genre: "Drama"}.Scope()},
		{Sort: SortByRatingDesc, Key: "0", ID: 7},
		{Sort: sortReviews, ID: 3, Scope: reviewsScope(12)},
	} {
		enc := c.Encode()
		if strings.ContainsAny(enc, "+/=") {
			t.Errorf("cursor %q is not URL-safe", enc)
		}
		got, err := ParseCursor(enc, c.Sort, c.Scope)
		if err != nil || got != c {
			t.Errorf("ParseCursor(Encode(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestParseCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ name, in string }{
		{"not base64", "!!!"},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(`{"s":"id","i":1}`))},
		{"not JSON", enc("hello")},
		{"JSON array", enc(`[1]`)},
		{"unknown member", enc(`{"s":"id","i":1,"x":2}`)},
		{"trailing data", enc(`{"s":"id","i":1}{}`)},
		{"other sort", Cursor{Sort: "title", Key: "A", ID: 1}.Encode()},
		{"unknown sort", enc(`{"s":"price","i":1}`)},
		{"other filters", Cursor{Sort: SortByID, ID: 1, Scope: FilmQuery{Genre: "Drama"}.Scope()}.Encode()},
		{"id zero", enc(`{"s":"id","i":0}`)},
		{"id negative", enc(`{"s":"id","i":-5}`)},
		{"id not a number", enc(`{"s":"id","i":"5"}`)},
		{"key on id sort", enc(`{"s":"id","k":"x","i":5}`)},
		{"too long", strings.Repeat("A", 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCursor(tc.in, SortByID, "")
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "cursor" {
				t.Errorf("ParseCursor = %v, want an Invalid error on field cursor", err)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1", 1}, {"3201", 3201}, {"0", 0}, {"-3", 0}, {"abc", 0}, {"1.5", 0}, {"", 0}, {"99999999999999999999", 0},
	} {
		got, err := ParseID("id", tc.in)
		if got != tc.want || (tc.want == 0) != (err != nil) {
			t.Errorf("ParseID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
