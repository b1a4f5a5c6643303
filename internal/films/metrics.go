package films

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/tokens"
)

// newMetrics is films' registry: the HTTP series and
// kinoteka_films_token_failures_total by reason (tokens.Reasons, plus
// bad_header for an Authorization header that holds no single Bearer
// token). Every reason starts at zero, so a rate can be taken from the
// first scrape.
func newMetrics() (*httpapi.Metrics, *prometheus.CounterVec) {
	m := httpapi.NewMetrics()
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinoteka_films_token_failures_total",
		Help: "Access tokens refused (401), by reason.",
	}, []string{"reason"})
	for _, r := range slices.Concat(tokens.Reasons, []string{reasonBadHeader}) {
		failures.WithLabelValues(r)
	}
	m.Registry.MustRegister(failures)
	return m, failures
}

// reasonBadHeader labels a refusal before any token was looked at.
const reasonBadHeader = "bad_header"
