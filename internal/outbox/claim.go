package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/sqldb"
)

// claimSQL leases due rows to $1 until $2, $3 being now, at most $4 of them.
//
// The candidates (c) are the first $4 due rows: pending, nobody holding a
// live lease on them, their backoff over. %s is PostgreSQL's row-lock
// clause: a concurrent claim skips the rows another has just locked instead
// of waiting for them, and re-checks the lease of a row claimed meanwhile.
// SQLite has one writer at a time, so there the statement alone is atomic.
//
// A candidate is claimed only if every earlier pending row of its key is a
// candidate too; a row held by another relay, backing off, or locked by a
// concurrent claim keeps the later rows of its key back, so one user's
// events are published in order even while relays work in parallel.
const claimSQL = `WITH c AS MATERIALIZED (
	SELECT id, msg_key FROM outbox
	WHERE published_at IS NULL
	  AND (lease_until IS NULL OR lease_until <= $3)
	  AND (next_attempt_at IS NULL OR next_attempt_at <= $3)
	ORDER BY id
	LIMIT $4%s)
UPDATE outbox SET lease_owner = $1, lease_until = $2
WHERE id IN (
	SELECT c.id FROM c
	WHERE NOT EXISTS (
		SELECT 1 FROM outbox e
		WHERE e.msg_key = c.msg_key AND e.id < c.id AND e.published_at IS NULL
		  AND e.id NOT IN (SELECT id FROM c)))
RETURNING id, event_id, topic, msg_key, event_type, payload, headers, attempts, traceparent`

// claim leases a batch of due rows to owner and returns them in id order.
func claim(ctx context.Context, db *sqldb.DB, owner string, now, until time.Time, limit int) ([]row, error) {
	lock := ""
	if db.Dialect == sqldb.Postgres {
		lock = "\n\tFOR UPDATE SKIP LOCKED"
	}
	rs, err := db.QueryContext(ctx, fmt.Sprintf(claimSQL, lock), owner, dbTime(until), dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim rows: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var (
			w  row
			tp sql.NullString
		)
		if err := rs.Scan(&w.id, &w.eventID, &w.topic, &w.key, &w.eventType, &w.payload, &w.headers, &w.attempts, &tp); err != nil {
			return nil, fmt.Errorf("outbox: claim rows: %w", err)
		}
		w.traceparent = tp.String
		out = append(out, w)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: claim rows: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// markPublished stamps the rows, ends their lease and drops their payloads:
// a verification code has no business staying in the database once Kafka
// holds it.
func markPublished(ctx context.Context, db *sqldb.DB, now time.Time, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{dbTime(now)}
	_, err := db.ExecContext(ctx, "UPDATE outbox SET published_at = $1, payload = NULL, lease_owner = NULL, lease_until = NULL WHERE id IN ("+placeholders(2, ids, &args)+")", args...)
	return err
}

// markFailed counts a failed attempt on each row, schedules its next one
// after backoff(attempts) and ends the lease.
func markFailed(ctx context.Context, db *sqldb.DB, rows []row, cause error, now time.Time, backoff func(attempts int) time.Duration) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	// Rows with the same attempt count share their next attempt time: one
	// statement per count, usually just one.
	byAttempts := map[int][]int64{}
	for _, w := range rows {
		byAttempts[w.attempts+1] = append(byAttempts[w.attempts+1], w.id)
	}
	var errs []error
	for attempts, ids := range byAttempts {
		args := []any{msg, dbTime(now.Add(backoff(attempts)))}
		_, err := db.ExecContext(ctx, "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL WHERE id IN ("+placeholders(3, ids, &args)+")", args...)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// release hands claimed rows back untouched.
func release(ctx context.Context, db *sqldb.DB, rows []row) error {
	ids := make([]int64, len(rows))
	for i, w := range rows {
		ids[i] = w.id
	}
	var args []any
	_, err := db.ExecContext(ctx, "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id IN ("+placeholders(1, ids, &args)+")", args...)
	return err
}

// deleteChunk bounds one DELETE, so that clearing a long backlog of
// published rows never holds a lock for long.
const deleteChunk = 1000

// deletePublished deletes rows published before cutoff.
func deletePublished(ctx context.Context, db *sqldb.DB, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 ORDER BY published_at LIMIT $2)`,
			dbTime(cutoff), deleteChunk)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}

// pendingStats counts the pending rows, those that failed at least once, and
// returns the creation time of the oldest.
func pendingStats(ctx context.Context, db *sqldb.DB) (count, failing int, oldest time.Time, err error) {
	err = db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0)
		FROM outbox WHERE published_at IS NULL`).Scan(&count, &failing)
	if err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("outbox: count pending: %w", err)
	}
	if count == 0 {
		return 0, 0, time.Time{}, nil
	}
	// MIN(created_at) would lose the column type on SQLite; the first
	// pending id is the oldest row anyway.
	err = db.QueryRowContext(ctx, "SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1").Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return count, failing, time.Time{}, nil
	}
	if err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("outbox: oldest pending: %w", err)
	}
	return count, failing, oldest.UTC(), nil
}

// placeholders returns "$from, $from+1, …" for ids and appends ids to args.
func placeholders(from int, ids []int64, args *[]any) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
		*args = append(*args, id)
	}
	return b.String()
}
