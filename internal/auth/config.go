package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
)

// Config is everything the auth service needs to run.
type Config struct {
	DatabaseURL    string        // "sqlite:PATH" or "postgres://…"
	Issuer         string        // iss claim and base of the discovery URLs
	Audience       string        // aud claim; default "kinoteka"
	AccessTTL      time.Duration // access token lifetime; default 15m
	SigningKeyFile string        // PEM RSA private key
	GenerateKey    bool          // generate and persist the key when the file is missing (dev/embedded)
	CodeSecret     []byte        // HMAC key for one-time codes, at least 32 bytes
	CodeTTL        time.Duration // one-time code lifetime; default 10m
	Kafka          kafka.Config
	Topic          string        // mail requests topic; default events.Topic
	OutboxPoll     time.Duration // the relay's safety-net poll; default 1s
}

// minSecretLen is the least CodeSecret length: 256 bits for HMAC-SHA256.
const minSecretLen = 32

// LoadConfig reads the configuration from environment variables (see the
// table in the package documentation) and validates it. The error names
// every bad variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string) time.Duration {
		v := str(name, def)
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 15m or 1s", name, v))
		}
		return d
	}
	boolean := func(name string) bool {
		v := str(name, "false")
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
		}
		return b
	}
	var brokers []string
	for b := range strings.SplitSeq(str("KAFKA_BROKERS", "127.0.0.1:9092"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	cfg := Config{
		DatabaseURL:    str("AUTH_DATABASE_URL", "sqlite:data/auth.db"),
		Issuer:         str("AUTH_ISSUER", "http://127.0.0.1:8081"),
		Audience:       str("AUTH_AUDIENCE", "kinoteka"),
		AccessTTL:      dur("AUTH_ACCESS_TTL", "15m"),
		SigningKeyFile: str("AUTH_SIGNING_KEY_FILE", "data/auth-signing-key.pem"),
		GenerateKey:    boolean("AUTH_GENERATE_KEY"),
		// Secrets are taken verbatim: surrounding spaces may be part of them.
		CodeSecret: []byte(getenv("AUTH_CODE_SECRET")),
		CodeTTL:    dur("AUTH_CODE_TTL", "10m"),
		Kafka: kafka.Config{
			Brokers:  brokers,
			ClientID: "kinoteka-auth",
			TLS:      boolean("KAFKA_TLS"),
			SASL:     strings.ToLower(str("KAFKA_SASL_MECHANISM", "")),
			User:     str("KAFKA_SASL_USER", ""),
			Password: getenv("KAFKA_SASL_PASSWORD"),
		},
		Topic:      str("MAIL_TOPIC", events.Topic),
		OutboxPoll: dur("AUTH_OUTBOX_POLL", "1s"),
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, cfg.validate()
}

// withDefaults fills the optional fields a caller building Config by hand
// may leave empty.
func (c Config) withDefaults() Config {
	if c.Audience == "" {
		c.Audience = "kinoteka"
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 10 * time.Minute
	}
	if c.Topic == "" {
		c.Topic = events.Topic
	}
	if c.OutboxPoll == 0 {
		c.OutboxPoll = time.Second
	}
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = "kinoteka-auth"
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	return c
}

// validate checks c; each message names the field and its variable.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad(`DatabaseURL (AUTH_DATABASE_URL) must start with "sqlite:" or "postgres://"`)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		bad("Issuer (AUTH_ISSUER) must be an http(s) URL without query or fragment, such as http://127.0.0.1:8081")
	}
	if c.Audience == "" {
		bad("Audience (AUTH_AUDIENCE) must not be empty")
	}
	if c.AccessTTL <= 0 || c.AccessTTL > 24*time.Hour {
		bad("AccessTTL (AUTH_ACCESS_TTL) must be between 1s and 24h, got %s", c.AccessTTL)
	}
	if c.SigningKeyFile == "" {
		bad("SigningKeyFile (AUTH_SIGNING_KEY_FILE) must name a PEM file")
	}
	if len(c.CodeSecret) < minSecretLen {
		bad("CodeSecret (AUTH_CODE_SECRET) is required and must be at least %d characters", minSecretLen)
	}
	if c.CodeTTL <= 0 || c.CodeTTL > 24*time.Hour {
		bad("CodeTTL (AUTH_CODE_TTL) must be between 1s and 24h, got %s", c.CodeTTL)
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("Kafka.Brokers (KAFKA_BROKERS) must name at least one host:port")
	}
	switch c.Kafka.SASL {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.Kafka.User == "" || c.Kafka.Password == "" {
			bad("Kafka.User and Kafka.Password (KAFKA_SASL_USER, KAFKA_SASL_PASSWORD) are required with SASL")
		}
	default:
		bad("Kafka.SASL (KAFKA_SASL_MECHANISM) must be plain, scram-sha-256 or scram-sha-512, got %q", c.Kafka.SASL)
	}
	if c.Topic == "" {
		bad("Topic (MAIL_TOPIC) must not be empty")
	}
	if c.OutboxPoll <= 0 {
		bad("OutboxPoll (AUTH_OUTBOX_POLL) must be positive, got %s", c.OutboxPoll)
	}
	return errors.Join(errs...)
}

// LogValue lets the configuration be logged at start with its secrets masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("issuer", c.Issuer),
		slog.String("audience", c.Audience),
		slog.Duration("access_ttl", c.AccessTTL),
		slog.String("signing_key_file", c.SigningKeyFile),
		slog.Bool("generate_key", c.GenerateKey),
		slog.String("code_secret", mask(len(c.CodeSecret) > 0)),
		slog.Duration("code_ttl", c.CodeTTL),
		slog.String("kafka_brokers", strings.Join(c.Kafka.Brokers, ",")),
		slog.Bool("kafka_tls", c.Kafka.TLS),
		slog.String("kafka_sasl", c.Kafka.SASL),
		slog.String("kafka_password", mask(c.Kafka.Password != "")),
		slog.String("topic", c.Topic),
		slog.Duration("outbox_poll", c.OutboxPoll),
	)
}

func mask(set bool) string {
	if set {
		return "***"
	}
	return ""
}

func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
