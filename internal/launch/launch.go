// Package launch is what the per-service binaries (cmd/auth, cmd/films,
// cmd/mailer, cmd/web) share: a JSON logger, the service's two listeners —
// the public one and the operators' one — on the configured addresses and a
// service's Run function, with the built-in health probe used by container
// healthchecks (no curl in the image).
package launch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"kinoteka/internal/config"
	"kinoteka/internal/telemetry"
)

// Listeners are a service's two listeners. The public one serves the API
// (or the site) and nothing else; the operators' one serves /healthz,
// /readyz, /metrics and the API docs (/docs, /openapi.json), so that
// neither the metrics' counts nor the probes' details reach the world and
// a proxy never needs to hide them (DESIGN: operator endpoints live on a
// separate listener, never routed by the proxy).
type Listeners struct {
	Public net.Listener // nil for a service with no public API (the mailer)
	Ops    net.Listener
}

// Close closes both; closing one already closed does no harm, so a
// service may defer it for its early returns.
func (l Listeners) Close() {
	for _, ln := range []net.Listener{l.Public, l.Ops} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Service describes one binary.
type Service[C any] struct {
	Name string // "auth"
	// The public listener's address variable and default, "AUTH_ADDR" and
	// "127.0.0.1:8081"; both empty for a service with no public listener.
	AddrEnv     string
	DefaultAddr string
	// The operators' listener's, "AUTH_OPS_ADDR" and "127.0.0.1:9081".
	// "<binary> healthcheck" probes it.
	OpsAddrEnv     string
	DefaultOpsAddr string
	Load           func(getenv func(string) string) (C, error)
	Run            func(ctx context.Context, cfg C, log *slog.Logger, ln Listeners) error
	// Tracing, when set, hands the loaded configuration the service's
	// tracing, built by telemetry.FromEnv: OTLP over HTTP when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set, off otherwise. Run flushes it at
	// exit. Kept out of Load because it starts an exporter.
	Tracing func(cfg *C, t *telemetry.Tracing)
}

// Main is the whole main function of a service binary: it runs s until
// SIGINT or SIGTERM and exits non-zero on failure.
func Main[C any](s Service[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, s, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Run starts the service described by s. With the single argument
// "healthcheck" it instead probes the running service's /healthz on the
// operators' listener and returns an error unless it answers 200.
func Run[C any](ctx context.Context, s Service[C], args []string, getenv func(string) string, stdout io.Writer) error {
	env := config.NewEnv(getenv)
	addr, opsAddr, level := s.DefaultAddr, s.DefaultOpsAddr, "info"
	if s.AddrEnv != "" {
		env.String(s.AddrEnv, &addr)
	}
	env.String(s.OpsAddrEnv, &opsAddr)
	if len(args) == 1 && args[0] == "healthcheck" {
		return Probe(ctx, opsAddr)
	}
	if len(args) > 0 {
		return fmt.Errorf("usage: %s [healthcheck] (configured by environment variables, see docs/operations.md)", s.Name)
	}
	env.Func("LOG_LEVEL", func(v string) error {
		if _, err := ParseLevel(v); err != nil {
			return err
		}
		level = v
		return nil
	})
	if err := env.Err(); err != nil {
		return fmt.Errorf("%s: config: %w", s.Name, err)
	}
	log, flush := BufferedLogger(stdout, level)
	defer flush()
	log = log.With("service", s.Name)
	cfg, err := s.Load(getenv)
	if err != nil {
		return fmt.Errorf("%s: config: %w", s.Name, err)
	}
	if s.Tracing != nil {
		tr, err := telemetry.FromEnv(ctx, s.Name, getenv)
		if err != nil {
			return fmt.Errorf("%s: tracing: %w", s.Name, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(sctx); err != nil {
				log.Warn("tracing: spans not flushed", "err", err)
			}
		}()
		s.Tracing(&cfg, tr)
	}
	var ln Listeners
	if s.AddrEnv != "" {
		if ln.Public, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("%s: listen on %s (set %s): %w", s.Name, addr, s.AddrEnv, err)
		}
	}
	if ln.Ops, err = net.Listen("tcp", opsAddr); err != nil {
		ln.Close()
		return fmt.Errorf("%s: operators' listener: listen on %s (set %s): %w", s.Name, opsAddr, s.OpsAddrEnv, err)
	}
	if ln.Public != nil {
		log.Info("starting", "addr", ln.Public.Addr().String(), "ops_addr", ln.Ops.Addr().String())
	} else {
		log.Info("starting", "ops_addr", ln.Ops.Addr().String())
	}
	if err := s.Run(ctx, cfg, log, ln); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	log.Info("stopped")
	return nil
}

// ParseLevel reads a log level: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return l, fmt.Errorf("%q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// Logger returns a JSON logger at the named level (debug, info, warn, error).
func Logger(w io.Writer, level string) *slog.Logger {
	l, err := ParseLevel(level)
	if err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Probe asks the service whose operators' listener is at addr for /healthz.
func Probe(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}
