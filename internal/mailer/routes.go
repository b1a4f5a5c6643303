package mailer

import (
	"log/slog"
	"net/http"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/telemetry"
)

// routes is the mailer's HTTP API: probes, metrics and the delivery log.
// It listens on the operators' port (MAILER_ADDR, loopback by default).
func routes(log *slog.Logger, deliveries *DeliveryLog, metrics *httpapi.Metrics, tracing *telemetry.Tracing, checks map[string]httpapi.Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/deliveries/{event_id}", handleDelivery(log, deliveries))
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("GET /openapi.json", apidocs.Mailer.ServeJSON())
	mux.Handle("GET /docs", apidocs.Mailer.ServePage())
	httpapi.Health(mux, checks)
	return httpapi.Stack{Log: log, Metrics: metrics, Tracing: tracing}.Handler(mux)
}
