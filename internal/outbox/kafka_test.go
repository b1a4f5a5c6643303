package outbox

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/sqldb"
)

// TestRelayPublishesToKafka runs the relay against an in-process Kafka
// (kfake) through the same client constructor the services use.
func TestRelayPublishesToKafka(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		cfg := kafka.Config{Brokers: cluster.ListenAddrs(), ClientID: "outbox-test"}
		producer, err := kafka.NewClient(cfg, kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(producer.Close)

		env, err := events.NewCodeMail("0193f6f2-0000-7000-8000-000000000001", events.TypeVerificationCode, t0,
			events.CodeMail{Email: "a@example.com", Code: "123456", Locale: "ru", ExpiresAt: t0.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		value, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		enqueue(t, db, Message{
			EventID: env.ID, Topic: events.Topic, Key: "user-1", EventType: env.Type,
			Payload: value, CreatedAt: t0,
		})
		startRelay(t, db, producer, Options{}).Notify()

		consumer, err := kafka.NewClient(cfg, kgo.ConsumeTopics(events.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(consumer.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var got []*kgo.Record
		for len(got) == 0 {
			fetches := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal("no record arrived in Kafka")
			}
			got = append(got, fetches.Records()...)
		}
		rec := got[0]
		if len(got) != 1 || string(rec.Key) != "user-1" || string(rec.Value) != string(value) {
			t.Fatalf("got %d records, first key %q value %s", len(got), rec.Key, rec.Value)
		}
		headers := map[string]string{}
		for _, h := range rec.Headers {
			headers[h.Key] = string(h.Value)
		}
		want := map[string]string{
			events.HeaderContentType: "application/json",
			events.HeaderEventType:   events.TypeVerificationCode,
			events.HeaderEventID:     env.ID,
		}
		for k, v := range want {
			if headers[k] != v {
				t.Errorf("header %s = %q, want %q", k, headers[k], v)
			}
		}
		d, err := events.Decode(rec.Value, "")
		if err != nil || d.ID != env.ID || d.Mail.Code != "123456" || d.Mail.Email != "a@example.com" {
			t.Errorf("decoded %+v, %v", d, err)
		}
	})
}

// A row written during a broker outage is older than the producer's
// delivery timeout by the time the broker is back; it must still go out,
// also when the first produce request has to be retried.
func TestRelayPublishesRowsOlderThanTheDeliveryTimeout(t *testing.T) {
	db := sqliteDB(t)
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	// The broker refuses the first produce request with a retriable error,
	// as one just restarted might: the client retries it.
	cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	producer, err := kafka.NewClient(kafka.Config{Brokers: cluster.ListenAddrs()}, kgo.RecordDeliveryTimeout(2*time.Second), kgo.ProducerLinger(0),
		kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	old := msg("e-old", "u1")
	old.Topic, old.CreatedAt = events.Topic, time.Now().Add(-time.Hour)
	enqueue(t, db, old)
	r := startRelay(t, db, producer, Options{})
	r.Notify()
	if b := r.next(t); !slices.Equal(b.published, []string{"e-old"}) {
		t.Fatalf("first batch = %+v, want e-old published despite its age", b)
	}
}
