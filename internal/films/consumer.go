package films

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
)

// usersConsumer keeps films' copy of the accounts (store_users.go) from the
// users topic, as a member of films' own consumer group. Records are
// applied one at a time in partition order — the key is the user id, so
// one account's events arrive in order, and the version guards the rest —
// and a record's offset is marked for commit only once it is applied or
// parked in the dead-letter topic (at-least-once; applying twice changes
// nothing). A database error is retried with backoff until it passes;
// films keeps serving meanwhile, with the names it has, and so it does
// while the broker is away: the group resumes from its committed offsets.
type usersConsumer struct {
	cl      *kgo.Client
	store   *Store
	log     *slog.Logger
	dlq     string
	backoff time.Duration // first retry delay; doubles up to maxBackoff
	applied func()        // called after each record is finished (tests)
}

const maxConsumerBackoff = 30 * time.Second

func newUsersConsumer(cfg Config, store *Store, log *slog.Logger) (*usersConsumer, error) {
	c := &usersConsumer{store: store, log: log, dlq: events.DLQ(cfg.UsersTopic), backoff: 200 * time.Millisecond}
	cl, err := kafka.NewClient(cfg.Kafka,
		kgo.ConsumerGroup(cfg.UsersGroup),
		kgo.ConsumeTopics(cfg.UsersTopic),
		// A new group reads the whole (compacted) topic: every account's
		// latest state, deletions included.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
		// The change-to-visible budget (docs/benchmarks.md) is a second:
		// an idle fetch must not hold a new record back for long.
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				log.Warn("users: commit on revoke failed; applied events may be applied again", "err", err)
			}
		}),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, err
	}
	c.cl = cl
	return c, nil
}

// run is the consumer's lifecycle worker: it polls until ctx ends, then
// commits what was applied and leaves the group.
func (c *usersConsumer) run(ctx context.Context) error {
	defer func() {
		commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.cl.CommitMarkedOffsets(commitCtx); err != nil {
			c.log.Warn("users: final commit failed; applied events may be applied again", "err", err)
		}
		c.cl.CloseAllowingRebalance()
	}()
	wait := c.backoff
	for {
		fetches := c.cl.PollRecords(ctx, 100)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return nil
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			failed = true
			c.log.Warn("users: fetch failed; films serves the names it has", "topic", topic, "partition", partition, "err", err)
		})
		// A topic deleted and created again keeps failing until the client
		// forgets it; the compacted topic is read again from its start,
		// and the version rule makes the replay change nothing.
		if topics := kafka.RecoverConsuming(c.cl, fetches); topics != nil {
			c.log.Error("users: topic was deleted and recreated; reading the new one from its start", "topics", topics)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if ctx.Err() == nil && c.handle(ctx, r) {
				c.cl.MarkCommitRecords(r)
				if c.applied != nil {
					c.applied()
				}
			}
		})
		c.cl.AllowRebalance()
		if failed && fetches.NumRecords() == 0 {
			if !sleep(ctx, wait) {
				return nil
			}
			wait = min(2*wait, maxConsumerBackoff)
		} else {
			wait = c.backoff
		}
	}
}

// handle applies one record, retrying database errors until ctx ends; a
// record that can never be applied goes to the dead-letter topic. It
// reports whether the record is finished.
func (c *usersConsumer) handle(ctx context.Context, r *kgo.Record) bool {
	e, err := events.DecodeUserEvent(r.Value)
	if err == nil && string(r.Key) != e.ID {
		err = errors.New("the record's key is not the event's user id")
	}
	if err != nil {
		return c.deadLetter(ctx, r, err)
	}
	wait := c.backoff
	for {
		_, err := c.store.ApplyUserEvent(ctx, e)
		if err == nil {
			return true
		}
		c.log.Warn("users: event not applied; retrying", "type", e.Type, "user_id", e.ID, "version", e.Version, "err", err)
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, maxConsumerBackoff)
	}
}

// deadLetter parks r in the dead-letter topic with why, retrying until the
// broker takes it or ctx ends.
func (c *usersConsumer) deadLetter(ctx context.Context, r *kgo.Record, why error) bool {
	c.log.Error("users: undecodable event parked in the dead-letter topic", "dlq", c.dlq, "partition", r.Partition, "offset", r.Offset, "err", why)
	dead := &kgo.Record{Topic: c.dlq, Key: r.Key, Value: r.Value, Headers: append(append([]kgo.RecordHeader{}, r.Headers...),
		kgo.RecordHeader{Key: events.HeaderDLQError, Value: []byte(why.Error())},
		kgo.RecordHeader{Key: events.HeaderDLQKind, Value: []byte(events.DLQKindPoison)},
		kgo.RecordHeader{Key: events.HeaderDLQTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: events.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: events.HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: events.HeaderDLQAt, Value: []byte(time.Now().UTC().Format(time.RFC3339))},
	)}
	wait := c.backoff
	for {
		if err := c.cl.ProduceSync(ctx, dead).FirstErr(); err == nil {
			return true
		} else {
			c.log.Warn("users: dead letter not written; retrying", "err", err)
		}
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, maxConsumerBackoff)
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
