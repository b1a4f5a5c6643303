package films

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"kinoteka/internal/sqldb"
)

// Reading film rows. database/sql converts a column into an int, int64 or
// float64 through reflect (an int64 into an int even by formatting and
// parsing it), and SQLite's driver parses every date with time.Parse; a page
// of 20 films has 273 values, so the read path scans into the small
// sql.Scanner types below, which take the driver's value as it comes.

type scanner interface{ Scan(dest ...any) error }

// filmRow is the scan destination of one row of filmColumns (or
// sqliteReadColumns). A page reuses one for all its rows.
type filmRow struct {
	id, year, runtime, reviews, ratingSum colInt
	genre                                 colInt // the genre's id; 0: none
	title, director, mpaa                 colText
	imdb                                  colFloat
	release, created, updated             storedTime

	dest []any
}

func newFilmRow() *filmRow {
	r := &filmRow{}
	r.dest = []any{&r.id, &r.title, &r.year, &r.release, &r.genre, &r.director, &r.runtime,
		&r.mpaa, &r.imdb, &r.reviews, &r.ratingSum, &r.created, &r.updated}
	return r
}

// scan reads the next row into a Film. Unknown values are zero. The
// film's Genre is left empty: genreID is its genre (0: none), whose name
// genreNames gives.
func (r *filmRow) scan(row scanner) (f Film, genreID int64, err error) {
	if err := row.Scan(r.dest...); err != nil {
		return Film{}, 0, err
	}
	if !r.created.valid || !r.updated.valid {
		return Film{}, 0, errors.New("films: a film without created_at or updated_at")
	}
	f = Film{
		ID: int64(r.id), Title: string(r.title), Year: int(r.year),
		Director: string(r.director), RuntimeMin: int(r.runtime),
		MPAARating: string(r.mpaa), IMDBRating: float64(r.imdb),
		ReviewCount: int(r.reviews), RatingSum: int(r.ratingSum),
		CreatedAt: r.created.UTC(), UpdatedAt: r.updated.UTC(),
	}
	if r.release.valid {
		f.ReleaseDate = r.release.UTC()
	}
	if f.ReviewCount > 0 {
		f.AverageRating = float64(f.RatingSum) / float64(f.ReviewCount)
	}
	return f, int64(r.genre), nil
}

// scanFilm reads one row of filmColumns or sqliteReadColumns, then its
// genre's name through q — once the row is read, so q may be the
// transaction the row came from.
func (s *Store) scanFilm(ctx context.Context, q queryer, row *sql.Row) (Film, error) {
	f, genreID, err := newFilmRow().scan(row)
	if err != nil {
		return Film{}, err
	}
	f.Genre, err = s.genres.lookup(ctx, q, genreID)
	return f, err
}

func scanError(src any, want string) error {
	return fmt.Errorf("films: cannot read a %T as %s", src, want)
}

// colInt reads an integer column; NULL reads as 0.
type colInt int64

func (c *colInt) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*c = colInt(v)
	case nil:
		*c = 0
	default:
		return scanError(src, "an integer")
	}
	return nil
}

// colFloat reads a floating-point column; NULL reads as 0.
type colFloat float64

func (c *colFloat) Scan(src any) error {
	switch v := src.(type) {
	case float64:
		*c = colFloat(v)
	case int64:
		*c = colFloat(v)
	case nil:
		*c = 0
	default:
		return scanError(src, "a number")
	}
	return c.check(src)
}

func (c *colFloat) check(src any) error {
	if math.IsNaN(float64(*c)) || math.IsInf(float64(*c), 0) {
		return scanError(src, "a finite number")
	}
	return nil
}

// colText reads a text column; NULL reads as "".
type colText string

func (c *colText) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*c = colText(v)
	case []byte:
		*c = colText(v)
	case nil:
		*c = ""
	default:
		return scanError(src, "text")
	}
	return nil
}

// storedTime reads a date or timestamp column, NULL included: a time.Time
// from PostgreSQL (or from SQLite's driver), or SQLite's text of it.
type storedTime struct {
	time.Time
	valid bool
}

func (t *storedTime) Scan(src any) error {
	var err error
	switch v := src.(type) {
	case nil:
		*t = storedTime{}
		return nil
	case time.Time:
		t.Time = v
	case string:
		t.Time, err = parseStoredTime(v)
	case []byte:
		t.Time, err = parseStoredTime(string(v))
	default:
		err = scanError(src, "a time")
	}
	t.valid = err == nil
	return err
}

// parseStoredTime reads a time as SQLite holds it. This store writes two
// layouts: dates as YYYY-MM-DD (nullDate) and timestamps as the SQLite
// driver formats a UTC time.Time, t.String(): "2006-01-02 15:04:05.999999999
// +0000 UTC". Those are read here by hand; anything else goes the driver's
// own way (modernc.org/sqlite's parseTime: t.String() with any zone and
// without its monotonic suffix, then its list of layouts), so every value
// the driver could read still reads the same.
func parseStoredTime(s string) (time.Time, error) {
	if t, ok := parseUTCStamp(s); ok {
		return t, nil
	}
	s0 := s
	if i := strings.Index(s, "m="); i > 0 {
		s = s[:i]
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.TrimSpace(s)); err == nil {
		return t, nil
	}
	s, _ = strings.CutSuffix(s0, "Z")
	for _, layout := range sqliteTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("films: %q is not a time", s0)
}

// sqliteTimeLayouts are the layouts modernc.org/sqlite v1.62 tries, in its
// order (parseTimeFormats).
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseUTCStamp reads "2006-01-02" and "2006-01-02 15:04:05[.fraction]
// +0000 UTC" exactly as time.Parse would, and refuses (ok false) anything
// else, values out of range included.
func parseUTCStamp(s string) (t time.Time, ok bool) {
	const date, clock, utc = len("2006-01-02"), len(" 15:04:05"), " +0000 UTC"
	if len(s) < date || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, ok1 := atoiDigits(s[0:4])
	month, ok2 := atoiDigits(s[5:7])
	day, ok3 := atoiDigits(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	if len(s) == date {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), true
	}
	rest, found := strings.CutSuffix(s[date:], utc)
	if !found || len(rest) < clock || rest[0] != ' ' || rest[3] != ':' || rest[6] != ':' {
		return time.Time{}, false
	}
	hour, ok1 := atoiDigits(rest[1:3])
	minute, ok2 := atoiDigits(rest[4:6])
	sec, ok3 := atoiDigits(rest[7:9])
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := rest[clock:]; frac != "" {
		// time.Parse rounds a fraction of more than nine digits: leave
		// those to it.
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := atoiDigits(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// atoiDigits reads a run of ASCII digits (no sign, at most nine).
func atoiDigits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// pgScanner reads a row of sqldb.DB.QueryRaw into the column types above,
// straight from the wire format: PostgreSQL's read path skips database/sql
// (a driver.Value per column, converted again on Scan, and a goroutine per
// query).
type pgScanner struct{ row sqldb.PGRow }

func (p pgScanner) Scan(dest ...any) error {
	for i, d := range dest {
		var err error
		switch d := d.(type) {
		case *colInt:
			var n int64
			n, err = p.row.Int(i)
			*d = colInt(n)
		case *colText:
			var s string
			s, err = p.row.Text(i)
			*d = colText(s)
		case *colFloat:
			var x float64
			if x, err = p.row.Float(i); err == nil {
				*d = colFloat(x)
				err = d.check(x)
			}
		case *storedTime:
			d.Time, d.valid, err = p.row.Time(i)
		default:
			err = fmt.Errorf("films: no PostgreSQL reading into a %T", d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
