package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"kinoteka/internal/e2e"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/testkit"
)

// withTraceparent sends every request as part of one caller's trace, as a
// gateway or a traced client would.
type withTraceparent struct{ tp string }

func (w withTraceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", w.tp)
	return http.DefaultTransport.RoundTrip(r)
}

// A registration is one trace across the three services: auth's HTTP span,
// the relay's publish (a child of it, through the outbox row), the mailer's
// send (a child of the publish, through the Kafka header); films continues
// the caller's trace as well. The request log lines carry the trace id and
// the route, and the log holds no password, code or token.
func TestRegistrationIsOneTraceAcrossTheServices(t *testing.T) {
	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerID = "00f067aa0ba902b7"
		addr     = "traced@example.com"
		password = "correct horse battery"
	)
	dir := t.TempDir()
	cfg, err := parseConfig(freeArgs(t, dir), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	s, err := newSystem(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	s.tracing = map[string]*telemetry.Tracing{}
	for _, name := range []string{"auth", "films", "mailer"} {
		s.tracing[name] = telemetry.New(name, exp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("system stopped: %v", err)
	}

	env := e2e.Env{AuthURL: s.authURL(), FilmsURL: s.filmsURL(), MailURL: s.mailUIURL(),
		Client: &http.Client{Timeout: 15 * time.Second, Transport: withTraceparent{"00-" + traceID + "-" + callerID + "-01"}}}
	if r := env.Register(t, addr, password); r.Status != http.StatusAccepted {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	code := env.WaitForCode(t, addr, 60*time.Second)
	r := env.Verify(t, addr, code, password)
	if r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	var tk e2e.Tokens
	r.JSON(t, &tk)
	if r := env.Do(t, http.MethodGet, env.FilmsURL+"/v1/me/favorites", nil, tk.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("favourites: %d %s", r.Status, r.Body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, tr := range s.tracing {
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	type key struct{ service, name string }
	spans := map[key]tracetest.SpanStub{}
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID().String() != traceID {
			continue
		}
		service := ""
		for _, a := range sp.Resource.Attributes() {
			if a.Key == "service.name" {
				service = a.Value.AsString()
			}
		}
		spans[key{service, sp.Name}] = sp
	}
	register, ok := spans[key{"auth", "POST /v1/auth/register"}]
	publish, ok2 := spans[key{"auth", "outbox.publish"}]
	send, ok3 := spans[key{"mailer", "mail.send"}]
	favourites, ok4 := spans[key{"films", "GET /v1/me/favorites"}]
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatalf("the trace lacks spans (register %v, publish %v, send %v, films %v); it has %v", ok, ok2, ok3, ok4, keys(spans))
	}
	for _, link := range []struct {
		what          string
		child, parent tracetest.SpanStub
	}{
		{"publish under register", publish, register},
		{"send under publish", send, publish},
	} {
		if link.child.Parent.SpanID() != link.parent.SpanContext.SpanID() {
			t.Errorf("%s: parent %s, want %s", link.what, link.child.Parent.SpanID(), link.parent.SpanContext.SpanID())
		}
	}
	for _, sp := range []tracetest.SpanStub{register, favourites} {
		if sp.Parent.SpanID().String() != callerID {
			t.Errorf("%s: parent %s, want the caller's %s", sp.Name, sp.Parent.SpanID(), callerID)
		}
	}

	// One log line per request, with its route and trace id; no secrets.
	out := logs.String()
	var registerLine map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "http" && m["route"] == "POST /v1/auth/register" {
			registerLine = m
		}
	}
	if registerLine == nil || registerLine["trace_id"] != traceID || registerLine["status"] != float64(http.StatusAccepted) {
		t.Errorf("register log line %v", registerLine)
	}
	for what, secret := range map[string]string{"password": password, "code": code, "access token": tk.AccessToken, "refresh token": tk.RefreshToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s reached the log", what)
		}
	}
}

func keys[K comparable, V any](m map[K]V) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}
