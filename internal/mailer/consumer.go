package mailer

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// consumer reads mail requests as a member of the consumer group and hands
// each assigned partition to a worker of its own, so that partitions are
// mailed in parallel and a partition waiting to retry holds up nobody else.
// Within a partition, a worker mails up to inFlight records at once (the
// SMTP pool's size), one user's records one at a time and in order (see
// window).
//
// At-least-once discipline: a worker marks a record for commit only when it
// and every record before it in the partition are finished — the mail was
// accepted, or the record was parked in the dead-letter topic. franz-go
// commits the marks every commitInterval; a revoked partition's worker is
// stopped and its marks committed before the partition moves on, and the
// final marks are committed at shutdown. A crash or a lost partition
// therefore re-delivers unfinished records rather than losing them, and the
// delivery log keeps a re-delivered record that was already sent from being
// sent twice.
type consumer struct {
	cl          *kgo.Client
	render      *renderer
	send        Sender
	log         *slog.Logger
	tune        tuning
	deliveries  *DeliveryLog
	maxAttempts int
	inFlight    int // records of one partition mailed at once
	stats       *counters
	dlq         *deadLetters
	tr          trace.Tracer // one "mail.send" span per record (handle)
	member      *membership  // owned partitions, topic ID, recovery: group.go

	mu      sync.Mutex
	workers map[topicPartition]*worker
}

type topicPartition struct {
	topic     string
	partition int32
}

// counters are the mailer's totals since start, for /metrics and tests.
type counters struct {
	sent         atomic.Int64 // mails the SMTP server accepted
	duplicates   atomic.Int64 // re-delivered records skipped because the log had them as sent
	deadLettered atomic.Int64 // records parked in the dead-letter topic
	expired      atomic.Int64 // events not mailed because their code had expired
	failures     atomic.Int64 // failed SMTP attempts
	retried      atomic.Int64 // of which were followed by a retry
}

// tuning holds the knobs tests turn; defaultTuning is production's.
type tuning struct {
	backoffBase    time.Duration // first retry delay; doubles per attempt
	backoffMax     time.Duration // cap of the retry delay
	commitInterval time.Duration // how often marked offsets are committed
	maxPoll        int           // records per poll
	queueLimit     int           // records waiting per partition before its fetching pauses
	housekeeping   time.Duration // how often old delivery log entries are deleted
	smtpCheck      time.Duration // how long without a send before /readyz's SMTP probe
	now            func() time.Time
}

var defaultTuning = tuning{
	backoffBase:    time.Second,
	backoffMax:     30 * time.Second,
	commitInterval: time.Second,
	maxPoll:        500,
	queueLimit:     500,
	housekeeping:   time.Hour,
	smtpCheck:      10 * time.Second,
	now:            time.Now,
}

// groupOptions are the consumer-group options for at-least-once delivery.
func (c *consumer) groupOptions(cfg Config) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// A new group must start at the beginning, or mail requested
		// before the mailer first joined would never be sent.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		// A partition resumed after a pause (see worker.push) is fetched
		// only when the broker answers the fetch in flight, which waits up
		// to this long when the other partitions are idle.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.AutoCommitInterval(c.tune.commitInterval),
		// Records are handed to workers between a poll and AllowRebalance,
		// so a worker always exists for the partitions of a poll.
		kgo.BlockRebalanceOnPoll(),
		// Dead letters are produced through the same client; an attempt
		// must end when the broker is away, to be retried.
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.ProducerLinger(0),
	}
	// The session, static membership and the assignment callbacks (which
	// stop a revoked partition's worker and commit its marks): group.go.
	return append(opts, c.membershipOptions(cfg)...)
}

// consume is the consumer's lifecycle worker: it polls until ctx ends,
// then commits what was finished and leaves the group, closing the client.
func (c *consumer) consume(ctx context.Context) error {
	c.run(ctx)
	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cl.CommitMarkedOffsets(commitCtx); err != nil {
		c.log.Warn("final commit failed; finished records may be handled again", "err", err)
	}
	c.cl.CloseAllowingRebalance()
	c.leaveStatic(commitCtx)
	return nil
}

// run polls until ctx ends, handing each partition's records to its
// worker. It returns with every worker stopped: in-flight sends finished,
// queued records abandoned unmarked.
func (c *consumer) run(ctx context.Context) {
	defer c.stopWorkers(nil)
	for {
		fetches := c.cl.PollRecords(ctx, c.tune.maxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return
		}
		failed := false
		recreated := recreatedTopics(fetches)
		fetches.EachError(func(topic string, partition int32, err error) {
			failed = true
			if !slices.Contains(recreated, topic) {
				c.log.Warn("fetch failed", "topic", topic, "partition", partition, "err", err)
			}
		})
		c.noteTopicIDs(fetches)
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				c.worker(p.Topic, p.Partition).push(p.Records)
			}
		})
		c.cl.AllowRebalance()
		for _, topic := range recreated {
			c.recoverRecreated(topic)
		}
		if failed && fetches.NumRecords() == 0 {
			// Do not spin on a broker that answers only with errors.
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.tune.backoffBase):
			}
		}
	}
}

// worker returns the partition's worker, starting it if needed.
func (c *consumer) worker(topic string, partition int32) *worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	if w, ok := c.workers[tp]; ok {
		return w
	}
	w := &worker{c: c, tp: tp, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		finished: make(chan finished, max(c.inFlight, 1)), final: newTurnGate()}
	c.workers[tp] = w
	go w.run()
	return w
}

