package auth

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

const secret32 = "0123456789abcdef0123456789abcdef"

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{"AUTH_CODE_SECRET": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.DatabaseURL != "sqlite:data/auth.db", cfg.Issuer != "http://127.0.0.1:8081", cfg.Audience != "kinoteka",
		cfg.SigningKeyFile != "data/auth-signing-key.pem", cfg.GenerateKey, cfg.Topic != "mail.requests":
		t.Errorf("defaults = %+v", cfg)
	case cfg.AccessTTL != 15*time.Minute, cfg.CodeTTL != 10*time.Minute, cfg.OutboxPoll != time.Second:
		t.Errorf("default durations = %s %s %s", cfg.AccessTTL, cfg.CodeTTL, cfg.OutboxPoll)
	case !slices.Equal(cfg.Kafka.Brokers, []string{"127.0.0.1:9092"}), cfg.Kafka.TLS, cfg.Kafka.SASL != "":
		t.Errorf("default kafka = %+v", cfg.Kafka)
	case string(cfg.CodeSecret) != secret32:
		t.Error("secret not taken verbatim")
	}
}

func TestLoadConfigReadsEveryVariable(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{
		"AUTH_DATABASE_URL":     "postgres://auth:pw@db/auth",
		"AUTH_ISSUER":           "https://auth.example.com/",
		"AUTH_AUDIENCE":         "films",
		"AUTH_ACCESS_TTL":       "5m",
		"AUTH_SIGNING_KEY_FILE": "/keys/k.pem",
		"AUTH_GENERATE_KEY":     "true",
		"AUTH_CODE_SECRET":      " " + secret32,
		"AUTH_CODE_TTL":         "3m",
		"KAFKA_BROKERS":         " k1:9092, k2:9092 ,",
		"KAFKA_TLS":             "1",
		"KAFKA_SASL_MECHANISM":  "SCRAM-SHA-512",
		"KAFKA_SASL_USER":       "u",
		"KAFKA_SASL_PASSWORD":   "p",
		"MAIL_TOPIC":            "mail.v2",
		"AUTH_OUTBOX_POLL":      "250ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DatabaseURL: "postgres://auth:pw@db/auth", Issuer: "https://auth.example.com", Audience: "films",
		AccessTTL: 5 * time.Minute, SigningKeyFile: "/keys/k.pem", GenerateKey: true, CodeTTL: 3 * time.Minute,
		Topic: "mail.v2", OutboxPoll: 250 * time.Millisecond,
	}
	got := cfg
	got.CodeSecret, got.Kafka = nil, want.Kafka
	if !equalConfig(got, want) || string(cfg.CodeSecret) != " "+secret32 {
		t.Errorf("config = %+v", cfg)
	}
	k := cfg.Kafka
	if !slices.Equal(k.Brokers, []string{"k1:9092", "k2:9092"}) || !k.TLS || k.SASL != "scram-sha-512" || k.User != "u" || k.Password != "p" {
		t.Errorf("kafka = %+v", k)
	}
}

