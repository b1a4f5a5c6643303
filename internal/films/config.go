package films

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// Config is everything the films service needs to run. Zero values of the
// optional fields mean their defaults.
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
	// their exp), which spares the RSA check on repeat requests: 0 means
	// DefaultTokenCacheSize, negative turns it off.
	TokenCacheSize int
	// ReadCacheTTL is how long public catalogue answers are kept in memory
	// and how long clients may reuse them (Cache-Control: max-age): 0 means
	// DefaultReadCacheTTL, negative turns the cache off (answers then say
	// "no-cache", and ETags still give 304s).
	ReadCacheTTL time.Duration
	// Algorithms is the allow-list of JWS algorithms accepted on access
	// tokens; empty means RS256 alone.
	Algorithms []string
	// Tracing traces HTTP requests, continuing a caller's traceparent; nil
	// is off. LoadConfig leaves it nil: the binary sets it
	// (launch.Service.Tracing).
	Tracing *telemetry.Tracing
}

// Defaults of LoadConfig.
const (
	DefaultDatabaseURL = "sqlite:data/films.db"
	DefaultJWKSURL     = "http://127.0.0.1:8081/.well-known/jwks.json"
	DefaultIssuer      = "http://127.0.0.1:8081"
	DefaultAudience    = "kinoteka"

	DefaultTokenCacheSize = 10_000
	DefaultReadCacheTTL   = 5 * time.Second
)

// LoadConfig reads FILMS_DATABASE_URL, FILMS_JWKS_URL, FILMS_ISSUER,
// FILMS_AUDIENCE, FILMS_SEED_DEMO, FILMS_JWT_PUBLIC_KEY_FILE,
// FILMS_TOKEN_CACHE_SIZE and FILMS_READ_CACHE_TTL, with defaults for a local
// run, and validates them. Every error names its variable. With a public key
// file and no FILMS_JWKS_URL, films trusts the file's keys alone and never
// fetches a JWK set; "0" turns either cache off.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := Config{
		DatabaseURL:   get("FILMS_DATABASE_URL", DefaultDatabaseURL),
		Issuer:        get("FILMS_ISSUER", DefaultIssuer),
		Audience:      get("FILMS_AUDIENCE", DefaultAudience),
		PublicKeyFile: get("FILMS_JWT_PUBLIC_KEY_FILE", ""),
	}
	jwksDefault := DefaultJWKSURL
	if cfg.PublicKeyFile != "" {
		jwksDefault = ""
	}
	cfg.JWKSURL = get("FILMS_JWKS_URL", jwksDefault)
	var errs []error
	seed, err := strconv.ParseBool(get("FILMS_SEED_DEMO", "true"))
	if err != nil {
		errs = append(errs, errors.New(`FILMS_SEED_DEMO: must be "true" or "false"`))
	}
	cfg.SeedDemo = seed
	if n, err := strconv.Atoi(get("FILMS_TOKEN_CACHE_SIZE", strconv.Itoa(DefaultTokenCacheSize))); err != nil || n < 0 {
		errs = append(errs, errors.New("FILMS_TOKEN_CACHE_SIZE: must be a whole number of tokens, 0 to turn the cache off"))
	} else if cfg.TokenCacheSize = n; n == 0 {
		cfg.TokenCacheSize = -1
	}
	ttl := get("FILMS_READ_CACHE_TTL", DefaultReadCacheTTL.String())
	if d, err := time.ParseDuration(ttl); ttl == "0" || (err == nil && d == 0) {
		cfg.ReadCacheTTL = -1
	} else if err != nil || d < 0 || d > time.Hour {
		errs = append(errs, errors.New(`FILMS_READ_CACHE_TTL: must be a duration up to 1h, e.g. "5s", or 0 to turn the cache off`))
	} else {
		cfg.ReadCacheTTL = d
	}
	if v := get("FILMS_ALGORITHMS", ""); v != "" {
		algs, err := tokens.ParseAlgorithms(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("FILMS_ALGORITHMS: %w", err))
		}
		cfg.Algorithms = algs
	}
	errs = append(errs, cfg.validate(map[string]string{
		"DatabaseURL": "FILMS_DATABASE_URL", "JWKSURL": "FILMS_JWKS_URL",
		"Issuer": "FILMS_ISSUER", "Audience": "FILMS_AUDIENCE", "PublicKeyFile": "FILMS_JWT_PUBLIC_KEY_FILE",
	}))
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// validate checks every field; names maps a field to what the message calls
// it (the environment variable for LoadConfig, the field itself for Run).
func (c Config) validate(names map[string]string) error {
	name := func(field string) string {
		if n, ok := names[field]; ok {
			return n
		}
		return "films: " + field
	}
	var errs []error
	switch {
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if _, err := url.Parse(c.DatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a valid URL", name("DatabaseURL")))
		}
	case strings.HasPrefix(c.DatabaseURL, "sqlite:") && len(strings.TrimPrefix(c.DatabaseURL, "sqlite:")) > 0:
	default:
		errs = append(errs, fmt.Errorf("%s: must be sqlite:PATH or postgres://…", name("DatabaseURL")))
	}
	switch u, err := url.Parse(c.JWKSURL); {
	case c.JWKSURL == "" && c.PublicKeyFile == "":
		errs = append(errs, fmt.Errorf("%s: must be set unless %s names a public key file", name("JWKSURL"), name("PublicKeyFile")))
	case c.JWKSURL == "":
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("%s: must be an http(s) URL, e.g. %s", name("JWKSURL"), DefaultJWKSURL))
	}
	if c.Issuer == "" {
		errs = append(errs, fmt.Errorf("%s: must not be empty", name("Issuer")))
	}
	if c.Audience == "" {
		errs = append(errs, fmt.Errorf("%s: must not be empty", name("Audience")))
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
