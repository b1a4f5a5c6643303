package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/kafka"
)

// membership is what the consumer knows of its place in the group: the
// partitions it owns (logged at every change and exported as
// kinoteka_mailer_partitions_owned), the topic ID it consumes, and whether
// it is recovering from a recreated topic. /readyz reads it.
type membership struct {
	kafka      kafka.Config // for the static member's goodbye (leaveStatic)
	topic      string
	group      string
	instanceID string

	mu         sync.Mutex
	owned      map[string][]int32  // sorted partitions by topic
	consuming  map[string][16]byte // topic ID the records came from, by topic; zero: not known yet
	recreated  map[string]time.Time
	recoveries int // purges of a recreated topic, for tests and the stop log line
}

func newMembership(cfg Config) *membership {
	return &membership{
		kafka: cfg.Kafka, topic: cfg.Topic, group: cfg.Group, instanceID: cfg.InstanceID,
		owned: map[string][]int32{}, consuming: map[string][16]byte{}, recreated: map[string]time.Time{},
	}
}

// ownedCount is the number of partitions the consumer owns.
func (m *membership) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ps := range m.owned {
		n += len(ps)
	}
	return n
}

// change adds (or removes) partitions to (from) the owned set and returns
// the number owned after, and the recreated topics that are consumed again.
func (m *membership) change(partitions map[string][]int32, add bool) (owned int, recovered []string) {
	m.mu.Lock()
	for topic, ps := range partitions {
		cur := m.owned[topic]
		for _, p := range ps {
			i, found := slices.BinarySearch(cur, p)
			switch {
			case add && !found:
				cur = slices.Insert(cur, i, p)
			case !add && found:
				cur = slices.Delete(cur, i, i+1)
			}
		}
		if len(cur) == 0 {
			delete(m.owned, topic)
		} else {
			m.owned[topic] = cur
		}
		// A topic assigned again after a purge is consumed anew.
		if _, ok := m.recreated[topic]; ok && add {
			delete(m.recreated, topic)
			recovered = append(recovered, topic)
		}
	}
	m.mu.Unlock()
	return m.ownedCount(), recovered
}

// heartbeatInterval is a tenth of the session, so that the others learn of
// a rebalance soon, and at most franz-go's default of 3 s.
func heartbeatInterval(session time.Duration) time.Duration {
	return min(session/10, 3*time.Second)
}

// membershipOptions are the group options that decide how fast partitions
// move: the session timeout, static membership, and the callbacks that
// log every assignment, revocation and loss with its partitions.
func (c *consumer) membershipOptions(cfg Config) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval(cfg.SessionTimeout)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			owned, recovered := c.member.change(assigned, true)
			if len(assigned) > 0 {
				c.log.Info("partitions assigned", "partitions", partitionsValue(assigned), "owned", owned)
			}
			for _, topic := range recovered {
				c.log.Info("consuming the recreated topic", "topic", topic)
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			c.stopWorkers(revoked)
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				c.log.Warn("commit on revoke failed; finished records may be handled again", "err", err)
			}
			owned, _ := c.member.change(revoked, false)
			// franz-go calls this at the end of every group session, often
			// with nothing to revoke.
			if len(revoked) > 0 {
				c.log.Info("partitions revoked", "partitions", partitionsValue(revoked), "owned", owned)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			c.stopWorkers(lost)
			owned, _ := c.member.change(lost, false)
			c.log.Warn("partitions lost; uncommitted records will be handled again by their new owner",
				"partitions", partitionsValue(lost), "owned", owned)
		}),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	return opts
}

// partitionsValue logs a partition map in a stable order: topic → partitions.
func partitionsValue(ps map[string][]int32) slog.Value {
	var attrs []slog.Attr
	for _, topic := range slices.Sorted(maps.Keys(ps)) {
		attrs = append(attrs, slog.Any(topic, slices.Sorted(slices.Values(ps[topic]))))
	}
	return slog.GroupValue(attrs...)
}

// noteTopicIDs remembers the ID of the topic each fetched record came from,
// so /readyz can tell when the broker's topic of that name is another one.
func (c *consumer) noteTopicIDs(fetches kgo.Fetches) {
	fetches.EachTopic(func(t kgo.FetchTopic) {
		if t.TopicID == ([16]byte{}) {
			return // a broker before Kafka 3.1 sends no IDs
		}
		m := c.member
		m.mu.Lock()
		_, recovered := m.recreated[t.Topic]
		if recovered {
			// Records of the new topic (recoverRecreated forgot the old
			// one's ID), though no assignment said so.
			delete(m.recreated, t.Topic)
		}
		m.consuming[t.Topic] = t.TopicID
		m.mu.Unlock()
		if recovered {
			c.log.Info("consuming the recreated topic", "topic", t.Topic)
		}
	})
}

