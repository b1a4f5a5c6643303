package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"kinoteka/internal/config"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// Config is everything the auth service needs to run. DefaultConfig holds
// every default; a zero field means zero (RefreshGrace 0 is off), and one
// that may not be zero is refused by Validate.
type Config struct {
	DatabaseURL    string        // "sqlite:PATH" or "postgres://…"
	Issuer         string        // iss claim and base of the discovery URLs, without a trailing slash
	Audience       string        // aud claim
	AccessTTL      time.Duration // access token lifetime, 1s to 24h
	SigningKeyFile string        // one PEM private key (RSA, ECDSA P-256 or Ed25519); or:
	SigningKeysDir string        // a folder of PEM keys: the newest active one signs, all are published
	SigningAlg     string        // RS256, ES256 or EdDSA: the kind of key GenerateKey makes
	GenerateKey    bool          // generate and persist a key when there is none (dev/embedded)
	CodeSecret     []byte        // HMAC key for one-time codes, at least 32 bytes; no default
	CodeTTL        time.Duration // one-time code lifetime, 1s to 24h
	Kafka          kafka.Config
	Topic          string        // mail requests topic
	UsersTopic     string        // account changes (user.updated, user.deleted) others follow
	OutboxPoll     time.Duration // the relay's safety-net poll, more than 0

	RefreshTTL     time.Duration  // a refresh token's life, renewed by each refresh; 1m to a year
	RefreshGrace   time.Duration  // a rotated token repeated this soon gets the same answer; 0 is off, at most 1m
	AdminEmails    []string       // addresses that hold the admin role by configuration
	Throttle       ThrottleConfig // attempt limits per client IP and per account
	TrustedProxies ProxyList      // proxies whose X-Forwarded-For is believed

	// HashConcurrency bounds the password hashes computed at once (each
	// holds 19 MiB); HashWait is how long a request waits for a slot before
	// it is refused with 503 (0s: not at all).
	HashConcurrency int
	HashWait        time.Duration

	// Tracing traces HTTP requests and the relay's publishes; nil is off.
	// LoadConfig leaves it nil: the binary sets it (launch.Service.Tracing).
	Tracing *telemetry.Tracing
}

// ThrottleConfig says where the token buckets live and how big they are.
type ThrottleConfig struct {
	// Store is "memory" (each replica counts on its own), "database"
	// (auth's database: one count for all replicas) or "off".
	Store string
	// Limits replace DefaultLimits for the actions they name; a zero Rule
	// in them is no limit for that scope.
	Limits map[Action]Limits
}

// DefaultConfig is the configuration with every default and nothing else:
// the only place auth's defaults are written. It is not valid as it is:
// CodeSecret has no default.
func DefaultConfig() Config {
	return Config{
		DatabaseURL:    "sqlite:data/auth.db",
		Issuer:         "http://127.0.0.1:8081",
		Audience:       "kinoteka",
		AccessTTL:      15 * time.Minute,
		SigningKeyFile: "data/auth-signing-key.pem",
		SigningAlg:     tokens.RS256,
		CodeTTL:        10 * time.Minute,
		Kafka:          kafka.Config{Brokers: []string{kafka.DefaultBrokers}, ClientID: "kinoteka-auth"},
		Topic:          events.Topic,
		UsersTopic:     events.UsersTopic,
		OutboxPoll:     time.Second,
		// Each refresh starts a new 30 days, so an app used monthly stays
		// logged in.
		RefreshTTL: 30 * 24 * time.Hour,
		// Enough for a client to retry a refresh whose answer it lost.
		RefreshGrace: 10 * time.Second,
		Throttle:     ThrottleConfig{Store: "memory"},
		// Hashing is CPU-bound: one hash per core keeps every core busy,
		// and more would only hold more memory.
		HashConcurrency: runtime.GOMAXPROCS(0),
		// Long enough to absorb a burst (two cores clear about 55 hashes
		// a second), short of what a person would sit through.
		HashWait: 5 * time.Second,
	}
}

// minSecretLen is the least CodeSecret length: 256 bits for HMAC-SHA256.
const minSecretLen = 32

// maxHashConcurrency bounds HashConcurrency: 1,024 hashes of 19 MiB are
// already 19 GiB.
const maxHashConcurrency = 1024

