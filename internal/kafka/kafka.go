// Package kafka builds franz-go clients from one configuration, so that the
// outbox relay (auth), the mailer and the embedded broker agree on brokers,
// security and topics; and it holds what every client needs to recover
// from faults: a Producer whose calls end with their context and that
// follows a recreated topic, and RecoverConsuming for consumers.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config says how to reach the cluster.
type Config struct {
	Brokers  []string
	ClientID string
	TLS      bool   // connect with TLS (system roots)
	SASL     string // "", "plain", "scram-sha-256" or "scram-sha-512"
	User     string
	Password string
}

// Options returns the client options for cfg: seeds, client id, TLS and SASL.
// Producers keep franz-go's defaults: idempotent, acks=all.
func Options(cfg Config) ([]kgo.Opt, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.RetryTimeout(30 * time.Second),
	}
	if cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	switch cfg.SASL {
	case "":
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: cfg.User, Pass: cfg.Password}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.User, Pass: cfg.Password}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.User, Pass: cfg.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: unknown SASL mechanism %q", cfg.SASL)
	}
	return opts, nil
}

// NewClient returns a client for cfg with extra options appended.
func NewClient(cfg Config, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// EnsureTopics creates each topic that does not exist yet, with the given
// partitions and replication factor (-1: the broker's default).
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, replication int16, topics ...string) error {
	adm := kadm.NewClient(cl)
	res, err := adm.CreateTopics(ctx, partitions, replication, nil, topics...)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	for _, r := range res {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Ping checks that some broker answers; for /readyz.
func Ping(ctx context.Context, cl *kgo.Client) error {
	return cl.Ping(ctx)
}

// LogTo adapts slog to franz-go's logger at warn level and above.
func LogTo(log *slog.Logger) kgo.Opt {
	return kgo.WithLogger(kgo.BasicLogger(slogWriter{log}, kgo.LogLevelWarn, nil))
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn("kafka client", "msg", string(p))
	return len(p), nil
}
