// Package auth is the auth service: registration with an emailed one-time
// code, verification, login, and the RS256 access tokens and public keys the
// other services verify them with. It alone holds the signing key. It never
// talks to SMTP: the code mail is an event written to its outbox in the same
// transaction as the account, and a relay publishes it to Kafka.
//
// Configuration (LoadConfig):
//
//	AUTH_DATABASE_URL      sqlite:data/auth.db       or postgres://…
//	AUTH_ISSUER            http://127.0.0.1:8081     iss claim, base of discovery URLs
//	AUTH_AUDIENCE          kinoteka                  aud claim
//	AUTH_ACCESS_TTL        15m
//	AUTH_SIGNING_KEY_FILE  data/auth-signing-key.pem PEM RSA key (PKCS#8 or PKCS#1)
//	AUTH_GENERATE_KEY      false                     generate the key file when missing
//	AUTH_CODE_SECRET       (required)                HMAC key of one-time codes, ≥ 32 characters
//	AUTH_CODE_TTL          10m
//	KAFKA_BROKERS          127.0.0.1:9092            comma separated
//	KAFKA_TLS              false
//	KAFKA_SASL_MECHANISM   (none)                    plain, scram-sha-256, scram-sha-512
//	KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
//	MAIL_TOPIC             mail.requests
//	AUTH_OUTBOX_POLL       1s                        the relay's safety-net poll
package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/kafka"
	"kinoteka/internal/outbox"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/tokens"
)

// Run opens and migrates the database, loads (or generates) the signing key,
// starts the outbox relay and serves HTTP on ln until ctx is done. Then it
// drains HTTP, stops the relay and closes the database.
//
// Kafka is not needed to start: the client connects lazily, and while the
// broker is away registrations still answer 202 and their mails wait in the
// outbox. The producer is set up so that every attempt ends:
// kgo.RecordDeliveryTimeout(10s) fails records the broker does not take in
// time (the relay also bounds each attempt with a 10 s context), and
// kgo.ProducerLinger(0) sends at once instead of waiting for more records.
// Idempotence and acks=all stay franz-go's defaults.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	log.InfoContext(ctx, "auth starting", "addr", ln.Addr().String(), "config", cfg)

	db, err := sqldb.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("auth: database: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, Migrations); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	key, err := signingKey(cfg)
	if err != nil {
		return err
	}

	client, err := kafka.NewClient(cfg.Kafka,
		kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.ProducerLinger(0),
		kafka.LogTo(log),
	)
	if err != nil {
		return fmt.Errorf("auth: kafka client: %w", err)
	}
	defer client.Close()
	relay := outbox.NewRelay(db, client, log, outbox.Options{Poll: cfg.OutboxPoll, AttemptTimeout: 10 * time.Second})

	svc, err := newService(NewStore(db), key, log, serviceConfig{
		Issuer:     cfg.Issuer,
		Audience:   cfg.Audience,
		AccessTTL:  cfg.AccessTTL,
		CodeSecret: cfg.CodeSecret,
		CodeTTL:    cfg.CodeTTL,
		Topic:      cfg.Topic,
		Argon2:     DefaultArgon2,
		Now:        time.Now,
		Rand:       rand.Reader,
		Notify:     relay.Notify,
	})
	if err != nil {
		return err
	}

	// The relay outlives the HTTP server by the drain, so that mails of
	// registrations committed during the drain still get their wake-up.
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()

	err = httpapi.Serve(ctx, ln, routes(log, svc, cfg.Issuer))
	stopRelay()
	if rerr := <-relayDone; rerr != nil && err == nil {
		err = rerr
	}
	log.InfoContext(ctx, "auth stopped")
	return err
}

// signingKey loads the key file or, when allowed, creates it.
func signingKey(cfg Config) (*rsa.PrivateKey, error) {
	if cfg.GenerateKey {
		key, err := tokens.LoadOrGenerateKey(cfg.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: signing key %s: %w", cfg.SigningKeyFile, err)
		}
		return key, nil
	}
	key, err := tokens.LoadKey(cfg.SigningKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("auth: signing key %s does not exist (AUTH_SIGNING_KEY_FILE; set AUTH_GENERATE_KEY=true to generate one for development)", cfg.SigningKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	return key, nil
}