// LoadConfig is DefaultConfig with the environment variables (see the table
// in the package documentation) applied on top, validated. The error names
// every bad variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	env := config.NewEnv(getenv)
	env.String("AUTH_DATABASE_URL", &cfg.DatabaseURL)
	env.Func("AUTH_ISSUER", func(v string) error {
		cfg.Issuer = strings.TrimSuffix(v, "/") // discovery URLs would have //
		return nil
	})
	env.String("AUTH_AUDIENCE", &cfg.Audience)
	env.Duration("AUTH_ACCESS_TTL", &cfg.AccessTTL)
	env.String("AUTH_SIGNING_KEYS_DIR", &cfg.SigningKeysDir)
	if cfg.SigningKeysDir != "" {
		// A folder of keys replaces the default file; both set is an error
		// Validate names.
		cfg.SigningKeyFile = ""
	}
	env.String("AUTH_SIGNING_KEY_FILE", &cfg.SigningKeyFile)
	env.String("AUTH_SIGNING_ALG", &cfg.SigningAlg)
	env.Bool("AUTH_GENERATE_KEY", &cfg.GenerateKey)
	env.Bytes("AUTH_CODE_SECRET", &cfg.CodeSecret) // verbatim: spaces may be part of it
	env.Duration("AUTH_CODE_TTL", &cfg.CodeTTL)
	env.String("MAIL_TOPIC", &cfg.Topic)
	env.String("AUTH_USERS_TOPIC", &cfg.UsersTopic)
	env.Duration("AUTH_OUTBOX_POLL", &cfg.OutboxPoll)
	env.Duration("AUTH_REFRESH_TTL", &cfg.RefreshTTL)
	env.Duration("AUTH_REFRESH_GRACE", &cfg.RefreshGrace)
	env.List("AUTH_ADMIN_EMAILS", &cfg.AdminEmails)
	env.String("AUTH_THROTTLE_STORE", &cfg.Throttle.Store)
	for _, act := range Actions {
		env.Func("AUTH_THROTTLE_"+strings.ToUpper(string(act)), func(v string) error {
			l, err := parseLimits(v)
			if err != nil {
				return err
			}
			if cfg.Throttle.Limits == nil {
				cfg.Throttle.Limits = map[Action]Limits{}
			}
			cfg.Throttle.Limits[act] = l
			return nil
		})
	}
	env.Func("AUTH_TRUSTED_PROXIES", func(v string) error {
		l, err := parseProxyList(v)
		cfg.TrustedProxies = l
		return err
	})
	env.Int("AUTH_HASH_CONCURRENCY", &cfg.HashConcurrency)
	env.Duration("AUTH_HASH_WAIT", &cfg.HashWait)
	kafka.ReadEnv(env, &cfg.Kafka)
	if err := env.Err(); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Validate checks c however it was built; each message names the field and
// its variable. It changes nothing: a caller building Config by hand starts
// from DefaultConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad(`DatabaseURL (AUTH_DATABASE_URL) must start with "sqlite:" or "postgres://"`)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
		bad("Issuer (AUTH_ISSUER) must be an http(s) URL without query, fragment or trailing slash, such as http://127.0.0.1:8081")
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
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Minute {
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
	if c.HashConcurrency < 1 || c.HashConcurrency > maxHashConcurrency {
		bad("HashConcurrency (AUTH_HASH_CONCURRENCY) must be between 1 and %d, got %d", maxHashConcurrency, c.HashConcurrency)
	}
	if c.HashWait < 0 || c.HashWait > time.Minute {
		bad("HashWait (AUTH_HASH_WAIT) must be between 0s (refuse at once) and 1m, got %s", c.HashWait)
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
	if c.UsersTopic == "" {
		bad("UsersTopic (AUTH_USERS_TOPIC) must not be empty")
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
		slog.String("users_topic", c.UsersTopic),
		slog.Duration("outbox_poll", c.OutboxPoll),
		slog.Duration("refresh_ttl", c.RefreshTTL),
		slog.Duration("refresh_grace", c.RefreshGrace),
		slog.Int("admin_emails", len(c.AdminEmails)),
		slog.String("throttle", c.Throttle.String()),
		slog.String("trusted_proxies", c.TrustedProxies.String()),
		slog.Int("hash_concurrency", c.HashConcurrency),
		slog.Duration("hash_wait", c.HashWait),
	)
}

// ProxyList is AUTH_TRUSTED_PROXIES: the proxies whose X-Forwarded-For auth
// believes. Prefixes are fixed addresses and ranges; Hosts are names looked
// up when auth starts and again while it runs (see proxyTrust), so a
// deployment whose proxy has no fixed address — a container, whose address
// changes when it is recreated — can trust exactly that proxy rather than
// the whole network it lives on.
type ProxyList struct {
	Prefixes []netip.Prefix
	Hosts    []string
}

// Empty reports whether no proxy is trusted (the default).
func (l ProxyList) Empty() bool { return len(l.Prefixes) == 0 && len(l.Hosts) == 0 }

// String lists the entries as AUTH_TRUSTED_PROXIES would.
func (l ProxyList) String() string {
	parts := make([]string, 0, len(l.Prefixes)+len(l.Hosts))
	for _, p := range l.Prefixes {
		parts = append(parts, p.String())
	}
	return strings.Join(append(parts, l.Hosts...), ",")
}

// parseProxyList reads a comma-separated list of addresses, CIDR prefixes
// and host names.
func parseProxyList(v string) (ProxyList, error) {
	var l ProxyList
	for item := range strings.SplitSeq(v, ",") {
		s := strings.TrimSpace(item)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			l.Prefixes = append(l.Prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			l.Prefixes = append(l.Prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if !isHostName(s) {
			return l, fmt.Errorf("%q is neither an address, a CIDR prefix nor a host name", s)
		}
		l.Hosts = append(l.Hosts, strings.ToLower(s))
	}
	return l, nil
}

// isHostName accepts a DNS name of letters, digits, hyphens and dots (RFC
// 1123 labels), so a typo such as "10.0.0.0/33" is refused rather than
// looked up as a name.
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	allDigits := true
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= '0' && r <= '9':
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
				allDigits = false
			default:
				return false
			}
		}
	}
	return !allDigits // "10.0.0" is a mistyped address, not a name
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

// adminEmails normalises the configured admin addresses (Validate has
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
