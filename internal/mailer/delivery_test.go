package mailer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
)

// inbox counts what a catcher received, by Message-ID (derived from the
// event id), beyond the catcher's own inbox bound.
type inbox struct {
	mu   sync.Mutex
	byID map[string]int
	all  int
}

func newInbox() *inbox { return &inbox{byID: map[string]int{}} }

func (in *inbox) received(m catcher.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.byID[m.MessageID]++
	in.all++
}

// total is the number of mails received, duplicates included.
func (in *inbox) total() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.all
}

// tally reports how many of the events got no mail and how many got more
// than one.
func (in *inbox) tally(eventIDs []string) (missing, twice int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, id := range eventIDs {
		switch n := in.byID[mailID(id)]; {
		case n == 0:
			missing++
		case n > 1:
			twice += n - 1
		}
	}
	return missing, twice
}

// mailID is the Message-ID (without brackets) the mailer gives an event's mail.
func mailID(eventID string) string {
	return strings.Trim(messageID(eventID, "no-reply@kinoteka.local"), "<>")
}

// produceEvents writes one verification event per id, to the partition and
// address chosen by the index, and returns the ids.
func (c *cluster) produceEvents(t testing.TB, prefix string, n int, partition func(i int) int32, email func(i int) string) []string {
	t.Helper()
	ids := make([]string, n)
	records := make([]*kgo.Record, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%05d", prefix, i)
		env, err := events.NewCodeMail(ids[i], events.TypeVerificationCode, time.Now(),
			events.CodeMail{Email: email(i), Code: "123456", ExpiresAt: time.Now().Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		value, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		records[i] = &kgo.Record{Topic: topic, Partition: partition(i), Key: []byte("user-" + ids[i]), Value: value,
			Headers: []kgo.RecordHeader{{Key: events.HeaderEventID, Value: []byte(ids[i])}, {Key: events.HeaderEventType, Value: []byte(env.Type)}}}
	}
	if err := c.cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitSettled waits until the group has committed every partition to its end.
func (c *cluster) waitSettled(t *testing.T, group string, partitions int32) {
	t.Helper()
	ends := c.ends(t)
	waitFor(t, "offsets committed to the end", func() bool {
		got := c.committed(t, group, partitions)
		for p := range partitions {
			if got[p] != ends[p] {
				return false
			}
		}
		return true
	})
}

// sharedLogURL is a delivery log for mailers that share one, as replicas
// do: PostgreSQL when the tests have a server, else a SQLite file.
func sharedLogURL(t *testing.T) string {
	t.Helper()
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		return sqldbtest.FreshPostgresURL(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "mailer.db")
}

// deadLetters returns the records in the dead-letter topic, ordered by
// their original partition and offset.
func (c *cluster) deadLetters(t *testing.T) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: c.brokers}
	_, err := readUpToEnd(ctx, cfg, c.adm, events.DLQ(topic), nil, func(r *kgo.Record) { out = append(out, r) })
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		// Not created yet: the mailer creates it with its first dead
		// letter, and a test polling for that one can ask before.
		return nil
	case err != nil:
		t.Fatal(err)
	}
	orig := func(r *kgo.Record) (int, int) {
		h := headers(r)
		p, _ := strconv.Atoi(h[events.HeaderDLQPartition])
		o, _ := strconv.Atoi(h[events.HeaderDLQOffset])
		return p, o
	}
	slices.SortFunc(out, func(a, b *kgo.Record) int {
		ap, ao := orig(a)
		bp, bo := orig(b)
		return cmp.Or(cmp.Compare(ap, bp), cmp.Compare(ao, bo))
	})
	return out
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// getJSON fetches u and decodes its JSON answer into v, returning the status.
func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil {
		_ = json.NewDecoder(res.Body).Decode(v)
	}
	return res.StatusCode
}

