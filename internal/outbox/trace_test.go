package outbox

import (
	"context"
	"database/sql"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/testkit"
)

// incoming is the traceparent of the request that wrote the row.
const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// recorder publishes everything and keeps the records, by event id.
type recorder struct {
	mu      sync.Mutex
	records map[string]*kgo.Record
	fail    bool
}

func (p *recorder) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out kgo.ProduceResults
	for i, r := range rs {
		var err error
		if p.fail {
			err = errBrokerDown
		} else {
			r.Partition, r.Offset = 0, int64(len(p.records)+i)
			p.records[eventID(r)] = r
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
	}
	return out
}

func header(r *kgo.Record, key string) string {
	n, v := 0, ""
	for _, h := range r.Headers {
		if h.Key == key {
			n, v = n+1, string(h.Value)
		}
	}
	if n > 1 {
		return "(repeated)"
	}
	return v
}

func TestTraceparentStoredWithTheRow(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		traced := msg("e1", "u1")
		traced.Traceparent = incoming
		enqueue(t, db, traced, msg("e2", "u2"))
		for id, want := range map[string]sql.NullString{"e1": {String: incoming, Valid: true}, "e2": {}} {
			var got sql.NullString
			if err := db.QueryRow("SELECT traceparent FROM outbox WHERE event_id = $1", id).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: traceparent %+v, want %+v", id, got, want)
			}
		}
	})
}

// The relay's publish span continues the stored trace, and the record
// carries the span's own traceparent, so the consumer becomes its child.
func TestRelayPublishSpanContinuesTheStoredTrace(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		exp := tracetest.NewInMemoryExporter()
		tr := telemetry.New("auth", exp)
		traced := msg("e1", "u1")
		traced.Traceparent, traced.Headers = incoming, nil
		untraced := msg("e2", "u2")
		untraced.Headers = nil
		failing := msg("e3", "u3")
		failing.Traceparent, failing.Headers = incoming, nil
		enqueue(t, db, traced, untraced)

		pub := &recorder{records: map[string]*kgo.Record{}}
		r := stepRelay(db, pub, testkit.NewClock(t0), "relay-1", Options{Tracing: tr})
		if b := round(t, r); len(b.published) != 2 {
			t.Fatalf("published %v", b.published)
		}
		enqueue(t, db, failing)
		pub.fail = true
		round(t, r)
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}

		spans := map[string]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			for _, a := range s.Attributes {
				if a.Key == "messaging.message.id" {
					spans[a.Value.AsString()] = s
				}
			}
		}
		if len(spans) != 3 {
			t.Fatalf("want a span per publish attempt (3), got %d", len(exp.GetSpans()))
		}
		s := spans["e1"]
		if s.Name != "outbox.publish" || s.SpanKind != trace.SpanKindProducer {
			t.Errorf("span %q kind %v", s.Name, s.SpanKind)
		}
		if s.SpanContext.TraceID().String() != incoming[3:35] || s.Parent.SpanID().String() != incoming[36:52] {
			t.Errorf("e1's span is not a child of the stored traceparent: trace %s parent %s", s.SpanContext.TraceID(), s.Parent.SpanID())
		}
		if want := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"; header(pub.records["e1"], events.HeaderTraceparent) != want {
			t.Errorf("e1's record traceparent %q, want the publish span's %q", header(pub.records["e1"], events.HeaderTraceparent), want)
		}

		// A row without a trace starts one of its own.
		s2 := spans["e2"]
		if s2.Parent.IsValid() || s2.SpanContext.TraceID() == s.SpanContext.TraceID() {
			t.Errorf("e2's span has parent %v in trace %s", s2.Parent.SpanID(), s2.SpanContext.TraceID())
		}
		if tp := header(pub.records["e2"], events.HeaderTraceparent); tp == "" || tp[36:52] != s2.SpanContext.SpanID().String() {
			t.Errorf("e2's record traceparent %q", tp)
		}

		if s3 := spans["e3"]; s3.Status.Code != codes.Error || s3.SpanContext.TraceID().String() != incoming[3:35] {
			t.Errorf("failed publish: status %v, trace %s", s3.Status, s3.SpanContext.TraceID())
		}
	})
}

// With tracing off the relay records nothing but still hands the stored
// traceparent on, so the services around it can still join one trace.
func TestRelayWithoutTracingPassesTheTraceparentOn(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		traced := msg("e1", "u1")
		traced.Traceparent, traced.Headers = incoming, map[string]string{"x-extra": "1"}
		enqueue(t, db, traced, msg("e2", "u2"))
		pub := &recorder{records: map[string]*kgo.Record{}}
		round(t, stepRelay(db, pub, testkit.NewClock(t0), "relay-1", Options{}))
		rec := pub.records["e1"]
		if got := header(rec, events.HeaderTraceparent); got != incoming {
			t.Errorf("traceparent header %q, want %q", got, incoming)
		}
		if header(rec, "x-extra") != "1" || header(rec, events.HeaderEventID) != "e1" {
			t.Errorf("headers %v", rec.Headers)
		}
		// msg's extra traceparent header is malformed: not passed on.
		if got := header(pub.records["e2"], events.HeaderTraceparent); got != "" {
			t.Errorf("e2 traceparent %q", got)
		}
	})
}
