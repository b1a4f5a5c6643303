package films

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Text normalisation for search and sorting. It is done here, in Go, rather
// than by each engine, so that PostgreSQL (tsvector) and SQLite (FTS5) index
// exactly the same words and sort titles in exactly the same order: one
// behaviour, two engines.

// Limits of the search parameters q and director.
const (
	maxSearchLen   = 200
	maxSearchWords = 10
)

// fold lower-cases s and removes accents: "Amélie" → "amelie",
// "Ёжик" → "ежик".
func fold(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	// A transformer keeps state: one per call.
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sortKey is the key titles sort by: folded, spaces collapsed, punctuation
// kept. Both engines compare it byte by byte.
func sortKey(s string) string { return collapseSpaces(fold(s)) }

// searchWords splits s into the words search works on: folded runs of
// letters and digits. Apostrophes join ("Schindler's" → "schindlers", so
// either spelling finds it); every other character separates.
func searchWords(s string) []string {
	var (
		words []string
		b     strings.Builder
	)
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range fold(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		case r == '\'' || r == '’' || r == 'ʼ':
		default:
			flush()
		}
	}
	flush()
	return words
}

// searchText is what a title or director is indexed as: its search words
// separated by single spaces. Empty means nothing to index.
func searchText(s string) string { return strings.Join(searchWords(s), " ") }
