package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sqlLimiter keeps the token buckets in auth's database, so that every
// replica draws from the same bucket (AUTH_THROTTLE_STORE=database). Each
// take is a read and a compare-and-swap on the row's version, retried when
// another replica got there first: no lock is held across round trips, and
// the same statements work on PostgreSQL and SQLite.
type sqlLimiter struct{ db *sql.DB }

func newSQLLimiter(db *sql.DB) *sqlLimiter { return &sqlLimiter{db: db} }

// casAttempts bounds the retries of one take; losing this many races in a
// row means a flood on one bucket, which is then refused.
const casAttempts = 8

func (l *sqlLimiter) take(ctx context.Context, key string, r Rule, now time.Time) (decision, error) {
	for range casAttempts {
		var (
			b       bucket
			denied  sql.NullTime
			version int64
		)
		err := l.db.QueryRowContext(ctx, `SELECT tokens, updated_at, denied_at, version FROM throttle_buckets WHERE bucket = $1`, key).
			Scan(&b.tokens, &b.at, &denied, &version)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			nb, d := bucket{}.take(r, now)
			res, err := l.db.ExecContext(ctx, `INSERT INTO throttle_buckets (bucket, tokens, updated_at, full_at, denied_at, version)
				VALUES ($1, $2, $3, $4, NULL, 1) ON CONFLICT (bucket) DO NOTHING`, key, nb.tokens, dbTime(now), dbTime(nb.fullAt(r)))
			if n, err := affected(res, err); err != nil {
				return decision{}, err
			} else if n == 1 {
				return d, nil
			}
			continue // another replica created it first
		case err != nil:
			return decision{}, fmt.Errorf("throttle: %w", err)
		}
		b.at, b.denied = b.at.UTC(), denied.Valid
		nb, d := b.take(r, now)
		var deniedAt sql.NullTime
		if nb.denied {
			deniedAt = nullTime(now)
			if denied.Valid {
				deniedAt = denied
			}
		}
		res, err := l.db.ExecContext(ctx, `UPDATE throttle_buckets SET tokens = $1, updated_at = $2, full_at = $3, denied_at = $4, version = version + 1
			WHERE bucket = $5 AND version = $6`, nb.tokens, dbTime(now), dbTime(nb.fullAt(r)), deniedAt, key, version)
		if n, err := affected(res, err); err != nil {
			return decision{}, err
		} else if n == 1 {
			return d, nil
		}
	}
	return decision{retryAfter: time.Second}, nil
}

// sweep deletes the buckets that are full again: they hold no information.
func (l *sqlLimiter) sweep(ctx context.Context, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM throttle_buckets WHERE full_at <= $1`, dbTime(now))
	return err
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	return n, nil
}
