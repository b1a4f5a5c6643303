package sqldb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// QueryRaw runs a read on PostgreSQL through pgx itself, on a connection
// of the pool, and passes each row to each as it came off the wire. It is
// for a hot read path that decodes its own columns: database/sql would
// box every value in a driver.Value, convert it again into the scan
// destination, and start a goroutine per query to follow ctx; pgx follows
// ctx without one (context.AfterFunc) and keeps each connection's prepared
// statements itself. An error from each ends the read and is returned.
// RetryRead may repeat it when the connection was lost before any row was
// passed.
func (db *DB) QueryRaw(ctx context.Context, query string, args []any, each func(PGRow) error) error {
	if db.Dialect != Postgres {
		return errors.New("sqldb: QueryRaw is for PostgreSQL")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		rows, err := driverConn.(*stdlib.Conn).Conn().Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		row := PGRow{fields: rows.FieldDescriptions()}
		for rows.Next() {
			row.values = rows.RawValues()
			if err := each(row); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// PGRow is one row of a QueryRaw result. Its values are valid only during
// the call to each. The getters decode the column types a store reads —
// integers, floating point, text, date and timestamps — in the format pgx
// asked for (binary, but for text); NULL reads as the zero value.
type PGRow struct {
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r PGRow) column(i int) (pgconn.FieldDescription, []byte, error) {
	if i >= len(r.values) || i >= len(r.fields) {
		return pgconn.FieldDescription{}, nil, fmt.Errorf("sqldb: column %d of a row of %d", i, len(r.values))
	}
	return r.fields[i], r.values[i], nil
}

func (r PGRow) typeError(f pgconn.FieldDescription, want string) error {
	return fmt.Errorf("sqldb: column %q (type %d, format %d) is not %s", f.Name, f.DataTypeOID, f.Format, want)
}

// Int reads an integer column.
func (r PGRow) Int(i int) (int64, error) {
	f, v, err := r.column(i)
	if err != nil || v == nil {
		return 0, err
	}
	if f.Format == pgtype.TextFormatCode {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, r.typeError(f, "an integer")
		}
		return n, nil
	}
	switch {
	case f.DataTypeOID == pgtype.Int8OID && len(v) == 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	case f.DataTypeOID == pgtype.Int4OID && len(v) == 4:
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	case f.DataTypeOID == pgtype.Int2OID && len(v) == 2:
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	}
	return 0, r.typeError(f, "an integer")
}

// Float reads a floating-point (or integer) column.
func (r PGRow) Float(i int) (float64, error) {
	f, v, err := r.column(i)
	if err != nil || v == nil {
		return 0, err
	}
	if f.Format == pgtype.TextFormatCode {
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, r.typeError(f, "a number")
		}
		return x, nil
	}
	switch {
	case f.DataTypeOID == pgtype.Float8OID && len(v) == 8:
		return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
	case f.DataTypeOID == pgtype.Float4OID && len(v) == 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), nil
	}
	n, err := r.Int(i)
	if err != nil {
		return 0, r.typeError(f, "a number")
	}
	return float64(n), nil
}

// Text reads a text column.
func (r PGRow) Text(i int) (string, error) {
	f, v, err := r.column(i)
	if err != nil || v == nil {
		return "", err
	}
	switch f.DataTypeOID {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return string(v), nil // the same bytes in both formats
	}
	return "", r.typeError(f, "text")
}

// postgresEpoch is the zero of PostgreSQL's binary dates and timestamps.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Time reads a date, timestamp or timestamptz column, in UTC; ok is false
// for NULL. The infinities have no time.Time and are an error.
func (r PGRow) Time(i int) (t time.Time, ok bool, err error) {
	f, v, err := r.column(i)
	if err != nil || v == nil {
		return time.Time{}, false, err
	}
	if f.Format == pgtype.BinaryFormatCode {
		switch {
		case f.DataTypeOID == pgtype.DateOID && len(v) == 4:
			days := int32(binary.BigEndian.Uint32(v))
			if days == math.MaxInt32 || days == math.MinInt32 {
				return time.Time{}, false, r.typeError(f, "a finite date")
			}
			return postgresEpoch.AddDate(0, 0, int(days)), true, nil
		case (f.DataTypeOID == pgtype.TimestamptzOID || f.DataTypeOID == pgtype.TimestampOID) && len(v) == 8:
			us := int64(binary.BigEndian.Uint64(v))
			if us == math.MaxInt64 || us == math.MinInt64 {
				return time.Time{}, false, r.typeError(f, "a finite timestamp")
			}
			return time.UnixMicro(postgresEpoch.UnixMicro() + us).UTC(), true, nil
		}
	}
	return time.Time{}, false, r.typeError(f, "a date or timestamp in binary")
}
