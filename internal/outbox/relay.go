package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/telemetry"
)

// Publisher sends records to Kafka and waits for the outcome of each.
// *kafka.Producer satisfies it (and so does *kgo.Client, without its
// promises).
//
// The relay bounds every call with a context deadline (Options.AttemptTimeout)
// and counts on the call to end by then, answering every record it could
// not publish with an error. kgo's own ProduceSync does not: its idempotent
// producer waits out a broker outage for records that may be in flight.
// kafka.Producer does, and also recovers from a recreated topic. franz-go's
// defaults — an idempotent producer with acks=all — are what the relay
// relies on for "published means on every in-sync replica".
type Publisher interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Options tune a Relay; zero values take the defaults.
type Options struct {
	Poll           time.Duration // safety-net poll while idle, for rows other replicas wrote; default 1s
	BatchSize      int           // rows claimed and produced at once; default 100
	AttemptTimeout time.Duration // bound of one produce call (the Publisher must honour it); default 10s
	MinBackoff     time.Duration // a failed row's first wait, and the relay's after a failed batch; default 200ms
	MaxBackoff     time.Duration // both double up to this; default 5s
	// Lease is how long a claim keeps other relays off a batch. A relay that
	// crashes holding rows delays them by at most this much. Default
	// AttemptTimeout + 30s; never less than twice AttemptTimeout, so that a
	// slow but live relay keeps its rows.
	Lease time.Duration
	// Retention is how long published rows (without their payloads) stay for
	// inspection before they are deleted; default 24h.
	Retention time.Duration
	// BacklogWarn: the relay logs a warning while the oldest pending row is
	// older than this; default 1m.
	BacklogWarn time.Duration
	Owner       string           // names this relay in lease_owner; default host-pid-random
	Now         func() time.Time // default time.Now
	// OnPublishError, when set, hears of every failed attempt at
	// publishing: records is how many rows of the batch Kafka did not take
	// (a metric's counter; it must not block).
	OnPublishError func(records int, err error)
	// Tracing records an "outbox.publish" span per row, continuing the
	// row's stored traceparent; nil records none, but the stored
	// traceparent is still handed on in the record's traceparent header.
	Tracing *telemetry.Tracing
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
	if o.Lease <= 0 {
		o.Lease = o.AttemptTimeout + 30*time.Second
	}
	o.Lease = max(o.Lease, 2*o.AttemptTimeout)
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.BacklogWarn <= 0 {
		o.BacklogWarn = time.Minute
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "relay"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// housekeepingEvery is how often the relay deletes expired published rows
// and checks the backlog.
const housekeepingEvery = time.Minute

// Relay publishes pending outbox rows and marks them published.
//
// Each round claims a batch with a lease (one UPDATE; FOR UPDATE SKIP LOCKED
// on PostgreSQL), produces it outside any transaction, and records the
// outcome row by row. So the relays of several replicas work in parallel on
// disjoint batches, registrations never wait for Kafka, and rows claimed by
// a replica that crashed go out once its lease expires. The claim skips a
// row while an earlier row with the same key is held or backing off, so one
// user's events are published in order.
type Relay struct {
	db   *sqldb.DB
	pub  Publisher
	log  *slog.Logger
	opts Options
	wake chan struct{}
	tr   trace.Tracer

	lastHousekeeping time.Time

	mu     sync.Mutex
	health health // guarded by mu

	// onBatch, when set (by tests), hears about every produced batch once
	// its outcome is recorded in the database and in Health.
	onBatch func(batch)
}

// batch is the outcome of one produce call.
type batch struct {
	published []string // event ids, in publish order
	failed    int
	err       error // why the failed rows failed
}

// health is what the relay knows of its own attempts.
type health struct {
	failingSince time.Time // first failure of the current run of failures; zero when publishing works
	lastFailure  time.Time
	failures     int
	lastErr      error
}

// NewRelay returns a relay reading db's outbox table and publishing through pub.
func NewRelay(db *sqldb.DB, pub Publisher, log *slog.Logger, opts Options) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, pub: pub, log: log, opts: opts.withDefaults(), wake: make(chan struct{}, 1), tr: opts.Tracing.Tracer("kinoteka/outbox")}
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
// every Poll. After a failed batch it backs off exponentially up to
// MaxBackoff — without waking on Notify, so that a broker outage is not
// hammered once per registration. Failed rows are never dropped: each waits
// out its own backoff (next_attempt_at) and is tried again. Every failed
// attempt is logged, counted (Options.OnPublishError) and reported by
// Health until publishing works again.
func (r *Relay) Run(ctx context.Context) error {
	var backoff time.Duration
	for {
		r.housekeeping(ctx)
		more, err := r.publishBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait, wakeable := r.opts.Poll, true
		switch {
		case err != nil:
			backoff = min(max(2*backoff, r.opts.MinBackoff), r.opts.MaxBackoff)
			wait, wakeable = backoff, false
			r.mu.Lock()
			h := r.health
			r.mu.Unlock()
			r.log.WarnContext(ctx, "outbox: publish failed; rows stay pending", "err", err, "retry_in", backoff,
				"failing_since", h.failingSince, "failed_attempts", h.failures)
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

// publishBatch publishes up to BatchSize pending rows. more reports that the
// batch was full and fully published, so another one may be waiting.
func (r *Relay) publishBatch(ctx context.Context) (more bool, err error) {
	b, n, err := r.produceBatch(ctx)
	if ctx.Err() == nil {
		r.record(n, err)
	}
	if r.onBatch != nil && (len(b.published) > 0 || b.failed > 0) {
		b.err = err
		r.onBatch(b)
	}
	return err == nil && n == r.opts.BatchSize, err
}

// record keeps the outcome of a round that claimed n rows for Health. A
// round that claimed nothing says little: the failed rows may be backing
// off, or held by another replica's relay. So it clears a failure only
// once no row of this relay can still be waiting for its next attempt —
// MaxBackoff after the last failure, plus a Poll for the relay to look.
func (r *Relay) record(n int, err error) {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		if r.health.failingSince.IsZero() {
			r.health.failingSince = now
		}
		r.health.lastFailure, r.health.lastErr = now, err
		r.health.failures++
	case n > 0 || now.Sub(r.health.lastFailure) > r.opts.MaxBackoff+r.opts.Poll:
		r.health = health{}
	}
}

// Health reports whether publishing works, for readiness: nil while the
// relay's last attempt succeeded or nothing has failed lately; otherwise an
// error saying since when its attempts fail, how many did, and why the
// last one did. It does not ask Kafka: a relay with nothing to publish has
// nothing failing.
func (r *Relay) Health(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.health
	if h.failingSince.IsZero() {
		return nil
	}
	return fmt.Errorf("publishing fails since %s (%d failed attempts, the last at %s): %w",
		h.failingSince.UTC().Format(time.RFC3339), h.failures, h.lastFailure.UTC().Format(time.RFC3339), h.lastErr)
}

// produceBatch claims, produces and settles one batch; n is the number of
// rows claimed.
func (r *Relay) produceBatch(ctx context.Context) (b batch, n int, err error) {
	now := r.opts.Now()
	rows, err := claim(ctx, r.db, r.opts.Owner, now, now.Add(r.opts.Lease), r.opts.BatchSize)
	if err != nil || len(rows) == 0 {
		return batch{}, 0, err
	}
	records := make([]*kgo.Record, len(rows))
	spans := make([]trace.Span, len(rows))
	index := make(map[*kgo.Record]int, len(rows))
	for i, row := range rows {
		records[i], spans[i] = r.startPublish(row)
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
	defer func() {
		for i, span := range spans {
			endPublish(span, records[i], answered[i], errs[i])
		}
	}()
	var (
		published []int64
		failed    []row
		firstErr  error
	)
	for i, w := range rows {
		switch {
		case !answered[i]:
			errs[i] = errors.New("the publisher returned no result for the record")
			fallthrough
		case errs[i] != nil:
			failed = append(failed, w)
			if firstErr == nil {
				firstErr = errs[i]
			}
		default:
			published = append(published, w.id)
			b.published = append(b.published, w.eventID)
		}
	}
	b.failed = len(failed)
	// What Kafka acknowledged must be recorded even when we are shutting
	// down, or it would be published again after a restart.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer mcancel()
	if err := markPublished(mctx, r.db, r.opts.Now(), published); err != nil {
		return batch{}, len(rows), fmt.Errorf("outbox: mark %d rows published: %w", len(published), err)
	}
	if len(failed) == 0 {
		r.log.DebugContext(ctx, "outbox: published", "count", len(published))
		return b, len(rows), nil
	}
	if ctx.Err() != nil {
		// Shutting down cut the attempt short: that is not the row's
		// failure, so hand the rows back as they were.
		if err := release(mctx, r.db, failed); err != nil {
			r.log.WarnContext(ctx, "outbox: could not release claimed rows; they wait for their lease to expire", "err", err)
		}
		return b, len(rows), ctx.Err()
	}
	if r.opts.OnPublishError != nil {
		r.opts.OnPublishError(len(failed), firstErr)
	}
	if err := markFailed(mctx, r.db, failed, firstErr, r.opts.Now(), r.rowBackoff); err != nil {
		r.log.WarnContext(ctx, "outbox: could not record a failed attempt; the rows wait for their lease to expire", "err", err)
	}
	return b, len(rows), fmt.Errorf("outbox: %d of %d records not published: %w", len(failed), len(rows), firstErr)
}

// rowBackoff is how long a row waits after its attempts-th failure.
func (r *Relay) rowBackoff(attempts int) time.Duration {
	d := r.opts.MinBackoff
	for i := 1; i < attempts && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// housekeeping deletes published rows past their retention and warns about
// a growing backlog, at most once per housekeepingEvery.
func (r *Relay) housekeeping(ctx context.Context) {
	now := r.opts.Now()
	if !r.lastHousekeeping.IsZero() && now.Sub(r.lastHousekeeping) < housekeepingEvery {
		return
	}
	r.lastHousekeeping = now
	deleted, err := deletePublished(ctx, r.db, now.Add(-r.opts.Retention))
	if err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "outbox: could not delete old published rows", "err", err)
	} else if deleted > 0 {
		r.log.InfoContext(ctx, "outbox: deleted published rows past retention", "count", deleted, "retention", r.opts.Retention)
	}
	st, err := r.Stats(ctx)
	if err == nil && st.Pending > 0 && st.OldestAge > r.opts.BacklogWarn {
		r.log.WarnContext(ctx, "outbox: rows are waiting to be published", "pending", st.Pending, "oldest_age", st.OldestAge.Round(time.Second), "failing", st.Failing)
	}
}

type row struct {
	id          int64
	eventID     string
	topic       string
	key         string
	eventType   string
	payload     []byte
	headers     string
	attempts    int
	traceparent string // of the transaction that wrote the row; "" when untraced
}

// startPublish builds the row's record and starts its producer span, a child
// of the trace that wrote the row. The record carries the span's own
// traceparent, so the consumer's span is a child of this publish: one trace
// from the request to the mail.
func (r *Relay) startPublish(w row) (*kgo.Record, trace.Span) {
	rec := w.record()
	// A traceparent among the row's extra headers stands in for the column;
	// either way the record carries the publish span's own.
	parent := w.traceparent
	rec.Headers = slices.DeleteFunc(rec.Headers, func(h kgo.RecordHeader) bool {
		if h.Key != events.HeaderTraceparent {
			return false
		}
		if parent == "" {
			parent = string(h.Value)
		}
		return true
	})
	ctx := telemetry.WithTraceparent(context.Background(), parent)
	ctx, span := r.tr.Start(ctx, "outbox.publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(w.topic),
			semconv.MessagingMessageID(w.eventID),
			attribute.String("kinoteka.event.type", w.eventType),
			attribute.Int("kinoteka.outbox.attempt", w.attempts+1),
		))
	if tp := telemetry.Traceparent(ctx); tp != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: events.HeaderTraceparent, Value: []byte(tp)})
	}
	return rec, span
}

