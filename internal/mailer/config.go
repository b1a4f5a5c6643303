package mailer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// Defaults.
const (
	DefaultSMTPAddr = "127.0.0.1:1025"
	DefaultFrom     = "Kinoteka <no-reply@kinoteka.local>"
	DefaultGroup    = "kinoteka-mailer"
	DefaultTimeout  = 10 * time.Second

	// DefaultDatabaseURL is where LoadConfig puts the delivery log.
	DefaultDatabaseURL = "sqlite:data/mailer.db"
	// DefaultConnections is the SMTP connection pool's size.
	DefaultConnections = 4
	// DefaultMessagesPerConnection: a connection is closed and replaced
	// after this many messages, as many providers cap a session.
	DefaultMessagesPerConnection = 100
	// DefaultMaxAttempts bounds the attempts at a message the SMTP server
	// keeps deferring (4yz at MAIL, RCPT or DATA) before it is dead-lettered.
	// Failures of the connection itself are retried without a bound.
	DefaultMaxAttempts = 10
	// DefaultLogRetention is how long the delivery log keeps an entry.
	DefaultLogRetention = 7 * 24 * time.Hour
)

// SMTPConfig says how to reach the SMTP server.
type SMTPConfig struct {
	Addr       string        // host:port, default "127.0.0.1:1025"
	Security   string        // SecurityStartTLS (default), SecurityTLS or SecurityPlain
	Username   string        // AUTH PLAIN (or LOGIN if only that is offered) when set; never without TLS
	Password   string        //
	CAFile     string        // extra trusted CA PEM (e.g. a self-signed Mailpit cert); system roots otherwise
	ServerName string        // TLS server name; default: host of Addr
	From       string        // default "Kinoteka <no-reply@kinoteka.local>"
	Timeout    time.Duration // dial and per-command timeout, default 10s
	// Connections is how many connections the sender keeps open and uses
	// at once; default DefaultConnections.
	Connections int
	// MessagesPerConnection recycles a connection after this many messages;
	// default DefaultMessagesPerConnection; 1 opens one per message.
	MessagesPerConnection int
}

// Config is the mailer's whole configuration.
type Config struct {
	Kafka kafka.Config
	Topic string // default events.Topic; dead letters go to events.DLQ(Topic)
	Group string // consumer group, default "kinoteka-mailer"
	SMTP  SMTPConfig
	// DatabaseURL holds the delivery log: "sqlite:PATH" or "postgres://…",
	// shared by every replica. Empty means an in-memory SQLite database,
	// which de-duplicates only until the process ends; LoadConfig defaults
	// to DefaultDatabaseURL.
	DatabaseURL string
	// MaxAttempts bounds the attempts at a deferred message (4yz) before it
	// is dead-lettered; default DefaultMaxAttempts.
	MaxAttempts int
	// LogRetention is how long delivery log entries are kept; default
	// DefaultLogRetention. It must outlast the topic's retention, or a
	// re-delivered old record could be sent again.
	LogRetention time.Duration
	// Tracing records a "mail.send" span per record, continuing the
	// record's traceparent header, and traces the HTTP port; nil is off.
	// LoadConfig leaves it nil: the binary sets it (launch.Service.Tracing).
	Tracing *telemetry.Tracing
}

// LoadConfig reads the configuration from the environment (see the package
// documentation for the variables), applies defaults and validates it.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	kcfg, err := kafka.ConfigFromEnv(getenv, "kinoteka-mailer")
	if err != nil {
		errs = append(errs, err)
	}
	cfg := Config{
		Kafka:       kcfg,
		Topic:       strings.TrimSpace(getenv("MAIL_TOPIC")),
		Group:       strings.TrimSpace(getenv("MAILER_GROUP")),
		DatabaseURL: strings.TrimSpace(getenv("MAILER_DATABASE_URL")),
		SMTP: SMTPConfig{
			Addr:       strings.TrimSpace(getenv("SMTP_ADDR")),
			Security:   strings.ToLower(strings.TrimSpace(getenv("SMTP_SECURITY"))),
			Username:   getenv("SMTP_USERNAME"),
			Password:   getenv("SMTP_PASSWORD"),
			CAFile:     strings.TrimSpace(getenv("SMTP_CA_FILE")),
			ServerName: strings.TrimSpace(getenv("SMTP_SERVER_NAME")),
			From:       strings.TrimSpace(getenv("SMTP_FROM")),
		},
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = DefaultDatabaseURL
	}
	if v := strings.TrimSpace(getenv("SMTP_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SMTP_TIMEOUT: %q is not a duration such as 10s", v))
		}
		cfg.SMTP.Timeout = d
	}
	if v := strings.TrimSpace(getenv("MAILER_LOG_RETENTION")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MAILER_LOG_RETENTION: %q is not a duration such as 168h", v))
		}
		cfg.LogRetention = d
	}
	for _, n := range []struct {
		env string
		dst *int
	}{
		{"SMTP_CONNECTIONS", &cfg.SMTP.Connections},
		{"SMTP_MESSAGES_PER_CONNECTION", &cfg.SMTP.MessagesPerConnection},
		{"MAILER_MAX_ATTEMPTS", &cfg.MaxAttempts},
	} {
		if v := strings.TrimSpace(getenv(n.env)); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a whole number", n.env, v))
			}
			*n.dst = i
		}
	}
	cfg, err = cfg.normalize()
	if err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// normalize fills in defaults and checks every field, reporting all problems at once.
func (c Config) normalize() (Config, error) {
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = []string{kafka.DefaultBrokers}
	}
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = "kinoteka-mailer"
	}
	if c.Topic == "" {
		c.Topic = events.Topic
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.LogRetention == 0 {
		c.LogRetention = DefaultLogRetention
	}
	smtpCfg, err := c.SMTP.normalize()
	c.SMTP = smtpCfg
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("MAILER_MAX_ATTEMPTS must be at least 1"))
	}
	if c.LogRetention < time.Hour {
		errs = append(errs, errors.New("MAILER_LOG_RETENTION must be at least 1h (and should outlast the topic's retention)"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// normalize fills in the SMTP defaults and checks every field.
func (s SMTPConfig) normalize() (SMTPConfig, error) {
	if s.Addr == "" {
		s.Addr = DefaultSMTPAddr
	}
	if s.Security == "" {
		s.Security = SecurityStartTLS
	}
	if s.From == "" {
		s.From = DefaultFrom
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Connections == 0 {
		s.Connections = DefaultConnections
	}
	if s.MessagesPerConnection == 0 {
		s.MessagesPerConnection = DefaultMessagesPerConnection
	}

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
	if s.Timeout < 0 {
		errs = append(errs, errors.New("SMTP_TIMEOUT must be positive"))
	}
	if s.Connections < 1 || s.Connections > 100 {
		errs = append(errs, errors.New("SMTP_CONNECTIONS must be between 1 and 100"))
	}
	if s.MessagesPerConnection < 1 {
		errs = append(errs, errors.New("SMTP_MESSAGES_PER_CONNECTION must be at least 1"))
	}
	return s, errors.Join(errs...)
}

// parseFrom parses the From address; a display name is allowed.
func parseFrom(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an address such as %q", s, DefaultFrom)
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
