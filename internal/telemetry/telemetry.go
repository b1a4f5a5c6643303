// Package telemetry is Kinoteka's tracing: one OpenTelemetry tracer provider
// per service (so the embedded mode's three services stay three services in a
// trace), W3C traceparent propagation over HTTP, through the outbox row and
// in Kafka headers, and an OTLP exporter that is off unless configured.
package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator carries trace context as W3C traceparent/tracestate.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracing is one service's tracer provider. A nil *Tracing is tracing off,
// so a service's Config can leave it unset.
type Tracing struct {
	Provider trace.TracerProvider
	shutdown func(context.Context) error
}

// Off is tracing that records nothing.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
}

// New traces the named service into exp (batched); a nil exp turns tracing off.
func New(service string, exp sdktrace.SpanExporter) *Tracing {
	if exp == nil {
		return Off()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	return &Tracing{Provider: tp, shutdown: tp.Shutdown}
}

// FromEnv exports over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set — the exporter reads the
// standard OTEL_EXPORTER_OTLP_* variables itself — and is off otherwise.
func FromEnv(ctx context.Context, service string, getenv func(string) string) (*Tracing, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return Off(), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	return New(service, exp), nil
}

// Shutdown flushes buffered spans and stops exporting.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Flush exports buffered spans now.
func (t *Tracing) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if tp, ok := t.Provider.(*sdktrace.TracerProvider); ok {
		return tp.ForceFlush(ctx)
	}
	return nil
}

// Tracer returns a named tracer of this service.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return t.Provider.Tracer(name)
}

// HTTP wraps a ServeMux: it continues an incoming traceparent and names each
// server span after the matched route pattern. The pattern is known only
// once the ServeMux has routed the request, so otelhttp renames the span
// after the handler returns, from the request it passed on: a middleware in
// between that replaces the request (r.WithContext) must copy Pattern back,
// as httpapi.Observe does. A nil t returns h itself.
func (t *Tracing) HTTP(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
	)
}

// Traceparent returns the W3C traceparent of ctx's span ("" when there is
// none), to be stored with an outbox row or sent as a Kafka header.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	Propagator.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent returns ctx continuing the trace named by traceparent; an
// empty or malformed value leaves ctx as it is.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceID returns the trace id of ctx's span, for log lines ("" when none).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
