package films

import (
	"kinoteka/internal/kafka"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	// The documented defaults (docs/operations.md), all in DefaultConfig.
	cfg, err := LoadConfig(envOf())
	want := Config{DatabaseURL: "sqlite:data/films.db", JWKSURL: "http://127.0.0.1:8081/.well-known/jwks.json",
		Issuer: "http://127.0.0.1:8081", Audience: "kinoteka", SeedDemo: true,
		TokenCacheSize: 10_000, ReadCacheTTL: 5 * time.Second, Algorithms: []string{"RS256"},
		ConsumeUsers: true, Kafka: kafka.Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "kinoteka-films"},
		UsersTopic: "users", UsersGroup: "films"}
	if err != nil || !reflect.DeepEqual(cfg, want) || !reflect.DeepEqual(DefaultConfig(), want) {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = LoadConfig(envOf("FILMS_DATABASE_URL", "postgres://films:secret@db:5432/films", "FILMS_JWKS_URL", "https://auth.example/.well-known/jwks.json",
		"FILMS_ISSUER", "https://auth.example", "FILMS_AUDIENCE", "kino", "FILMS_SEED_DEMO", "false",
		"FILMS_JWT_PUBLIC_KEY_FILE", "/keys/auth.pem", "FILMS_TOKEN_CACHE_SIZE", "500", "FILMS_READ_CACHE_TTL", "30s",
		"FILMS_ALGORITHMS", "RS256, EdDSA", "FILMS_CONSUME_USERS", "false", "FILMS_USERS_TOPIC", "accounts",
		"FILMS_USERS_GROUP", "films-eu", "KAFKA_BROKERS", "k1:9092,k2:9092"))
	want = Config{DatabaseURL: "postgres://films:secret@db:5432/films", JWKSURL: "https://auth.example/.well-known/jwks.json",
		Issuer: "https://auth.example", Audience: "kino", SeedDemo: false,
		PublicKeyFile: "/keys/auth.pem", TokenCacheSize: 500, ReadCacheTTL: 30 * time.Second,
		Algorithms: []string{"RS256", "EdDSA"}, ConsumeUsers: false,
		Kafka:      kafka.Config{Brokers: []string{"k1:9092", "k2:9092"}, ClientID: "kinoteka-films"},
		UsersTopic: "accounts", UsersGroup: "films-eu"}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Errorf("set: %+v, %v", cfg, err)
	}
	// A key file without a JWK set URL: static keys alone. Zero means
	// zero: "0" turns each cache off, and stays 0 (off) all the way down.
	cfg, err = LoadConfig(envOf("FILMS_JWT_PUBLIC_KEY_FILE", "/keys/auth.pem", "FILMS_TOKEN_CACHE_SIZE", "0", "FILMS_READ_CACHE_TTL", "0"))
	if err != nil || cfg.JWKSURL != "" || cfg.PublicKeyFile != "/keys/auth.pem" || cfg.TokenCacheSize != 0 || cfg.ReadCacheTTL != 0 {
		t.Errorf("static keys, caches off: %+v, %v", cfg, err)
	}
	if cfg, err := LoadConfig(envOf("FILMS_READ_CACHE_TTL", "0s")); err != nil || cfg.ReadCacheTTL != 0 {
		t.Errorf(`FILMS_READ_CACHE_TTL=0s: %v, %v`, cfg.ReadCacheTTL, err)
	}
	// Any variable may come from a file (a Docker secret).
	secret := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(secret, []byte("postgres://films:s3cret@db/films\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(envOf("FILMS_DATABASE_URL_FILE", secret)); err != nil || cfg.DatabaseURL != "postgres://films:s3cret@db/films" {
		t.Errorf("FILMS_DATABASE_URL_FILE: %q, %v", cfg.DatabaseURL, err)
	}

	for _, tc := range []struct {
		env     []string
		mention []string
	}{
		{[]string{"FILMS_DATABASE_URL", "mysql://x"}, []string{"FILMS_DATABASE_URL"}},
		{[]string{"FILMS_DATABASE_URL", "sqlite:"}, []string{"FILMS_DATABASE_URL"}},
		{[]string{"FILMS_JWKS_URL", "ftp://auth/jwks"}, []string{"FILMS_JWKS_URL"}},
		{[]string{"FILMS_JWKS_URL", "/jwks.json"}, []string{"FILMS_JWKS_URL"}},
		{[]string{"FILMS_SEED_DEMO", "yes please"}, []string{"FILMS_SEED_DEMO"}},
		{[]string{"FILMS_SEED_DEMO", "maybe", "FILMS_JWKS_URL", "nope"}, []string{"FILMS_SEED_DEMO", "FILMS_JWKS_URL"}},
		{[]string{"FILMS_TOKEN_CACHE_SIZE", "-1"}, []string{"FILMS_TOKEN_CACHE_SIZE"}},
		{[]string{"FILMS_TOKEN_CACHE_SIZE", "many"}, []string{"FILMS_TOKEN_CACHE_SIZE"}},
		{[]string{"FILMS_READ_CACHE_TTL", "5"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_READ_CACHE_TTL", "-1s"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_READ_CACHE_TTL", "2h"}, []string{"FILMS_READ_CACHE_TTL"}},
		{[]string{"FILMS_ALGORITHMS", "HS256"}, []string{"FILMS_ALGORITHMS"}},
		{[]string{"FILMS_ALGORITHMS", "none"}, []string{"FILMS_ALGORITHMS"}},
		{[]string{"FILMS_DATABASE_URL_FILE", "/nonexistent/secret"}, []string{"FILMS_DATABASE_URL_FILE"}},
	} {
		_, err := LoadConfig(envOf(tc.env...))
		if err == nil {
			t.Errorf("%v: accepted", tc.env)
			continue
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%v: error %q does not name %s", tc.env, err, m)
			}
		}
	}
	if got := redactedDatabaseURL("postgres://films:secret@db:5432/films"); strings.Contains(got, "secret") {
		t.Errorf("redacted URL %q shows the password", got)
	}
}

// Validate is the one check, for a Config built in code (the embedded
// mode) as for one loaded from the environment: it fills in nothing and
// names the variable of every bad field, all at once.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	off := DefaultConfig()
	off.TokenCacheSize, off.ReadCacheTTL = 0, 0
	if err := off.Validate(); err != nil {
		t.Errorf("caches off: %v", err)
	}
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("the zero Config passed")
	}
	for _, name := range []string{"FILMS_DATABASE_URL", "FILMS_JWKS_URL", "FILMS_ISSUER", "FILMS_AUDIENCE", "FILMS_ALGORITHMS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("zero Config: %q does not name %s", err, name)
		}
	}
	bad := DefaultConfig()
	bad.TokenCacheSize, bad.ReadCacheTTL, bad.Algorithms = -1, -time.Second, []string{"RS256", "HS256"}
	err = bad.Validate()
	for _, name := range []string{"FILMS_TOKEN_CACHE_SIZE", "FILMS_READ_CACHE_TTL", `FILMS_ALGORITHMS: "HS256"`} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("negative caches, HS256: %v does not name %s", err, name)
		}
	}
}
