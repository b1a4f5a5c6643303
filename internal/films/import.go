package films

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DemoCatalogue is the demo catalogue: vega-datasets' movies.json (see
// demo/README.md for its provenance and its defects).
//
//go:embed demo/movies.json
var DemoCatalogue []byte

// demoCenturyShiftAfter: in the demo catalogue every date after 2011 (its
// newest real film) is a 1915–1946 film whose two-digit year was expanded
// into the wrong century ("Gone with the Wind", Dec 15 2039).
const demoCenturyShiftAfter = 2011

// ImportOptions tune an import.
type ImportOptions struct {
	// CenturyShiftAfter, when set, moves a release year after it back by 100
	// years: for files whose two-digit years were expanded into the wrong
	// century. Zero leaves years alone.
	CenturyShiftAfter int
	// BatchSize, when set, commits every BatchSize rows, bounding how long a
	// huge file holds the write lock. Zero writes the whole file in one
	// transaction: all or nothing, so a crash never leaves half a catalogue
	// (the demo seed runs only on an empty one). Re-running an import that
	// stopped half-way is safe either way: what is in adds nothing.
	BatchSize int
	// Progress, when set, is called once the file is read, with done = 0,
	// and after each committed batch; total is the number of films to write
	// (the rows kept by parsing, before the catalogue's duplicates).
	Progress func(done, total int)
}

// ImportReport says what an import did with each row of the file.
type ImportReport struct {
	Rows       int           // rows read
	Kept       int           // films added to the catalogue
	Duplicates int           // rows whose (title, year) came earlier in the file or was already in the catalogue
	Rejected   []RejectedRow // rows that could not be imported, in file order
	Corrected  int           // rows whose year was moved back a century (ImportOptions.CenturyShiftAfter)
}

// RejectedRow is one row an import skipped, and why.
type RejectedRow struct {
	Index  int    // position in the file's array, from 0
	Title  string // as far as it could be read; may be empty
	Reason string
}

// Import reads a JSON array of films in the vega-datasets movies.json shape
// and adds the valid, new ones to the catalogue. Rows are parsed leniently; a
// row that cannot be imported is reported in Rejected, never fatal. Films are
// keyed by (title, year): the first of a pair wins and importing the same file
// again adds nothing. A file that is not a JSON array of values is an error,
// and then nothing is written.
func Import(ctx context.Context, store *Store, r io.Reader, opts ImportOptions) (ImportReport, error) {
	films, rep, err := parseCatalogue(r, opts, store.now())
	if err != nil {
		return rep, err
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = max(len(films), 1)
	}
	progress := func(done int) {
		if opts.Progress != nil {
			opts.Progress(done, len(films))
		}
	}
	progress(0)
	for start := 0; start < len(films); start += opts.BatchSize {
		batch := films[start:min(start+opts.BatchSize, len(films))]
		added, err := store.insertFilms(ctx, batch)
		if err != nil {
			return rep, err
		}
		rep.Kept += added
		rep.Duplicates += len(batch) - added // already in the catalogue
		progress(start + len(batch))
	}
	return rep, nil
}

// SeedDemo imports the demo catalogue when the catalogue is empty. seeded is
// false when there were films already. Replicas starting together may both
// seed: the (title, year) key makes the second one add nothing.
func SeedDemo(ctx context.Context, store *Store) (rep ImportReport, seeded bool, err error) {
	has, err := store.HasFilms(ctx)
	if err != nil || has {
		return ImportReport{}, false, err
	}
	rep, err = Import(ctx, store, bytes.NewReader(DemoCatalogue), ImportOptions{CenturyShiftAfter: demoCenturyShiftAfter})
	return rep, err == nil, err
}

// parseCatalogue reads the whole file before anything is written, so a file
// broken half-way leaves the catalogue untouched. It drops the rows it
// rejects and the repeats of a (title, year) within the file. now bounds the
// years (MaxYear).
func parseCatalogue(r io.Reader, opts ImportOptions, now time.Time) ([]Film, ImportReport, error) {
	var rep ImportReport
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, rep, errors.New("films: import: the file must hold a JSON array of films")
	}
	type key struct {
		title string
		year  int
	}
	seen := map[key]bool{}
	var films []Film
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, rep, fmt.Errorf("films: import: row %d: %w", i, err)
		}
		rep.Rows++
		f, shifted, err := parseRow(raw, opts, now)
		if err != nil {
			rep.Rejected = append(rep.Rejected, RejectedRow{Index: i, Title: f.Title, Reason: err.Error()})
			continue
		}
		k := key{f.Title, f.Year}
		if seen[k] {
			rep.Duplicates++
			continue
		}
		seen[k] = true
		if shifted {
			rep.Corrected++
		}
		films = append(films, f)
	}
	if _, err := dec.Token(); err != nil {
		return nil, rep, fmt.Errorf("films: import: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, rep, errors.New("films: import: data after the JSON array")
	}
	return films, rep, nil
}

// movieRow is one row of movies.json; the columns we do not keep (grosses,
// budget, distributor, Rotten Tomatoes…) are ignored.
type movieRow struct {
	Title       json.RawMessage `json:"Title"`
	ReleaseDate json.RawMessage `json:"Release Date"`
	Genre       json.RawMessage `json:"Major Genre"`
	Director    json.RawMessage `json:"Director"`
	RuntimeMin  json.RawMessage `json:"Running Time min"`
	MPAARating  json.RawMessage `json:"MPAA Rating"`
	IMDBRating  json.RawMessage `json:"IMDB Rating"`
}

