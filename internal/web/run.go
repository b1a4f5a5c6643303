// Package web is Kinoteka's site for people: a backend-for-frontend that
// renders pages on the server and talks to auth and films only through
// their public HTTP APIs, as any other client does. It keeps nothing of its
// own: a person's session is a sealed cookie in their browser.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"kinoteka/internal/launch"
)

// Run serves the site on ln until ctx is done, then drains and returns.
// auth and films need not be up to start: their pages say they are down.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	defer ln.Close()
	h, err := NewHandler(cfg, log)
	if err != nil {
		return err
	}
	log.Info("web starting", "addr", ln.Addr().String(), "config", cfg)
	lc := launch.Lifecycle{Log: log}
	lc.Serve("web", ln, h)
	return lc.Run(ctx)
}

// NewHandler is the site's whole HTTP handler for cfg.
func NewHandler(cfg Config, log *slog.Logger) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sl, err := newSealer(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	pages, err := parseTemplates(assets)
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	metrics, calls, refreshes := newMetrics()
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	a := &app{
		cfg:       cfg,
		log:       log,
		api:       &api{http: &http.Client{Transport: transport, Timeout: cfg.APITimeout}, authURL: cfg.AuthURL, filmsURL: cfg.FilmsURL, calls: calls},
		sealer:    sl,
		pages:     pages,
		assets:    assets,
		now:       now,
		refreshed: refreshes,
	}
	return a.routes(metrics), nil
}

// ping is a readiness check: base answers its /healthz.
func (a *app) ping(base string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := a.api.http.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}
}
