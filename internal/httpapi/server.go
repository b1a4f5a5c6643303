package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Check is one readiness probe: nil means the dependency answers.
type Check func(ctx context.Context) error

// Health adds GET /healthz (the process is alive) and GET /readyz (every
// check passes) to mux.
func Health(mux *http.ServeMux, checks map[string]Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, results := http.StatusOK, map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status, results[name] = http.StatusServiceUnavailable, err.Error()
			} else {
				results[name] = "ok"
			}
		}
		JSON(w, status, map[string]any{"status": http.StatusText(status), "checks": results})
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