// stopWorkers stops the workers of the given partitions (all when nil) and
// waits for them: each finishes the sends in flight and abandons the rest.
func (c *consumer) stopWorkers(partitions map[string][]int32) {
	c.mu.Lock()
	var stopping []*worker
	for tp, w := range c.workers {
		if partitions == nil || slices.Contains(partitions[tp.topic], tp.partition) {
			stopping = append(stopping, w)
			delete(c.workers, tp)
			close(w.quit)
		}
	}
	c.mu.Unlock()
	for _, w := range stopping {
		<-w.done
		w.resume() // a partition assigned again later must be fetched again
	}
	// Whoever mails these partitions next reads the log, maybe from another
	// process: it must have every send of theirs first.
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	if err := c.deliveries.flush(ctx); err != nil {
		c.log.Warn("the delivery log is behind; a re-delivered record may be mailed twice", "err", err)
	}
}

// worker mails one partition's records.
type worker struct {
	c        *consumer
	tp       topicPartition
	wake     chan struct{} // records were queued
	quit     chan struct{} // closed to stop: the partition is revoked, lost, or we shut down
	done     chan struct{} // closed when run returns
	finished chan finished // the record handlers' results, read by run
	failing  atomic.Int32  // records running whose last attempt failed
	final    *turnGate     // the partition's final turn (see finalTurn)

	mu     sync.Mutex
	queue  []*kgo.Record
	paused bool
}

// finished is a record handler's result: ok is false when quit stopped it
// before the record was finished.
type finished struct {
	s  *slot
	ok bool
}

// push queues records, pausing the partition's fetching once the queue is
// full (a slow record holds the window, which lets the queue grow), so
// memory stays bounded and the other partitions keep flowing.
func (w *worker) push(rs []*kgo.Record) {
	w.mu.Lock()
	w.queue = append(w.queue, rs...)
	if len(w.queue) >= w.c.tune.queueLimit && !w.paused {
		w.paused = true
		// Records already fetched for a paused partition are dropped
		// without moving its position: they come again after the resume.
		w.c.cl.PauseFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take removes up to n queued records and resumes fetching once the queue
// has room, so that the next records arrive while these are mailed.
func (w *worker) take(n int) []*kgo.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(n, len(w.queue))
	rs := w.queue[:n:n]
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil
	}
	if w.paused && len(w.queue) < w.c.tune.queueLimit {
		w.paused = false
		w.c.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
	return rs
}

func (w *worker) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused {
		w.paused = false
		w.c.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
}

// run moves queued records into the window, starts those the window lets
// start, and marks the finished prefix for commit. Stopped, it waits for
// the records running (marking those that finish) and abandons the rest.
//
// A partition mails one record at a time until one is sent at its first
// attempt, and again from the moment an attempt fails until then: while
// the server defers or refuses, or the connection fails, the records
// behind wait for the oldest to pass, as they would in a strictly ordered
// partition, instead of all meeting the same failure. While mail flows,
// up to inFlight records go at once.
func (w *worker) run() {
	defer close(w.done)
	// Long-lived handlers rather than a goroutine per record: a record's
	// handling (TLS, SQLite) grows a stack deep enough that growing it
	// afresh for every record cost more than rendering the mail.
	ready := make(chan *slot)
	var handlers sync.WaitGroup
	for range max(w.c.inFlight, 1) {
		handlers.Go(func() {
			for s := range ready {
				w.handle(s)
			}
		})
	}
	defer handlers.Wait()
	defer close(ready)
	win := newWindow()
	running := 0
	open := false  // mail flows: the full inFlight may run
	quit := w.quit // nil once seen closed: handlers still get w.quit
	for {
		stopping := quit == nil
		if w.failing.Load() > 0 {
			open = false
		}
		if !stopping {
			w.fill(win)
			for running < max(w.c.inFlight, 1) && (open || running == 0) {
				s := win.next()
				if s == nil {
					break
				}
				running++
				ready <- s // a handler is free: fewer than inFlight run
			}
		}
		if stopping && running == 0 {
			return
		}
		select {
		case <-quit:
			quit = nil
		case <-w.wake:
		case f := <-w.finished:
			running--
			if !f.ok {
				continue // stopped: the record stays unfinished and uncommitted
			}
			if f.s.p.firstTry && w.failing.Load() == 0 {
				open = true
			}
			if last := win.finish(f.s); last != nil {
				w.c.cl.MarkCommitRecords(last)
			}
		}
	}
}

// handle mails one record of the window and reports to run.
func (w *worker) handle(s *slot) {
	failing := false
	s.p.retrying = func() {
		if !failing {
			failing = true
			w.failing.Add(1)
		}
		select { // run closes the partition to one record at a time
		case w.wake <- struct{}{}:
		default:
		}
	}
	s.p.final = w.final
	ok := w.c.handle(w.quit, s.it, &s.p)
	if failing {
		w.failing.Add(-1)
	}
	w.finished <- finished{s, ok}
}

// fill moves queued records into the window while it is at most half
// full, so that the delivery log is looked up for many records at once
// and the window stays within queueLimit.
func (w *worker) fill(win *window) {
	room := w.c.tune.queueLimit - win.len()
	if room < w.c.tune.queueLimit/2 && win.len() > 0 {
		return
	}
	if rs := w.take(room); len(rs) > 0 {
		w.c.admit(win, rs)
	}
}

// sleep waits for d; false means quit came first.
func sleep(quit <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}
