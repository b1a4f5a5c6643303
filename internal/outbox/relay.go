package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
)

// Publisher sends records to Kafka and waits for the outcome of each.
// *kgo.Client satisfies it.
//
// The relay bounds every call with a context deadline (Options.AttemptTimeout);
// the client should also fail records that cannot be delivered in time
// (kgo.RecordDeliveryTimeout), so that an attempt ends when the broker is down.
type Publisher interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Options tune a Relay; zero values take the defaults.
type Options struct {
	Poll           time.Duration // safety-net poll while idle; default 1s
	BatchSize      int           // rows per produce call; default 100
	AttemptTimeout time.Duration // bound of one produce call; default 10s
	MinBackoff     time.Duration // wait after the first failed attempt; default 200ms
	MaxBackoff     time.Duration // the backoff doubles up to this; default 5s
}

func (o Options) withDefaults() Options {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	return o
}

// Relay publishes pending outbox rows in id order and marks them published.
type Relay struct {
	db   *sqldb.DB
	pub  Publisher
	log  *slog.Logger
	opts Options
	wake chan struct{}

	// onBatch, when set (by tests), hears about every produced batch once
	// its outcome is recorded in the database.
	onBatch func(batch)
}

// batch is the outcome of one produce call.
type batch struct {
	published []string // event ids, in publish order
	failed    int
}

// NewRelay returns a relay reading db's outbox table and publishing through pub.
func NewRelay(db *sqldb.DB, pub Publisher, log *slog.Logger, opts Options) *Relay {
	return &Relay{db: db, pub: pub, log: log, opts: opts.withDefaults(), wake: make(chan struct{}, 1)}
}

// Notify wakes an idle relay at once; call it after committing a transaction
// that enqueued a message. It never blocks, and wake-ups coalesce.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is done, then returns nil. It wakes on Notify and
// every Poll. After a failure it backs off exponentially up to MaxBackoff —
// without waking on Notify, so that a broker outage is not hammered once per
// registration — and keeps every failed row for the next attempt.
func (r *Relay) Run(ctx context.Context) error {
	var backoff time.Duration
	for {
		more, err := r.publishBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait, wakeable := r.opts.Poll, true
		switch {
		case err != nil:
			backoff = min(max(2*backoff, r.opts.MinBackoff), r.opts.MaxBackoff)
			wait, wakeable = backoff, false
			r.log.WarnContext(ctx, "outbox: publish failed; rows stay pending", "err", err, "retry_in", backoff)
		case more:
			backoff = 0
			continue
		default:
			backoff = 0
		}
		if !r.sleep(ctx, wait, wakeable) {
			return nil
		}
	}
}