func equalConfig(a, b Config) bool {
	return a.DatabaseURL == b.DatabaseURL && a.Issuer == b.Issuer && a.Audience == b.Audience && a.AccessTTL == b.AccessTTL &&
		a.SigningKeyFile == b.SigningKeyFile && a.GenerateKey == b.GenerateKey && a.CodeTTL == b.CodeTTL &&
		a.Topic == b.Topic && a.OutboxPoll == b.OutboxPoll
}

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{}, "AUTH_CODE_SECRET"},
		{map[string]string{"AUTH_CODE_SECRET": "short"}, "AUTH_CODE_SECRET"},
		{map[string]string{"AUTH_ACCESS_TTL": "soon"}, "AUTH_ACCESS_TTL"},
		{map[string]string{"AUTH_ACCESS_TTL": "-1m"}, "AUTH_ACCESS_TTL"},
		{map[string]string{"AUTH_CODE_TTL": "10"}, "AUTH_CODE_TTL"},
		{map[string]string{"AUTH_OUTBOX_POLL": "0s"}, "AUTH_OUTBOX_POLL"},
		{map[string]string{"AUTH_GENERATE_KEY": "yes please"}, "AUTH_GENERATE_KEY"},
		{map[string]string{"KAFKA_TLS": "maybe"}, "KAFKA_TLS"},
		{map[string]string{"AUTH_DATABASE_URL": "mysql://x"}, "AUTH_DATABASE_URL"},
		{map[string]string{"AUTH_ISSUER": "auth.example.com"}, "AUTH_ISSUER"},
		{map[string]string{"KAFKA_BROKERS": " , "}, "KAFKA_BROKERS"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "gssapi"}, "KAFKA_SASL_MECHANISM"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "plain"}, "KAFKA_SASL_USER"},
		{map[string]string{"AUTH_SIGNING_ALG": "HS256"}, "AUTH_SIGNING_ALG"},
		{map[string]string{"AUTH_SIGNING_KEYS_DIR": "/keys", "AUTH_SIGNING_KEY_FILE": "/k.pem"}, "AUTH_SIGNING_KEYS_DIR"},
		{map[string]string{"AUTH_REFRESH_TTL": "10s"}, "AUTH_REFRESH_TTL"},
		{map[string]string{"AUTH_REFRESH_GRACE": "2m"}, "AUTH_REFRESH_GRACE"},
		{map[string]string{"AUTH_ADMIN_EMAILS": "boss@example.com, not-an-address"}, "AUTH_ADMIN_EMAILS"},
		{map[string]string{"AUTH_THROTTLE_STORE": "redis"}, "AUTH_THROTTLE_STORE"},
		{map[string]string{"AUTH_THROTTLE_LOGIN": "ip=lots"}, "AUTH_THROTTLE_LOGIN"},
		{map[string]string{"AUTH_THROTTLE_RESET": "account=5"}, "AUTH_THROTTLE_RESET"},
		{map[string]string{"AUTH_TRUSTED_PROXIES": "10.0.0.0/33"}, "AUTH_TRUSTED_PROXIES"},
		{map[string]string{"AUTH_TRUSTED_PROXIES": "10.0.0"}, "AUTH_TRUSTED_PROXIES"},
		{map[string]string{"AUTH_TRUSTED_PROXIES": "proxy, -web"}, "AUTH_TRUSTED_PROXIES"},
		{map[string]string{"AUTH_TRUSTED_PROXIES": "http://proxy"}, "AUTH_TRUSTED_PROXIES"},
		{map[string]string{"AUTH_HASH_CONCURRENCY": "many"}, "AUTH_HASH_CONCURRENCY"},
		{map[string]string{"AUTH_HASH_CONCURRENCY": "2000"}, "AUTH_HASH_CONCURRENCY"},
		{map[string]string{"AUTH_HASH_WAIT": "-1s"}, "AUTH_HASH_WAIT"},
		{map[string]string{"AUTH_HASH_WAIT": "2m"}, "AUTH_HASH_WAIT"},
	} {
		if _, ok := tc.vars["AUTH_CODE_SECRET"]; !ok && tc.want != "AUTH_CODE_SECRET" {
			tc.vars["AUTH_CODE_SECRET"] = secret32
		}
		_, err := LoadConfig(env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one naming %s", tc.vars, err, tc.want)
		}
	}
}

