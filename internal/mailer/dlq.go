package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
)

// deadLetters parks records in the dead-letter topic.
type deadLetters struct {
	cl      *kgo.Client
	topic   string
	log     *slog.Logger
	ensured atomic.Bool
}

// park copies r to the dead-letter topic — same key, value and headers —
// adding headers that say why (events.HeaderDLQ*).
func (d *deadLetters) park(r *kgo.Record, kind, reason string, attempts int, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !d.ensured.Load() {
		// Brokers usually refuse to create topics on produce; create it
		// once, and let the produce tell if that failed.
		if err := kafka.EnsureTopics(ctx, d.cl, -1, -1, d.topic); err != nil {
			d.log.Warn("could not create the dead-letter topic", "topic", d.topic, "err", err)
		} else {
			d.ensured.Store(true)
		}
	}
	headers := withoutDLQHeaders(r.Headers)
	for _, h := range [][2]string{
		{events.HeaderDLQError, reason},
		{events.HeaderDLQKind, kind},
		{events.HeaderDLQAttempts, strconv.Itoa(attempts)},
		{events.HeaderDLQTopic, r.Topic},
		{events.HeaderDLQPartition, strconv.Itoa(int(r.Partition))},
		{events.HeaderDLQOffset, strconv.FormatInt(r.Offset, 10)},
		{events.HeaderDLQAt, now.UTC().Format(time.RFC3339Nano)},
	} {
		headers = append(headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
	}
	rec := &kgo.Record{Topic: d.topic, Key: r.Key, Value: r.Value, Headers: headers}
	return d.cl.ProduceSync(ctx, rec).FirstErr()
}

// withoutDLQHeaders copies hs without the headers of an earlier
// dead-lettering or replay.
func withoutDLQHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+8)
	for _, h := range hs {
		if !slices.Contains(events.DLQHeaders, h.Key) {
			out = append(out, h)
		}
	}
	return out
}

// DeadLetter describes one record of the dead-letter topic, without its
// value (which holds the code).
type DeadLetter struct {
	Partition         int32 // in the dead-letter topic
	Offset            int64
	EventID           string // from the event-id header; empty for a bare payload
	EventType         string
	Kind              string // events.DLQKindPoison, DLQKindRejected or DLQKindGaveUp
	Error             string
	Attempts          int
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
	At                time.Time
}

func deadLetterOf(r *kgo.Record) DeadLetter {
	dl := DeadLetter{
		Partition: r.Partition, Offset: r.Offset,
		EventID:       headerValue(r, events.HeaderEventID),
		EventType:     headerValue(r, events.HeaderEventType),
		Kind:          headerValue(r, events.HeaderDLQKind),
		Error:         headerValue(r, events.HeaderDLQError),
		OriginalTopic: headerValue(r, events.HeaderDLQTopic),
	}
	dl.Attempts, _ = strconv.Atoi(headerValue(r, events.HeaderDLQAttempts))
	p, _ := strconv.ParseInt(headerValue(r, events.HeaderDLQPartition), 10, 32)
	dl.OriginalPartition = int32(p)
	dl.OriginalOffset, _ = strconv.ParseInt(headerValue(r, events.HeaderDLQOffset), 10, 64)
	dl.At, _ = time.Parse(time.RFC3339Nano, headerValue(r, events.HeaderDLQAt))
	return dl
}

// ListDeadLetters returns every record now in topic's dead-letter topic.
func ListDeadLetters(ctx context.Context, cfg kafka.Config, topic string) ([]DeadLetter, error) {
	cl, err := kafka.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []DeadLetter
	_, err = readUpToEnd(ctx, cfg, kadm.NewClient(cl), events.DLQ(topic), nil, func(r *kgo.Record) { out = append(out, deadLetterOf(r)) })
	return out, err
}

// DefaultReplayGroup is the consumer group in which a replay remembers how
// far it got.
const DefaultReplayGroup = "kinoteka-dlq-replay"

// ReplayOptions choose what ReplayDeadLetters puts back.
type ReplayOptions struct {
	// EventIDs limits the replay to these events, wherever they are in the
	// dead-letter topic; such a replay does not move the group. Empty
	// replays every dead letter not replayed before.
	EventIDs []string
	Group    string // default DefaultReplayGroup
	DryRun   bool   // report what would be replayed, change nothing
}

