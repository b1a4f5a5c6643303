package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"kinoteka/internal/auth"
	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/films"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/mailer"
	"kinoteka/internal/telemetry"
)

// system is the embedded deployment: every listener is opened up front, so a
// busy port fails fast with the flag that moves it, and the URLs are known
// before any service starts.
type system struct {
	cfg config
	log *slog.Logger

	authLn, filmsLn, mailerLn, smtpLn, mailUILn net.Listener
	webLn                                       net.Listener

	brokerMu   sync.Mutex
	broker     *kfake.Cluster
	brokerPort int

	catcher *catcher.Catcher

	// tracing is each service's tracing by name ("auth", "films",
	// "mailer"); a missing one is off. Set before run.
	tracing map[string]*telemetry.Tracing
}

func newSystem(cfg config, log *slog.Logger) (s *system, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	s = &system{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()
	for _, l := range []struct {
		dst  *net.Listener
		addr string
		flag string
	}{
		{&s.authLn, cfg.AuthAddr, "-auth-addr"},
		{&s.filmsLn, cfg.FilmsAddr, "-films-addr"},
		{&s.mailerLn, cfg.MailerAddr, "-mailer-addr"},
		{&s.smtpLn, cfg.SMTPAddr, "-smtp-addr"},
		{&s.mailUILn, cfg.MailUIAddr, "-mail-ui-addr"},
		{&s.webLn, cfg.WebAddr, "-web-addr"},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (change it with %s): %w", l.addr, l.flag, err)
		}
		*l.dst = ln
	}
	_, port, err := net.SplitHostPort(cfg.KafkaAddr)
	if err != nil {
		return nil, fmt.Errorf("-kafka-addr: %w", err)
	}
	if s.brokerPort, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("-kafka-addr: bad port %q", port)
	}
	if err := s.startBroker(); err != nil {
		return nil, err
	}
	s.catcher = catcher.New(catcher.Config{}, log.With("service", "catcher"))
	return s, nil
}

// startBroker starts the in-process Kafka-protocol broker, persisting its log
// and group offsets in the data folder so a restart neither loses nor resends
// mail. A port of 0 picks a free one, which later restarts keep.
func (s *system) startBroker() error {
	s.brokerMu.Lock()
	defer s.brokerMu.Unlock()
	c, err := kfake.NewCluster(
		kfake.Ports(s.brokerPort),
		kfake.DataDir(filepath.Join(s.cfg.DataDir, "kafka")),
		kfake.SeedTopics(int32(s.cfg.Partitions), events.Topic, events.DLQ(events.Topic), events.UsersTopic, events.DLQ(events.UsersTopic)),
	)
	if err != nil {
		return fmt.Errorf("start Kafka broker on port %d (change it with -kafka-addr): %w", s.brokerPort, err)
	}
	_, port, _ := net.SplitHostPort(c.ListenAddrs()[0])
	s.brokerPort, _ = strconv.Atoi(port)
	s.broker = c
	return nil
}

// stopBroker stops the broker as a crash would look to its clients.
func (s *system) stopBroker() {
	s.brokerMu.Lock()
	defer s.brokerMu.Unlock()
	if s.broker != nil {
		s.broker.Close()
		s.broker = nil
	}
}

func (s *system) kafkaAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.brokerPort)) }
func (s *system) authURL() string   { return "http://" + s.authLn.Addr().String() }
func (s *system) filmsURL() string  { return "http://" + s.filmsLn.Addr().String() }
func (s *system) mailUIURL() string { return "http://" + s.mailUILn.Addr().String() }

func (s *system) closeListeners() {
	for _, ln := range []net.Listener{s.authLn, s.filmsLn, s.mailerLn, s.smtpLn, s.mailUILn, s.webLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// codeSecret loads the HMAC secret for one-time codes from the data folder,
// creating it on first start.
func codeSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "code-secret")
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 64 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	b = []byte(hex.EncodeToString(raw[:]))
	return b, os.WriteFile(path, b, 0o600)
}

