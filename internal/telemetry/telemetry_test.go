package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestHTTPContinuesIncomingTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New("films", exp)
	mux := http.NewServeMux()
	var inside string
	mux.HandleFunc("GET /v1/films/{id}", func(w http.ResponseWriter, r *http.Request) {
		inside = Traceparent(r.Context())
	})
	srv := httptest.NewServer(tr.HTTP(mux))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/films/7", nil)
	req.Header.Set("traceparent", incoming)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("want 1 span, got %d", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span %s does not continue the incoming trace (parent %s)", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	if s.Name != "GET /v1/films/{id}" {
		t.Fatalf("span name %q", s.Name)
	}
	if got := s.Resource.Attributes(); len(got) == 0 || got[0].Value.AsString() != "films" {
		t.Fatalf("resource %v", got)
	}
	if inside == "" || inside[3:35] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("handler saw traceparent %q", inside)
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	ctx := WithTraceparent(context.Background(), incoming)
	if got := Traceparent(ctx); got != incoming {
		t.Fatalf("round trip: %q", got)
	}
	if TraceID(ctx) != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %q", TraceID(ctx))
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if got := Traceparent(WithTraceparent(context.Background(), bad)); got != "" {
			t.Errorf("%q gave %q", bad, got)
		}
	}
}

func TestOffRecordsNothing(t *testing.T) {
	tr, err := FromEnv(context.Background(), "auth", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer("x").Start(context.Background(), "op")
	if span.SpanContext().IsValid() {
		t.Fatal("tracing is on without an endpoint")
	}
	span.End()
}

// Off records nothing but still continues an incoming traceparent, so the
// request log's trace_id and the outbox row keep the caller's trace.
func TestOffPassesTheTraceparentOn(t *testing.T) {
	var got string
	h := Off().HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = Traceparent(r.Context()) }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("traceparent", incoming)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != incoming {
		t.Fatalf("handler saw traceparent %q, want %q", got, incoming)
	}
}

// A nil *Tracing, a Config's zero value, is off and safe to use.
func TestNilIsOff(t *testing.T) {
	var tr *Tracing
	h := http.NotFoundHandler()
	if got := tr.HTTP(h); got == nil {
		t.Fatal("HTTP returned nil")
	}
	_, span := tr.Tracer("x").Start(context.Background(), "op")
	span.End()
	if span.SpanContext().IsValid() || tr.Flush(context.Background()) != nil || tr.Shutdown(context.Background()) != nil {
		t.Fatal("a nil Tracing traced")
	}
}
