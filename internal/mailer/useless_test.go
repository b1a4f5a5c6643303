package mailer

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
)

// A mail that cannot help its reader is not sent: a code that is not six
// digits is poison (the contract says so) and goes to the dead-letter
// topic; a code that expired before it could be mailed — after a long
// outage — is logged as expired and counted instead. Before the fix both
// were mailed.
func TestUselessMailIsNotSent(t *testing.T) {
	kc := newCluster(t, 1)
	cat, ln := startCatcher(t, catcher.Config{}, false)
	later, earlier := time.Now().Add(10*time.Minute), time.Now().Add(-time.Minute)
	for _, e := range []struct {
		id, code string
		expires  time.Time
	}{
		{"ev-good", "012345", later},
		{"ev-five", "12345", later},
		{"ev-seven", "1234567", later},
		{"ev-letters", "12a456", later},
		{"ev-wide", "１２３４５６", later}, // full-width digits are not digits to a person typing the code
		{"ev-expired", "123456", earlier},
		{"ev-no-expiry", "654321", time.Time{}},
	} {
		kc.produce(t, 0, envelope(t, e.id, events.TypeVerificationCode, events.CodeMail{Email: e.id + "@example.com", Code: e.code, ExpiresAt: e.expires}))
	}
	kc.produce(t, 0, []byte(`{"email":"bare@example.com","code":"9999"}`))
	end := kc.ends(t)[0]

	m := startMailer(t, testConfig(kc, ln.Addr().String()), testLog(t, nil), nil)
	waitFor(t, "every record finished", func() bool { return kc.committed(t, "mailer-test", 1)[0] == end })

	var to []string
	for _, msg := range cat.Messages() {
		to = append(to, msg.RcptTo[0])
	}
	slices.Sort(to)
	if want := []string{"ev-good@example.com", "ev-no-expiry@example.com"}; !slices.Equal(to, want) {
		t.Errorf("mailed %v, want %v", to, want)
	}
	var poisoned []string
	for _, r := range kc.deadLetters(t) {
		h := headers(r)
		if h[events.HeaderDLQKind] != events.DLQKindPoison || !strings.Contains(h[events.HeaderDLQError], "six digits") {
			t.Errorf("dead letter %s: %v", h[events.HeaderEventID], h)
		}
		poisoned = append(poisoned, h[events.HeaderDLQOffset])
	}
	if want := []string{"1", "2", "3", "4", "7"}; !slices.Equal(poisoned, want) {
		t.Errorf("dead-lettered offsets %v, want %v", poisoned, want)
	}

	var d deliveryResponse
	if code := getJSON(t, m.health+"/v1/deliveries/ev-expired", &d); code != http.StatusOK || d.Status != string(StatusExpired) ||
		d.Attempts != 0 || d.SentAt != nil || !strings.Contains(d.LastError, "expired") {
		t.Errorf("delivery of the expired event: %d %+v", code, d)
	}
	if n := metric(t, m, "kinoteka_mailer_expired_total"); n != 1 {
		t.Errorf("kinoteka_mailer_expired_total = %d, want 1", n)
	}
	if n := metric(t, m, "kinoteka_mailer_dead_lettered_total"); n != 5 {
		t.Errorf("kinoteka_mailer_dead_lettered_total = %d, want 5", n)
	}
}

// A code that expires while the SMTP server is away is not mailed when the
// server comes back: the retries stop at the expiry.
func TestCodeExpiringDuringRetriesIsNotSent(t *testing.T) {
	kc := newCluster(t, 1)
	expires := time.Now().Add(time.Second)
	kc.produce(t, 0, envelope(t, "ev-soon", events.TypeVerificationCode, events.CodeMail{Email: "soon@example.com", Code: "123456", ExpiresAt: expires}))
	end := kc.ends(t)[0]
	fake := &fakeSender{reply: func(Message, int) error {
		return &SendError{Step: StepConnect, Err: fmt.Errorf("connection refused")}
	}}
	m := startMailer(t, testConfig(kc, "127.0.0.1:1"), testLog(t, nil), fake)
	waitFor(t, "the record finished", func() bool { return kc.committed(t, "mailer-test", 1)[0] == end })

	_, attempts := fake.snapshot()
	var d deliveryResponse
	getJSON(t, m.health+"/v1/deliveries/ev-soon", &d)
	if d.Status != string(StatusExpired) || attempts["ev-soon"] < 1 {
		t.Errorf("after %d attempts the delivery is %+v; want it expired", attempts["ev-soon"], d)
	}
	if got := metric(t, m, "kinoteka_mailer_expired_total"); got != 1 {
		t.Errorf("kinoteka_mailer_expired_total = %d, want 1", got)
	}
}
