package mailer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
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
	DefaultBrokers  = "127.0.0.1:9092"
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
}

// Config is the mailer's whole configuration.
type Config struct {
	Kafka kafka.Config
	Topic string // default events.Topic
	Group string // consumer group, default "kinoteka-mailer"
	SMTP  SMTPConfig
}

// LoadConfig reads the configuration from the environment (see the package
// documentation for the variables), applies defaults and validates it.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	cfg := Config{
		Kafka: kafka.Config{
			Brokers:  splitList(getenv("KAFKA_BROKERS")),
			SASL:     strings.ToLower(strings.TrimSpace(getenv("KAFKA_SASL_MECHANISM"))),
			User:     getenv("KAFKA_SASL_USER"),
			Password: getenv("KAFKA_SASL_PASSWORD"),
		},
		Topic: strings.TrimSpace(getenv("MAIL_TOPIC")),
		Group: strings.TrimSpace(getenv("MAILER_GROUP")),
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
	if v := strings.TrimSpace(getenv("KAFKA_TLS")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("KAFKA_TLS: %q is not a boolean", v))
		}
		cfg.Kafka.TLS = b
	}
	if v := strings.TrimSpace(getenv("SMTP_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SMTP_TIMEOUT: %q is not a duration such as 10s", v))
		}
		cfg.SMTP.Timeout = d
	}
	cfg, err := cfg.normalize()
	if err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// normalize fills in defaults and checks every field, reporting all problems at once.
func (c Config) normalize() (Config, error) {
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = splitList(DefaultBrokers)
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
	smtpCfg, err := c.SMTP.normalize()
	c.SMTP = smtpCfg
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	switch c.Kafka.SASL {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.Kafka.User == "" || c.Kafka.Password == "" {
			errs = append(errs, errors.New("KAFKA_SASL_USER and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM"))
		}
		if c.Kafka.SASL == "plain" && !c.Kafka.TLS {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_TLS=true"))
		}
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not one of plain, scram-sha-256, scram-sha-512", c.Kafka.SASL))
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

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
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
	)
}
