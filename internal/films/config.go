package films

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"kinoteka/internal/config"
	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// Config is everything the films service needs to run. DefaultConfig holds
// every default; a zero value means zero (a cache of size 0 is off), and Run
// takes the fields as they are.
type Config struct {
	DatabaseURL string // "sqlite:PATH" or "postgres://…"
	JWKSURL     string // auth's JWK set; "" only with PublicKeyFile: static keys alone
	Issuer      string // expected iss of access tokens
	Audience    string // expected aud of access tokens
	SeedDemo    bool   // load the embedded demo catalogue when the films table is empty

	// PublicKeyFile is a PEM file of RSA public keys trusted beside the JWK
	// set (or instead of it, when JWKSURL is ""): tokens keep verifying with
	// auth down even before films ever reached it.
	PublicKeyFile string
	// TokenCacheSize bounds the cache of verified tokens (by SHA-256, until
	// their exp), which spares the signature check on repeat requests; 0
	// turns the cache off.
	TokenCacheSize int
	// ReadCacheTTL is how long public catalogue answers are kept in memory
	// and how long clients may reuse them (Cache-Control: max-age), at most
	// an hour; 0 turns the cache off (answers then say "no-cache",
	// and ETags still give 304s).
	ReadCacheTTL time.Duration
	// Algorithms is the allow-list of JWS algorithms accepted on access
	// tokens (tokens.Algorithms); it must name at least one.
	Algorithms []string
	// ConsumeUsers keeps films' copy of account names and deletions from
	// the users topic (consumer.go); false serves without it (reviews show
	// the default names, deleted accounts' reviews stay).
	ConsumeUsers bool
	Kafka        kafka.Config // the cluster of the users topic
	UsersTopic   string       // dead letters go to events.DLQ(UsersTopic)
	UsersGroup   string       // films' consumer group: every replica shares it
	// Tracing traces HTTP requests, continuing a caller's traceparent; nil
	// is off. LoadConfig leaves it nil: the binary sets it
	// (launch.Service.Tracing).
	Tracing *telemetry.Tracing
}

// maxReadCacheTTL bounds ReadCacheTTL: an edit through one replica reaches
// the readers of every other within the TTL.
const maxReadCacheTTL = time.Hour

// DefaultConfig is films' configuration for a local run beside auth on its
// default port, and the only place its defaults live.
func DefaultConfig() Config {
	return Config{
		DatabaseURL:    "sqlite:data/films.db",
		JWKSURL:        "http://127.0.0.1:8081/.well-known/jwks.json",
		Issuer:         "http://127.0.0.1:8081",
		Audience:       "kinoteka",
		SeedDemo:       true,
		TokenCacheSize: 10_000,
		ReadCacheTTL:   5 * time.Second,
		Algorithms:     []string{tokens.RS256},
		ConsumeUsers:   true,
		Kafka:          kafka.Config{Brokers: []string{kafka.DefaultBrokers}, ClientID: "kinoteka-films"},
		UsersTopic:     events.UsersTopic,
		UsersGroup:     "films",
	}
}

