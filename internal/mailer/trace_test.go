package mailer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"kinoteka/internal/events"
	"kinoteka/internal/telemetry"
)

// The mailer's span of a record is a child of the span whose traceparent the
// record carries (the relay's publish), covers every SMTP attempt and tells
// the outcome, and holds neither the address nor the code.
func TestMailSpanContinuesTheRecordsTrace(t *testing.T) {
	const (
		published = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		bounced   = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	)
	kc := newCluster(t, 1)
	produce := func(id, email, code, traceparent string) {
		r := &kgo.Record{Topic: topic, Value: envelope(t, id, events.TypeVerificationCode,
			events.CodeMail{Email: email, Code: code, Locale: "en", ExpiresAt: time.Now().Add(10 * time.Minute)})}
		if traceparent != "" {
			r.Headers = []kgo.RecordHeader{{Key: events.HeaderTraceparent, Value: []byte(traceparent)}}
		}
		if err := kc.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("ev-traced", "traced@example.com", "314159", published)
	produce("ev-plain", "plain@example.com", "271828", "")
	produce("ev-bounce", "bounce@example.com", "161803", bounced)

	fake := &fakeSender{reply: func(m Message, attempt int) error {
		switch {
		case m.To == "bounce@example.com":
			return &SendError{Step: StepRcpt, Code: 550, Err: fmt.Errorf("<bounce@example.com>: no such user")}
		case m.To == "traced@example.com" && attempt == 1:
			return &SendError{Step: StepRcpt, Code: 451, Err: fmt.Errorf("greylisted")}
		}
		return nil
	}}
	exp := tracetest.NewInMemoryExporter()
	cfg := testConfig(kc, "127.0.0.1:1")
	cfg.Tracing = telemetry.New("mailer", exp)
	m := startMailer(t, cfg, testLog(t, nil), fake)
	waitFor(t, "two mails and a dead letter", func() bool {
		sent, _ := fake.snapshot()
		return len(sent) == 2 && len(kc.deadLetters(t)) == 1
	})
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Tracing.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.Name != "mail.send" {
			continue
		}
		for _, a := range s.Attributes {
			if a.Key == "messaging.message.id" {
				spans[a.Value.AsString()] = s
			}
		}
		dump := fmt.Sprint(s.Attributes, s.Events, s.Status)
		for _, secret := range []string{"@example.com", "314159", "271828", "161803"} {
			if strings.Contains(dump, secret) {
				t.Errorf("span of %v holds %q: %s", s.Attributes, secret, dump)
			}
		}
	}
	attr := func(s tracetest.SpanStub, key string) string {
		for _, a := range s.Attributes {
			if string(a.Key) == key {
				return a.Value.Emit()
			}
		}
		return ""
	}
	for _, c := range []struct {
		id, parent, outcome, attempts string
		events                        int
		status                        codes.Code
	}{
		{"ev-traced", published, "sent", "2", 1, codes.Unset},
		{"ev-plain", "", "sent", "1", 0, codes.Unset},
		{"ev-bounce", bounced, "dead_lettered", "1", 1, codes.Error},
	} {
		s, ok := spans[c.id]
		if !ok {
			t.Errorf("%s: no mail.send span", c.id)
			continue
		}
		if s.SpanKind != trace.SpanKindConsumer || attr(s, "kinoteka.mail.outcome") != c.outcome ||
			attr(s, "kinoteka.smtp.attempts") != c.attempts || len(s.Events) != c.events || s.Status.Code != c.status ||
			attr(s, "messaging.destination.name") != topic || attr(s, "messaging.kafka.offset") == "" {
			t.Errorf("%s: kind %v, attributes %v, events %v, status %v", c.id, s.SpanKind, s.Attributes, s.Events, s.Status)
		}
		if c.parent == "" {
			if s.Parent.IsValid() {
				t.Errorf("%s: a record without traceparent got parent %s", c.id, s.Parent.SpanID())
			}
			continue
		}
		if s.SpanContext.TraceID().String() != c.parent[3:35] || s.Parent.SpanID().String() != c.parent[36:52] || !s.Parent.IsRemote() {
			t.Errorf("%s: span in trace %s with parent %s, want a child of %s", c.id, s.SpanContext.TraceID(), s.Parent.SpanID(), c.parent)
		}
	}
	if s := spans["ev-traced"]; len(s.Events) == 1 {
		got := map[string]string{}
		for _, a := range s.Events[0].Attributes {
			got[string(a.Key)] = a.Value.Emit()
		}
		if got["smtp.code"] != "451" || got["smtp.step"] != StepRcpt || got["attempt"] != "1" {
			t.Errorf("the failed attempt's event: %v", got)
		}
	}
}
