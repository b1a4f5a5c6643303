package mailer

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/config"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/telemetry"
)

// SMTP security modes.
const (
	SecurityStartTLS = "starttls" // the default: STARTTLS required, fail if not offered
	SecurityTLS      = "tls"      // implicit TLS (SMTPS, port 465)
	SecurityPlain    = "plain"    // no TLS at all: only for a local mail catcher, by explicit choice
)

// SMTPConfig says how to reach the SMTP server.
type SMTPConfig struct {
	Addr       string        // host:port
	Security   string        // SecurityStartTLS, SecurityTLS or SecurityPlain
	Username   string        // AUTH PLAIN (or LOGIN if only that is offered) when set; never without TLS
	Password   string        //
	CAFile     string        // extra trusted CA PEM (e.g. a self-signed Mailpit cert); "" trusts the system roots only
	ServerName string        // TLS server name; "" verifies the host of Addr
	From       string        // the sender, display name allowed
	Timeout    time.Duration // dial and per-command timeout
	// Connections is how many connections the sender keeps open and uses
	// at once.
	Connections int
	// MessagesPerConnection recycles a connection after this many
	// messages, as many providers cap a session; 1 opens one per message.
	MessagesPerConnection int
}

// Config is the mailer's whole configuration. Build one by hand from
// DefaultConfig(): a zero field means zero, not "the default".
type Config struct {
	Kafka kafka.Config
	Topic string // dead letters go to events.DLQ(Topic)
	Group string // the consumer group every replica joins
	// SessionTimeout is how long the group waits for a silent member
	// before it gives that member's partitions to the others: the pause
	// a crashed replica causes. The broker bounds it
	// (group.min.session.timeout.ms, 6s by default).
	SessionTimeout time.Duration
	// InstanceID makes the replica a static member of the group: a
	// replica restarted under the same ID gets its partitions back at
	// once, without waiting for SessionTimeout or a rebalance. It must be
	// unique per replica and stable across its restarts (a pod or
	// service name); "" is a dynamic member.
	InstanceID string
	SMTP       SMTPConfig
	// DatabaseURL holds the delivery log: "sqlite:PATH" or "postgres://…",
	// shared by every replica. "" is an in-memory SQLite database, which
	// de-duplicates only until the process ends (tests).
	DatabaseURL string
	// MaxAttempts bounds the attempts at a message the SMTP server keeps
	// deferring (4yz at MAIL, RCPT or DATA) before it is dead-lettered.
	// Failures of the connection itself are retried without a bound.
	MaxAttempts int
	// LogRetention is how long delivery log entries are kept. It must
	// outlast the topic's retention, or a re-delivered old record could be
	// sent again.
	LogRetention time.Duration
	// Procs is how many threads run the mailer's Go code at once
	// (runtime.GOMAXPROCS), set by Run; 0 leaves Go's own choice. The
	// mailer waits on the network and hands each mail from goroutine to
	// goroutine; with a second thread most hand-offs wake it, and those
	// wake-ups cost more CPU than the mail (docs/benchmarks.md). The
	// embedded mode, one process for every service, sets 0.
	Procs int
	// Tracing records a "mail.send" span per record, continuing the
	// record's traceparent header, and traces the HTTP port; nil is off.
	// LoadConfig leaves it nil: the binary sets it (launch.Service.Tracing).
	Tracing *telemetry.Tracing

	// original says which of the original mailer's variables LoadConfig
	// took or ignored, for Run's start-up log line.
	original originalVars
}

// DefaultConfig is the mailer's configuration when no variable is set, and
// the only place its defaults live.
func DefaultConfig() Config {
	return Config{
		Kafka: kafka.Config{Brokers: []string{kafka.DefaultBrokers}, ClientID: "kinoteka-mailer"},
		Topic: events.Topic,
		Group: "kinoteka-mailer",
		// Kafka's smallest default: a crashed replica's partitions move
		// (or it gets them back) within about this long, where franz-go's
		// own 45 s stopped them for most of a minute.
		SessionTimeout: 6 * time.Second,
		SMTP: SMTPConfig{
			Addr:                  "127.0.0.1:1025",
			Security:              SecurityStartTLS,
			From:                  "Kinoteka <no-reply@kinoteka.local>",
			Timeout:               10 * time.Second,
			Connections:           4,
			MessagesPerConnection: 100,
		},
		DatabaseURL:  "sqlite:data/mailer.db",
		MaxAttempts:  10,
		LogRetention: 7 * 24 * time.Hour,
		Procs:        1,
	}
}