// metric reads one counter from the mailer's /metrics.
func metric(t *testing.T, m *mailer, name string) int64 {
	t.Helper()
	res, err := http.Get(m.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no metric %s in:\n%s", name, body)
	return 0
}

func TestSMTPChaos(t *testing.T) {
	const partitions = 3
	kc := newCluster(t, partitions)
	in := newInbox()
	var tries sync.Map // recipient → *atomic.Int32
	try := func(rcpt string) int32 {
		n, _ := tries.LoadOrStore(rcpt, new(atomic.Int32))
		return n.(*atomic.Int32).Add(1)
	}
	_, ln := startCatcher(t, catcher.Config{Received: in.received, MaxMessages: 10000, RecipientFault: func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "slow-") && try(rcpt) <= 2: // a share deferred twice, then taken
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "greylisted, try again later"}
		case strings.HasPrefix(rcpt, "ghost-"): // no such mailbox
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(rcpt, "full-"): // deferred for ever
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}}, false)

	// 240 good events, every third one deferred twice, round-robin over the
	// partitions; then a poison record, a bounce and a mailbox that is
	// always full in the middle of partitions 0, 1 and 2; then more good ones.
	email := func(prefix string) func(int) string {
		return func(i int) string {
			if i%3 == 0 {
				return fmt.Sprintf("slow-%s%d@example.com", prefix, i)
			}
			return fmt.Sprintf("%s%d@example.com", prefix, i)
		}
	}
	roundRobin := func(i int) int32 { return int32(i % partitions) }
	good := kc.produceEvents(t, "a", 120, roundRobin, email("a"))
	poisonOffset := kc.produce(t, 0, []byte(`{"id":"ev-poison","type":"verification_code","version":1,"data":{"email":"x@example.com"}}`))
	ghost := kc.produceEvents(t, "ghost", 1, func(int) int32 { return 1 }, func(int) string { return "ghost-1@example.com" })
	full := kc.produceEvents(t, "full", 1, func(int) int32 { return 2 }, func(int) string { return "full-1@example.com" })
	good = append(good, kc.produceEvents(t, "b", 120, roundRobin, email("b"))...)

	cfg := testConfig(kc, ln.Addr().String())
	cfg.MaxAttempts = 3
	m := startMailer(t, cfg, testLog(t, nil), nil)
	kc.waitSettled(t, "mailer-test", partitions)

	if missing, twice := in.tally(good); missing != 0 || twice != 0 {
		t.Errorf("of %d good events: %d without a mail, %d mails twice", len(good), missing, twice)
	}
	if got := in.total(); got != len(good) {
		t.Errorf("%d mails in the catcher, want %d", got, len(good))
	}

	// Three dead letters, each with its reason.
	dead := map[string]map[string]string{} // by kind
	for _, r := range kc.deadLetters(t) {
		h := headers(r)
		dead[h[events.HeaderDLQKind]] = h
	}
	checks := []struct {
		kind, attempts, partition, offset, reason string
	}{
		{events.DLQKindPoison, "0", "0", fmt.Sprint(poisonOffset), "missing code"},
		{events.DLQKindRejected, "1", "1", "40", "550"},
		{events.DLQKindGaveUp, "3", "2", "40", "deferred 3 times"},
	}
	if len(dead) != len(checks) {
		t.Errorf("dead letters by kind: %v", dead)
	}
	for _, c := range checks {
		h := dead[c.kind]
		if h[events.HeaderDLQAttempts] != c.attempts || h[events.HeaderDLQPartition] != c.partition || h[events.HeaderDLQOffset] != c.offset ||
			!strings.Contains(h[events.HeaderDLQError], c.reason) || h[events.HeaderDLQTopic] != topic {
			t.Errorf("%s dead letter: headers %v; want attempts %s, from %s/%s, reason with %q", c.kind, h, c.attempts, c.partition, c.offset, c.reason)
		}
	}

	// The delivery log tells what happened to each.
	for _, c := range []struct {
		id, status string
		attempts   int
		lastError  string
	}{
		{good[0], "sent", 3, "451"},
		{good[1], "sent", 1, ""},
		{ghost[0], "dead_lettered", 1, "550"},
		{full[0], "dead_lettered", 3, "deferred 3 times"},
		{"ev-poison", "dead_lettered", 0, "missing code"},
	} {
		var d deliveryResponse
		if code := getJSON(t, m.health+"/v1/deliveries/"+c.id, &d); code != http.StatusOK || d.Status != c.status ||
			d.Attempts != c.attempts || !strings.Contains(d.LastError, c.lastError) || (c.status == "sent") != (d.SentAt != nil) {
			t.Errorf("GET /v1/deliveries/%s: %d %+v; want %s after %d attempts, error with %q", c.id, code, d, c.status, c.attempts, c.lastError)
		}
	}
	if code := getJSON(t, m.health+"/v1/deliveries/no-such-event", nil); code != http.StatusNotFound {
		t.Errorf("unknown event: %d, want 404", code)
	}
	if got := metric(t, m, "kinoteka_mailer_sent_total"); got != int64(len(good)) {
		t.Errorf("sent_total = %d, want %d", got, len(good))
	}
	if got := metric(t, m, "kinoteka_mailer_dead_lettered_total"); got != 3 {
		t.Errorf("dead_lettered_total = %d, want 3", got)
	}
}