// sleep waits for d, or for a Notify when wakeable; false means ctx is done.
func (r *Relay) sleep(ctx context.Context, d time.Duration, wakeable bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	wake := r.wake
	if !wakeable {
		wake = nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// advisoryLockKey serialises relays of several replicas on PostgreSQL
// ("kinoteka-outbox" as an arbitrary 63-bit number).
const advisoryLockKey = 0x6b696e6f6f7574

// publishBatch publishes up to BatchSize pending rows. more reports that the
// batch was full and fully published, so another one may be waiting.
func (r *Relay) publishBatch(ctx context.Context) (more bool, err error) {
	b, err := r.produceBatch(ctx)
	if r.onBatch != nil && (len(b.published) > 0 || b.failed > 0) {
		r.onBatch(b)
	}
	return err == nil && len(b.published) == r.opts.BatchSize, err
}

// produceBatch reads, produces and marks one batch.
//
// On PostgreSQL, where several auth replicas share the table, the batch runs
// in a transaction holding an advisory lock, so one relay at a time publishes
// and rows go out once and in order; the others skip the round (they will
// poll again). The lock does not block the inserting transactions. SQLite is
// the single-process embedded mode, where holding its only write lock across
// a network call would stall registrations, so there the batch runs without a
// transaction.
func (r *Relay) produceBatch(ctx context.Context) (b batch, err error) {
	var q querier = r.db.DB
	if r.db.Dialect == sqldb.Postgres {
		// database/sql rolls a transaction back when its context ends; this
		// one must survive a shutdown long enough to record what Kafka took.
		txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.AttemptTimeout+30*time.Second)
		defer cancel()
		tx, err := r.db.BeginTx(txCtx, nil)
		if err != nil {
			return batch{}, err
		}
		// Commit even when records failed: the rows Kafka did take must be
		// marked. After a failed statement PostgreSQL refuses the commit.
		defer func() {
			if cerr := tx.Commit(); cerr != nil && err == nil {
				b, err = batch{}, cerr
			}
		}()
		var locked bool
		if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", int64(advisoryLockKey)).Scan(&locked); err != nil {
			return batch{}, err
		}
		if !locked {
			return batch{}, nil
		}
		q = tx
	}
	rows, err := pending(ctx, q, r.opts.BatchSize)
	if err != nil || len(rows) == 0 {
		return batch{}, err
	}
	records := make([]*kgo.Record, len(rows))
	index := make(map[*kgo.Record]int, len(rows))
	for i, row := range rows {
		records[i] = row.record()
		index[records[i]] = i
	}
	actx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
	results := r.pub.ProduceSync(actx, records...)
	cancel()

	// Results come in completion order; errs is in row order.
	errs := make([]error, len(rows))
	answered := make([]bool, len(rows))
	for _, res := range results {
		if i, ok := index[res.Record]; ok {
			errs[i], answered[i] = res.Err, true
		}
	}
	var (
		published, failed []int64
		firstErr          error
	)
	for i, row := range rows {
		switch {
		case !answered[i]:
			errs[i] = errors.New("the publisher returned no result for the record")
			fallthrough
		case errs[i] != nil:
			failed = append(failed, row.id)
			firstErr = cmpErr(firstErr, errs[i])
		default:
			published = append(published, row.id)
			b.published = append(b.published, row.eventID)
		}
	}
	b.failed = len(failed)
	// What Kafka acknowledged must be recorded even when we are shutting
	// down, or it would be published again after a restart.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer mcancel()
	if err := markPublished(mctx, q, published); err != nil {
		return batch{}, fmt.Errorf("outbox: mark %d rows published: %w", len(published), err)
	}
	if len(failed) > 0 {
		if err := markFailed(mctx, q, failed, firstErr); err != nil {
			r.log.WarnContext(ctx, "outbox: could not record a failed attempt", "err", err)
		}
		return b, fmt.Errorf("outbox: %d of %d records not published: %w", len(failed), len(rows), firstErr)
	}
	r.log.DebugContext(ctx, "outbox: published", "count", len(published))
	return b, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

type row struct {
	id        int64
	eventID   string
	topic     string
	key       string
	eventType string
	payload   []byte
	headers   string
	createdAt time.Time
}

func (w row) record() *kgo.Record {
	rec := &kgo.Record{
		Topic:     w.topic,
		Key:       []byte(w.key),
		Value:     w.payload,
		Timestamp: w.createdAt,
		Headers: []kgo.RecordHeader{
			{Key: events.HeaderContentType, Value: []byte("application/json")},
			{Key: events.HeaderEventType, Value: []byte(w.eventType)},
			{Key: events.HeaderEventID, Value: []byte(w.eventID)},
		},
	}
	var extra map[string]string
	if json.Unmarshal([]byte(w.headers), &extra) == nil {
		for k, v := range extra {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return rec
}

func pending(ctx context.Context, q querier, limit int) ([]row, error) {
	rs, err := q.QueryContext(ctx, `SELECT id, event_id, topic, msg_key, event_type, payload, headers, created_at
		FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read pending rows: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var w row
		if err := rs.Scan(&w.id, &w.eventID, &w.topic, &w.key, &w.eventType, &w.payload, &w.headers, &w.createdAt); err != nil {
			return nil, fmt.Errorf("outbox: read pending rows: %w", err)
		}
		out = append(out, w)
	}
	return out, rs.Err()
}

// markPublished stamps the rows and drops their payloads: a verification
// code has no business staying in the database once Kafka holds it.
func markPublished(ctx context.Context, q querier, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{dbTime(time.Now())}
	_, err := q.ExecContext(ctx, "UPDATE outbox SET published_at = $1, payload = NULL WHERE id IN ("+placeholders(2, ids, &args)+")", args...)
	return err
}

func markFailed(ctx context.Context, q querier, ids []int64, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	args := []any{msg}
	_, err := q.ExecContext(ctx, "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id IN ("+placeholders(2, ids, &args)+")", args...)
	return err
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

// Pending reports how many rows wait to be published and when the oldest was
// written (zero when none); for metrics and operators.
func (r *Relay) Pending(ctx context.Context) (count int, oldest time.Time, err error) {
	if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").Scan(&count); err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox: count pending: %w", err)
	}
	if count == 0 {
		return 0, time.Time{}, nil
	}
	// MIN(created_at) would lose the column type on SQLite; the first
	// pending id is the oldest row anyway.
	err = r.db.QueryRowContext(ctx, "SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1").Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return count, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox: oldest pending: %w", err)
	}
	return count, oldest.UTC(), nil
}
