package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/launch"
	"kinoteka/internal/testkit"
)

const topic = events.Topic

var testTuning = tuning{
	backoffBase:    10 * time.Millisecond,
	backoffMax:     100 * time.Millisecond,
	commitInterval: 100 * time.Millisecond,
	maxPoll:        100,
	queueLimit:     100,
	housekeeping:   time.Hour,
	smtpCheck:      200 * time.Millisecond,
	now:            time.Now,
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cluster is an in-process Kafka with a producer and an admin client.
type cluster struct {
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
	close   func()
}

func newCluster(t *testing.T, partitions int32) *cluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.SeedTopics(partitions, topic), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	brokers := kc.ListenAddrs()
	cl, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		kc.Close()
		t.Fatal(err)
	}
	c := &cluster{brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}
	var once sync.Once
	c.close = func() { once.Do(func() { cl.Close(); kc.Close() }) }
	t.Cleanup(c.close)
	return c
}

// produce writes value to partition and returns its offset.
func (c *cluster) produce(t *testing.T, partition int32, value []byte) int64 {
	t.Helper()
	r := &kgo.Record{Topic: topic, Partition: partition, Value: value}
	if err := c.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return r.Offset
}

// committed returns the group's committed offset per partition (-1: none).
func (c *cluster) committed(t *testing.T, group string, partitions int32) []int64 {
	t.Helper()
	res, err := c.adm.FetchOffsets(context.Background(), group)
	out := make([]int64, partitions)
	for p := range partitions {
		out[p] = -1
		if err != nil {
			continue
		}
		if o, ok := res.Lookup(topic, p); ok && o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

func (c *cluster) ends(t *testing.T) []int64 {
	t.Helper()
	res, err := c.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for p := int32(0); ; p++ {
		o, ok := res.Lookup(topic, p)
		if !ok {
			return out
		}
		out = append(out, o.Offset)
	}
}

func envelope(t *testing.T, id, typ string, data events.CodeMail) []byte {
	t.Helper()
	env, err := events.NewCodeMail(id, typ, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mailer is a running mailer (run) with its health address.
type mailer struct {
	health string
	stop   func() error // cancels and waits for run to return
}

func startMailer(t *testing.T, cfg Config, log *slog.Logger, send Sender) *mailer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, ln, testTuning, send) }()
	m := &mailer{health: "http://" + ln.Addr().String()}
	var once sync.Once
	var runErr error
	m.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = m.stop() })
	return m
}

// testConfig is a mailer of the cluster sending to a catcher without TLS,
// with its delivery log in memory.
func testConfig(c *cluster, smtpAddr string) Config {
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = c.brokers
	cfg.Group = "mailer-test"
	cfg.SessionTimeout = 3 * time.Second
	cfg.SMTP = plainSMTP(smtpAddr)
	cfg.DatabaseURL = ""
	return cfg
}

