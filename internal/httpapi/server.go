package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Check is one readiness probe: nil means the dependency answers; an
// error wrapped by Degraded means the service works without it.
type Check func(ctx context.Context) error

// Degraded marks a check's error as one the service works through: /readyz
// still answers 200 — an orchestrator keeps sending it requests — with
// status "degraded" and "degraded: <err>" for the check, for the operator
// or a probe that reads the body. nil stays nil.
func Degraded(err error) error {
	if err == nil {
		return nil
	}
	return degraded{err}
}

type degraded struct{ error }

func (d degraded) Unwrap() error { return d.error }

// Health adds GET /healthz (the process is alive) and GET /readyz to mux:
// 200 "OK" when every check passes, 200 "degraded" when the only failures
// are Degraded ones, 503 otherwise; checks gives each check's answer.
func Health(mux *http.ServeMux, checks map[string]Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, word, results := http.StatusOK, http.StatusText(http.StatusOK), map[string]string{}
		for name, check := range checks {
			err := check(ctx)
			switch {
			case err == nil:
				results[name] = "ok"
			case errors.As(err, new(degraded)):
				results[name] = "degraded: " + err.Error()
				if status == http.StatusOK {
					word = "degraded"
				}
			default:
				status, word, results[name] = http.StatusServiceUnavailable, http.StatusText(http.StatusServiceUnavailable), err.Error()
			}
		}
		JSON(w, status, map[string]any{"status": word, "checks": results})
	})
}

// NewServer is the one http.Server every service uses: header, read,
// write and idle timeouts, and a bound on header size, so a slow or
// oversized client cannot hold a connection. launch.Lifecycle serves it and
// drains it on shutdown.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve serves h on ln until ctx is done, then drains in-flight requests for
// up to ten seconds. It is for the parts that are no service (the embedded
// mail catcher's inbox); services run through launch.Lifecycle.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := NewServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
