package web

import (
	"github.com/prometheus/client_golang/prometheus"

	"kinoteka/internal/httpapi"
)

// newMetrics is web's registry: the HTTP series, plus
// kinoteka_web_api_calls_total{service, outcome} (calls to auth and films:
// ok, refused with a 4xx, unavailable) and
// kinoteka_web_session_refreshes_total{outcome} (renewed, ended by auth,
// failed). Every series starts at zero.
func newMetrics() (m *httpapi.Metrics, calls func(service, outcome string), refreshes func(outcome string)) {
	m = httpapi.NewMetrics()
	callVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinoteka_web_api_calls_total",
		Help: "Calls from web to auth and films, by service and outcome (ok, refused, unavailable).",
	}, []string{"service", "outcome"})
	refreshVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinoteka_web_session_refreshes_total",
		Help: "Access token renewals through auth's refresh, by outcome (renewed, ended, failed).",
	}, []string{"outcome"})
	for _, s := range []string{"auth", "films"} {
		for _, o := range []string{"ok", "refused", "unavailable"} {
			callVec.WithLabelValues(s, o)
		}
	}
	for _, o := range []string{"renewed", "ended", "failed"} {
		refreshVec.WithLabelValues(o)
	}
	m.Registry.MustRegister(callVec, refreshVec)
	return m,
		func(service, outcome string) { callVec.WithLabelValues(service, outcome).Inc() },
		func(outcome string) { refreshVec.WithLabelValues(outcome).Inc() }
}