func testLog(t *testing.T, buf *testkit.SyncBuffer) *slog.Logger {
	var w io.Writer = t.Output()
	if buf != nil {
		w = io.MultiWriter(w, buf)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestConsumerEndToEnd(t *testing.T) {
	kc := newCluster(t, 2)
	cat, ln := startCatcher(t, catcher.Config{}, false)

	type want struct {
		to, subject, code, phrase string
	}
	var wants []want
	good := func(p int32, id, typ, email, code, loc, subject, phrase string) {
		kc.produce(t, p, envelope(t, id, typ, events.CodeMail{Email: email, Code: code, Locale: loc, ExpiresAt: time.Now().Add(10 * time.Minute)}))
		wants = append(wants, want{email, subject, code, phrase})
	}
	good(0, "ev-0", events.TypeVerificationCode, "a0@example.com", "100000", "en", "Your one-time code", "valid for 10 minutes")
	good(1, "ev-1", events.TypeVerificationCode, "a1@example.com", "100001", "ru", "Ваш одноразовый код", "действует 10 минут")
	good(0, "ev-2", events.TypePasswordResetCode, "a2@example.com", "100002", "ru-RU", "Код для сброса пароля", "сбросить пароль")
	// Poison in the middle of both partitions: garbage, and an event type
	// nobody knows.
	kc.produce(t, 0, []byte("\x00\xffnot json at all"))
	kc.produce(t, 1, envelope(t, "ev-x", "newsletter", events.CodeMail{Email: "x@example.com", Code: "999999"}))
	good(1, "ev-3", events.TypePasswordResetCode, "a3@example.com", "100003", "", "Your password reset code", "reset your Kinoteka password")
	// The original task's bare payload.
	kc.produce(t, 0, []byte(`{"email":"legacy@example.com","code":"100004"}`))
	wants = append(wants, want{"legacy@example.com", "Your one-time code", "100004", "confirm your email address"})
	good(0, "ev-5", events.TypeVerificationCode, "a5@example.com", "100005", "de", "Your one-time code", "confirm your email address")
	good(1, "ev-6", events.TypeVerificationCode, "a6@example.com", "100006", "ru", "Ваш одноразовый код", "подтвердить адрес")
	ends := kc.ends(t)

	var logs testkit.SyncBuffer
	m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, &logs), nil)

	waitFor(t, "every good mail", func() bool { return len(cat.Messages()) >= len(wants) })
	waitFor(t, "offsets committed to the end", func() bool {
		got := kc.committed(t, "mailer-test", 2)
		return got[0] == ends[0] && got[1] == ends[1]
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(m.health + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, res.StatusCode, body)
		}
	}
	if err := m.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	msgs := cat.Messages()
	if len(msgs) != len(wants) {
		t.Fatalf("%d mails caught, want exactly %d", len(msgs), len(wants))
	}
	byTo := map[string]catcher.Message{}
	seenIDs := map[string]bool{}
	for _, msg := range msgs {
		if _, dup := byTo[msg.RcptTo[0]]; dup || seenIDs[msg.MessageID] {
			t.Errorf("mail to %s (Message-ID %s) arrived twice", msg.RcptTo[0], msg.MessageID)
		}
		byTo[msg.RcptTo[0]], seenIDs[msg.MessageID] = msg, true
	}
	for _, w := range wants {
		msg, ok := byTo[w.to]
		if !ok {
			t.Errorf("no mail to %s", w.to)
			continue
		}
		if msg.Subject != w.subject || !strings.Contains(msg.Text, w.code) || !strings.Contains(msg.HTML, w.code) ||
			!strings.Contains(msg.Text, w.phrase) {
			t.Errorf("mail to %s: subject %q, text:\n%s", w.to, msg.Subject, msg.Text)
		}
	}
	if _, ok := byTo["x@example.com"]; ok {
		t.Error("the unknown event type was mailed")
	}

	out := logs.String()
	for _, code := range []string{"100000", "100001", "100004", "999999"} {
		if strings.Contains(out, code) {
			t.Errorf("a one-time code (%s) reached the log", code)
		}
	}
	if !strings.Contains(out, "record moved to the dead-letter topic") {
		t.Error("the poison records were not logged")
	}

	// Both poison records wait in the dead-letter topic, unchanged, with
	// the reason and where they came from.
	dead := kc.deadLetters(t)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	for i, want := range []struct {
		partition, offset, reason string
	}{{"0", "2", "not a JSON object"}, {"1", "1", `unknown event type "newsletter"`}} {
		r := dead[i]
		h := headers(r)
		if h[events.HeaderDLQKind] != events.DLQKindPoison || h[events.HeaderDLQTopic] != topic || h[events.HeaderDLQPartition] != want.partition ||
			h[events.HeaderDLQOffset] != want.offset || h[events.HeaderDLQAttempts] != "0" || !strings.Contains(h[events.HeaderDLQError], want.reason) {
			t.Errorf("dead letter %d headers = %v", i, h)
		}
	}
	if string(dead[0].Value) != "\x00\xffnot json at all" {
		t.Errorf("dead letter value = %q, want the original", dead[0].Value)
	}
}

