package films

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The catalogue's read answers, encoded by hand: GET /v1/films and
// GET /v1/films/{id} encode every film they read, and encoding/json's
// reflection was a fifth of a page's cost (docs/benchmarks.md, "uncached read
// path"). The bytes are exactly encoding/json's for filmResponse and
// pageResponse, which stay the reference (TestEncodeFilmMatchesEncodingJSON
// compares them for every film of the demo catalogue): same field order,
// nulls, escaping (HTML-safe, U+2028/U+2029, invalid UTF-8 as U+FFFD), number
// and time formats, and the trailing newline of httpapi.JSON.

// errTimeRange is time.Time.MarshalJSON's refusal, kept so that a film
// encoding/json could not encode is not encoded here either.
var errTimeRange = errors.New("films: encode: a time's year is outside [0,9999]")

// encodeFilm is encode(newFilmResponse(f)), in a buffer from bodyBuffer.
func encodeFilm(f Film) ([]byte, error) {
	b, err := appendFilm(bodyBuffer(), f)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// pageEncoder writes encode(newPageResponse(p)) a film at a time, as
// Store.EachFilm reads them, in a buffer from bodyBuffer.
type pageEncoder struct {
	b []byte
	n int
}

func newPageEncoder() *pageEncoder {
	return &pageEncoder{b: append(bodyBuffer(), `{"items":[`...)}
}

// add appends the page's next film.
func (e *pageEncoder) add(f Film) error {
	if e.n > 0 {
		e.b = append(e.b, ',')
	}
	b, err := appendFilm(e.b, f)
	if err != nil {
		return err
	}
	e.b, e.n = b, e.n+1
	return nil
}

// end closes the page with the next page's cursor (nil: none) and returns it.
func (e *pageEncoder) end(next *Cursor) []byte {
	e.b = append(e.b, `],"next_cursor":`...)
	if next == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = appendJSONString(e.b, next.Encode())
	}
	return append(e.b, "}\n"...)
}

// encodePage is encode(newPageResponse(p)).
func encodePage(p Page) ([]byte, error) {
	e := newPageEncoder()
	for _, f := range p.Items {
		if err := e.add(f); err != nil {
			return nil, err
		}
	}
	return e.end(p.Next), nil
}

// bodyBuffers recycles the buffers of answers nobody keeps: without the
// read cache, an answer's buffer is free once written (readCache.serve), and
// a page's 8 KB were the largest of a request's allocations (garbage
// collection was a fifth of an uncached page's CPU).
var bodyBuffers sync.Pool

// bodyBuffer returns an empty buffer, recycled when one is free.
func bodyBuffer() []byte {
	if b, ok := bodyBuffers.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 16<<10)
}

// recycleBody gives b back for another answer; nothing may use it after.
func recycleBody(b []byte) {
	if cap(b) <= 1<<20 {
		bodyBuffers.Put(&b)
	}
}

// appendFilm appends f as filmResponse encodes it.
func appendFilm(b []byte, f Film) ([]byte, error) {
	if !timeEncodable(f.CreatedAt) || !timeEncodable(f.UpdatedAt) {
		return nil, errTimeRange
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, f.ID, 10)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, f.Title)
	b = append(b, `,"year":`...)
	b = strconv.AppendInt(b, int64(f.Year), 10)
	b = append(b, `,"release_date":`...)
	if f.ReleaseDate.IsZero() {
		b = append(b, "null"...)
	} else {
		// Digits and dashes only: nothing to escape.
		b = append(b, '"')
		b = f.ReleaseDate.AppendFormat(b, time.DateOnly)
		b = append(b, '"')
	}
	b = append(b, `,"genre":`...)
	b = appendNullableString(b, f.Genre)
	b = append(b, `,"director":`...)
	b = appendNullableString(b, f.Director)
	b = append(b, `,"runtime_min":`...)
	if f.RuntimeMin > 0 {
		b = strconv.AppendInt(b, int64(f.RuntimeMin), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"mpaa_rating":`...)
	b = appendNullableString(b, f.MPAARating)
	b = append(b, `,"imdb_rating":`...)
	if f.IMDBRating > 0 {
		b = appendJSONFloat(b, f.IMDBRating)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"average_rating":`...)
	if f.ReviewCount > 0 {
		b = appendJSONFloat(b, math.Round(f.AverageRating*100)/100)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"review_count":`...)
	b = strconv.AppendInt(b, int64(f.ReviewCount), 10)
	b = append(b, `,"created_at":"`...)
	b = appendRFC3339Nano(b, f.CreatedAt)
	b = append(b, `","updated_at":"`...)
	b = appendRFC3339Nano(b, f.UpdatedAt)
	return append(b, `"}`...), nil
}

// timeEncodable is time.Time.MarshalJSON's condition.
func timeEncodable(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// appendRFC3339Nano is t.AppendFormat(b, time.RFC3339Nano), written out
// for UTC times (the store's), which it is three times faster on: a page has
// forty of them.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, trailing zeros dropped.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONFloat is encoding/json's float64 encoding (ES6 number to
// string). The values here are finite ratings, never NaN or ±Inf.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with HTML escaping
// (its default): ", \ and control characters escaped, <, > and & as \u003c,
// \u003e, \u0026, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
