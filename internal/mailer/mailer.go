// Package mailer is the mail service: a Kafka consumer group on the mail
// request topic that renders each code mail (Russian or English, text and
// HTML) and sends it over SMTP, committing a record's offset only once the
// SMTP server has accepted the mail (or the record can never be sent).
//
// Configuration (LoadConfig) comes from these environment variables:
//
//	KAFKA_BROKERS          comma-separated seeds, default 127.0.0.1:9092
//	KAFKA_TLS              true to connect to Kafka with TLS
//	KAFKA_SASL_MECHANISM   plain (needs KAFKA_TLS), scram-sha-256 or scram-sha-512
//	KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
//	MAIL_TOPIC             default mail.requests
//	MAILER_GROUP           consumer group, default kinoteka-mailer
//	SMTP_ADDR              host:port, default 127.0.0.1:1025
//	SMTP_SECURITY          starttls (default; refuses a server without it), tls, or plain (local catcher only)
//	SMTP_USERNAME, SMTP_PASSWORD   AUTH PLAIN or LOGIN, only over TLS (or plain to loopback)
//	SMTP_CA_FILE           extra trusted CA certificate (PEM), e.g. Mailpit's self-signed one
//	SMTP_SERVER_NAME       name to verify in the server certificate, default the host of SMTP_ADDR
//	SMTP_FROM              default "Kinoteka <no-reply@kinoteka.local>"
//	SMTP_TIMEOUT           dial and per-command timeout, default 10s
package mailer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/kafka"
)

// Run consumes until ctx is done, serving /healthz and /readyz (Kafka
// reachable) on ln, then shuts down gracefully: it stops fetching, finishes
// the message in flight, commits, leaves the group and closes.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	return run(ctx, cfg, log, ln, defaultTuning, nil)
}

// run is Run with its tuning and, for tests, a Sender in place of SMTP.
func run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener, tune tuning, send Sender) error {
	defer ln.Close()
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if send == nil {
		sender, err := NewSMTPSender(cfg.SMTP, log)
		if err != nil {
			return err
		}
		defer sender.Close()
		send = sender
	}
	rend, err := newRenderer(cfg.SMTP.From, tune.now)
	if err != nil {
		return err
	}
	c := &consumer{render: rend, send: send, log: log, tune: tune, rebalance: make(chan struct{}, 1)}
	cl, err := kafka.NewClient(cfg.Kafka, append(c.groupOptions(cfg.Group, cfg.Topic), kafka.LogTo(log))...)
	if err != nil {
		return err
	}
	c.cl = cl
	log.Info("mailer starting", "config", cfg, "health", ln.Addr().String())

	mux := http.NewServeMux()
	httpapi.Health(mux, map[string]httpapi.Check{
		"kafka": func(ctx context.Context) error { return kafka.Ping(ctx, cl) },
	})
	// The health server outlives the consumer by the shutdown, so probes
	// keep answering while the last message is finished.
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpErr := make(chan error, 1)
	go func() {
		err := httpapi.Serve(httpCtx, ln, httpapi.Observe(log, mux))
		if err != nil {
			stopConsuming() // no health endpoint, no service
		}
		httpErr <- err
	}()

	c.run(consumeCtx)

	log.Info("mailer stopping")
	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := cl.CommitMarkedOffsets(commitCtx); err != nil {
		log.Warn("final commit failed; finished records may be sent again", "err", err)
	}
	cancel()
	cl.CloseAllowingRebalance()
	stopHTTP()
	if err := <-httpErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("mailer stopped")
	return nil
}