func TestConsumerRetriesTransientFailureWithoutCommitting(t *testing.T) {
	kc := newCluster(t, 1)
	var dataCalls, refused atomic.Int32
	var release atomic.Bool
	cat, ln := startCatcher(t, catcher.Config{Fault: func(s catcher.Stage) error {
		// The first mail goes through; the second is refused with 451
		// until the test releases it.
		if s == catcher.StageData && dataCalls.Add(1) >= 2 && !release.Load() {
			refused.Add(1)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}}, false)

	kc.produce(t, 0, envelope(t, "ev-a", events.TypeVerificationCode, events.CodeMail{Email: "a@example.com", Code: "111111"}))
	offB := kc.produce(t, 0, envelope(t, "ev-b", events.TypeVerificationCode, events.CodeMail{Email: "b@example.com", Code: "222222"}))

	m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, nil), nil)

	// The first mail is committed while the second keeps failing: the commit
	// must stop right before the failing record.
	waitFor(t, "the second mail to be refused twice and the first committed", func() bool {
		return refused.Load() >= 2 && kc.committed(t, "mailer-test", 1)[0] >= offB
	})
	if got := kc.committed(t, "mailer-test", 1)[0]; got != offB {
		t.Fatalf("committed offset %d while record %d is still failing, want %d", got, offB, offB)
	}
	if n := len(cat.Messages()); n != 1 {
		t.Fatalf("%d mails before the release, want 1", n)
	}

	release.Store(true)
	waitFor(t, "the second mail", func() bool { return len(cat.Messages()) == 2 })
	waitFor(t, "the commit past the second mail", func() bool { return kc.committed(t, "mailer-test", 1)[0] == offB+1 })
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	msgs := cat.Messages()
	if len(msgs) != 2 || msgs[1].RcptTo[0] != "b@example.com" || !strings.Contains(msgs[1].Text, "222222") {
		t.Fatalf("mails = %+v", msgs)
	}
}

// fakeSender answers each Send with reply(message, attempt for that message).
type fakeSender struct {
	mu       sync.Mutex
	attempts map[string]int // by event id
	sent     []Message
	reply    func(m Message, attempt int) error
}

func (f *fakeSender) Send(_ context.Context, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attempts == nil {
		f.attempts = map[string]int{}
	}
	f.attempts[m.EventID]++
	if err := f.reply(m, f.attempts[m.EventID]); err != nil {
		return err
	}
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeSender) snapshot() ([]Message, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	attempts := map[string]int{}
	for k, v := range f.attempts {
		attempts[k] = v
	}
	return append([]Message(nil), f.sent...), attempts
}

func TestConsumerFailurePolicy(t *testing.T) {
	kc := newCluster(t, 1)
	fake := &fakeSender{reply: func(m Message, attempt int) error {
		switch m.To {
		case "bounce@example.com": // the server refuses this recipient for good
			return &SendError{Step: StepRcpt, Code: 550, Err: fmt.Errorf("no such user")}
		case "flaky@example.com": // a network error, then 4yz, then fine
			if attempt == 1 {
				return &SendError{Step: StepConnect, Err: fmt.Errorf("connection refused")}
			}
			if attempt == 2 {
				return &SendError{Step: StepMail, Code: 421, Err: fmt.Errorf("closing")}
			}
		case "misconfigured@example.com": // wrong password twice: our fault, not the mail's
			if attempt <= 2 {
				return &SendError{Step: StepAuth, Code: 535, Err: fmt.Errorf("bad credentials")}
			}
		}
		return nil
	}}
	for _, to := range []string{"bounce@example.com", "flaky@example.com", "misconfigured@example.com", "fine@example.com"} {
		kc.produce(t, 0, envelope(t, "ev-"+to, events.TypeVerificationCode, events.CodeMail{Email: to, Code: "123456"}))
	}
	end := kc.ends(t)[0]
	m := startMailer(t, testConfig(kc, "127.0.0.1:1"), testLog(t, nil), fake)
	waitFor(t, "all records handled and committed", func() bool { return kc.committed(t, "mailer-test", 1)[0] == end })
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}

	sent, attempts := fake.snapshot()
	var to []string
	for _, s := range sent {
		to = append(to, s.To)
	}
	if strings.Join(to, " ") != "flaky@example.com misconfigured@example.com fine@example.com" {
		t.Errorf("sent to %v", to)
	}
	want := map[string]int{"ev-bounce@example.com": 1, "ev-flaky@example.com": 3, "ev-misconfigured@example.com": 3, "ev-fine@example.com": 1}
	for id, n := range want {
		if attempts[id] != n {
			t.Errorf("%s: %d attempts, want %d", id, attempts[id], n)
		}
	}
}

func TestRunShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		kc := newCluster(t, 2)
		var refused atomic.Int32
		cat, ln := startCatcher(t, catcher.Config{Fault: func(s catcher.Stage) error {
			if s == catcher.StageData {
				refused.Add(1)
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "mailbox full"}
			}
			return nil
		}}, false)
		kc.produce(t, 1, envelope(t, "ev-stuck", events.TypeVerificationCode, events.CodeMail{Email: "stuck@example.com", Code: "123456"}))
		m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, nil), nil)

		waitFor(t, "a refused attempt", func() bool { return refused.Load() >= 1 })
		if err := m.stop(); err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
		if got := kc.committed(t, "mailer-test", 2); got[1] > 0 {
			t.Errorf("committed offset %d for a mail that was never accepted", got[1])
		}
		if n := len(cat.Messages()); n != 0 {
			t.Errorf("%d mails caught", n)
		}
		kc.close()
	}()
	// The catcher stops in t.Cleanup; everything else is gone now. Allow
	// the catcher's own goroutines (its listener and serve loop).
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+3 })
	if n := runtime.NumGoroutine(); n > before+3 {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf.String())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SMTP.Security = "ssl"
	err = Run(context.Background(), cfg, nil, launch.Listeners{Ops: ln})
	if err == nil || !strings.Contains(err.Error(), "SMTP_SECURITY") {
		t.Errorf("Run with a bad config: %v", err)
	}
	// Nothing is filled in: a hand-built Config with zeros is refused,
	// naming what is missing.
	err = Run(context.Background(), Config{}, nil, launch.Listeners{Ops: ln})
	for _, name := range []string{"KAFKA_BROKERS", "MAIL_TOPIC", "MAILER_GROUP", "SMTP_ADDR", "SMTP_SECURITY", "SMTP_TIMEOUT", "SMTP_CONNECTIONS", "MAILER_MAX_ATTEMPTS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Run with a zero Config: %v; want it to name %s", err, name)
		}
	}
	// The listener was closed, not leaked.
	if _, err := ln.Accept(); err == nil {
		t.Error("listener still open")
	}
}

// The readiness answer is the JSON that httpapi.Health writes.
func TestReadyzReportsKafka(t *testing.T) {
	kc := newCluster(t, 1)
	_, ln := startCatcher(t, catcher.Config{}, false)
	m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, nil), nil)
	get := func() (int, map[string]any) {
		res, err := http.Get(m.health + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	var body map[string]any
	waitFor(t, "ready", func() bool {
		var code int
		code, body = get()
		return code == http.StatusOK
	})
	if checks, _ := body["checks"].(map[string]any); checks["kafka"] != "ok" {
		t.Errorf("readyz = %v", body)
	}
	kc.close()
	waitFor(t, "not ready once Kafka is gone", func() bool {
		code, _ := get()
		return code == http.StatusServiceUnavailable
	})
}

func TestConsumerGivesWayToRebalance(t *testing.T) {
	kc := newCluster(t, 2)
	var release atomic.Bool
	var refused atomic.Int32
	cat, ln := startCatcher(t, catcher.Config{Fault: func(s catcher.Stage) error {
		if s == catcher.StageData && !release.Load() {
			refused.Add(1)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}}, false)
	for i, p := range []int32{0, 1, 1} {
		kc.produce(t, p, envelope(t, fmt.Sprintf("ev-%d", i), events.TypeVerificationCode, events.CodeMail{Email: fmt.Sprintf("r%d@example.com", i), Code: "123456"}))
	}
	ends := kc.ends(t)
	cfg := testConfig(kc, ln.Addr().String())

	// The first member takes both partitions and gets stuck retrying.
	var logsA testkit.SyncBuffer
	a := startMailer(t, cfg, testLog(t, &logsA), nil)
	waitFor(t, "the first member to be retrying", func() bool { return refused.Load() >= 1 })

	// A second member joins: the first must give way rather than hold the
	// group until its mail goes through, and must not lose its place.
	b := startMailer(t, cfg, testLog(t, nil), nil)
	waitFor(t, "the first member to give way", func() bool {
		return strings.Contains(logsA.String(), "giving way to a group rebalance")
	})
	release.Store(true)
	waitFor(t, "all mails", func() bool { return len(cat.Messages()) >= 3 })
	waitFor(t, "offsets committed to the end", func() bool {
		got := kc.committed(t, "mailer-test", 2)
		return got[0] == ends[0] && got[1] == ends[1]
	})
	if err := errors.Join(a.stop(), b.stop()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range cat.Messages() {
		seen[m.RcptTo[0]]++
	}
	for i := range 3 {
		if to := fmt.Sprintf("r%d@example.com", i); seen[to] != 1 {
			t.Errorf("%s got %d mails, want 1", to, seen[to])
		}
	}
}
