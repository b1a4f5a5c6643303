package films

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"time"

	"kinoteka/internal/launch"
	"kinoteka/internal/tokens"
)

// Leeway is the clock skew allowed on a token's exp and nbf.
const Leeway = 60 * time.Second

// Run opens and migrates the database, seeds the demo catalogue when asked
// and the catalogue is empty, then serves the API on ln.Public and the
// operators' endpoints (probes, metrics, docs) on ln.Ops until ctx is done:
// it drains the requests in flight, stops the JWK-set refresh and waits for
// it, and closes the database last. It does not need auth to start: the JWK
// set is fetched in the background and on the first token, and catalogue
// reads need no token. cfg is taken as it is (see DefaultConfig).
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln launch.Listeners) error {
	defer ln.Close() // also on the early returns, so the ports are not held
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.Info("films starting", "addr", ln.Public.Addr().String(), "ops_addr", ln.Ops.Addr().String(), "database", redactedDatabaseURL(cfg.DatabaseURL),
		"jwks_url", cfg.JWKSURL, "public_key_file", cfg.PublicKeyFile, "issuer", cfg.Issuer, "audience", cfg.Audience,
		"algorithms", cfg.Algorithms, "seed_demo", cfg.SeedDemo, "token_cache_size", cfg.TokenCacheSize, "read_cache_ttl", cfg.ReadCacheTTL,
		"consume_users", cfg.ConsumeUsers, "kafka_brokers", cfg.Kafka.Brokers, "users_topic", cfg.UsersTopic, "users_group", cfg.UsersGroup)

	var static []crypto.PublicKey
	if cfg.PublicKeyFile != "" {
		pem, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("films: public key file: %w", err)
		}
		if static, err = tokens.ParsePublicKeysPEM(pem); err != nil {
			return fmt.Errorf("films: public key file %s: %w", cfg.PublicKeyFile, err)
		}
		if len(static) == 0 {
			return fmt.Errorf("films: public key file %s holds no public key", cfg.PublicKeyFile)
		}
	}

	store, err := OpenStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("films: database: %w", err)
	}
	defer store.Close() // after lc.Run: no request or worker uses it any more

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

	tokenCache := cfg.TokenCacheSize
	if tokenCache == 0 {
		tokenCache = -1 // tokens reads 0 as its own default size, and -1 as off
	}
	verifier := tokens.NewVerifier(tokens.VerifierConfig{
		JWKSURL:    cfg.JWKSURL,
		Issuer:     cfg.Issuer,
		Audience:   cfg.Audience,
		Leeway:     Leeway,
		StaticKeys: static,
		CacheSize:  tokenCache,
		Algorithms: cfg.Algorithms,
	})

	lc := launch.Lifecycle{Log: log}
	public, ops := routes(log, store, verifier, cfg.ReadCacheTTL, cfg.Tracing)
	lc.Serve("films", ln.Public, public)
	lc.Serve("ops", ln.Ops, ops)
	if cfg.ConsumeUsers {
		users, err := newUsersConsumer(cfg, store, log.With("worker", "users"))
		if err != nil {
			return fmt.Errorf("films: users topic consumer: %w", err)
		}
		lc.Go("users topic consumer", users.run)
	}
	if cfg.JWKSURL != "" {
		lc.Go("JWK set refresh", func(ctx context.Context) error {
			refreshKeys(ctx, log, verifier)
			return nil
		})
	}
	err = lc.Run(ctx)
	log.Info("films stopped")
	return err
}

// keysRefreshEvery is how often films re-reads auth's JWK set on its own,
// besides the re-fetch an unknown kid triggers: a key auth withdrew stops
// being trusted within this time.
const keysRefreshEvery = 10 * time.Minute

// refreshKeys fetches the JWK set at start — so the keys are at hand if auth
// goes down before the first token arrives — and then on a timer, until ctx
// ends. A failed fetch keeps the last good set.
func refreshKeys(ctx context.Context, log *slog.Logger, v *tokens.Verifier) {
	t := time.NewTicker(keysRefreshEvery)
	defer t.Stop()
	for {
		if err := v.Refresh(ctx); err != nil && ctx.Err() == nil {
			log.Warn("JWK set not refreshed; the last good keys stay in use", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
