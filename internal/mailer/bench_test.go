package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/outbox"
	"kinoteka/internal/sqldb"
)

// Mail delivery benchmarks (issue 3). Run them once, alone on the machine:
//
//	go test -run '^$' -bench 'MailThroughput|CommitToAccepted' -benchtime=1x ./internal/mailer/
//
// Every sub-benchmark mails into the same local sink: the embedded catcher
// requiring STARTTLS and AUTH PLAIN, with a self-signed certificate. Broker
// (kfake), mailer and sink share the machine.

const (
	benchEvents     = 10000 // events pre-filled for the throughput runs
	benchBaseline   = 1000  // the one-connection-per-message baselines are slow: fewer events
	benchPartitions = 4
	benchConns      = 4
)

// sink is a catcher that requires STARTTLS and AUTH, and the client
// settings that reach it.
type sink struct {
	cat      *catcher.Catcher
	addr     string
	caFile   string
	tls      *tls.Config // for a raw client
	received atomic.Int64
	onMail   func(m catcher.Message, at time.Time)
}

func startSink(b *testing.B) *sink {
	b.Helper()
	serverTLS, certPEM, err := catcher.SelfSignedTLS("localhost", "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	s := &sink{caFile: filepath.Join(b.TempDir(), "ca.pem")}
	if err := writeFile(s.caFile, certPEM); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.cat = catcher.New(catcher.Config{
		TLS: serverTLS, RequireTLS: true, Users: map[string]string{"mailer": "s3cret"}, MaxMessages: 1000,
		Received: func(m catcher.Message) {
			at := time.Now()
			s.received.Add(1)
			if s.onMail != nil {
				s.onMail(m, at)
			}
		},
	}, nil)
	roots, err := trustPEM(certPEM)
	if err != nil {
		b.Fatal(err)
	}
	s.tls = &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.cat.ServeSMTP(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *sink) smtpConfig() SMTPConfig {
	c := secureSMTP(s.addr, s.caFile)
	c.Connections = benchConns
	return c
}

// benchConfig is a production mailer for the sink, with its delivery log
// in a file of its own.
func benchConfig(b *testing.B, brokers []string, s *sink) Config {
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Group = "bench"
	cfg.SMTP = s.smtpConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(b.TempDir(), "mailer.db")
	return cfg
}

// waitReceived waits until the sink has n mails.
func (s *sink) waitReceived(b *testing.B, n int64) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for s.received.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d mails after 10 minutes", s.received.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// benchMessage is a rendered code mail, the size the mailer sends.
func benchMessage(b *testing.B, i int) Message {
	b.Helper()
	r, err := newRenderer(DefaultConfig().SMTP.From, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	m, err := r.render(events.Decoded{ID: fmt.Sprintf("raw-%d", i), Type: events.TypeVerificationCode,
		Mail: events.CodeMail{Email: fmt.Sprintf("u%d@example.com", i), Code: "123456", Locale: "ru", ExpiresAt: time.Now().Add(10 * time.Minute)}})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkMailThroughput measures emails/s into the sink:
//
//   - sink-ceiling: a raw SMTP client (go-smtp), benchConns connections each
//     secured and authenticated once, pre-rendered mail, nothing else: what
//     the sink and the machine can take;
//   - mailer: the mailer consuming benchEvents pre-filled events from
//     benchPartitions partitions, with its delivery log on SQLite;
//   - conn-per-message: the same mailer opening, securing and authenticating
//     a connection for every message, benchConns at once;
//   - original-design: one connection per message, one message at a time,
//     as the monolith sent its mail.
func BenchmarkMailThroughput(b *testing.B) {
	b.Run("sink-ceiling", func(b *testing.B) {
		for range b.N {
			s := startSink(b)
			msg := benchMessage(b, 0)
			start := time.Now()
			var wg sync.WaitGroup
			for c := range benchConns {
				wg.Go(func() {
					cl, err := smtp.DialStartTLS(s.addr, s.tls)
					if err != nil {
						b.Error(err)
						return
					}
					defer cl.Close()
					if err := cl.Auth(sasl.NewPlainClient("", "mailer", "s3cret")); err != nil {
						b.Error(err)
						return
					}
					for i := c; i < benchEvents; i += benchConns {
						if err := cl.SendMail(msg.From, []string{msg.To}, bytesReader(msg.Data)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			s.waitReceived(b, benchEvents)
			b.ReportMetric(float64(benchEvents)/time.Since(start).Seconds(), "emails/s")
		}
	})
	b.Run("mailer", func(b *testing.B) {
		for range b.N {
			mailerRun(b, benchEvents, benchConns, DefaultConfig().SMTP.MessagesPerConnection)
		}
	})
	b.Run("conn-per-message", func(b *testing.B) {
		for range b.N {
			mailerRun(b, benchBaseline, benchConns, 1)
		}
	})
	b.Run("original-design", func(b *testing.B) {
		for range b.N {
			mailerRun(b, benchBaseline, 1, 1)
		}
	})
}

// mailerRun pre-fills a topic with n events, starts a mailer and reports
// emails/s from its start to the last mail accepted (group join included),
// and from the first mail to the last.
func mailerRun(b *testing.B, n, conns, perConn int) {
	b.Helper()
	s := startSink(b)
	kc, err := kfake.NewCluster(kfake.SeedTopics(benchPartitions, topic, events.DLQ(topic)))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	fill(b, brokers, n)

	var first atomic.Int64
	s.onMail = func(_ catcher.Message, at time.Time) { first.CompareAndSwap(0, at.UnixNano()) }
	cfg := benchConfig(b, brokers, s)
	cfg.SMTP.Connections, cfg.SMTP.MessagesPerConnection = conns, perConn
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	// Production logging (JSON, info: one line per mail), written nowhere.
	log := slog.New(slog.NewJSONHandler(discardWriter{}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(ctx, cfg, log, ln, defaultTuning, nil) }()
	s.waitReceived(b, int64(n))
	end := time.Now()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := s.received.Load(); got != int64(n) {
		b.Errorf("%d mails for %d events", got, n)
	}
	b.ReportMetric(float64(n)/end.Sub(start).Seconds(), "emails/s")
	b.ReportMetric(float64(n-1)/end.Sub(time.Unix(0, first.Load())).Seconds(), "emails/s-after-first")
}

// fill produces n verification events round-robin over the partitions.
func fill(b *testing.B, brokers []string, n int) {
	b.Helper()
	cl, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	records := make([]*kgo.Record, n)
	for i := range n {
		id := fmt.Sprintf("ev-%06d", i)
		env, _ := events.NewCodeMail(id, events.TypeVerificationCode, time.Now(),
			events.CodeMail{Email: fmt.Sprintf("u%d@example.com", i), Code: "123456", Locale: "ru", ExpiresAt: time.Now().Add(10 * time.Minute)})
		value, _ := env.Encode()
		records[i] = &kgo.Record{Topic: topic, Partition: int32(i % benchPartitions), Key: []byte("user-" + id), Value: value,
			Headers: []kgo.RecordHeader{{Key: events.HeaderEventID, Value: []byte(id)}}}
	}
	if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		b.Fatal(err)
	}
}

// outboxDDL is auth's outbox table on SQLite (internal/auth/migrations), so
// that the latency run commits rows the way auth does.
const outboxDDL = `CREATE TABLE outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, msg_key TEXT NOT NULL,
	event_type TEXT NOT NULL, payload BLOB, headers TEXT NOT NULL DEFAULT '{}', created_at TIMESTAMP NOT NULL,
	published_at TIMESTAMP, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
	lease_owner TEXT, lease_until TIMESTAMP, next_attempt_at TIMESTAMP);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_pending_key ON outbox (msg_key, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;`

// BenchmarkCommitToAccepted measures, at a steady 100 events/s, the time
// from the commit of the transaction that writes an outbox row (on SQLite,
// as auth in the embedded mode) to the sink accepting the mail: relay
// wake-up and lease, Kafka (acks=all), the mailer's consumer group, the
// delivery log, rendering and SMTP with STARTTLS and AUTH. Password hashing
// is left out: rows are written directly. Each iteration sends 1,000
// events after a warm-up of 50.
func BenchmarkCommitToAccepted(b *testing.B) {
	const rate, warmup, measured = 100, 50, 1000
	for range b.N {
		s := startSink(b)
		kc, err := kfake.NewCluster(kfake.SeedTopics(3, topic, events.DLQ(topic)))
		if err != nil {
			b.Fatal(err)
		}
		brokers := kc.ListenAddrs()

		authDB, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "auth.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := authDB.Exec(outboxDDL); err != nil {
			b.Fatal(err)
		}
		producer, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(0))
		if err != nil {
			b.Fatal(err)
		}
		relay := outbox.NewRelay(authDB, producer, nil, outbox.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		relayDone := make(chan error, 1)
		go func() { relayDone <- relay.Run(ctx) }()

		var (
			mu        sync.Mutex
			committed = map[string]time.Time{} // by Message-ID
			accepted  = map[string]time.Time{}
		)
		s.onMail = func(m catcher.Message, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			accepted[m.MessageID] = at
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		cfg := benchConfig(b, brokers, s)
		mailerDone := make(chan error, 1)
		go func() {
			mailerDone <- run(ctx, cfg, slog.New(slog.NewJSONHandler(discardWriter{}, nil)), ln, defaultTuning, nil)
		}()

		enqueue := func(i int, measure bool) {
			id := fmt.Sprintf("ev-%06d", i)
			env, _ := events.NewCodeMail(id, events.TypeVerificationCode, time.Now(),
				events.CodeMail{Email: fmt.Sprintf("u%d@example.com", i), Code: "123456", Locale: "ru", ExpiresAt: time.Now().Add(10 * time.Minute)})
			value, _ := env.Encode()
			err := authDB.InTx(ctx, func(tx *sql.Tx) error {
				return outbox.Enqueue(ctx, tx, outbox.Message{EventID: id, Topic: topic, Key: "user-" + id, EventType: env.Type, Payload: value, CreatedAt: time.Now()})
			})
			if err != nil {
				b.Fatal(err)
			}
			at := time.Now()
			relay.Notify()
			if measure {
				mu.Lock()
				committed[mailID(id)] = at
				mu.Unlock()
			}
		}
		tick := time.NewTicker(time.Second / rate)
		for i := range warmup + measured {
			<-tick.C
			enqueue(i, i >= warmup)
		}
		tick.Stop()
		s.waitReceived(b, warmup+measured)
		cancel()
		if err := <-mailerDone; err != nil {
			b.Fatal(err)
		}
		<-relayDone
		producer.Close()
		authDB.Close()
		kc.Close()

		mu.Lock()
		var latencies []time.Duration
		for id, c := range committed {
			if a, ok := accepted[id]; ok {
				latencies = append(latencies, a.Sub(c))
			}
		}
		slices.Sort(latencies)
		n := len(latencies)
		if n != measured {
			b.Fatalf("%d latencies for %d events", n, measured)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(latencies[n/2]), "p50-ms")
		b.ReportMetric(ms(latencies[n*99/100]), "p99-ms")
		b.ReportMetric(ms(latencies[n-1]), "max-ms")
		mu.Unlock()
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func trustPEM(certPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("no certificate in PEM")
	}
	return pool, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// discardWriter is io.Discard as a distinct type, so that the JSON handler
// still formats every line.
type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
