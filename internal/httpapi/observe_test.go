package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"kinoteka/internal/telemetry"
)

// The stack's log line names the route and the trace, and the stack hands the
// matched route back out, so the tracing span outside is named after it.
func TestObserveLogsRouteAndTraceID(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, traced := range []bool{true, false} {
		var buf bytes.Buffer
		exp := tracetest.NewInMemoryExporter()
		tr := telemetry.New("films", exp)
		if !traced {
			tr = nil
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
		h := Stack{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Tracing: tr}.Handler(mux)
		req := httptest.NewRequest(http.MethodPost, "/v1/things/7?password=hunter2", strings.NewReader(`{"password":"hunter2"}`))
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		req.Header.Set("Authorization", "Bearer secret-token")
		h.ServeHTTP(httptest.NewRecorder(), req)

		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("log %q: %v", buf.String(), err)
		}
		if line["route"] != "POST /v1/things/{id}" || line["status"] != float64(201) || line["request_id"] == "" {
			t.Errorf("traced %v: log line %v", traced, line)
		}
		if want := map[bool]any{true: traceID, false: nil}[traced]; line["trace_id"] != want {
			t.Errorf("traced %v: trace_id %v, want %v", traced, line["trace_id"], want)
		}
		for _, secret := range []string{"hunter2", "secret-token"} {
			if strings.Contains(buf.String(), secret) {
				t.Errorf("%q reached the log: %s", secret, buf.String())
			}
		}
		if traced {
			_ = tr.Flush(t.Context())
			if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Name != "POST /v1/things/{id}" {
				t.Errorf("spans %v", spans)
			}
		}
	}
}
