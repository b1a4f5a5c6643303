package films

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Config is everything the films service needs to run.
type Config struct {
	DatabaseURL string // "sqlite:PATH" or "postgres://…"
	JWKSURL     string // auth's JWK set
	Issuer      string // expected iss of access tokens
	Audience    string // expected aud of access tokens
	SeedDemo    bool   // load the embedded demo catalogue when the films table is empty
}

// Defaults of LoadConfig.
const (
	DefaultDatabaseURL = "sqlite:data/films.db"
	DefaultJWKSURL     = "http://127.0.0.1:8081/.well-known/jwks.json"
	DefaultIssuer      = "http://127.0.0.1:8081"
	DefaultAudience    = "kinoteka"
)

// LoadConfig reads FILMS_DATABASE_URL, FILMS_JWKS_URL, FILMS_ISSUER,
// FILMS_AUDIENCE and FILMS_SEED_DEMO, with defaults for a local run, and
// validates them. Every error names its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := Config{
		DatabaseURL: get("FILMS_DATABASE_URL", DefaultDatabaseURL),
		JWKSURL:     get("FILMS_JWKS_URL", DefaultJWKSURL),
		Issuer:      get("FILMS_ISSUER", DefaultIssuer),
		Audience:    get("FILMS_AUDIENCE", DefaultAudience),
	}
	var errs []error
	seed, err := strconv.ParseBool(get("FILMS_SEED_DEMO", "true"))
	if err != nil {
		errs = append(errs, errors.New(`FILMS_SEED_DEMO: must be "true" or "false"`))
	}
	cfg.SeedDemo = seed
	errs = append(errs, cfg.validate(map[string]string{
		"DatabaseURL": "FILMS_DATABASE_URL", "JWKSURL": "FILMS_JWKS_URL",
		"Issuer": "FILMS_ISSUER", "Audience": "FILMS_AUDIENCE",
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
	if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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