// run starts every part and blocks until ctx is done or one part fails; then
// it stops them all, the broker last so the services can finish with it.
func (s *system) run(ctx context.Context, ready func()) error {
	defer s.stopBroker()
	secret, err := codeSecret(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("code secret: %w", err)
	}
	brokers := []string{s.kafkaAddr()}
	authCfg := auth.DefaultConfig()
	authCfg.DatabaseURL = "sqlite:" + filepath.Join(s.cfg.DataDir, "auth.db")
	authCfg.Issuer = s.authURL()
	authCfg.SigningKeyFile = filepath.Join(s.cfg.DataDir, "auth-signing-key.pem")
	authCfg.GenerateKey = true
	authCfg.CodeSecret = secret
	authCfg.Kafka.Brokers = brokers
	authCfg.Throttle.Store = s.cfg.Throttle
	authCfg.Tracing = s.tracing["auth"]
	// films' defaults (its read and token caches, the demo catalogue), on
	// this data folder and this auth.
	filmsCfg := films.DefaultConfig()
	filmsCfg.DatabaseURL = "sqlite:" + filepath.Join(s.cfg.DataDir, "films.db")
	filmsCfg.JWKSURL = s.authURL() + "/.well-known/jwks.json"
	filmsCfg.Issuer = s.authURL()
	filmsCfg.Kafka.Brokers = brokers
	filmsCfg.Tracing = s.tracing["films"]
	mailerCfg := mailer.DefaultConfig()
	mailerCfg.DatabaseURL = "sqlite:" + filepath.Join(s.cfg.DataDir, "mailer.db")
	mailerCfg.Kafka.Brokers = brokers
	mailerCfg.SMTP.Addr = s.smtpLn.Addr().String()
	mailerCfg.SMTP.Security = mailer.SecurityPlain // the catcher is on loopback in this process
	mailerCfg.Tracing = s.tracing["mailer"]

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.catcher.ServeSMTP(gctx, s.smtpLn)
	})
	g.Go(func() error {
		return httpapi.Serve(gctx, s.mailUILn, s.catcher.Handler())
	})
	g.Go(func() error {
		return named("auth", auth.Run(gctx, authCfg, s.log.With("service", "auth"), s.authLn))
	})
	g.Go(func() error {
		return named("films", films.Run(gctx, filmsCfg, s.log.With("service", "films"), s.filmsLn))
	})
	g.Go(func() error {
		return named("mailer", mailer.Run(gctx, mailerCfg, s.log.With("service", "mailer"), s.mailerLn))
	})
	g.Go(func() error { return s.runWeb(gctx) })
	g.Go(func() error {
		if err := s.waitHealthy(gctx); err != nil {
			return err
		}
		ready()
		return nil
	})
	return g.Wait()
}

// tracingFromEnv gives each service its tracing from the OTEL_* variables,
// as the separate binaries do (telemetry.FromEnv: off unless
// OTEL_EXPORTER_OTLP_ENDPOINT is set); stop flushes them.
func tracingFromEnv(ctx context.Context, getenv func(string) string) (_ map[string]*telemetry.Tracing, stop func(), err error) {
	m := map[string]*telemetry.Tracing{}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, t := range m {
			_ = t.Shutdown(sctx)
		}
	}
	for _, name := range []string{"auth", "films", "mailer", "web"} {
		if m[name], err = telemetry.FromEnv(ctx, name, getenv); err != nil {
			stop()
			return nil, nil, fmt.Errorf("tracing: %w", err)
		}
	}
	return m, stop, nil
}

func named(service string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", service, err)
	}
	return nil
}

// waitHealthy polls each service's /readyz until all answer 200.
func (s *system) waitHealthy(ctx context.Context) error {
	urls := []string{s.authURL() + "/readyz", s.filmsURL() + "/readyz", "http://" + s.mailerLn.Addr().String() + "/healthz", s.mailUIURL() + "/readyz"}
	urls = append(urls, s.webURL()+"/healthz")
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		for {
			resp, err := client.Get(u)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
