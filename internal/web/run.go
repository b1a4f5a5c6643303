// Package web is Kinoteka's site for people: a backend-for-frontend that
// renders pages on the server and talks to auth and films only through
// their public HTTP APIs, as any other client does. It keeps nothing of its
// own: a person's session is a sealed cookie in their browser.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/launch"
)

// Run serves the site on ln.Public and the operators' endpoints (probes,
// metrics) on ln.Ops until ctx is done, then drains and returns. auth and
// films need not be up to start: their pages say they are down.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln launch.Listeners) error {
	defer ln.Close()
	site, ops, err := NewHandlers(cfg, log)
	if err != nil {
		return err
	}
	log.Info("web starting", "addr", ln.Public.Addr().String(), "ops_addr", ln.Ops.Addr().String(), "config", cfg)
	lc := launch.Lifecycle{Log: log}
	lc.Serve("web", ln.Public, site)
	lc.Serve("ops", ln.Ops, ops)
	return lc.Run(ctx)
}

// NewHandlers is the site's whole HTTP handler for cfg, and the one for its
// operators' listener: /healthz, /readyz and /metrics.
func NewHandlers(cfg Config, log *slog.Logger) (site, ops http.Handler, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	sl, err := newSealer(cfg.SessionKey)
	if err != nil {
		return nil, nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, nil, fmt.Errorf("web: assets: %w", err)
	}
	pages, err := parseTemplates(assets)
	if err != nil {
		return nil, nil, fmt.Errorf("web: templates: %w", err)
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
	return a.routes(metrics), a.opsRoutes(metrics), nil
}

// ping is a readiness check: the public URL u (one of the API's own routes:
// a service's probes are on its operators' listener, which web is not
// given) answers 200.
func (a *app) ping(u string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := a.api.http.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return nil
	}
}
