// Package mailer is the mail service: a Kafka consumer group on the mail
// request topic that renders each code mail (Russian or English, text and
// HTML) and sends it over a pool of SMTP connections, one worker per
// partition mailing up to SMTP_CONNECTIONS of its records at once (one
// user's in order), committing a record's offset only once the SMTP server
// has accepted the mail or the record is parked in the dead-letter topic
// (<topic>.dlq), and every record before it is finished too. A delivery
// log in its own database (SQLite or PostgreSQL) keeps a re-delivered event
// from being mailed twice and tells operators what happened to each event's
// mail (GET /v1/deliveries/{event_id}).
//
// Configuration (LoadConfig, on top of DefaultConfig) comes from these
// environment variables; any may instead be given as NAME_FILE:
//
//	KAFKA_BROKERS          comma-separated seeds, default 127.0.0.1:9092
//	KAFKA_TLS              true to connect to Kafka with TLS
//	KAFKA_SASL_MECHANISM   plain (needs KAFKA_TLS), scram-sha-256 or scram-sha-512
//	KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
//	MAIL_TOPIC             default mail.requests
//	MAILER_GROUP           consumer group, default kinoteka-mailer
//	MAILER_SESSION_TIMEOUT how long the group waits for a silent (crashed) replica before moving its partitions, default 6s
//	MAILER_INSTANCE_ID     static group membership: a stable, unique name per replica, so that a restarted replica gets its partitions back at once; default none
//	SMTP_ADDR              host:port, default 127.0.0.1:1025
//	SMTP_SECURITY          starttls (default; refuses a server without it), tls, or plain (local catcher only)
//	SMTP_USERNAME, SMTP_PASSWORD   AUTH PLAIN or LOGIN, only over TLS (or plain to loopback)
//	SMTP_CA_FILE           extra trusted CA certificate (PEM), e.g. Mailpit's self-signed one
//	SMTP_SERVER_NAME       name to verify in the server certificate, default the host of SMTP_ADDR
//	SMTP_FROM              default "Kinoteka <no-reply@kinoteka.local>"
//	SMTP_TIMEOUT           dial and per-command timeout, default 10s
//	SMTP_CONNECTIONS       connections used at once, default 4
//	SMTP_MESSAGES_PER_CONNECTION  a connection is replaced after this many messages, default 100
//	MAILER_DATABASE_URL    the delivery log: sqlite:PATH or postgres://…, default sqlite:data/mailer.db
//	MAILER_MAX_ATTEMPTS    attempts at a message the server keeps deferring (4yz) before it is dead-lettered, default 10
//	MAILER_LOG_RETENTION   how long delivery log entries are kept, default 168h
//
// The mailer takes the original mailer's place with that one's environment
// unchanged: where ours are unset it reads the original design's variables
// instead, and logs at start which it used and which it ignored.
//
//	KAFKA_TOPIC            for MAIL_TOPIC
//	MAIL_HOST, MAIL_PORT   for SMTP_ADDR (each replaces its half of the default)
//	MAIL_USER, MAIL_PASS   for SMTP_USERNAME, SMTP_PASSWORD (as a pair)
//	MAIL_FROM_NAME         for the display name of SMTP_FROM (the address stays ours)
package mailer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/kafka"
	"kinoteka/internal/launch"
)

// Run consumes until ctx is done, serving /healthz, /readyz (Kafka, the
// mail topic, the delivery log and the SMTP server, each named), /metrics,
// the API docs and GET /v1/deliveries/{event_id} on ln.Ops — the mailer has
// no public listener: all it serves is for operators — then shuts down
// gracefully: it stops serving, stops fetching, finishes the sends in
// flight, commits, leaves the group and closes its connections. cfg is
// validated, never completed: build it from DefaultConfig (or LoadConfig).
func Run(ctx context.Context, cfg Config, log *slog.Logger, ln launch.Listeners) error {
	if ln.Public != nil {
		ln.Close()
		return errors.New("the mailer has no public listener; its one listener is the operators' (MAILER_ADDR)")
	}
	if cfg.Procs > 0 {
		runtime.GOMAXPROCS(cfg.Procs)
	}
	return run(ctx, cfg, log, ln.Ops, defaultTuning, nil)
}

