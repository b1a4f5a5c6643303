package sqldb_test

import (
	"context"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// QueryRaw's rows decode every type the stores read, NULL included, to the
// values database/sql and pgx give; an infinite date is an error.
func TestQueryRawDecodes(t *testing.T) {
	sqldbtest.NeedPostgres(t, "decodes PostgreSQL's binary columns, as QueryRaw exists only there")
	ctx := context.Background()
	db := sqldbtest.Open(t, sqldbtest.FreshPostgresURL(t))
	var rows int
	err := db.QueryRaw(ctx, `SELECT -2::int2, -70000::int4, $1::int8, 8.1::float8, 2.5::float4, 'Сталкер'::text,
		NULL::int, NULL::text, DATE '1979-05-25', TIMESTAMPTZ '2026-12-02 07:00:00.123456+03', NULL::timestamptz, 7::int4`,
		[]any{int64(1) << 40}, func(r sqldb.PGRow) error {
			rows++
			for i, want := range []int64{-2, -70000, 1 << 40} {
				if n, err := r.Int(i); err != nil || n != want {
					t.Errorf("Int(%d) = %d, %v; want %d", i, n, err, want)
				}
			}
			if x, err := r.Float(3); err != nil || x != 8.1 {
				t.Errorf("float8: %v, %v", x, err)
			}
			if x, err := r.Float(4); err != nil || x != 2.5 {
				t.Errorf("float4: %v, %v", x, err)
			}
			if x, err := r.Float(11); err != nil || x != 7 {
				t.Errorf("an integer as a float: %v, %v", x, err)
			}
			if s, err := r.Text(5); err != nil || s != "Сталкер" {
				t.Errorf("text: %q, %v", s, err)
			}
			if n, err := r.Int(6); err != nil || n != 0 {
				t.Errorf("NULL int: %d, %v", n, err)
			}
			if s, err := r.Text(7); err != nil || s != "" {
				t.Errorf("NULL text: %q, %v", s, err)
			}
			if d, ok, err := r.Time(8); err != nil || !ok || !d.Equal(time.Date(1979, 5, 25, 0, 0, 0, 0, time.UTC)) || d.Location() != time.UTC {
				t.Errorf("date: %v, %v, %v", d, ok, err)
			}
			if ts, ok, err := r.Time(9); err != nil || !ok || !ts.Equal(time.Date(2026, 12, 2, 4, 0, 0, 123456000, time.UTC)) || ts.Location() != time.UTC {
				t.Errorf("timestamptz: %v, %v, %v", ts, ok, err)
			}
			if _, ok, err := r.Time(10); err != nil || ok {
				t.Errorf("NULL timestamptz: %v, %v", ok, err)
			}
			if _, err := r.Text(0); err == nil {
				t.Error("an int2 read as text")
			}
			if _, err := r.Int(12); err == nil {
				t.Error("a column past the row's end")
			}
			return nil
		})
	if err != nil || rows != 1 {
		t.Fatalf("QueryRaw: %d rows, %v", rows, err)
	}
	err = db.QueryRaw(ctx, `SELECT 'infinity'::date`, nil, func(r sqldb.PGRow) error {
		_, _, err := r.Time(0)
		return err
	})
	if err == nil {
		t.Error("an infinite date read as a time")
	}
}
