package launch

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"kinoteka/internal/telemetry"
)

// Run hands the configuration its tracing before the service runs: off
// (but usable) without an OTLP endpoint, recording with one.
func TestRunSetsTracing(t *testing.T) {
	type cfg struct{ tracing *telemetry.Tracing }
	for _, endpoint := range []string{"", "http://127.0.0.1:1"} {
		var (
			seen      *telemetry.Tracing
			recording bool
		)
		s := Service[cfg]{
			Name: "auth", AddrEnv: "X_ADDR", DefaultAddr: "127.0.0.1:0", OpsAddrEnv: "X_OPS_ADDR", DefaultOpsAddr: "127.0.0.1:0",
			Load:    func(func(string) string) (cfg, error) { return cfg{}, nil },
			Tracing: func(c *cfg, t *telemetry.Tracing) { c.tracing = t },
			Run: func(ctx context.Context, c cfg, _ *slog.Logger, ln Listeners) error {
				ln.Close()
				seen = c.tracing
				_, span := seen.Tracer("x").Start(ctx, "op")
				recording = span.SpanContext().IsValid()
				span.End()
				return nil
			},
		}
		env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
		if err := Run(context.Background(), s, nil, func(k string) string { return env[k] }, io.Discard); err != nil {
			t.Fatal(err)
		}
		if seen == nil {
			t.Fatalf("endpoint %q: the service got no tracing", endpoint)
		}
		if recording != (endpoint != "") {
			t.Errorf("endpoint %q: tracing on = %v", endpoint, recording)
		}
	}
}