// run is Run with its tuning and, for tests, a Sender in place of SMTP.
func run(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener, tune tuning, send Sender) error {
	defer ln.Close()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deliveries, err := OpenDeliveryLog(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer deliveries.Close()
	if send == nil {
		sender, err := NewSMTPSender(cfg.SMTP, log)
		if err != nil {
			return err
		}
		defer sender.Close()
		send = sender
	}
	// /readyz says whether the SMTP server takes mail (smtpcheck.go); a
	// test's Sender without a Check has no such check.
	var smtpCheck *smtpHealth
	if p, ok := send.(interface{ Check(context.Context) error }); ok {
		smtpCheck = newSMTPHealth(p.Check, tune.smtpCheck)
		send = observedSender{Sender: send, h: smtpCheck}
	}
	rend, err := newRenderer(cfg.SMTP.From, tune.now)
	if err != nil {
		return err
	}
	// One registry per mailer: the HTTP series, the counters, the send
	// latency, the group's lag and the Kafka client's own series.
	metrics := httpapi.NewMetrics()
	stats := &counters{}
	registerCounters(metrics, stats)
	member := newMembership(cfg)
	registerMembership(metrics, member)
	c := &consumer{
		render: rend, send: timeSends(metrics, send), log: log, tune: tune, deliveries: deliveries,
		maxAttempts: cfg.MaxAttempts, inFlight: cfg.SMTP.Connections, stats: stats, workers: map[topicPartition]*worker{},
		tr: cfg.Tracing.Tracer("kinoteka/mailer"), member: member,
	}
	// The client is the consumer worker's from here on: it commits and
	// closes it when it stops.
	cl, err := kafka.NewClient(cfg.Kafka, append(c.groupOptions(cfg), kafka.LogTo(log), kafka.Metrics(metrics.Registry))...)
	if err != nil {
		return err
	}
	c.cl = cl
	metrics.Registry.MustRegister(newLagCollector(cl, cfg.Group))
	c.dlq = &deadLetters{cl: cl, topic: events.DLQ(cfg.Topic), log: log}
	cfg.original.log(log)
	log.Info("mailer starting", "config", cfg, "health", ln.Addr().String())

	// The ops server stops first (probes and /metrics use the client),
	// then the consumer finishes its sends and leaves the group; the
	// sender and the delivery log close last, by the defers above.
	lc := launch.Lifecycle{Log: log}
	checks := map[string]httpapi.Check{
		"kafka":        c.checkKafka,
		"delivery_log": deliveries.Ping,
	}
	if smtpCheck != nil {
		checks["smtp"] = smtpCheck.check
		lc.Go("smtp check", func(ctx context.Context) error {
			smtpCheck.run(ctx)
			return nil
		})
	}
	lc.Serve("mailer", ln, routes(log, deliveries, metrics, cfg.Tracing, checks))
	lc.Go("consumer", c.consume)
	lc.Go("housekeeping", func(ctx context.Context) error {
		c.housekeeping(ctx, cfg.LogRetention)
		return nil
	})
	err = lc.Run(ctx)
	log.Info("mailer stopped", "sent", stats.sent.Load(), "duplicates_skipped", stats.duplicates.Load(), "dead_lettered", stats.deadLettered.Load(),
		"expired", stats.expired.Load())
	return err
}

// housekeeping deletes delivery log entries past their retention, now and
// every tune.housekeeping, until ctx ends.
func (c *consumer) housekeeping(ctx context.Context, retention time.Duration) {
	t := time.NewTicker(c.tune.housekeeping)
	defer t.Stop()
	for {
		n, err := c.deliveries.DeleteBefore(ctx, c.tune.now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn("could not delete old delivery log entries", "err", err)
		case n > 0:
			c.log.Info("deleted delivery log entries past retention", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