// LoadConfig applies the environment (see the package documentation for
// the variables) on top of DefaultConfig and validates the result,
// reporting every problem at once, each naming its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	env := config.NewEnv(getenv)
	kafka.ReadEnv(env, &cfg.Kafka)
	env.String("MAILER_GROUP", &cfg.Group)
	env.Duration("MAILER_SESSION_TIMEOUT", &cfg.SessionTimeout)
	env.String("MAILER_INSTANCE_ID", &cfg.InstanceID)
	env.String("MAILER_DATABASE_URL", &cfg.DatabaseURL)
	env.Int("MAILER_MAX_ATTEMPTS", &cfg.MaxAttempts)
	env.Duration("MAILER_LOG_RETENTION", &cfg.LogRetention)
	env.Int("MAILER_PROCS", &cfg.Procs)
	env.Lower("SMTP_SECURITY", &cfg.SMTP.Security)
	env.String("SMTP_CA_FILE", &cfg.SMTP.CAFile)
	env.String("SMTP_SERVER_NAME", &cfg.SMTP.ServerName)
	env.Duration("SMTP_TIMEOUT", &cfg.SMTP.Timeout)
	env.Int("SMTP_CONNECTIONS", &cfg.SMTP.Connections)
	env.Int("SMTP_MESSAGES_PER_CONNECTION", &cfg.SMTP.MessagesPerConnection)
	cfg.original = readOursOrOriginal(env, &cfg)
	return cfg, errors.Join(env.Err(), cfg.Validate())
}

// originalVars are the original mailer's variables LoadConfig took (ours
// were unset) and those it ignored (ours were set).
type originalVars struct {
	used, ignored []string
}

// log writes the start-up line that says which original variables are in
// force, so an operator moving from the original mailer sees what was
// understood; ignored ones are a warning, as their values have no effect.
func (o originalVars) log(log *slog.Logger) {
	switch {
	case len(o.ignored) > 0:
		log.Warn("original mailer variables: some are ignored because ours are set (docs/operations.md)", "used", o.used, "ignored", o.ignored)
	case len(o.used) > 0:
		log.Info("original mailer variables in use (docs/operations.md)", "used", o.used)
	}
}

// readOursOrOriginal reads the variables that have a counterpart in the
// original mailer's design — MAIL_TOPIC (KAFKA_TOPIC), SMTP_ADDR
// (MAIL_HOST, MAIL_PORT), SMTP_USERNAME and SMTP_PASSWORD (MAIL_USER,
// MAIL_PASS), SMTP_FROM (MAIL_FROM_NAME) — so the mailer can take the
// original's place with its environment unchanged. Ours win: where ours
// are set, the original's are ignored as a group.
func readOursOrOriginal(env *config.Env, cfg *Config) originalVars {
	var o originalVars
	// original reads the original variable name (secret: verbatim) and
	// returns its value when it is set and ours is not.
	original := func(name string, oursSet, secret bool) string {
		var v string
		if secret {
			env.Secret(name, &v)
		} else {
			env.String(name, &v)
		}
		switch {
		case v == "":
		case oursSet:
			o.ignored = append(o.ignored, name)
			return ""
		default:
			o.used = append(o.used, name)
		}
		return v
	}
	// ours reads one of our variables into *dst with read and reports
	// whether it was set (a set variable is never blank).
	ours := func(read func(string, *string), name string, dst *string) bool {
		var v string
		read(name, &v)
		if v == "" {
			return false
		}
		*dst = v
		return true
	}

	topicSet := ours(env.String, "MAIL_TOPIC", &cfg.Topic)
	if v := original("KAFKA_TOPIC", topicSet, false); v != "" {
		cfg.Topic = v
	}

	// MAIL_HOST and MAIL_PORT each replace their half of the default
	// address; the other half stays.
	addrSet := ours(env.String, "SMTP_ADDR", &cfg.SMTP.Addr)
	host, port := original("MAIL_HOST", addrSet, false), original("MAIL_PORT", addrSet, false)
	if host != "" || port != "" {
		defHost, defPort, _ := net.SplitHostPort(cfg.SMTP.Addr)
		if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			env.Failf("MAIL_HOST", "%q is not a bare host name: the port goes in MAIL_PORT", host)
		}
		if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
			env.Failf("MAIL_PORT", "%q is not a port number (1-65535)", port)
		}
		cfg.SMTP.Addr = net.JoinHostPort(cmp.Or(host, defHost), cmp.Or(port, defPort))
	}

	// The credentials are one pair: never a user from one design and a
	// password from the other.
	userSet := ours(env.String, "SMTP_USERNAME", &cfg.SMTP.Username)
	passSet := ours(env.Secret, "SMTP_PASSWORD", &cfg.SMTP.Password)
	if v := original("MAIL_USER", userSet || passSet, false); v != "" {
		cfg.SMTP.Username = v
	}
	if v := original("MAIL_PASS", userSet || passSet, true); v != "" {
		cfg.SMTP.Password = v
	}

	// MAIL_FROM_NAME was only a display name: the address stays ours.
	fromSet := ours(env.String, "SMTP_FROM", &cfg.SMTP.From)
	if name := original("MAIL_FROM_NAME", fromSet, false); name != "" {
		if a, err := parseFrom(cfg.SMTP.From); err == nil {
			cfg.SMTP.From = (&mail.Address{Name: name, Address: a.Address}).String()
		}
	}
	return o
}