// parseRow turns one row into a film, by the rules an admin's film follows
// (rules.go). On error the film holds the title when it could be read, for
// the report.
func parseRow(raw json.RawMessage, opts ImportOptions, now time.Time) (f Film, shifted bool, err error) {
	var row movieRow
	if err := json.Unmarshal(raw, &row); err != nil {
		return Film{}, false, errors.New("not a JSON object")
	}
	if f.Title, err = parseTitle(row.Title); err != nil {
		return f, false, err
	}
	if f.Year, f.ReleaseDate, err = parseReleaseDate(row.ReleaseDate); err != nil {
		return f, false, err
	}
	if opts.CenturyShiftAfter > 0 && f.Year > opts.CenturyShiftAfter {
		f.Year -= 100
		if !f.ReleaseDate.IsZero() {
			f.ReleaseDate = f.ReleaseDate.AddDate(-100, 0, 0)
		}
		shifted = true
	}
	if p := yearProblem(f.Year, now); p != "" {
		return f, false, fmt.Errorf("release year %d %s", f.Year, p)
	}
	for _, field := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
		max  int
	}{
		{"Major Genre", row.Genre, &f.Genre, MaxGenreLen},
		{"Director", row.Director, &f.Director, MaxNameLen},
		{"MPAA Rating", row.MPAARating, &f.MPAARating, MaxMPAALen},
	} {
		if *field.dst, err = optionalText(field.name, field.raw, field.max); err != nil {
			return f, false, err
		}
	}
	runtime, err := optionalNumber("Running Time min", row.RuntimeMin)
	if err != nil {
		return f, false, err
	}
	if runtime != 0 && (runtime != math.Trunc(runtime) || runtime < 1 || runtime > 1000) {
		return f, false, fmt.Errorf("Running Time min %v is not a whole number of minutes from 1 to 1000", runtime)
	}
	f.RuntimeMin = int(runtime)
	if f.IMDBRating, err = optionalNumber("IMDB Rating", row.IMDBRating); err != nil {
		return f, false, err
	}
	if f.IMDBRating < 0 || f.IMDBRating > 10 {
		return f, false, fmt.Errorf("IMDB Rating %v is outside 0–10", f.IMDBRating)
	}
	return f, shifted, nil
}

// parseTitle accepts a string or a number: some films are called 1776 or 300,
// and the file stores those titles as JSON numbers.
func parseTitle(raw json.RawMessage) (string, error) {
	v, err := decodeScalar(raw)
	if err != nil {
		return "", errors.New("title is not text")
	}
	var title string
	switch v := v.(type) {
	case nil:
		return "", errors.New("missing title")
	case string:
		title = collapseSpaces(v)
	case json.Number:
		title = numberText(v)
	default:
		return "", errors.New("title is not text")
	}
	if title == "" {
		return "", errors.New("missing title")
	}
	if p := titleProblem(title); p != "" {
		return truncate(title, 100), errors.New("title " + p)
	}
	return title, nil
}

// numberText writes a numeric title as decimal text: 1776, not 1.776e+03.
func numberText(n json.Number) string {
	if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return n.String()
	}
	f, err := n.Float64()
	if err != nil {
		return n.String()
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// dateLayouts are the release date forms accepted, the file's own first.
var dateLayouts = []string{
	"Jan 02 2006", "Jan 2 2006", "Jan 2, 2006", "January 2 2006", "January 2, 2006",
	"2006-01-02", "2 Jan 2006", "2 January 2006",
}

// parseReleaseDate returns the year and, when the text has one, the date. A
// bare year (text or number) is accepted; without a year there is no film:
// (title, year) is the catalogue's key.
func parseReleaseDate(raw json.RawMessage) (int, time.Time, error) {
	v, err := decodeScalar(raw)
	if err != nil {
		return 0, time.Time{}, errors.New("unreadable release date")
	}
	var s string
	switch v := v.(type) {
	case nil:
		return 0, time.Time{}, errors.New("missing release date")
	case string:
		s = collapseSpaces(v)
	case json.Number:
		s = v.String()
	default:
		return 0, time.Time{}, errors.New("unreadable release date")
	}
	if len(s) == 4 {
		if y, err := strconv.Atoi(s); err == nil {
			return y, time.Time{}, nil
		}
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Year(), t, nil
		}
	}
	return 0, time.Time{}, fmt.Errorf("unreadable release date %q", truncate(s, 40))
}

// optionalText reads a string column of at most max characters that may be
// null; blank means unknown.
func optionalText(name string, raw json.RawMessage, max int) (string, error) {
	v, err := decodeScalar(raw)
	switch v := v.(type) {
	case nil:
		if err == nil {
			return "", nil
		}
	case string:
		s := collapseSpaces(v)
		if p := textProblem(s, max); p != "" {
			return "", fmt.Errorf("%s %s", name, p)
		}
		return s, nil
	}
	return "", fmt.Errorf("%s is not text", name)
}

// optionalNumber reads a numeric column that may be null or a numeric string.
func optionalNumber(name string, raw json.RawMessage) (float64, error) {
	v, err := decodeScalar(raw)
	var s string
	switch v := v.(type) {
	case nil:
		if err == nil {
			return 0, nil
		}
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
		if s == "" {
			return 0, nil
		}
	}
	n, perr := strconv.ParseFloat(s, 64)
	if err != nil || perr != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%s is not a number", name)
	}
	return n, nil
}

// errNotScalar: an object, an array or a boolean where a column wants text or
// a number.
var errNotScalar = errors.New("not a string, number or null")

// decodeScalar reads one column's JSON value (already known to be valid
// JSON) as nil, a string or a json.Number; a missing column is null. It
// avoids a json.Decoder per column, which made parsing ten times slower.
func decodeScalar(raw json.RawMessage) (any, error) {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	case raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9'):
		return json.Number(raw), nil
	}
	return nil, errNotScalar
}

// collapseSpaces trims s and turns every run of white space into one space.
func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate shortens s to at most n bytes for a message, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
