package mailer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"kinoteka/internal/catcher"
	"kinoteka/internal/testkit"
)

// recreate deletes the mail topic and creates it again with partitions,
// as an operator purging codes (or a broker that lost its data) does; the
// new topic has a new ID and its offsets start again at 0. The test's
// producer forgets the old topic, as a restarted producer would.
func (c *cluster) recreate(t *testing.T, partitions int32, between func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	if between != nil {
		between()
	}
	created, err := c.adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	c.cl.PurgeTopicsFromClient(topic)
}

// produceBare writes the original task's bare payloads, one per address,
// all to partition p; their de-duplication keys come from their position.
func (c *cluster) produceBare(t *testing.T, p int32, addrs []string) {
	t.Helper()
	for _, a := range addrs {
		c.produce(t, p, fmt.Appendf(nil, `{"email":%q,"code":"123456"}`, a))
	}
}

func addresses(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d@example.com", prefix, i)
	}
	return out
}

// received counts the mails caught per recipient.
func received(cat *catcher.Catcher) map[string]int {
	got := map[string]int{}
	for _, m := range cat.Messages() {
		got[m.RcptTo[0]]++
	}
	return got
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, m *mailer) (int, string) {
	t.Helper()
	res, err := http.Get(m.health + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// A topic deleted and created again under the same name — a new topic ID,
// offsets from 0 again — must be consumed by the running mailer without a
// restart, and its bare payloads, whose positions repeat the old topic's,
// must not be taken for mails already sent. Readiness says what is wrong
// while the topic is missing. Before the fix the mailer logged
// UNKNOWN_TOPIC_ID for ever and mailed none of the new topic.
func TestRecreatedTopicIsConsumedWithoutRestart(t *testing.T) {
	kc := newCluster(t, 4)
	cat, ln := startCatcher(t, catcher.Config{}, false)
	var logs testkit.SyncBuffer
	m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, &logs), nil)

	old := addresses("old", 12)
	for i, a := range old {
		kc.produceBare(t, int32(i%4), []string{a})
	}
	waitFor(t, "the old topic's mails", func() bool { return len(cat.Messages()) == len(old) })
	waitFor(t, "ready", func() bool { code, _ := readyz(t, m); return code == http.StatusOK })

	kc.recreate(t, 1, func() {
		waitFor(t, "not ready while the topic is missing", func() bool {
			code, body := readyz(t, m)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "does not exist")
		})
	})
	// Offsets 0..5 of partition 0 were bare payloads of the old topic too.
	fresh := addresses("new", 6)
	kc.produceBare(t, 0, fresh)

	waitFor(t, "the new topic's mails", func() bool {
		got := received(cat)
		for _, a := range fresh {
			if got[a] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, "ready again", func() bool { code, _ := readyz(t, m); return code == http.StatusOK })
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	for a, n := range received(cat) {
		if n != 1 {
			t.Errorf("%s got %d mails, want 1", a, n)
		}
	}
	if n := strings.Count(logs.String(), "topic was deleted and recreated"); n < 1 || n > 3 {
		t.Errorf("the recreation was logged %d times, want once (at most once per 10 s)", n)
	}
	// While the topic is missing, the client's refused commits are logged;
	// once the new topic is consumed, nothing more.
	_, after, ok := strings.Cut(logs.String(), "consuming the recreated topic")
	if !ok {
		t.Error("the mailer did not log that it consumes the recreated topic")
	}
	if strings.Contains(after, kerr.UnknownTopicID.Message) {
		t.Error("UNKNOWN_TOPIC_ID was still logged after the recovery")
	}
}

// The reported loss: a 1-partition topic filled after a 4-partition one,
// read by a mailer with the same delivery log, lost the mails whose
// positions the old topic had used. Here the mailer restarts in between,
// so only the de-duplication key is under test.
func TestBarePayloadKeySurvivesRecreatedTopic(t *testing.T) {
	kc := newCluster(t, 4)
	cat, ln := startCatcher(t, catcher.Config{}, false)
	cfg := testConfig(kc, ln.Addr().String())
	cfg.DatabaseURL = sharedLogURL(t)

	old := addresses("old", 20)
	for i, a := range old {
		kc.produceBare(t, int32(i%4), []string{a})
	}
	first := startMailer(t, cfg, testLog(t, nil), nil)
	waitFor(t, "the old topic's mails", func() bool { return len(cat.Messages()) == len(old) })
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	kc.recreate(t, 1, nil)
	fresh := addresses("new", 10)
	kc.produceBare(t, 0, fresh)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kc.adm.DeleteGroup(ctx, cfg.Group); err != nil {
		t.Fatal(err) // a broker that lost its data lost the group too
	}

	second := startMailer(t, cfg, testLog(t, nil), nil)
	waitFor(t, "the new topic read to the end", func() bool {
		return kc.committed(t, cfg.Group, 1)[0] == int64(len(fresh))
	})
	skipped := metric(t, second, "kinoteka_mailer_duplicates_skipped_total")
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	got := received(cat)
	var missing []string
	for _, a := range fresh {
		if got[a] != 1 {
			missing = append(missing, fmt.Sprintf("%s (%d)", a, got[a]))
		}
	}
	if len(missing) > 0 || skipped != 0 {
		t.Errorf("%d new mails skipped as already sent; mails not received exactly once: %v", skipped, missing)
	}
}
