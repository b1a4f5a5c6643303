package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// broker is a kfake broker that keeps its log in a folder, so that it can
// go away and come back on the same port with what it had, as a real one
// does.
type broker struct {
	tb      testing.TB
	dir     string
	port    int
	cluster *kfake.Cluster
}

func startBroker(tb testing.TB) *broker {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &broker{tb: tb, dir: tb.TempDir(), port: port}
	b.start(kfake.SeedTopics(1, events.Topic))
	tb.Cleanup(func() { b.cluster.Close() })
	return b
}

func (b *broker) start(opts ...kfake.Opt) {
	b.tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.Ports(b.port), kfake.DataDir(b.dir)}, opts...)...)
	if err != nil {
		b.tb.Fatalf("start the broker: %v", err)
	}
	b.cluster = c
}

func (b *broker) addrs() []string { return []string{fmt.Sprintf("127.0.0.1:%d", b.port)} }

// hang makes the broker take produce requests and answer none: the
// requests are on the wire and the producer cannot know whether the broker
// wrote them. written says whether it does (it answers REQUEST_TIMED_OUT
// after writing, as a broker whose replicas fell behind can) or drops them.
// The returned channel is closed once a request was taken.
func (b *broker) hang(written bool) <-chan struct{} {
	taken := make(chan struct{})
	var once sync.Once
	if written {
		b.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1,
			When: func(kmsg.Request) bool { once.Do(func() { close(taken) }); return true }})
		return taken
	}
	b.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		once.Do(func() { close(taken) })
		return nil, nil, true
	})
	return taken
}

// stop takes the broker away; start brings it back with its log.
func (b *broker) stop() { b.cluster.Close() }

// newProducer is auth's producer: kafka.ProducerOptions and kafka.Producer.
func newProducer(tb testing.TB, brokers []string, attempt time.Duration) *kafka.Producer {
	tb.Helper()
	cl, err := kafka.NewClient(kafka.Config{Brokers: brokers, ClientID: "outbox-test"}, kafka.ProducerOptions(attempt)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return kafka.NewProducer(cl, discard)
}

// readTopic returns how many times each event id is in the mail topic.
func readTopic(tb testing.TB, brokers []string) map[string]int {
	tb.Helper()
	cl, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.ConsumeTopics(events.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, events.Topic)
	if err != nil {
		tb.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	seen := map[string]int{}
	for n := int64(0); n < want; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %d of the topic's %d records", n, want)
		}
		for _, r := range fetches.Records() {
			seen[eventID(r)]++
			n++
		}
	}
	return seen
}

// During a broker outage each attempt ends within its bound, is counted
// and is seen in the failing rows and in Health; once the broker is back
// with its log, everything written before and during the outage is
// published. Before kafka.Producer, the attempt on the wire when the broker
// went away waited for it to come back, and nothing was counted.
func TestRelayAttemptsEndWhileTheBrokerIsAway(t *testing.T) {
	db := sqliteDB(t)
	b := startBroker(t)
	var errorsCounted atomic.Int64
	r := startRelay(t, db, newProducer(t, b.addrs(), time.Second), Options{
		AttemptTimeout: time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnPublishError: func(n int, _ error) { errorsCounted.Add(int64(n)) },
	})
	ids := []string{"before"}
	enqueue(t, db, msg("before", "u0"))
	r.Notify()
	if got := r.next(t); !slices.Equal(got.published, []string{"before"}) {
		t.Fatalf("with the broker up: %+v", got)
	}

	// The broker hangs on the next produce request, then goes away.
	taken := b.hang(false)
	enqueue(t, db, msg("hung-1", "u1"), msg("hung-2", "u2"))
	ids = append(ids, "hung-1", "hung-2")
	r.Notify()
	<-taken
	b.stop()
	away := time.Now()
	failed := r.next(t)
	t.Logf("the attempt on the wire ended %v after the broker went away (bound: 1s from its start)", time.Since(away).Round(time.Millisecond))
	if failed.failed != 2 || failed.err == nil {
		t.Fatalf("the attempt on the wire when the broker went away: %+v, want 2 failed rows", failed)
	}
	if n := errorsCounted.Load(); n < 2 {
		t.Errorf("OnPublishError counted %d records, want at least 2", n)
	}
	st, err := r.Stats(context.Background())
	if err != nil || st.Failing != 2 || st.Pending != 2 {
		t.Errorf("Stats during the outage = %+v, %v; want 2 pending, 2 failing", st, err)
	}
	if err := r.Health(context.Background()); err == nil {
		t.Error("Health is nil during the outage")
	}
	// Registrations go on during the outage.
	for i := range 3 {
		id := fmt.Sprintf("during-%d", i)
		enqueue(t, db, msg(id, "u"+id))
		ids = append(ids, id)
	}

	b.start()
	back := time.Now()
	published := map[string]bool{"before": true}
	for len(published) < len(ids) {
		for _, id := range r.next(t).published {
			published[id] = true
		}
	}
	t.Logf("drained %d rows %v after the broker came back", len(ids)-1, time.Since(back).Round(time.Millisecond))
	if err := r.Health(context.Background()); err != nil {
		t.Errorf("Health after the outage: %v", err)
	}
	seen := readTopic(t, b.addrs())
	for _, id := range ids {
		if seen[id] == 0 {
			t.Errorf("%s is not in the topic", id)
		}
	}
	t.Logf("records in the topic per event: %v", seen)
}

