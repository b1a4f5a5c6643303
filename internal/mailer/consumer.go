package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
)

// consumer reads mail requests and hands each to the Sender, one record at
// a time, and marks a record for commit only when it is finished: the mail
// was accepted, or the record can never become a mail. franz-go commits the
// marks (every commitInterval, on revoke and at shutdown), so a crash or a
// rebalance re-delivers unfinished records rather than losing them.
type consumer struct {
	cl     *kgo.Client
	render *renderer
	send   Sender
	log    *slog.Logger
	tune   tuning

	// rebalance is signalled when the group wants to rebalance while we
	// hold a batch (BlockRebalanceOnPoll): a record stuck in retries then
	// gives way instead of holding the whole group.
	rebalance chan struct{}
}

// tuning holds the knobs tests turn; defaultTuning is production's.
type tuning struct {
	backoffBase    time.Duration // first retry delay; doubles per attempt
	backoffMax     time.Duration // cap of the retry delay
	commitInterval time.Duration // how often marked offsets are committed
	maxPoll        int           // records per poll
	now            func() time.Time
}

var defaultTuning = tuning{
	backoffBase:    time.Second,
	backoffMax:     30 * time.Second,
	commitInterval: 5 * time.Second,
	maxPoll:        100,
	now:            time.Now,
}

// groupOptions are the consumer-group options for at-least-once delivery.
func (c *consumer) groupOptions(group, topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		// A new group must start at the beginning, or mail requested
		// before the mailer first joined would never be sent.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(c.tune.commitInterval),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				c.log.Warn("commit on revoke failed; finished records may be sent again", "err", err)
			}
		}),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {
			c.log.Warn("partitions lost; uncommitted records will be sent again by their new owner")
		}),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			select {
			case c.rebalance <- struct{}{}:
			default:
			}
		}),
	}
}

// run polls and handles records until ctx ends. It returns with the last
// batch settled: finished records marked, unfinished ones rewound.
func (c *consumer) run(ctx context.Context) {
	for {
		// A signal left from an earlier batch is stale: that rebalance ran.
		select {
		case <-c.rebalance:
		default:
		}
		fetches := c.cl.PollRecords(ctx, c.tune.maxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			failed = true
			c.log.Warn("fetch failed", "topic", topic, "partition", partition, "err", err)
		})
		records := fetches.Records()
		if failed && len(records) == 0 {
			// Do not spin on a broker that answers only with errors.
			c.cl.AllowRebalance()
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.tune.backoffMax):
			}
			continue
		}
		done := 0
		for _, r := range records {
			if !c.handle(ctx, r) {
				break
			}
			c.cl.MarkCommitRecords(r)
			done++
		}
		if done < len(records) && ctx.Err() == nil {
			c.rewind(records[done:])
		}
		c.cl.AllowRebalance()
	}
}

// rewind moves each partition's fetch position back to its first unfinished
// record, so that the next poll returns it again. Without this, records
// polled but not handled would be skipped and a later mark would commit
// past them.
func (c *consumer) rewind(rest []*kgo.Record) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range rest {
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if _, seen := offsets[r.Topic][r.Partition]; !seen {
			offsets[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		}
	}
	c.cl.SetOffsets(offsets)
}

// handle processes one record. It returns true when the record is finished
// (sent, or skipped for good) and false when it gave up for now because ctx
// ended or the group wants to rebalance.
func (c *consumer) handle(ctx context.Context, r *kgo.Record) bool {
	log := c.log.With("topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	d, err := events.Decode(r.Value, fmt.Sprintf("kafka:%s/%d/%d", r.Topic, r.Partition, r.Offset))
	if err == nil {
		log = log.With("event_id", d.ID, "type", d.Type, "legacy", d.Legacy)
	}
	var m Message
	if err == nil {
		m, err = c.render.render(d)
	}
	if err != nil {
		// A record that can never become a mail must not block its
		// partition. The dead-letter topic (events.DLQ) will keep it once
		// that issue lands; until then it is logged and skipped. The error
		// text names the problem, never the code.
		if errors.Is(err, events.ErrPoison) {
			log.Warn("skipping a record that is not a valid mail request", "err", err)
		} else {
			log.Error("skipping a record that could not be rendered", "err", err)
		}
		return true
	}

	for attempt := 1; ; attempt++ {
		// The send itself is not cut short by shutdown: the in-flight
		// message is finished, bounded by the SMTP timeouts.
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		err := c.send.Send(sendCtx, m)
		cancel()
		switch {
		case err == nil:
			log.Info("mail sent", "attempts", attempt)
			return true
		case isRejected(err):
			// 5yz for this message: retrying cannot help. Skipped for now;
			// the dead-letter topic will keep it once that issue lands.
			log.Error("mail rejected by the SMTP server; skipped", "err", err, "attempts", attempt)
			return true
		}
		// 4yz, network trouble, or a refusal of our connection (no
		// STARTTLS, wrong credentials) that every message would meet:
		// wait and try the same message again, committing nothing.
		delay := c.backoff(attempt)
		level := slog.LevelWarn
		if IsPermanent(err) {
			level = slog.LevelError // needs an operator: the configuration is wrong
		}
		log.Log(ctx, level, "mail not sent; will retry", "err", err, "attempts", attempt, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-c.rebalance:
			timer.Stop()
			log.Info("giving way to a group rebalance; the record will be retried")
			return false
		}
	}
}

// backoff is the delay before retry attempt+1: exponential from
// backoffBase, capped at backoffMax, with jitter so that replicas do not
// retry in step.
func (c *consumer) backoff(attempt int) time.Duration {
	d := c.tune.backoffBase
	for i := 1; i < attempt && d < c.tune.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.tune.backoffMax)
	return d/2 + rand.N(d/2+1)
}
