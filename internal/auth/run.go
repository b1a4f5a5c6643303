// Package auth is the auth service: registration with an emailed one-time
// code, verification, login, rotating refresh token families, password
// recovery, throttling, roles and an audit trail, and the access tokens and
// public keys the other services verify them with. It alone holds the
// signing keys. It never talks to SMTP: a code mail is an event written to
// its outbox in the same transaction as the code, and a relay publishes it
// to Kafka. docs/security.md lists the threats and the defences.
//
// Configuration (LoadConfig: DefaultConfig, which holds these defaults,
// with the variables on top; each may also be given as NAME_FILE):
//
//	AUTH_DATABASE_URL      sqlite:data/auth.db       or postgres://…
//	AUTH_ISSUER            http://127.0.0.1:8081     iss claim, base of discovery URLs
//	AUTH_AUDIENCE          kinoteka                  aud claim
//	AUTH_ACCESS_TTL        15m
//	AUTH_SIGNING_KEY_FILE  data/auth-signing-key.pem one PEM private key (RSA, ECDSA P-256, Ed25519); or
//	AUTH_SIGNING_KEYS_DIR  (none)                    a folder of PEM keys: newest active signs, all published
//	AUTH_SIGNING_ALG       RS256                     RS256, ES256 or EdDSA: what AUTH_GENERATE_KEY makes
//	AUTH_GENERATE_KEY      false                     generate a key when there is none (development)
//	AUTH_CODE_SECRET       (required)                HMAC key of one-time codes, ≥ 32 characters
//	AUTH_CODE_TTL          10m
//	KAFKA_BROKERS          127.0.0.1:9092            comma separated
//	KAFKA_TLS              false
//	KAFKA_SASL_MECHANISM   (none)                    plain, scram-sha-256, scram-sha-512
//	KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
//	MAIL_TOPIC             mail.requests
//	AUTH_OUTBOX_POLL       1s                        the relay's safety-net poll
//	AUTH_REFRESH_TTL       720h                      a refresh token's life, renewed by each refresh
//	AUTH_REFRESH_GRACE     10s                       a rotated token repeated this soon gets the same pair (0s: off; ≤ 1m)
//	AUTH_ADMIN_EMAILS      (none)                    comma separated; these accounts hold the admin role
//	AUTH_THROTTLE_STORE    memory                    memory (per replica), database (shared), off
//	AUTH_THROTTLE_<ACTION> see DefaultLimits         e.g. AUTH_THROTTLE_LOGIN=ip=30/10m,account=10/1h;
//	                                                 actions REGISTER VERIFY RESEND LOGIN REFRESH FORGOT RESET
//	AUTH_TRUSTED_PROXIES   (none)                    addresses/CIDRs whose X-Forwarded-For is believed
//	AUTH_HASH_CONCURRENCY  GOMAXPROCS                password hashes computed at once (each holds 19 MiB), 1–1024
//	AUTH_HASH_WAIT         5s                        how long a request waits for a hashing slot before 503 (0s: not at all; ≤ 1m)
package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/kafka"
	"kinoteka/internal/launch"
	"kinoteka/internal/outbox"
	"kinoteka/internal/sqldb"
)

// relayAttempt bounds one publish attempt of the outbox relay; its lease
// is the outbox's default, relayAttempt + 30 s.
const relayAttempt = 10 * time.Second

// Run opens and migrates the database, loads (or generates) the signing key
// and serves the API on ln.Public and the operators' endpoints (probes,
// metrics, docs) on ln.Ops until ctx is done, with the outbox relay and the
// sweep of expired codes and sessions as workers (launch.Lifecycle). Then it
// drains HTTP, stops the workers — so the relay outlives the drain, and
// mails of registrations committed during it still get their wake-up — and
// closes the Kafka client and the database.
//
// cfg must pass Validate; Run fills in nothing (start from DefaultConfig).
//
// Kafka is not needed to start: the client connects lazily, and while the
// broker is away registrations still answer 202 and their mails wait in the
// outbox. Every publish attempt ends within relayAttempt, also when the
// broker went away with a request on the wire (kafka.ProducerOptions,
// kafka.Producer); the failure is counted, logged and shown by /readyz as
// "degraded" until an attempt succeeds. A recreated mail topic is
// forgotten and the next attempt goes to the new one. Idempotence and
// acks=all stay franz-go's defaults.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln launch.Listeners) error {
	defer ln.Close() // also on the early returns, so the ports are not held
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.InfoContext(ctx, "auth starting", "addr", ln.Public.Addr().String(), "ops_addr", ln.Ops.Addr().String(), "config", cfg)

	db, err := sqldb.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("auth: database: %w", err)
	}
	defer db.Close()
	if err := Migrate(ctx, db); err != nil {
		return err
	}
	signer, err := newSigner(cfg, log, time.Now)
	if err != nil {
		return err
	}
	var lim limiter
	switch cfg.Throttle.Store {
	case "memory":
		lim = newMemoryLimiter(100_000)
	case "database":
		lim = newSQLLimiter(db.DB)
	}

	httpMetrics := httpapi.NewMetrics()
	metrics := newServiceMetrics(httpMetrics)
	client, err := kafka.NewClient(cfg.Kafka, append(kafka.ProducerOptions(relayAttempt),
		kafka.LogTo(log),
		kafka.Metrics(httpMetrics.Registry),
	)...)
	if err != nil {
		return fmt.Errorf("auth: kafka client: %w", err)
	}
	defer client.Close()
	relay := outbox.NewRelay(db, kafka.NewProducer(client, log), log, outbox.Options{
		Poll: cfg.OutboxPoll, AttemptTimeout: relayAttempt, Tracing: cfg.Tracing,
		OnPublishError: metrics.publishFailed,
	})
	metrics.watchOutbox(relay)

	svc, err := newService(NewStore(db), signer, log, serviceConfig{
		Config:  cfg,
		Argon2:  DefaultArgon2,
		Now:     time.Now,
		Rand:    rand.Reader,
		Notify:  relay.Notify,
		Relay:   relay.Health,
		Limiter: lim,
		Metrics: metrics,
	})
	if err != nil {
		return err
	}
	metrics.watchHashes(svc.hashes)

	lc := launch.Lifecycle{Log: log}
	lc.Serve("http", ln.Public, routes(log, svc, httpMetrics))
	lc.Serve("ops", ln.Ops, opsRoutes(log, svc, httpMetrics))
	lc.Go("outbox relay", relay.Run)
	lc.Go("sweep", func(ctx context.Context) error {
		svc.sweepEvery(ctx, 10*time.Minute)
		return nil
	})
	err = lc.Run(ctx)
	log.InfoContext(ctx, "auth stopped")
	return err
}