// Validate checks every field, reporting all problems at once, each
// naming the variable that sets it. It fills in nothing.
func (c Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.SMTP.Validate()}
	if c.Topic == "" {
		errs = append(errs, errors.New("MAIL_TOPIC must name a topic"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("MAILER_GROUP must name a consumer group"))
	}
	if c.SessionTimeout < time.Second || c.SessionTimeout > 30*time.Minute {
		errs = append(errs, errors.New("MAILER_SESSION_TIMEOUT must be between 1s and 30m (and within the broker's group.min/max.session.timeout.ms)"))
	}
	if len(c.InstanceID) > 249 || strings.ContainsAny(c.InstanceID, " \t\r\n") {
		errs = append(errs, errors.New("MAILER_INSTANCE_ID must be a name of at most 249 characters without spaces"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("MAILER_MAX_ATTEMPTS must be at least 1"))
	}
	if c.Procs < 0 || c.Procs > 256 {
		errs = append(errs, errors.New("MAILER_PROCS must be between 0 (Go's own choice) and 256"))
	}
	if c.LogRetention < time.Hour {
		errs = append(errs, errors.New("MAILER_LOG_RETENTION must be at least 1h (and should outlast the topic's retention)"))
	}
	return errors.Join(errs...)
}

// Validate checks every SMTP field, reporting all problems at once.
func (s SMTPConfig) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("SMTP_ADDR: %q is not host:port", s.Addr))
	}
	switch s.Security {
	case SecurityStartTLS, SecurityTLS:
	case SecurityPlain:
		// Credentials in clear text are acceptable only to a catcher on this machine.
		if s.Username != "" && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("SMTP_SECURITY=plain with SMTP_USERNAME would send the password in clear to %s: use starttls or tls", s.Addr))
		}
	default:
		errs = append(errs, fmt.Errorf("SMTP_SECURITY: %q is not one of starttls, tls, plain", s.Security))
	}
	if (s.Username == "") != (s.Password == "") {
		errs = append(errs, errors.New("SMTP_USERNAME and SMTP_PASSWORD must be set together"))
	}
	if _, err := parseFrom(s.From); err != nil {
		errs = append(errs, fmt.Errorf("SMTP_FROM: %w", err))
	}
	if s.Timeout <= 0 {
		errs = append(errs, errors.New("SMTP_TIMEOUT must be positive"))
	}
	if s.Connections < 1 || s.Connections > 100 {
		errs = append(errs, errors.New("SMTP_CONNECTIONS must be between 1 and 100"))
	}
	if s.MessagesPerConnection < 1 {
		errs = append(errs, errors.New("SMTP_MESSAGES_PER_CONNECTION must be at least 1"))
	}
	return errors.Join(errs...)
}

// parseFrom parses the From address; a display name is allowed.
func parseFrom(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an address such as %q", s, DefaultConfig().SMTP.From)
	}
	return a, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LogValue shows the configuration with its secrets masked, for the start-up log line.
func (c Config) LogValue() slog.Value {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return slog.GroupValue(
		slog.String("kafka_brokers", strings.Join(c.Kafka.Brokers, ",")),
		slog.Bool("kafka_tls", c.Kafka.TLS),
		slog.String("kafka_sasl", c.Kafka.SASL),
		slog.String("kafka_user", c.Kafka.User),
		slog.String("kafka_password", mask(c.Kafka.Password)),
		slog.String("topic", c.Topic),
		slog.String("group", c.Group),
		slog.Duration("session_timeout", c.SessionTimeout),
		slog.String("instance_id", c.InstanceID),
		slog.String("smtp_addr", c.SMTP.Addr),
		slog.String("smtp_security", c.SMTP.Security),
		slog.String("smtp_username", c.SMTP.Username),
		slog.String("smtp_password", mask(c.SMTP.Password)),
		slog.String("smtp_ca_file", c.SMTP.CAFile),
		slog.String("smtp_server_name", c.SMTP.ServerName),
		slog.String("smtp_from", c.SMTP.From),
		slog.Duration("smtp_timeout", c.SMTP.Timeout),
		slog.Int("smtp_connections", c.SMTP.Connections),
		slog.Int("smtp_messages_per_connection", c.SMTP.MessagesPerConnection),
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.Int("max_attempts", c.MaxAttempts),
		slog.Duration("log_retention", c.LogRetention),
		slog.Int("procs", c.Procs),
	)
}

// maskURL hides the password of a database URL such as
// postgres://user:secret@host/db.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "***" // unparseable: it might hold anything
	}
	return u.Redacted()
}