// LoadConfig is DefaultConfig with the environment applied on top —
// FILMS_DATABASE_URL, FILMS_JWKS_URL, FILMS_ISSUER, FILMS_AUDIENCE,
// FILMS_SEED_DEMO, FILMS_JWT_PUBLIC_KEY_FILE, FILMS_ALGORITHMS,
// FILMS_TOKEN_CACHE_SIZE, FILMS_READ_CACHE_TTL, FILMS_CONSUME_USERS,
// FILMS_USERS_TOPIC, FILMS_USERS_GROUP and the shared KAFKA_* variables
// (kafka.ReadEnv) (each also as NAME_FILE) —
// validated. Every error names its variable. With a public key file and no
// FILMS_JWKS_URL, films trusts the file's keys alone and never fetches a JWK
// set; "0" turns either cache off.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	env := config.NewEnv(getenv)
	env.String("FILMS_DATABASE_URL", &cfg.DatabaseURL)
	env.String("FILMS_JWT_PUBLIC_KEY_FILE", &cfg.PublicKeyFile)
	if cfg.PublicKeyFile != "" {
		cfg.JWKSURL = "" // the file's keys alone, unless FILMS_JWKS_URL names a set too
	}
	env.String("FILMS_JWKS_URL", &cfg.JWKSURL)
	env.String("FILMS_ISSUER", &cfg.Issuer)
	env.String("FILMS_AUDIENCE", &cfg.Audience)
	env.Bool("FILMS_SEED_DEMO", &cfg.SeedDemo)
	env.Func("FILMS_ALGORITHMS", func(v string) error {
		algs, err := tokens.ParseAlgorithms(v)
		if err != nil {
			return err
		}
		cfg.Algorithms = algs
		return nil
	})
	env.Int("FILMS_TOKEN_CACHE_SIZE", &cfg.TokenCacheSize)
	env.Duration("FILMS_READ_CACHE_TTL", &cfg.ReadCacheTTL)
	env.Bool("FILMS_CONSUME_USERS", &cfg.ConsumeUsers)
	env.String("FILMS_USERS_TOPIC", &cfg.UsersTopic)
	env.String("FILMS_USERS_GROUP", &cfg.UsersGroup)
	kafka.ReadEnv(env, &cfg.Kafka)
	return cfg, errors.Join(env.Err(), cfg.Validate())
}

// Validate checks every field and reports every problem at once, each under
// the environment variable that sets it.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	switch {
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if _, err := url.Parse(c.DatabaseURL); err != nil {
			bad("FILMS_DATABASE_URL", "not a valid URL")
		}
	case strings.HasPrefix(c.DatabaseURL, "sqlite:") && len(strings.TrimPrefix(c.DatabaseURL, "sqlite:")) > 0:
	default:
		bad("FILMS_DATABASE_URL", "must be sqlite:PATH or postgres://…")
	}
	switch u, err := url.Parse(c.JWKSURL); {
	case c.JWKSURL == "" && c.PublicKeyFile == "":
		bad("FILMS_JWKS_URL", "must be set unless FILMS_JWT_PUBLIC_KEY_FILE names a public key file")
	case c.JWKSURL == "":
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		bad("FILMS_JWKS_URL", "must be an http(s) URL, e.g. %s", DefaultConfig().JWKSURL)
	}
	if c.Issuer == "" {
		bad("FILMS_ISSUER", "must not be empty")
	}
	if c.Audience == "" {
		bad("FILMS_AUDIENCE", "must not be empty")
	}
	if len(c.Algorithms) == 0 {
		bad("FILMS_ALGORITHMS", "must name at least one of %s", strings.Join(tokens.Algorithms, ", "))
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(tokens.Algorithms, a) {
			bad("FILMS_ALGORITHMS", "%q is not one of %s", a, strings.Join(tokens.Algorithms, ", "))
		}
	}
	if c.TokenCacheSize < 0 {
		bad("FILMS_TOKEN_CACHE_SIZE", "must be a whole number of tokens, 0 to turn the cache off")
	}
	if c.ReadCacheTTL < 0 || c.ReadCacheTTL > maxReadCacheTTL {
		bad("FILMS_READ_CACHE_TTL", `must be a duration up to 1h, e.g. "5s", or 0 to turn the cache off`)
	}
	if c.ConsumeUsers {
		if err := c.Kafka.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.UsersTopic == "" {
			bad("FILMS_USERS_TOPIC", "must name a topic (or set FILMS_CONSUME_USERS=false)")
		}
		if c.UsersGroup == "" {
			bad("FILMS_USERS_GROUP", "must name a consumer group")
		}
	}
	return errors.Join(errs...)
}

// redactedDatabaseURL hides a PostgreSQL password for the log.
func redactedDatabaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