// A partition whose head message keeps being deferred waits alone: the
// other partitions' mail keeps flowing, and its commit stops right before
// the stuck record.
func TestStuckPartitionDoesNotHoldOthers(t *testing.T) {
	kc := newCluster(t, 2)
	in := newInbox()
	var release atomic.Bool
	var refused atomic.Int32
	_, ln := startCatcher(t, catcher.Config{Received: in.received, RecipientFault: func(rcpt string) error {
		if rcpt == "stuck@example.com" && !release.Load() {
			refused.Add(1)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}}, false)
	stuck := kc.produceEvents(t, "stuck", 2, func(int) int32 { return 0 }, func(i int) string {
		if i == 0 {
			return "stuck@example.com"
		}
		return "behind@example.com"
	})
	others := kc.produceEvents(t, "other", 100, func(int) int32 { return 1 }, func(i int) string { return fmt.Sprintf("o%d@example.com", i) })

	cfg := testConfig(kc, ln.Addr().String())
	cfg.MaxAttempts = 1000
	startMailer(t, cfg, testLog(t, nil), nil)
	waitFor(t, "partition 1 delivered while partition 0 is stuck", func() bool {
		missing, _ := in.tally(others)
		return missing == 0 && refused.Load() >= 3 && kc.committed(t, "mailer-test", 2)[1] == 100
	})
	if missing, _ := in.tally(stuck); missing != 2 {
		t.Fatalf("a mail of the stuck partition went out before its head")
	}
	if got := kc.committed(t, "mailer-test", 2)[0]; got > 0 {
		t.Fatalf("partition 0 committed to %d while its first record is unsent", got)
	}
	release.Store(true)
	kc.waitSettled(t, "mailer-test", 2)
	if missing, twice := in.tally(append(stuck, others...)); missing != 0 || twice != 0 {
		t.Errorf("%d missing, %d twice", missing, twice)
	}
}

// The delivery log keeps an event from being mailed twice: not when the
// producer published it twice, and not when another consumer (a restart
// that lost its offsets, here a second group) reads everything again.
func TestRedeliveredEventIsNotSentTwice(t *testing.T) {
	kc := newCluster(t, 1)
	in := newInbox()
	_, ln := startCatcher(t, catcher.Config{Received: in.received}, false)
	ids := kc.produceEvents(t, "ev", 20, func(int) int32 { return 0 }, func(i int) string { return fmt.Sprintf("u%d@example.com", i) })
	kc.produceEvents(t, "ev", 1, func(int) int32 { return 0 }, func(int) string { return "u0@example.com" }) // ev-00000 again

	cfg := testConfig(kc, ln.Addr().String())
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "mailer.db")
	first := startMailer(t, cfg, testLog(t, nil), nil)
	kc.waitSettled(t, cfg.Group, 1)
	if got := metric(t, first, "kinoteka_mailer_duplicates_skipped_total"); got != 1 {
		t.Errorf("first run skipped %d duplicates, want 1", got)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	cfg.Group = "mailer-test-again"
	again := startMailer(t, cfg, testLog(t, nil), nil)
	kc.waitSettled(t, cfg.Group, 1)
	if got := metric(t, again, "kinoteka_mailer_duplicates_skipped_total"); got != 21 {
		t.Errorf("second run skipped %d duplicates, want all 21", got)
	}
	if missing, twice := in.tally(ids); missing != 0 || twice != 0 || in.total() != 20 {
		t.Errorf("%d missing, %d twice, %d in all; want each of 20 once", missing, twice, in.total())
	}
}

func TestReplayDeadLetters(t *testing.T) {
	kc := newCluster(t, 2)
	in := newInbox()
	var exists atomic.Bool // ghost@ gets a mailbox half-way
	_, ln := startCatcher(t, catcher.Config{Received: in.received, RecipientFault: func(rcpt string) error {
		if strings.HasPrefix(rcpt, "ghost") && !exists.Load() {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}}, false)
	ghosts := kc.produceEvents(t, "ghost", 3, func(i int) int32 { return int32(i % 2) }, func(i int) string { return fmt.Sprintf("ghost%d@example.com", i) })
	cfg := testConfig(kc, ln.Addr().String())
	m := startMailer(t, cfg, testLog(t, nil), nil)
	kc.waitSettled(t, cfg.Group, 2)
	if n := len(kc.deadLetters(t)); n != 3 || in.total() != 0 {
		t.Fatalf("%d dead letters and %d mails, want 3 and none", n, in.total())
	}
	ctx := context.Background()

	// A dry run lists them and changes nothing.
	listed, err := ReplayDeadLetters(ctx, cfg.Kafka, topic, ReplayOptions{DryRun: true})
	if err != nil || len(listed) != 3 || listed[0].Kind != events.DLQKindRejected || !strings.Contains(listed[0].Error, "550") {
		t.Fatalf("dry run = %+v, %v", listed, err)
	}
	all, err := ListDeadLetters(ctx, cfg.Kafka, topic)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListDeadLetters = %d, %v", len(all), err)
	}

	exists.Store(true)
	replayed, err := ReplayDeadLetters(ctx, cfg.Kafka, topic, ReplayOptions{})
	if err != nil || len(replayed) != 3 {
		t.Fatalf("replay = %d, %v", len(replayed), err)
	}
	waitFor(t, "the replayed mails", func() bool { missing, _ := in.tally(ghosts); return missing == 0 })
	kc.waitSettled(t, cfg.Group, 2)

	// The group remembers: a second replay finds nothing new.
	if again, err := ReplayDeadLetters(ctx, cfg.Kafka, topic, ReplayOptions{}); err != nil || len(again) != 0 {
		t.Errorf("second replay = %d, %v; want nothing", len(again), err)
	}
	// A replay by event id picks that one even so; the delivery log keeps
	// it from being mailed twice.
	one, err := ReplayDeadLetters(ctx, cfg.Kafka, topic, ReplayOptions{EventIDs: []string{ghosts[1]}})
	if err != nil || len(one) != 1 || one[0].EventID != ghosts[1] {
		t.Fatalf("replay of %s = %+v, %v", ghosts[1], one, err)
	}
	waitFor(t, "the duplicate to be skipped", func() bool { return metric(t, m, "kinoteka_mailer_duplicates_skipped_total") == 1 })
	if missing, twice := in.tally(ghosts); missing != 0 || twice != 0 {
		t.Errorf("%d missing, %d twice", missing, twice)
	}
	var d deliveryResponse
	if getJSON(t, m.health+"/v1/deliveries/"+ghosts[0], &d); d.Status != "sent" || d.Attempts != 2 || !strings.Contains(d.LastError, "550") {
		t.Errorf("log of a replayed event = %+v, want sent after 2 attempts, the 550 remembered", d)
	}
}

// A second mailer joins during a run and leaves again: every mail is sent,
// and, with the shared delivery log, none twice.
func TestRebalanceJoinAndLeave(t *testing.T) {
	const partitions = 4
	kc := newCluster(t, partitions)
	in := newInbox()
	// A slow sink keeps the run going while members come and go.
	_, ln := startCatcher(t, catcher.Config{Received: in.received, MaxMessages: 10000, RecipientFault: func(string) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	}}, false)
	ids := kc.produceEvents(t, "ev", 1200, func(i int) int32 { return int32(i % partitions) }, func(i int) string { return fmt.Sprintf("u%d@example.com", i) })
	cfg := testConfig(kc, ln.Addr().String())
	cfg.DatabaseURL = sharedLogURL(t)

	var logs testkit.SyncBuffer
	startMailer(t, cfg, testLog(t, &logs), nil)
	waitFor(t, "the first mails", func() bool { return in.total() >= 100 })
	second := startMailer(t, cfg, testLog(t, &logs), nil)
	waitFor(t, "the second member to send", func() bool { return metric(t, second, "kinoteka_mailer_sent_total") >= 50 })
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	if in.total() >= len(ids) {
		t.Fatal("the run ended before the second member left; slow the sink down")
	}
	kc.waitSettled(t, cfg.Group, partitions)
	missing, twice := in.tally(ids)
	t.Logf("rebalance run: %d events, %d missing, %d mailed twice", len(ids), missing, twice)
	if missing != 0 || twice != 0 {
		t.Errorf("%d missing, %d twice; want every mail once", missing, twice)
	}
}

