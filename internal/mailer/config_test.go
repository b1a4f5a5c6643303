package mailer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The documented defaults, and DefaultConfig is where they come from.
	if strings.Join(cfg.Kafka.Brokers, ",") != "127.0.0.1:9092" || cfg.Kafka.ClientID != "kinoteka-mailer" || cfg.Topic != "mail.requests" || cfg.Group != "kinoteka-mailer" {
		t.Errorf("kafka defaults = %+v, topic %q, group %q", cfg.Kafka, cfg.Topic, cfg.Group)
	}
	s := cfg.SMTP
	if s.Addr != "127.0.0.1:1025" || s.Security != SecurityStartTLS || s.From != "Kinoteka <no-reply@kinoteka.local>" || s.Timeout != 10*time.Second ||
		s.Connections != 4 || s.MessagesPerConnection != 100 {
		t.Errorf("smtp defaults = %+v", s)
	}
	if cfg.SessionTimeout != 6*time.Second || cfg.InstanceID != "" {
		t.Errorf("session timeout %v, instance id %q", cfg.SessionTimeout, cfg.InstanceID)
	}
	if cfg.DatabaseURL != "sqlite:data/mailer.db" || cfg.MaxAttempts != 10 || cfg.LogRetention != 7*24*time.Hour {
		t.Errorf("database %q, max attempts %d, retention %v", cfg.DatabaseURL, cfg.MaxAttempts, cfg.LogRetention)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("LoadConfig with nothing set = %+v, DefaultConfig() = %+v", cfg, DefaultConfig())
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig() is not valid: %v", err)
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{
		"KAFKA_BROKERS":                "k1:9092, k2:9092,",
		"KAFKA_TLS":                    "true",
		"KAFKA_SASL_MECHANISM":         "SCRAM-SHA-512",
		"KAFKA_SASL_USER":              "u",
		"KAFKA_SASL_PASSWORD":          "p",
		"MAIL_TOPIC":                   "mail.v2",
		"MAILER_GROUP":                 "g",
		"MAILER_SESSION_TIMEOUT":       "20s",
		"MAILER_INSTANCE_ID":           "mailer-1",
		"SMTP_ADDR":                    "smtp.example.com:465",
		"SMTP_SECURITY":                "TLS",
		"SMTP_USERNAME":                "mailer",
		"SMTP_PASSWORD":                "secret",
		"SMTP_CA_FILE":                 "/etc/ca.pem",
		"SMTP_SERVER_NAME":             "mx.example.com",
		"SMTP_FROM":                    "Кинотека <robot@example.com>",
		"SMTP_TIMEOUT":                 "3s",
		"SMTP_CONNECTIONS":             "8",
		"SMTP_MESSAGES_PER_CONNECTION": "50",
		"MAILER_DATABASE_URL":          "postgres://mailer:pw@db/mailer",
		"MAILER_MAX_ATTEMPTS":          "3",
		"MAILER_LOG_RETENTION":         "48h",
		"MAILER_PROCS":                 "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "k1:9092,k2:9092" || !cfg.Kafka.TLS || cfg.Kafka.SASL != "scram-sha-512" ||
		cfg.Topic != "mail.v2" || cfg.Group != "g" || cfg.SessionTimeout != 20*time.Second || cfg.InstanceID != "mailer-1" {
		t.Errorf("kafka = %+v", cfg.Kafka)
	}
	want := SMTPConfig{Addr: "smtp.example.com:465", Security: SecurityTLS, Username: "mailer", Password: "secret",
		CAFile: "/etc/ca.pem", ServerName: "mx.example.com", From: "Кинотека <robot@example.com>", Timeout: 3 * time.Second,
		Connections: 8, MessagesPerConnection: 50}
	if cfg.SMTP != want {
		t.Errorf("smtp = %+v, want %+v", cfg.SMTP, want)
	}
	if cfg.DatabaseURL != "postgres://mailer:pw@db/mailer" || cfg.MaxAttempts != 3 || cfg.LogRetention != 48*time.Hour || cfg.Procs != 0 {
		t.Errorf("database %q, max attempts %d, retention %v, procs %d", cfg.DatabaseURL, cfg.MaxAttempts, cfg.LogRetention, cfg.Procs)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // a substring of the error
	}{
		{"bad security", map[string]string{"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"},
		{"bad address", map[string]string{"SMTP_ADDR": "localhost"}, "SMTP_ADDR"},
		{"bad timeout", map[string]string{"SMTP_TIMEOUT": "ten"}, "SMTP_TIMEOUT"},
		{"negative timeout", map[string]string{"SMTP_TIMEOUT": "-1s"}, "SMTP_TIMEOUT"},
		{"bad from", map[string]string{"SMTP_FROM": "not an address"}, "SMTP_FROM"},
		{"user without password", map[string]string{"SMTP_USERNAME": "u"}, "SMTP_PASSWORD"},
		{"credentials in clear to a remote host", map[string]string{"SMTP_SECURITY": "plain", "SMTP_ADDR": "smtp.example.com:25", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"}, "in clear"},
		{"bad kafka tls", map[string]string{"KAFKA_TLS": "maybe"}, "KAFKA_TLS"},
		{"unknown sasl", map[string]string{"KAFKA_SASL_MECHANISM": "gssapi"}, "KAFKA_SASL_MECHANISM"},
		{"sasl without user", map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-256"}, "KAFKA_SASL_USER"},
		{"sasl plain without tls", map[string]string{"KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USER": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_TLS"},
		{"bad connections", map[string]string{"SMTP_CONNECTIONS": "many"}, "SMTP_CONNECTIONS"},
		{"no connections", map[string]string{"SMTP_CONNECTIONS": "-1"}, "SMTP_CONNECTIONS"},
		{"bad messages per connection", map[string]string{"SMTP_MESSAGES_PER_CONNECTION": "-5"}, "SMTP_MESSAGES_PER_CONNECTION"},
		{"bad max attempts", map[string]string{"MAILER_MAX_ATTEMPTS": "-1"}, "MAILER_MAX_ATTEMPTS"},
		{"bad retention", map[string]string{"MAILER_LOG_RETENTION": "forever"}, "MAILER_LOG_RETENTION"},
		{"short retention", map[string]string{"MAILER_LOG_RETENTION": "5m"}, "MAILER_LOG_RETENTION"},
		{"negative procs", map[string]string{"MAILER_PROCS": "-1"}, "MAILER_PROCS"},
		{"too many procs", map[string]string{"MAILER_PROCS": "1000"}, "MAILER_PROCS"},
		{"bad session timeout", map[string]string{"MAILER_SESSION_TIMEOUT": "soon"}, "MAILER_SESSION_TIMEOUT"},
		{"short session timeout", map[string]string{"MAILER_SESSION_TIMEOUT": "500ms"}, "MAILER_SESSION_TIMEOUT"},
		{"instance id with a space", map[string]string{"MAILER_INSTANCE_ID": "mailer 1"}, "MAILER_INSTANCE_ID"},
		// Zero means zero, never "the default": each is refused by name.
		{"zero timeout", map[string]string{"SMTP_TIMEOUT": "0s"}, "SMTP_TIMEOUT"},
		{"zero connections", map[string]string{"SMTP_CONNECTIONS": "0"}, "SMTP_CONNECTIONS"},
		{"zero messages per connection", map[string]string{"SMTP_MESSAGES_PER_CONNECTION": "0"}, "SMTP_MESSAGES_PER_CONNECTION"},
		{"zero max attempts", map[string]string{"MAILER_MAX_ATTEMPTS": "0"}, "MAILER_MAX_ATTEMPTS"},
		{"zero retention", map[string]string{"MAILER_LOG_RETENTION": "0s"}, "MAILER_LOG_RETENTION"},
		{"zero session timeout", map[string]string{"MAILER_SESSION_TIMEOUT": "0s"}, "MAILER_SESSION_TIMEOUT"},
		{"no brokers", map[string]string{"KAFKA_BROKERS": " , "}, "KAFKA_BROKERS"},
		// The original mailer's variables are checked too, by their names.
		{"original port not a number", map[string]string{"MAIL_HOST": "smtp.example.com", "MAIL_PORT": "smtp"}, "MAIL_PORT"},
		{"original port out of range", map[string]string{"MAIL_PORT": "70000"}, "MAIL_PORT"},
		{"original host with a port", map[string]string{"MAIL_HOST": "smtp.example.com:587"}, "MAIL_HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %s", err, tt.want)
			}
		})
	}

	// Plain with credentials is fine to a catcher on this machine.
	if _, err := LoadConfig(env(map[string]string{"SMTP_SECURITY": "plain", "SMTP_ADDR": "127.0.0.1:1025", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"})); err != nil {
		t.Errorf("plain to loopback with credentials: %v", err)
	}
	// Every problem is reported at once.
	_, err := LoadConfig(env(map[string]string{"SMTP_SECURITY": "ssl", "SMTP_TIMEOUT": "x"}))
	if err == nil || !strings.Contains(err.Error(), "SMTP_SECURITY") || !strings.Contains(err.Error(), "SMTP_TIMEOUT") {
		t.Errorf("err = %v, want both problems", err)
	}
}

func TestConfigLogMasksSecrets(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{"SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "smtp-secret", "MAILER_DATABASE_URL": "postgres://mailer:db-secret@db/mailer",
		"KAFKA_TLS": "1", "KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USER": "k", "KAFKA_SASL_PASSWORD": "kafka-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", cfg)
	if out := buf.String(); strings.Contains(out, "secret") || !strings.Contains(out, `"smtp_username":"mailer"`) {
		t.Errorf("log line = %s", out)
	}
}

func TestLoadConfigReadsFiles(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(secret, []byte(" pass word \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(env(map[string]string{"SMTP_USERNAME": "mailer", "SMTP_PASSWORD_FILE": secret}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.Password != " pass word " {
		t.Errorf("password = %q, want the file's content verbatim without the newline", cfg.SMTP.Password)
	}
	_, err = LoadConfig(env(map[string]string{"SMTP_PASSWORD_FILE": filepath.Join(t.TempDir(), "missing")}))
	if err == nil || !strings.Contains(err.Error(), "SMTP_PASSWORD_FILE") {
		t.Errorf("missing file: %v", err)
	}
}

// The mailer takes the original mailer's place: where ours are unset, the
// original design's variables stand in for them; where ours are set, the
// original's are ignored, and the start-up log says which is which.
func TestLoadConfigOriginalVariables(t *testing.T) {
	def := DefaultConfig()
	tests := []struct {
		name             string
		env              map[string]string
		topic, addr      string
		user, pass, from string
		used, ignored    []string
	}{
		{
			name:  "only the original's",
			env:   map[string]string{"KAFKA_TOPIC": "emails", "MAIL_HOST": "smtp.example.com", "MAIL_PORT": "587", "MAIL_USER": "robot", "MAIL_PASS": " s3cret ", "MAIL_FROM_NAME": "Кинотека"},
			topic: "emails", addr: "smtp.example.com:587", user: "robot", pass: " s3cret ", from: "Кинотека <no-reply@kinoteka.local>",
			used: []string{"KAFKA_TOPIC", "MAIL_HOST", "MAIL_PORT", "MAIL_USER", "MAIL_PASS", "MAIL_FROM_NAME"},
		},
		{
			name: "ours win",
			env: map[string]string{"KAFKA_TOPIC": "emails", "MAIL_TOPIC": "mail.v2", "MAIL_HOST": "old.example.com", "SMTP_ADDR": "new.example.com:465",
				"MAIL_USER": "old", "MAIL_PASS": "old-pass", "SMTP_USERNAME": "new", "SMTP_PASSWORD": "new-pass",
				"MAIL_FROM_NAME": "Old", "SMTP_FROM": "New <robot@example.com>"},
			topic: "mail.v2", addr: "new.example.com:465", user: "new", pass: "new-pass", from: "New <robot@example.com>",
			ignored: []string{"KAFKA_TOPIC", "MAIL_HOST", "MAIL_USER", "MAIL_PASS", "MAIL_FROM_NAME"},
		},
		{
			name:  "each half of the address alone",
			env:   map[string]string{"MAIL_HOST": "smtp.example.com"},
			topic: def.Topic, addr: "smtp.example.com:1025", from: def.SMTP.From,
			used: []string{"MAIL_HOST"},
		},
		{
			name:  "the port alone",
			env:   map[string]string{"MAIL_PORT": "2525"},
			topic: def.Topic, addr: "127.0.0.1:2525", from: def.SMTP.From,
			used: []string{"MAIL_PORT"},
		},
		{
			// Credentials are a pair: our user with the original's
			// password would be neither design's account.
			name:  "credentials stay one pair",
			env:   map[string]string{"SMTP_USERNAME": "new", "SMTP_PASSWORD": "new-pass", "MAIL_PASS": "old-pass"},
			topic: def.Topic, addr: def.SMTP.Addr, user: "new", pass: "new-pass", from: def.SMTP.From,
			ignored: []string{"MAIL_PASS"},
		},
		{
			name:  "some of each",
			env:   map[string]string{"KAFKA_TOPIC": "emails", "SMTP_ADDR": "smtp.example.com:587", "MAIL_PORT": "25", "MAIL_FROM_NAME": "Films, Inc."},
			topic: "emails", addr: "smtp.example.com:587", from: `"Films, Inc." <no-reply@kinoteka.local>`,
			used: []string{"KAFKA_TOPIC", "MAIL_FROM_NAME"}, ignored: []string{"MAIL_PORT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Topic != tt.topic || cfg.SMTP.Addr != tt.addr || cfg.SMTP.Username != tt.user || cfg.SMTP.Password != tt.pass {
				t.Errorf("topic %q, addr %q, user %q, password %q; want %q %q %q %q", cfg.Topic, cfg.SMTP.Addr, cfg.SMTP.Username, cfg.SMTP.Password, tt.topic, tt.addr, tt.user, tt.pass)
			}
			// The From header shows the name as given (the stored form may
			// be RFC 2047-encoded).
			from, err := parseFrom(cfg.SMTP.From)
			want, _ := parseFrom(tt.from)
			if err != nil || *from != *want {
				t.Errorf("from = %q (%v), want %q", cfg.SMTP.From, err, tt.from)
			}
			if !slices.Equal(cfg.original.used, tt.used) || !slices.Equal(cfg.original.ignored, tt.ignored) {
				t.Errorf("used %v, ignored %v; want %v, %v", cfg.original.used, cfg.original.ignored, tt.used, tt.ignored)
			}

			var buf bytes.Buffer
			cfg.original.log(slog.New(slog.NewJSONHandler(&buf, nil)))
			line := buf.String()
			for _, name := range append(slices.Clone(tt.used), tt.ignored...) {
				if !strings.Contains(line, name) {
					t.Errorf("start-up line %s does not name %s", line, name)
				}
			}
			if strings.Contains(line, "old-pass") || strings.Contains(line, "s3cret") {
				t.Errorf("start-up line %s shows a value", line)
			}
		})
	}

	// With none of them set there is no such line.
	cfg, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cfg.original.log(slog.New(slog.NewJSONHandler(&buf, nil)))
	if buf.Len() != 0 {
		t.Errorf("start-up line without original variables: %s", buf.String())
	}
}
