package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
)

func TestDLQCommand(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(2, events.Topic, events.DLQ(events.Topic)))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A dead letter as the mailer parks one.
	dead := &kgo.Record{Topic: events.DLQ(events.Topic), Key: []byte("user-1"), Value: []byte(`{"secret":"123456"}`), Headers: []kgo.RecordHeader{
		{Key: events.HeaderEventID, Value: []byte("ev-1")},
		{Key: events.HeaderEventType, Value: []byte(events.TypeVerificationCode)},
		{Key: events.HeaderDLQKind, Value: []byte(events.DLQKindRejected)},
		{Key: events.HeaderDLQError, Value: []byte("smtp rcpt: 550 no such user")},
		{Key: events.HeaderDLQAttempts, Value: []byte("1")},
		{Key: events.HeaderDLQTopic, Value: []byte(events.Topic)},
		{Key: events.HeaderDLQPartition, Value: []byte("1")},
		{Key: events.HeaderDLQOffset, Value: []byte("7")},
	}}
	if err := cl.ProduceSync(ctx, dead).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dlq := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := runDLQ(ctx, args, func(string) string { return "" }, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	out, err := dlq("list", "-brokers", brokers)
	if err != nil || !strings.Contains(out, "ev-1") || !strings.Contains(out, "550 no such user") || !strings.Contains(out, "mail.requests/1/7") ||
		!strings.Contains(out, "1 dead letters") || strings.Contains(out, "123456") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := dlq("replay", "-brokers", brokers, "-dry-run"); err != nil || !strings.Contains(out, "1 dead letters would be replayed") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if out, err := dlq("replay", "-brokers", brokers); err != nil || !strings.Contains(out, "1 dead letters replayed") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if out, err := dlq("replay", "-brokers", brokers); err != nil || !strings.Contains(out, "0 dead letters replayed") {
		t.Fatalf("second replay: %v\n%s", err, out)
	}

	// The replayed record is back on the mail topic, as it was.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(events.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got []*kgo.Record
	for len(got) == 0 && ctx.Err() == nil {
		got = append(got, consumer.PollFetches(ctx).Records()...)
	}
	if len(got) != 1 || string(got[0].Key) != "user-1" || string(got[0].Value) != `{"secret":"123456"}` {
		t.Fatalf("main topic holds %d records: %+v", len(got), got)
	}
	h := map[string]string{}
	for _, kv := range got[0].Headers {
		h[kv.Key] = string(kv.Value)
	}
	if h[events.HeaderEventID] != "ev-1" || h[events.HeaderReplayedFrom] != events.DLQ(events.Topic)+"/"+strconv.Itoa(int(dead.Partition))+"/0" || h[events.HeaderDLQKind] != "" {
		t.Errorf("replayed headers = %v", h)
	}

	if _, err := dlq("purge"); err == nil {
		t.Error("an unknown subcommand was accepted")
	}
}
