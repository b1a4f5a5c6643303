package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"kinoteka/internal/config"
	"kinoteka/internal/telemetry"
)

// Config is everything the web service needs. DefaultConfig holds every
// default; LoadConfig applies the WEB_* variables on top.
type Config struct {
	AuthURL  string // auth's public HTTP API, e.g. http://127.0.0.1:8081
	FilmsURL string // films' public HTTP API, e.g. http://127.0.0.1:8082
	// SessionKey seals the session cookie (AES-256-GCM under a key derived
	// from it). At least 32 bytes; every replica needs the same one, and
	// changing it signs everybody out.
	SessionKey []byte
	// SecureCookies marks the cookies Secure even when a request arrives
	// over plain HTTP (a TLS-terminating proxy in front). A request over
	// TLS gets Secure cookies regardless.
	SecureCookies bool
	// InboxURL, when set, is linked from the code pages so a person can
	// read the mail with their code (the embedded mail catcher); "" in
	// production.
	InboxURL string
	// APITimeout bounds each call to auth or films.
	APITimeout time.Duration
	// Tracing traces requests; nil is off (set by the binary).
	Tracing *telemetry.Tracing
	// Clock is the time sessions are judged by; nil is the system clock.
	// Tests move it to make access tokens look old.
	Clock func() time.Time
}

// MinSessionKey is the shortest WEB_SESSION_KEY accepted.
const MinSessionKey = 32

// DefaultConfig is a local run beside auth and films on their default
// ports. It has no session key: one must be given.
func DefaultConfig() Config {
	return Config{
		AuthURL:    "http://127.0.0.1:8081",
		FilmsURL:   "http://127.0.0.1:8082",
		APITimeout: 10 * time.Second,
	}
}

// LoadConfig reads WEB_AUTH_URL, WEB_FILMS_URL, WEB_SESSION_KEY (or
// WEB_SESSION_KEY_FILE), WEB_SECURE_COOKIES, WEB_INBOX_URL and
// WEB_API_TIMEOUT over DefaultConfig, and validates the result. Every error
// names its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg, _, err := loadConfig(getenv)
	return cfg, err
}

func loadConfig(getenv func(string) string) (Config, []string, error) {
	cfg := DefaultConfig()
	env := config.NewEnv(getenv)
	env.String("WEB_AUTH_URL", &cfg.AuthURL)
	env.String("WEB_FILMS_URL", &cfg.FilmsURL)
	env.Bytes("WEB_SESSION_KEY", &cfg.SessionKey)
	env.Bool("WEB_SECURE_COOKIES", &cfg.SecureCookies)
	env.String("WEB_INBOX_URL", &cfg.InboxURL)
	env.Duration("WEB_API_TIMEOUT", &cfg.APITimeout)
	if err := env.Err(); err != nil {
		return Config{}, env.Read(), err
	}
	return cfg, env.Read(), cfg.Validate()
}

// Validate reports every bad field at once, each by its variable's name.
func (c Config) Validate() error {
	var errs []error
	for _, u := range []struct{ name, value string }{{"WEB_AUTH_URL", c.AuthURL}, {"WEB_FILMS_URL", c.FilmsURL}} {
		if err := httpURL(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if c.InboxURL != "" {
		if err := httpURL(c.InboxURL); err != nil {
			errs = append(errs, fmt.Errorf("WEB_INBOX_URL: %w (or leave it empty)", err))
		}
	}
	if len(c.SessionKey) < MinSessionKey {
		errs = append(errs, fmt.Errorf("WEB_SESSION_KEY: must be at least %d bytes (e.g. openssl rand -hex 32); got %d", MinSessionKey, len(c.SessionKey)))
	}
	if c.APITimeout <= 0 {
		errs = append(errs, errors.New("WEB_API_TIMEOUT: must be a positive duration such as 10s"))
	}
	return errors.Join(errs...)
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL such as http://127.0.0.1:8081", s)
	}
	return nil
}

// LogValue is the configuration for the start-up log line, the key masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("auth_url", c.AuthURL),
		slog.String("films_url", c.FilmsURL),
		slog.String("session_key", strings.Repeat("*", min(len(c.SessionKey), 8))),
		slog.Bool("secure_cookies", c.SecureCookies),
		slog.String("inbox_url", c.InboxURL),
		slog.Duration("api_timeout", c.APITimeout),
	)
}
