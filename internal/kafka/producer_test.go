package kafka

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topic = "t"

// producer is a Producer on brokers, closed with the test.
func producer(t *testing.T, brokers []string) *Producer {
	t.Helper()
	cl, err := NewClient(Config{Brokers: brokers, ClientID: "producer-test"},
		append(ProducerOptions(2*time.Second), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return NewProducer(cl, nil)
}

func produce(p *Producer, d time.Duration, values ...string) kgo.ProduceResults {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Value: []byte(v)})
	}
	return p.ProduceSync(ctx, rs...)
}

// consumeValues reads topic from its start until want values arrived, or
// fails the test after a minute.
func consumeValues(t *testing.T, brokers []string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl, err := NewClient(Config{Brokers: brokers}, append([]kgo.Opt{kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []string
	for len(got) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v from %s, want %d values", got, topic, want)
		}
		RecoverConsuming(cl, fetches)
		for _, r := range fetches.Records() {
			got = append(got, string(r.Value))
		}
	}
	return got
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A produce request on the wire when the broker goes away leaves the
// idempotent producer unsure whether the broker wrote it; kgo's own
// ProduceSync then waits for the broker, however long it is away. The
// Producer's call ends with its context, and once the broker is back
// (with its log) the next call publishes.
func TestProducerCallEndsWhileTheBrokerIsAway(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	cluster, err := kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	brokers := cluster.ListenAddrs()
	p := producer(t, brokers)
	if err := produce(p, 30*time.Second, "before").FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The broker takes the next produce request and never answers it; then
	// it goes away.
	taken := make(chan struct{}, 1)
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		select {
		case taken <- struct{}{}:
		default:
		}
		return nil, nil, true
	})
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- produce(p, time.Second, "during") }()
	<-taken
	cluster.Close()

	select {
	case res := <-done:
		if err := res.FirstErr(); err == nil {
			t.Fatal("a record was published with the broker away")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the produce call did not end while the broker was away")
	}

	cluster, err = kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	// The first calls after the outage may still fail on what the client
	// dropped; the broker takes the record within a few of them.
	var last error
	for range 10 {
		if last = produce(p, 10*time.Second, "after").FirstErr(); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("produce after the broker returned: %v", last)
	}
	got := consumeValues(t, brokers, 2)
	if got[0] != "before" || !slices.Contains(got, "after") {
		t.Errorf("topic holds %v, want before … after", got)
	}
}

// recreate deletes topic and creates it again, with a new topic id and one
// partition.
func recreate(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := NewClient(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

func TestProducerRecoversFromARecreatedTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	p := producer(t, brokers)
	if err := produce(p, 30*time.Second, "old").FirstErr(); err != nil {
		t.Fatal(err)
	}
	recreate(t, brokers)

	// franz-go refuses the new topic; the call fails, naming it.
	err = produce(p, 30*time.Second, "refused").FirstErr()
	if !IsRecreatedTopic(err) {
		t.Fatalf("first produce to the recreated topic: %v, want UNKNOWN_TOPIC_ID", err)
	}
	// The client forgot the old topic: the next call goes to the new one.
	if err := produce(p, 30*time.Second, "new").FirstErr(); err != nil {
		t.Fatalf("second produce to the recreated topic: %v", err)
	}
	if got := consumeValues(t, brokers, 1); !slices.Equal(got, []string{"new"}) {
		t.Errorf("the new topic holds %v, want [new]", got)
	}
}

// A group member that calls RecoverConsuming on every poll goes on
// reading once its topic is recreated; without it, every poll fails with
// UNKNOWN_TOPIC_ID.
func TestRecoverConsumingFollowsARecreatedTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	p := producer(t, brokers)
	if err := produce(p, 30*time.Second, "old").FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(Config{Brokers: brokers}, kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	poll := func(want string) (recovered []string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%q never arrived", want)
			}
			recovered = append(recovered, RecoverConsuming(cl, fetches)...)
			for _, r := range fetches.Records() {
				if string(r.Value) == want {
					return recovered
				}
			}
		}
	}
	poll("old")
	recreate(t, brokers)
	// The producer's first call fails and makes it forget the old topic.
	if err := produce(p, 30*time.Second, "refused").FirstErr(); !IsRecreatedTopic(err) {
		t.Fatalf("first produce to the recreated topic: %v, want UNKNOWN_TOPIC_ID", err)
	}
	if err := produce(p, 30*time.Second, "new").FirstErr(); err != nil {
		t.Fatal(err)
	}
	if recovered := slices.Compact(poll("new")); !slices.Equal(recovered, []string{topic}) {
		t.Errorf("RecoverConsuming recovered %v, want [%s]", recovered, topic)
	}
}
