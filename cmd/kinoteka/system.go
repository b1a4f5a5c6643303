package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"kinoteka/internal/auth"
	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/films"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/launch"
	"kinoteka/internal/mailer"
	"kinoteka/internal/telemetry"
)

// system is the embedded deployment: the data folder is locked and every
// listener opened up front, so a second instance or a busy port fails fast
// with the flag that moves it, and the URLs are known before any service
// starts.
type system struct {
	cfg  config
	log  *slog.Logger
	lock *dataLock

	authLn, filmsLn, mailerLn, smtpLn, mailUILn net.Listener
	webLn                                       net.Listener
	// The operators' listeners (mailerLn is the mailer's).
	authOpsLn, filmsOpsLn, webOpsLn net.Listener

	brokerMu   sync.Mutex
	broker     *kfake.Cluster
	brokerLn   net.Listener // opened up front; kfake takes it on its first start
	brokerPort int

	catcher        *catcher.Catcher
	catcherSecrets catcherSecrets

	// tracing is each service's tracing by name ("auth", "films",
	// "mailer"); a missing one is off. Set before run.
	tracing map[string]*telemetry.Tracing
}

// newSystem locks the data folder — before anything is written in it — then
// opens every port and starts the broker. On error nothing is left open.
func newSystem(cfg config, log *slog.Logger) (*system, error) {
	privateUmask()
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &system{cfg: cfg, log: log, lock: lock}
	if err := s.open(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *system) open() (err error) {
	for _, l := range []struct {
		dst  *net.Listener
		part part
		addr string
	}{
		{&s.authLn, partAuth, s.cfg.AuthAddr},
		{&s.filmsLn, partFilms, s.cfg.FilmsAddr},
		{&s.mailerLn, partMailer, s.cfg.MailerAddr},
		{&s.smtpLn, partSMTP, s.cfg.SMTPAddr},
		{&s.mailUILn, partMailUI, s.cfg.MailUIAddr},
		{&s.webLn, partWeb, s.cfg.WebAddr},
		{&s.authOpsLn, partAuthOps, s.cfg.AuthOpsAddr},
		{&s.filmsOpsLn, partFilmsOps, s.cfg.FilmsOpsAddr},
		{&s.webOpsLn, partWebOps, s.cfg.WebOpsAddr},
	} {
		if *l.dst, err = listen(l.part, l.addr); err != nil {
			return err
		}
	}
	if s.brokerLn, err = listenKafka(s.cfg.KafkaAddr); err != nil {
		return err
	}
	s.brokerPort = s.brokerLn.Addr().(*net.TCPAddr).Port
	if s.catcherSecrets, err = newCatcherSecrets(s.cfg.DataDir); err != nil {
		return dataDirError(s.cfg.DataDir, "cannot write the mail catcher's certificate or password", err)
	}
	if err := s.startBroker(); err != nil {
		return err
	}
	s.catcher = catcher.New(catcher.Config{
		TLS:        s.catcherSecrets.tls,
		RequireTLS: true,
		Users:      map[string]string{catcherUser: s.catcherSecrets.password},
	}, s.log.With("service", "catcher"))
	return nil
}

// startBroker starts the in-process Kafka-protocol broker, persisting its log
// and group offsets in the data folder so a restart neither loses nor resends
// mail. A port of 0 picks a free one, which later restarts keep.
func (s *system) startBroker() error {
	s.brokerMu.Lock()
	defer s.brokerMu.Unlock()
	listenFn := net.Listen
	if ln := s.brokerLn; ln != nil { // the port opened by open; kfake closes it from now on
		s.brokerLn = nil
		listenFn = func(string, string) (net.Listener, error) { return ln, nil }
	}
	dir := filepath.Join(s.cfg.DataDir, "kafka")
	c, err := kfake.NewCluster(
		kfake.Ports(s.brokerPort),
		kfake.ListenFn(listenFn),
		kfake.DataDir(dir),
		kfake.SeedTopics(int32(s.cfg.Partitions), events.Topic, events.DLQ(events.Topic), events.UsersTopic, events.DLQ(events.UsersTopic)),
	)
	if err != nil {
		addr := s.kafkaAddr()
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			return listenError(partKafka, addr, err)
		}
		return &startError{what: fmt.Sprintf("Kafka broker on %s with its log in %s", addr, absPath(dir)), err: err,
			advice: "if the log is damaged, move that folder away to start with an empty broker (mail not yet sent is lost)"}
	}
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

// The operators' URLs: probes, metrics and (but for web) the API docs.
func (s *system) authOpsURL() string   { return "http://" + s.authOpsLn.Addr().String() }
func (s *system) filmsOpsURL() string  { return "http://" + s.filmsOpsLn.Addr().String() }
func (s *system) mailerOpsURL() string { return "http://" + s.mailerLn.Addr().String() }
func (s *system) webOpsURL() string    { return "http://" + s.webOpsLn.Addr().String() }

// close stops what newSystem started and releases the data folder, last.
// Closing a listener a service has already closed is harmless.
func (s *system) close() {
	for _, ln := range []net.Listener{s.authLn, s.filmsLn, s.mailerLn, s.smtpLn, s.mailUILn, s.webLn, s.authOpsLn, s.filmsOpsLn, s.webOpsLn, s.brokerLn} {
		if ln != nil {
			ln.Close()
		}
	}
	s.stopBroker()
	s.lock.release()
}

// codeSecret loads the HMAC secret for one-time codes from the data folder,
// creating it on first start.
func codeSecret(dir string) ([]byte, error) {
	return loadOrMakeSecret(filepath.Join(dir, "code-secret"))
}

// run starts every part and blocks until ctx is done or one part fails; then
// it stops them all, the broker last so the services can finish with it, and
// releases the data folder.
func (s *system) run(ctx context.Context, ready func()) error {
	defer s.close()
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
	// The mailer as in production — STARTTLS required and AUTH — though the
	// catcher is in this process.
	mailerCfg := mailer.DefaultConfig()
	mailerCfg.DatabaseURL = "sqlite:" + filepath.Join(s.cfg.DataDir, "mailer.db")
	mailerCfg.Kafka.Brokers = brokers
	mailerCfg.SMTP.Addr = s.smtpLn.Addr().String()
	mailerCfg.SMTP.Security = mailer.SecurityStartTLS
	mailerCfg.SMTP.Username = catcherUser
	mailerCfg.SMTP.Password = s.catcherSecrets.password
	mailerCfg.SMTP.CAFile = s.catcherSecrets.certFile
	mailerCfg.SMTP.ServerName = "localhost" // the certificate's name, whatever address -smtp-addr listens on
	mailerCfg.Tracing = s.tracing["mailer"]
	mailerCfg.Procs = 0 // the process is every service's

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.catcher.ServeSMTP(gctx, s.smtpLn)
	})
	g.Go(func() error {
		return httpapi.Serve(gctx, s.mailUILn, s.catcher.Handler())
	})
	g.Go(func() error {
		return named("auth", auth.Run(gctx, authCfg, s.log.With("service", "auth"), launch.Listeners{Public: s.authLn, Ops: s.authOpsLn}))
	})
	g.Go(func() error {
		return named("films", films.Run(gctx, filmsCfg, s.log.With("service", "films"), launch.Listeners{Public: s.filmsLn, Ops: s.filmsOpsLn}))
	})
	g.Go(func() error {
		return named("mailer", mailer.Run(gctx, mailerCfg, s.log.With("service", "mailer"), launch.Listeners{Ops: s.mailerLn}))
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

// waitHealthy polls each service's /readyz (the mailer's and web's
// /healthz) on its operators' listener until all answer 200.
func (s *system) waitHealthy(ctx context.Context) error {
	urls := []string{s.authOpsURL() + "/readyz", s.filmsOpsURL() + "/readyz", s.mailerOpsURL() + "/healthz", s.mailUIURL() + "/readyz"}
	urls = append(urls, s.webOpsURL()+"/healthz")
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
