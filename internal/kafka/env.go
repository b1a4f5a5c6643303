package kafka

import (
	"errors"
	"fmt"

	"kinoteka/internal/config"
)

// DefaultBrokers is where the embedded broker listens.
const DefaultBrokers = "127.0.0.1:9092"

// ReadEnv applies the variables every Kafka client of Kinoteka shares —
// KAFKA_BROKERS, KAFKA_TLS, KAFKA_SASL_MECHANISM, KAFKA_SASL_USER,
// KAFKA_SASL_PASSWORD — on top of *cfg, a service's defaults, the way
// config.Env reads the rest of its configuration. A variable that is set
// is taken as written: KAFKA_BROKERS=" , " leaves no brokers, which
// Validate reports.
func ReadEnv(env *config.Env, cfg *Config) {
	env.List("KAFKA_BROKERS", &cfg.Brokers)
	env.Bool("KAFKA_TLS", &cfg.TLS)
	env.Lower("KAFKA_SASL_MECHANISM", &cfg.SASL)
	env.String("KAFKA_SASL_USER", &cfg.User)
	env.Secret("KAFKA_SASL_PASSWORD", &cfg.Password)
}

// Validate checks a configuration however it was built, naming the
// variables a user would set.
func (cfg Config) Validate() error {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one host:port"))
	}
	switch cfg.SASL {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if cfg.User == "" || cfg.Password == "" {
			errs = append(errs, errors.New("KAFKA_SASL_USER and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM"))
		}
		if cfg.SASL == "plain" && !cfg.TLS {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_TLS=true"))
		}
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not one of plain, scram-sha-256, scram-sha-512", cfg.SASL))
	}
	return errors.Join(errs...)
}
