package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerOptions are the client options of every producer of Kinoteka:
// records the broker does not take within deliveryTimeout fail, batches go
// out at once (no linger), and — the part that keeps a produce call
// bounded during a broker outage — the idempotent producer may give up on
// records that could be in flight when their context ends
// (kgo.AllowIdempotentProduceCancellation). Without it franz-go keeps such
// records until the broker answers, however long it is away, because
// giving up could publish them twice; Kinoteka's consumers de-duplicate
// (the mailer by event id), so a bounded attempt is worth that. And the
// client may ask for the cluster's metadata again a second after the last
// time (kgo's default is 5 s): after an outage, that is how soon it sees
// the broker back and produces again.
func ProducerOptions(deliveryTimeout time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.ProducerLinger(0),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.MetadataMinAge(time.Second),
	}
}

// Producer is a client, built with ProducerOptions, whose ProduceSync
// holds two promises kgo's alone does not:
//
//   - it returns when its context ends, whatever the broker does: records
//     without an answer by then fail with the context's error (the client
//     then drops them, or — if a request carrying them was already on the
//     wire — may still deliver them: at least once);
//   - it recovers from a recreated topic: a topic deleted and created again
//     (or a broker that came back without its log) has a new topic id,
//     which franz-go refuses with UNKNOWN_TOPIC_ID until it forgets the
//     topic. Producer makes the client forget it for producing, so the
//     failed call's records — and only those — fail, and the next call
//     goes to the new topic.
//
// Every other method is the client's own.
type Producer struct {
	*kgo.Client
	log *slog.Logger
}

// NewProducer wraps cl, a client built with ProducerOptions; log hears of
// every recreated topic.
func NewProducer(cl *kgo.Client, log *slog.Logger) *Producer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Producer{Client: cl, log: log}
}

// ErrNoAnswer is the error of a record the broker did not answer before
// the produce call's context ended.
var ErrNoAnswer = errors.New("kafka: no answer from the broker in time")

// ProduceSync produces rs and waits for each outcome or for ctx to end,
// whichever comes first. Results come in completion order, those left
// without an answer last (ErrNoAnswer wrapping ctx's error too).
func (p *Producer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	// Buffered for every record, so a promise that fires after we stopped
	// waiting never blocks the client.
	answers := make(chan kgo.ProduceResult, len(rs))
	for _, r := range rs {
		p.Produce(ctx, r, func(r *kgo.Record, err error) {
			answers <- kgo.ProduceResult{Record: r, Err: err}
		})
	}
	results := make(kgo.ProduceResults, 0, len(rs))
	answered := make(map[*kgo.Record]bool, len(rs))
wait:
	for len(results) < len(rs) {
		select {
		case res := <-answers:
			results = append(results, res)
			answered[res.Record] = true
		case <-ctx.Done():
			break wait
		}
	}
	for _, r := range rs {
		if !answered[r] {
			results = append(results, kgo.ProduceResult{Record: r, Err: fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())})
		}
	}
	p.forgetRecreated(results)
	return results
}

// forgetRecreated makes the client forget, for producing, every topic
// that failed as recreated, and names the topic in those results' errors.
func (p *Producer) forgetRecreated(results kgo.ProduceResults) {
	var topics []string
	for i, res := range results {
		if !IsRecreatedTopic(res.Err) {
			continue
		}
		topic := res.Record.Topic
		if !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
		results[i].Err = fmt.Errorf("kafka: topic %s was deleted and created again; the client forgot the old one, the next attempt goes to the new one: %w", topic, res.Err)
	}
	if len(topics) == 0 {
		return
	}
	// Purging fails what the client still buffers for these topics; a
	// concurrent caller sees its records fail and tries again, like ours.
	p.PurgeTopicsFromProducing(topics...)
	p.log.Warn("kafka: a topic was deleted and created again (UNKNOWN_TOPIC_ID); forgot it for producing, the next produce uses the new topic",
		"topics", topics)
}

// IsRecreatedTopic reports whether err says that a topic the client knew
// has since been deleted and created again under a new topic id
// (UNKNOWN_TOPIC_ID). franz-go does not adopt the new id by itself: a
// producer must forget the topic (Producer does), a consumer must forget
// it and subscribe again (RecoverConsuming).
func IsRecreatedTopic(err error) bool { return errors.Is(err, kerr.UnknownTopicID) }

// RecoverConsuming looks through fetches for partitions that failed
// because their topic was recreated, makes cl forget those topics and
// subscribe to them again, and returns them (nil when none). Call it on
// every poll of a consumer that subscribes to fixed topics
// (kgo.ConsumeTopics). A group member rejoins — a rebalance — and reads
// the new topic from the group's committed offsets, which the broker
// dropped with the old topic, so from the reset offset
// (kgo.ConsumeResetOffset). The new topic's offsets start again at 0: a
// consumer that de-duplicates by topic/partition/offset must not take a
// new record for an old one.
func RecoverConsuming(cl *kgo.Client, fetches kgo.Fetches) []string {
	var topics []string
	fetches.EachError(func(topic string, _ int32, err error) {
		if IsRecreatedTopic(err) && !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
	})
	if len(topics) == 0 {
		return nil
	}
	cl.PurgeTopicsFromConsuming(topics...)
	cl.AddConsumeTopics(topics...)
	return topics
}
