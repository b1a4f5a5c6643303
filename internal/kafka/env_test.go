package kafka

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"kinoteka/internal/config"
)

func TestReadEnv(t *testing.T) {
	defaults := func() Config { return Config{Brokers: []string{DefaultBrokers}, ClientID: "svc"} }
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string // each must appear in Err or Validate
	}{
		{"unset keeps the defaults", nil, defaults(), nil},
		{"values", map[string]string{"KAFKA_BROKERS": " a:1, b:2 ,,", "KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USER": " u ", "KAFKA_SASL_PASSWORD": " p w "},
			Config{Brokers: []string{"a:1", "b:2"}, ClientID: "svc", TLS: true, SASL: "scram-sha-256", User: "u", Password: " p w "}, nil},
		{"no brokers left", map[string]string{"KAFKA_BROKERS": " , "}, Config{}, []string{"KAFKA_BROKERS"}},
		{"bad values", map[string]string{"KAFKA_TLS": "sure", "KAFKA_SASL_MECHANISM": "kerberos"}, Config{}, []string{"KAFKA_TLS", "KAFKA_SASL_MECHANISM"}},
		{"plain without TLS", map[string]string{"KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USER": "u", "KAFKA_SASL_PASSWORD": "p"}, Config{}, []string{"in clear"}},
		{"SASL without password", map[string]string{"KAFKA_TLS": "1", "KAFKA_SASL_MECHANISM": "scram-sha-256", "KAFKA_SASL_USER": "u"}, Config{}, []string{"KAFKA_SASL_PASSWORD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := defaults()
			env := config.NewEnv(func(k string) string { return tt.env[k] })
			ReadEnv(env, &got)
			err := errors.Join(env.Err(), got.Validate())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.Brokers, tt.want.Brokers) || got.ClientID != tt.want.ClientID || got.TLS != tt.want.TLS || got.SASL != tt.want.SASL ||
					got.User != tt.want.User || got.Password != tt.want.Password {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}