// recreatedTopics returns the topics of fetches that failed with
// UNKNOWN_TOPIC_ID: the client holds a topic ID the broker no longer
// knows, because the topic was deleted and recreated (or the broker lost
// its data). franz-go never adopts the new ID by itself.
func recreatedTopics(fetches kgo.Fetches) []string {
	var topics []string
	fetches.EachError(func(topic string, _ int32, err error) {
		if kafka.IsRecreatedTopic(err) && !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
	})
	return topics
}

// recoverRecreated makes the consumer consume the new topic of that name
// from its start: it stops the workers of the old topic (their records
// went with it) before anything more is marked, purges the topic from the
// client — which drops the old topic's uncommitted offsets, so none lands
// on the new topic — and subscribes to it again, which rejoins the group.
// Readiness reports the recovery until the new topic's partitions are
// assigned. A recovery is tried again if the error persists 10 s later.
func (c *consumer) recoverRecreated(topic string) {
	m := c.member
	m.mu.Lock()
	if since, ok := m.recreated[topic]; ok && time.Since(since) < 10*time.Second {
		m.mu.Unlock()
		return
	}
	m.recreated[topic] = time.Now()
	m.recoveries++
	delete(m.consuming, topic)
	m.mu.Unlock()

	c.log.Error("topic was deleted and recreated (UNKNOWN_TOPIC_ID); consuming the new topic from its start — records of the old one not yet mailed went with it",
		"topic", topic)
	c.stopWorkers(c.workerPartitions(topic))
	c.cl.PurgeTopicsFromClient(topic)
	c.cl.AddConsumeTopics(topic)
}

// workerPartitions are the partitions of topic that have a worker.
func (c *consumer) workerPartitions(topic string) map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := map[string][]int32{topic: {}}
	for tp := range c.workers {
		if tp.topic == topic {
			ps[topic] = append(ps[topic], tp.partition)
		}
	}
	return ps
}

// checkKafka is the consumer's readiness: a broker answers, the topic
// exists, it is the topic the records came from, and no recovery from a
// recreated topic is under way.
func (c *consumer) checkKafka(ctx context.Context) error {
	if err := kafka.Ping(ctx, c.cl); err != nil {
		return err
	}
	m := c.member
	m.mu.Lock()
	since, recovering := m.recreated[m.topic]
	consuming := m.consuming[m.topic]
	m.mu.Unlock()
	if recovering {
		return fmt.Errorf("topic %s was deleted and recreated; rejoining the group to consume the new one (since %s)", m.topic, since.UTC().Format(time.RFC3339))
	}
	details, err := kadm.NewClient(c.cl).ListTopics(ctx, m.topic)
	if err != nil {
		return err
	}
	d, ok := details[m.topic]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %s does not exist", m.topic)
	case d.Err != nil:
		return fmt.Errorf("topic %s: %w", m.topic, d.Err)
	case consuming != [16]byte{} && d.ID != kadm.TopicID(consuming):
		return fmt.Errorf("topic %s was recreated (its ID is %s, records came from %s); the consumer has not caught up yet",
			m.topic, d.ID, kadm.TopicID(consuming))
	}
	return nil
}

// leaveStatic takes a static member out of the group when the mailer stops
// gracefully, so its partitions move at once: franz-go does not leave as a
// static member (only a crash should keep the partitions waiting for the
// same instance). The consumer's client is closed by now; a short-lived
// one sends the request.
func (c *consumer) leaveStatic(ctx context.Context) {
	m := c.member
	if m.instanceID == "" {
		return
	}
	cl, err := kafka.NewClient(m.kafka)
	if err == nil {
		defer cl.Close()
		var res kadm.LeaveGroupResponses
		res, err = kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(m.group).InstanceIDs(m.instanceID).Reason("mailer stopping"))
		if err == nil {
			err = res.Error()
		}
	}
	if err != nil {
		c.log.Warn("could not leave the group; the partitions move after the session timeout", "instance_id", m.instanceID, "err", err)
		return
	}
	c.log.Info("left the group as a static member", "instance_id", m.instanceID)
}
