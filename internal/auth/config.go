package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// Config is everything the auth service needs to run.
type Config struct {
	DatabaseURL    string        // "sqlite:PATH" or "postgres://…"
	Issuer         string        // iss claim and base of the discovery URLs
	Audience       string        // aud claim; default "kinoteka"
	AccessTTL      time.Duration // access token lifetime; default 15m
	SigningKeyFile string        // one PEM private key (RSA, ECDSA P-256 or Ed25519); or:
	SigningKeysDir string        // a folder of PEM keys: the newest active one signs, all are published
	SigningAlg     string        // RS256 (default), ES256 or EdDSA: the kind of key GenerateKey makes
	GenerateKey    bool          // generate and persist a key when there is none (dev/embedded)
	CodeSecret     []byte        // HMAC key for one-time codes, at least 32 bytes
	CodeTTL        time.Duration // one-time code lifetime; default 10m
	Kafka          kafka.Config
	Topic          string        // mail requests topic; default events.Topic
	OutboxPoll     time.Duration // the relay's safety-net poll; default 1s

	RefreshTTL     time.Duration  // a refresh token's life, renewed by each refresh; default 720h (30 days)
	RefreshGrace   time.Duration  // a rotated token repeated this soon gets the same answer; 0 means 10s, negative off, max 1m
	AdminEmails    []string       // addresses that hold the admin role by configuration
	Throttle       ThrottleConfig // attempt limits per client IP and per account
	TrustedProxies []netip.Prefix // proxies whose X-Forwarded-For is believed; none by default

	// Tracing traces HTTP requests and the relay's publishes; nil is off.
	// LoadConfig leaves it nil: the binary sets it (launch.Service.Tracing).
	Tracing *telemetry.Tracing
}