// ReplayDeadLetters puts dead letters back on the topic they came from,
// with their key, value and original headers (plus events.HeaderReplayedFrom),
// so the mailer tries them again; its delivery log still keeps an event
// that was sent meanwhile from being sent twice. Without EventIDs it
// replays from where the previous replay stopped up to the current end,
// and records the new position in opts.Group.
func ReplayDeadLetters(ctx context.Context, cfg kafka.Config, topic string, opts ReplayOptions) ([]DeadLetter, error) {
	if opts.Group == "" {
		opts.Group = DefaultReplayGroup
	}
	dlqTopic := events.DLQ(topic)
	cl, err := kafka.NewClient(cfg, kgo.RecordDeliveryTimeout(30*time.Second), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	var from map[int32]int64
	if len(opts.EventIDs) == 0 {
		committed, err := adm.FetchOffsets(ctx, opts.Group)
		if errors.Is(err, kerr.GroupIDNotFound) {
			err = nil // the first replay: nothing recorded yet
		}
		if err != nil {
			return nil, fmt.Errorf("replay: read the position of group %s: %w", opts.Group, err)
		}
		from = map[int32]int64{}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == dlqTopic && o.Err == nil && o.At >= 0 {
				from[o.Partition] = o.At
			}
		})
	}
	var (
		picked  []DeadLetter
		records []*kgo.Record
	)
	ends, err := readUpToEnd(ctx, cfg, adm, dlqTopic, from, func(r *kgo.Record) {
		dl := deadLetterOf(r)
		if len(opts.EventIDs) > 0 && !slices.Contains(opts.EventIDs, dl.EventID) {
			return
		}
		to := dl.OriginalTopic
		if to == "" {
			to = topic
		}
		headers := append(withoutDLQHeaders(r.Headers), kgo.RecordHeader{
			Key: events.HeaderReplayedFrom, Value: fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset),
		})
		picked = append(picked, dl)
		records = append(records, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: headers})
	})
	if err != nil || opts.DryRun {
		return picked, err
	}
	if len(records) > 0 {
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return nil, fmt.Errorf("replay: produce: %w", err)
		}
	}
	if len(opts.EventIDs) == 0 && len(ends) > 0 {
		offsets := kadm.Offsets{}
		for p, end := range ends {
			offsets.Add(kadm.Offset{Topic: dlqTopic, Partition: p, At: end, LeaderEpoch: -1})
		}
		resp, err := adm.CommitOffsets(ctx, opts.Group, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			// Replayed but not remembered: the next replay sends them
			// again, and the delivery log keeps that from mailing twice.
			return picked, fmt.Errorf("replay: %d dead letters replayed, but group %s could not record it: %w", len(picked), opts.Group, err)
		}
	}
	return picked, nil
}

// readUpToEnd calls fn for each record of topic from the given offsets (the
// start where none is given) up to the end offsets it finds first, and
// returns those end offsets.
func readUpToEnd(ctx context.Context, cfg kafka.Config, adm *kadm.Client, topic string, from map[int32]int64, fn func(*kgo.Record)) (map[int32]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		return nil, fmt.Errorf("read %s: no such topic", topic)
	}
	// Where each partition's log begins now: a partition whose records
	// all expired has nothing to read even from its start.
	firsts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = firsts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	start := map[int32]kgo.Offset{}
	remaining := map[int32]bool{}
	for p, end := range ends {
		at := int64(0)
		if o, ok := firsts.Lookup(topic, p); ok {
			at = o.Offset
		}
		if f, ok := from[p]; ok {
			at = max(at, f)
		}
		if at >= end {
			continue
		}
		start[p] = kgo.NewOffset().At(at)
		remaining[p] = true
	}
	if len(remaining) == 0 {
		return ends, nil
	}
	cl, err := kafka.NewClient(cfg, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("read %s: %w", topic, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !remaining[r.Partition] || r.Offset >= ends[r.Partition] {
				return
			}
			fn(r)
			if r.Offset+1 >= ends[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
	}
	return ends, nil
}