// The mailer takes the original mailer's place: configured with nothing
// but the original design's variables — plus SMTP_CA_FILE, which has no
// counterpart there, because the server's certificate must be trusted
// somehow — it reads the original's bare {"email","code"} records from the
// original's topic and mails them through a server that requires STARTTLS
// and AUTH.
func TestOriginalMailersEnvironment(t *testing.T) {
	const oldTopic, partitions = "verification-emails", 2
	kc, err := kfake.NewCluster(kfake.SeedTopics(partitions, oldTopic), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	brokers := kc.ListenAddrs()
	producer, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.DefaultProduceTopic(oldTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	serverTLS, caFile := selfSigned(t)
	cat, ln := startCatcher(t, catcher.Config{TLS: serverTLS, RequireTLS: true, Users: map[string]string{"old-mailer": "old pass"}}, false)
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := LoadConfig(env(map[string]string{
		"KAFKA_BROKERS":  strings.Join(brokers, ","), // the same name in both designs
		"KAFKA_TOPIC":    oldTopic,
		"MAIL_HOST":      host,
		"MAIL_PORT":      port,
		"MAIL_USER":      "old-mailer",
		"MAIL_PASS":      "old pass",
		"MAIL_FROM_NAME": "Кинотека",
		"SMTP_CA_FILE":   caFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	// The default delivery log (sqlite:data/mailer.db) would land in the
	// source tree.
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "mailer.db")

	const n = 6
	for i := range n {
		r := &kgo.Record{Key: fmt.Appendf(nil, "user-%d", i), Value: fmt.Appendf(nil, `{"email":"old%d@example.com","code":"70000%d"}`, i, i)}
		if err := producer.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var logs testkit.SyncBuffer
	m := startMailer(t, cfg, testLog(t, &logs), nil)
	waitFor(t, "every mail", func() bool { return len(cat.Messages()) >= n })
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}

	msgs := cat.Messages()
	if len(msgs) != n {
		t.Fatalf("%d mails, want %d", len(msgs), n)
	}
	got := map[string]catcher.Message{}
	for _, msg := range msgs {
		got[msg.RcptTo[0]] = msg
	}
	for i := range n {
		msg, ok := got[fmt.Sprintf("old%d@example.com", i)]
		switch {
		case !ok:
			t.Errorf("no mail to old%d@example.com", i)
		case msg.Username != "old-mailer" || msg.MailFrom != "no-reply@kinoteka.local" ||
			msg.From.Name != "Кинотека" || msg.From.Address != "no-reply@kinoteka.local" ||
			msg.Subject != "Your one-time code" || !strings.Contains(msg.Text, fmt.Sprintf("70000%d", i)):
			t.Errorf("mail %d: AUTH user %q, envelope from %q, From %v, subject %q, text:\n%s", i, msg.Username, msg.MailFrom, msg.From, msg.Subject, msg.Text)
		}
	}
	if line := logs.String(); !strings.Contains(line, "original mailer variables in use") || !strings.Contains(line, "MAIL_FROM_NAME") {
		t.Errorf("no start-up line naming the original variables in:\n%s", line)
	}
}