// ThrottleConfig says where the token buckets live and how big they are.
type ThrottleConfig struct {
	// Store is "memory" (the default: each replica counts on its own),
	// "database" (auth's database: one count for all replicas) or "off".
	Store string
	// Limits replace DefaultLimits for the actions they name; a zero Rule
	// in them is no limit for that scope.
	Limits map[Action]Limits
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
	kcfg, err := kafka.ConfigFromEnv(getenv, "kinoteka-auth")
	if err != nil {
		errs = append(errs, err)
	}
	keysDir := str("AUTH_SIGNING_KEYS_DIR", "")
	keyFileDefault := "data/auth-signing-key.pem"
	if keysDir != "" {
		keyFileDefault = ""
	}
	var admins []string
	for a := range strings.SplitSeq(str("AUTH_ADMIN_EMAILS", ""), ",") {
		if a = strings.TrimSpace(a); a != "" {
			admins = append(admins, a)
		}
	}
	trusted, err := parsePrefixes(str("AUTH_TRUSTED_PROXIES", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("AUTH_TRUSTED_PROXIES: %w", err))
	}
	throttle := ThrottleConfig{Store: str("AUTH_THROTTLE_STORE", "memory"), Limits: map[Action]Limits{}}
	for _, act := range Actions {
		name := "AUTH_THROTTLE_" + strings.ToUpper(string(act))
		if v := str(name, ""); v != "" {
			l, err := parseLimits(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			throttle.Limits[act] = l
		}
	}
	cfg := Config{
		DatabaseURL:    str("AUTH_DATABASE_URL", "sqlite:data/auth.db"),
		Issuer:         str("AUTH_ISSUER", "http://127.0.0.1:8081"),
		Audience:       str("AUTH_AUDIENCE", "kinoteka"),
		AccessTTL:      dur("AUTH_ACCESS_TTL", "15m"),
		SigningKeyFile: str("AUTH_SIGNING_KEY_FILE", keyFileDefault),
		SigningKeysDir: keysDir,
		SigningAlg:     str("AUTH_SIGNING_ALG", tokens.RS256),
		GenerateKey:    boolean("AUTH_GENERATE_KEY"),
		// Secrets are taken verbatim: surrounding spaces may be part of them.
		CodeSecret:     []byte(getenv("AUTH_CODE_SECRET")),
		CodeTTL:        dur("AUTH_CODE_TTL", "10m"),
		Kafka:          kcfg,
		Topic:          str("MAIL_TOPIC", events.Topic),
		OutboxPoll:     dur("AUTH_OUTBOX_POLL", "1s"),
		RefreshTTL:     dur("AUTH_REFRESH_TTL", "720h"),
		RefreshGrace:   grace(dur("AUTH_REFRESH_GRACE", "10s")),
		AdminEmails:    admins,
		Throttle:       throttle,
		TrustedProxies: trusted,
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, cfg.validate()
}

// defaultRefreshGrace is how long a rotated refresh token still gets the
// same answer: enough for a client to retry a request whose answer it lost.
const defaultRefreshGrace = 10 * time.Second

// grace maps the variable's "0s" (off) to Config's negative "off", since a
// zero Config field means the default.
func grace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
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
	if c.SigningAlg == "" {
		c.SigningAlg = tokens.RS256
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = defaultRefreshTTL
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = defaultRefreshGrace
	}
	if c.Throttle.Store == "" {
		c.Throttle.Store = "memory"
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
	if (c.SigningKeyFile == "") == (c.SigningKeysDir == "") {
		bad("exactly one of SigningKeyFile (AUTH_SIGNING_KEY_FILE, a PEM file) and SigningKeysDir (AUTH_SIGNING_KEYS_DIR, a folder of PEM files) must be set")
	}
	if !slices.Contains(tokens.Algorithms, c.SigningAlg) {
		bad("SigningAlg (AUTH_SIGNING_ALG) must be one of %s, got %q", strings.Join(tokens.Algorithms, ", "), c.SigningAlg)
	}
	if c.RefreshTTL < time.Minute || c.RefreshTTL > 366*24*time.Hour {
		bad("RefreshTTL (AUTH_REFRESH_TTL) must be between 1m and 8784h (a year), got %s", c.RefreshTTL)
	}
	if c.RefreshGrace > time.Minute {
		bad("RefreshGrace (AUTH_REFRESH_GRACE) must be between 0s (off) and 1m, got %s", c.RefreshGrace)
	}
	for _, a := range c.AdminEmails {
		if _, msg := parseEmail(a); msg != "" {
			bad("AdminEmails (AUTH_ADMIN_EMAILS): %q %s", a, msg)
		}
	}
	if !slices.Contains([]string{"memory", "database", "off"}, c.Throttle.Store) {
		bad("Throttle.Store (AUTH_THROTTLE_STORE) must be memory, database or off, got %q", c.Throttle.Store)
	}
	for act := range c.Throttle.Limits {
		if !slices.Contains(Actions, act) {
			bad("Throttle.Limits: %q is not a throttled action", act)
		}
	}
	if len(c.CodeSecret) < minSecretLen {
		bad("CodeSecret (AUTH_CODE_SECRET) is required and must be at least %d characters", minSecretLen)
	}
	if c.CodeTTL <= 0 || c.CodeTTL > 24*time.Hour {
		bad("CodeTTL (AUTH_CODE_TTL) must be between 1s and 24h, got %s", c.CodeTTL)
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
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
		slog.String("signing_keys_dir", c.SigningKeysDir),
		slog.String("signing_alg", c.SigningAlg),
		slog.Bool("generate_key", c.GenerateKey),
		slog.String("code_secret", mask(len(c.CodeSecret) > 0)),
		slog.Duration("code_ttl", c.CodeTTL),
		slog.String("kafka_brokers", strings.Join(c.Kafka.Brokers, ",")),
		slog.Bool("kafka_tls", c.Kafka.TLS),
		slog.String("kafka_sasl", c.Kafka.SASL),
		slog.String("kafka_password", mask(c.Kafka.Password != "")),
		slog.String("topic", c.Topic),
		slog.Duration("outbox_poll", c.OutboxPoll),
		slog.Duration("refresh_ttl", c.RefreshTTL),
		slog.Duration("refresh_grace", c.RefreshGrace),
		slog.Int("admin_emails", len(c.AdminEmails)),
		slog.String("throttle", c.Throttle.String()),
		slog.Any("trusted_proxies", c.TrustedProxies),
	)
}

// String lists the store and every action's effective limits.
func (t ThrottleConfig) String() string {
	if t.Store == "off" {
		return "off"
	}
	parts := []string{t.Store}
	for _, act := range Actions {
		parts = append(parts, string(act)+":"+t.limits(act).String())
	}
	return strings.Join(parts, " ")
}

// limits is act's configured limits, or the default.
func (t ThrottleConfig) limits(act Action) Limits {
	if l, ok := t.Limits[act]; ok {
		return l
	}
	return DefaultLimits[act]
}

// adminEmails normalises the configured admin addresses (validate has
// checked them).
func (c Config) adminEmails() []string {
	var out []string
	for _, a := range c.AdminEmails {
		if e, msg := parseEmail(a); msg == "" {
			out = append(out, e)
		}
	}
	return out
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