// endPublish records how Kafka answered and ends the span.
func endPublish(span trace.Span, rec *kgo.Record, answered bool, err error) {
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, "not published")
	case !answered:
		span.SetStatus(codes.Error, "no result")
	default:
		span.SetAttributes(semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))), semconv.MessagingKafkaOffset(int(rec.Offset)))
	}
	span.End()
}

func (w row) record() *kgo.Record {
	// No Timestamp: franz-go stamps the record when it is produced. Its
	// RecordDeliveryTimeout counts from the record's timestamp, so a row
	// written during a broker outage, stamped with its creation time,
	// would time out the moment the broker is back. The envelope carries
	// occurred_at for whoever needs the event's own time.
	rec := &kgo.Record{
		Topic: w.topic,
		Key:   []byte(w.key),
		Value: w.payload,
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

// Stats describes the outbox for metrics and operators.
type Stats struct {
	Pending   int           // rows not yet published
	Failing   int           // of which have failed at least once
	Oldest    time.Time     // creation time of the oldest pending row; zero when none
	OldestAge time.Duration // how long it has waited, by the relay's clock
}

// Stats reports the backlog.
func (r *Relay) Stats(ctx context.Context) (Stats, error) {
	n, failing, oldest, err := pendingStats(ctx, r.db)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Pending: n, Failing: failing, Oldest: oldest}
	if !oldest.IsZero() {
		st.OldestAge = max(r.opts.Now().Sub(oldest), 0)
	}
	return st, nil
}

// Pending reports how many rows wait to be published and when the oldest was
// written (zero when none); for metrics and operators.
func (r *Relay) Pending(ctx context.Context) (count int, oldest time.Time, err error) {
	st, err := r.Stats(ctx)
	return st.Pending, st.Oldest, err
}