func TestConfigLogsNoSecrets(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{
		"AUTH_CODE_SECRET": secret32, "AUTH_DATABASE_URL": "postgres://auth:dbpassword@db/auth",
		"KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USER": "u", "KAFKA_SASL_PASSWORD": "kafkapassword",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", cfg)
	for _, secret := range []string{secret32, "dbpassword", "kafkapassword"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log line shows %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "postgres://auth:") {
		t.Errorf("the log line hides too much: %s", buf.String())
	}
}

func TestLoadConfigSessionAndThrottleVariables(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{
		"AUTH_CODE_SECRET":      secret32,
		"AUTH_SIGNING_KEYS_DIR": "/run/keys",
		"AUTH_SIGNING_ALG":      "EdDSA",
		"AUTH_REFRESH_TTL":      "168h",
		"AUTH_REFRESH_GRACE":    "0s",
		"AUTH_ADMIN_EMAILS":     " Boss@Example.com , ops@example.com,",
		"AUTH_THROTTLE_STORE":   "database",
		"AUTH_THROTTLE_LOGIN":   "ip=100/10m,account=off",
		"AUTH_TRUSTED_PROXIES":  "10.0.0.0/8, 192.0.2.1, Proxy, web.internal",
		"AUTH_HASH_CONCURRENCY": "3",
		"AUTH_HASH_WAIT":        "250ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.SigningKeysDir != "/run/keys" || cfg.SigningKeyFile != "" || cfg.SigningAlg != "EdDSA":
		t.Errorf("keys: dir %q file %q alg %q", cfg.SigningKeysDir, cfg.SigningKeyFile, cfg.SigningAlg)
	case cfg.RefreshTTL != 168*time.Hour || cfg.RefreshGrace != 0:
		t.Errorf("refresh ttl %s grace %s", cfg.RefreshTTL, cfg.RefreshGrace)
	case !slices.Equal(cfg.adminEmails(), []string{"boss@example.com", "ops@example.com"}):
		t.Errorf("admins = %v", cfg.adminEmails())
	case cfg.Throttle.Store != "database" || len(cfg.Throttle.Limits) != 1 ||
		cfg.Throttle.limits(ActLogin) != (Limits{IP: Rule{100, 10 * time.Minute}}) || cfg.Throttle.limits(ActRegister) != DefaultLimits[ActRegister]:
		t.Errorf("throttle = %+v", cfg.Throttle)
	case cfg.TrustedProxies.String() != "10.0.0.0/8,192.0.2.1/32,proxy,web.internal":
		t.Errorf("trusted proxies = %v", cfg.TrustedProxies)
	case cfg.HashConcurrency != 3 || cfg.HashWait != 250*time.Millisecond:
		t.Errorf("hash concurrency %d, wait %s", cfg.HashConcurrency, cfg.HashWait)
	}
	defaults, err := LoadConfig(env(map[string]string{"AUTH_CODE_SECRET": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	if defaults.SigningAlg != "RS256" || defaults.RefreshTTL != 30*24*time.Hour || defaults.RefreshGrace != 10*time.Second ||
		defaults.Throttle.Store != "memory" || !defaults.TrustedProxies.Empty() || len(defaults.AdminEmails) != 0 ||
		defaults.HashConcurrency != runtime.GOMAXPROCS(0) || defaults.HashWait != 5*time.Second {
		t.Errorf("defaults = %+v", defaults)
	}
	if s := defaults.Throttle.String(); !strings.Contains(s, "login:ip=30/10m,account=10/1h") {
		t.Errorf("throttle logged as %q", s)
	}
}

// LoadConfig without variables is DefaultConfig: there is no second place
// a default is written.
func TestLoadConfigStartsFromDefaultConfig(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{"AUTH_CODE_SECRET": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.CodeSecret = []byte(secret32)
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("LoadConfig = %+v\nDefaultConfig = %+v", cfg, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("DefaultConfig with a secret: %v", err)
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "AUTH_CODE_SECRET") ||
		strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("DefaultConfig().Validate() = %v, want only the missing AUTH_CODE_SECRET", err)
	}
}

// Zero means zero: a variable set to 0 is never turned back into its
// default. Where 0 is documented as off it is off; elsewhere it is refused.
func TestLoadConfigZeroMeansZero(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{
		"AUTH_CODE_SECRET":    secret32,
		"AUTH_REFRESH_GRACE":  "0s",
		"AUTH_THROTTLE_LOGIN": "ip=off,account=off",
		"AUTH_GENERATE_KEY":   "false",
		"AUTH_HASH_WAIT":      "0s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RefreshGrace != 0 {
		t.Errorf("AUTH_REFRESH_GRACE=0s gives %s, want 0 (off)", cfg.RefreshGrace)
	}
	if cfg.HashWait != 0 {
		t.Errorf("AUTH_HASH_WAIT=0s gives %s, want 0 (refuse at once)", cfg.HashWait)
	}
	if l := cfg.Throttle.limits(ActLogin); l != (Limits{}) {
		t.Errorf("AUTH_THROTTLE_LOGIN=ip=off,account=off gives %+v, want no limits", l)
	}
	for _, name := range []string{"AUTH_ACCESS_TTL", "AUTH_CODE_TTL", "AUTH_OUTBOX_POLL", "AUTH_REFRESH_TTL", "AUTH_HASH_CONCURRENCY"} {
		zero := "0s"
		if name == "AUTH_HASH_CONCURRENCY" {
			zero = "0"
		}
		_, err := LoadConfig(env(map[string]string{"AUTH_CODE_SECRET": secret32, name: zero}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=0s: err = %v, want one naming %s", name, err, name)
		}
	}
}

// A Config built by hand is taken as it is: Validate fills in nothing, so an
// empty one names every field it lacks.
func TestValidateFillsInNothing(t *testing.T) {
	err := Config{}.Validate()
	for _, name := range []string{"AUTH_DATABASE_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_ACCESS_TTL", "AUTH_SIGNING_ALG",
		"AUTH_REFRESH_TTL", "AUTH_THROTTLE_STORE", "AUTH_CODE_SECRET", "AUTH_CODE_TTL", "KAFKA_BROKERS", "MAIL_TOPIC", "AUTH_OUTBOX_POLL",
		"AUTH_HASH_CONCURRENCY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Config{}.Validate() = %v, want it to name %s", err, name)
		}
	}
	cfg := DefaultConfig()
	cfg.CodeSecret = []byte(secret32)
	cfg.Issuer = "http://auth.test/"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "AUTH_ISSUER") {
		t.Errorf("an issuer with a trailing slash: %v, want an error (discovery URLs would have //)", err)
	}
	cfg.Issuer, cfg.RefreshGrace = "http://auth.test", -time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "AUTH_REFRESH_GRACE") {
		t.Errorf("a negative grace: %v, want an error naming AUTH_REFRESH_GRACE", err)
	}
}

// Every variable may come from a file named by NAME_FILE, the code secret
// included (taken verbatim but for the file's final newline).
func TestLoadConfigReadsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(" "+secret32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(env(map[string]string{"AUTH_CODE_SECRET_FILE": path}))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.CodeSecret) != " "+secret32 {
		t.Errorf("secret from the file = %q", cfg.CodeSecret)
	}
}