// BenchmarkTwoRelaysAcrossAnOutage measures what two auth replicas' relays
// on one database publish twice when the broker goes away for longer than
// the lease, with auth's timings (10 s attempts, 40 s lease) and a
// registration every 50 ms throughout. The broker first hangs on a produce
// request (lost, or written with its answer lost), then is away for 50 s,
// then comes back with its log, and the registrations stop. Reported:
// duplicates (records in the topic beyond one per row), drain-s (from the
// broker's return until no row is pending), longest-attempt-s (the longest
// produce call), rows. "kgo" is the producer before issue 12 (kgo's ProduceSync,
// no idempotent cancellation).
//
//	go test -run '^$' -bench TwoRelaysAcrossAnOutage -benchtime 1x ./internal/outbox
//
// KINOTEKA_TEST_POSTGRES_URL puts the outbox on PostgreSQL (otherwise
// SQLite); KINOTEKA_OUTAGE (a duration) changes the outage.
func BenchmarkTwoRelaysAcrossAnOutage(b *testing.B) {
	outage := 50 * time.Second
	if v := os.Getenv("KINOTEKA_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("KINOTEKA_OUTAGE: %v", err)
		}
		outage = d
	}
	cases := []struct {
		name     string
		producer func(tb testing.TB, brokers []string) Publisher
		written  bool
	}{
		{"producer/request-lost", func(tb testing.TB, brokers []string) Publisher {
			return newProducer(tb, brokers, 10*time.Second)
		}, false},
		{"producer/request-written", func(tb testing.TB, brokers []string) Publisher {
			return newProducer(tb, brokers, 10*time.Second)
		}, true},
		{"kgo/request-lost", func(tb testing.TB, brokers []string) Publisher {
			cl, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(0))
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(cl.Close)
			return cl
		}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				m := twoRelaysAcrossAnOutage(b, c.producer, c.written, outage)
				b.ReportMetric(float64(m.dups), "duplicates")
				b.ReportMetric(m.drain.Seconds(), "drain-s")
				b.ReportMetric(m.longest.Seconds(), "longest-attempt-s")
				b.ReportMetric(float64(m.rows), "rows")
			}
		})
	}
}

// timed is a Publisher that keeps its longest call.
type timed struct {
	Publisher
	longest atomic.Int64
}

func (p *timed) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	start := time.Now()
	defer func() {
		d := int64(time.Since(start))
		for cur := p.longest.Load(); d > cur && !p.longest.CompareAndSwap(cur, d); cur = p.longest.Load() {
		}
	}()
	return p.Publisher.ProduceSync(ctx, rs...)
}

type outageFigures struct {
	dups, rows     int
	drain, longest time.Duration
}

func twoRelaysAcrossAnOutage(b *testing.B, producer func(testing.TB, []string) Publisher, written bool, outage time.Duration) (m outageFigures) {
	var db *sqldb.DB
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		db = migrated(b, sqldbtest.Postgres(b, nil))
	} else {
		db = migrated(b, sqldbtest.SQLite(b, nil))
	}
	brk := startBroker(b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// auth's relay settings: 10 s attempts, the default lease (40 s).
	var (
		relays []*Relay
		pubs   []*timed
	)
	for i := range 2 {
		pubs = append(pubs, &timed{Publisher: producer(b, brk.addrs())})
		r := NewRelay(db, pubs[i], discard, Options{
			Poll: 50 * time.Millisecond, AttemptTimeout: 10 * time.Second, Owner: fmt.Sprintf("replica-%d", i),
		})
		relays = append(relays, r)
		wg.Go(func() { _ = r.Run(ctx) })
	}
	// A registration every 50 ms, each waking one replica's relay, until
	// the broker is back.
	stopWriting := make(chan struct{})
	var enqueued atomic.Int64
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			case <-tick.C:
			}
			m := msg(fmt.Sprintf("e%05d", i), fmt.Sprintf("u%d", i))
			err := db.InTx(ctx, func(tx *sql.Tx) error { return Enqueue(ctx, tx, m) })
			if err != nil {
				b.Errorf("enqueue: %v", err)
				return
			}
			enqueued.Add(1)
			relays[i%2].Notify()
		}
	})
	time.Sleep(2 * time.Second)
	<-brk.hang(written)
	brk.stop()
	time.Sleep(outage)
	close(stopWriting)
	brk.start()
	back := time.Now()
	for {
		st, err := relays[0].Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.drain = time.Since(back)
	// Stop the relays and close their clients before reading, so that
	// nothing they still hold can land later.
	cancel()
	wg.Wait()
	for _, p := range pubs {
		p.Publisher.(interface{ Close() }).Close()
		m.longest = max(m.longest, time.Duration(p.longest.Load()))
	}
	seen := readTopic(b, brk.addrs())
	m.rows = int(enqueued.Load())
	if len(seen) != m.rows {
		b.Errorf("%d of %d rows are in the topic", len(seen), m.rows)
	}
	for n := range maps.Values(seen) {
		m.dups += n - 1
	}
	return m
}
