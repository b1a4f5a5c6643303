package films

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/tokens"
)

// Leeway is the clock skew allowed on a token's exp and nbf.
const Leeway = 60 * time.Second

// Run opens and migrates the database, seeds the demo catalogue when asked
// and the catalogue is empty, then serves the API on ln until ctx is done and
// shuts down gracefully. It does not need auth to start: the JWK set is
// fetched on the first token, and catalogue reads need no token.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	defer ln.Close() // also on the early returns, so the port is not held
	if err := cfg.validate(nil); err != nil {
		return err
	}
	log.Info("films starting", "addr", ln.Addr().String(), "database", redactedDatabaseURL(cfg.DatabaseURL),
		"jwks_url", cfg.JWKSURL, "issuer", cfg.Issuer, "audience", cfg.Audience, "seed_demo", cfg.SeedDemo)

	store, err := OpenStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("films: database: %w", err)
	}
	defer store.Close()

	if cfg.SeedDemo {
		start := time.Now()
		rep, seeded, err := SeedDemo(ctx, store)
		if err != nil {
			return fmt.Errorf("films: seed the demo catalogue: %w", err)
		}
		if seeded {
			logImport(log, rep, time.Since(start))
		}
	}

	verifier := tokens.NewVerifier(tokens.VerifierConfig{
		JWKSURL:  cfg.JWKSURL,
		Issuer:   cfg.Issuer,
		Audience: cfg.Audience,
		Leeway:   Leeway,
	})
	return httpapi.Serve(ctx, ln, newHandler(log, store, verifier))
}

// logImport logs an import's figures and the first rejected rows.
func logImport(log *slog.Logger, rep ImportReport, took time.Duration) {
	log.Info("demo catalogue loaded", "rows", rep.Rows, "kept", rep.Kept, "duplicates", rep.Duplicates,
		"rejected", len(rep.Rejected), "years_corrected", rep.Corrected, "duration", took)
	for i, r := range rep.Rejected {
		if i == 10 {
			log.Info("more rows rejected", "count", len(rep.Rejected)-i)
			break
		}
		log.Info("row rejected", "index", r.Index, "title", r.Title, "reason", r.Reason)
	}
}
