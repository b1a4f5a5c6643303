package mailer

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/httpapi"
)

// routes is the mailer's HTTP API: probes, metrics and the delivery log.
// It listens on the operators' port (MAILER_ADDR, loopback by default).
func routes(log *slog.Logger, deliveries *DeliveryLog, stats *counters, checks map[string]httpapi.Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/deliveries/{event_id}", handleDelivery(log, deliveries))
	mux.Handle("GET /metrics", handleMetrics(stats))
	httpapi.Health(mux, checks)
	return httpapi.Observe(log, mux)
}

// deliveryResponse answers "what happened to the mail of event X".
type deliveryResponse struct {
	EventID   string     `json:"event_id"`
	EventType string     `json:"event_type,omitempty"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	Topic     string     `json:"topic"`
	Partition int32      `json:"partition"`
	Offset    int64      `json:"offset"`
	FirstSeen time.Time  `json:"first_seen_at"`
	Updated   time.Time  `json:"updated_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

func handleDelivery(log *slog.Logger, deliveries *DeliveryLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := deliveries.Get(r.Context(), r.PathValue("event_id"))
		if err != nil {
			httpapi.Error(w, r, log, err)
			return
		}
		resp := deliveryResponse{
			EventID: d.EventID, EventType: d.EventType, Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError,
			Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, FirstSeen: d.FirstSeen, Updated: d.Updated,
		}
		if !d.SentAt.IsZero() {
			resp.SentAt = &d.SentAt
		}
		w.Header().Set("Cache-Control", "no-store")
		httpapi.JSON(w, http.StatusOK, resp)
	})
}

// handleMetrics writes the counters in Prometheus' text format.
func handleMetrics(stats *counters) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		for _, m := range []struct {
			name, help string
			value      int64
		}{
			{"kinoteka_mailer_sent_total", "Mails the SMTP server accepted.", stats.sent.Load()},
			{"kinoteka_mailer_duplicates_skipped_total", "Re-delivered records not mailed again because the delivery log had them as sent.", stats.duplicates.Load()},
			{"kinoteka_mailer_dead_lettered_total", "Records parked in the dead-letter topic.", stats.deadLettered.Load()},
			{"kinoteka_mailer_send_failures_total", "Failed SMTP attempts (each is retried or dead-lettered).", stats.failures.Load()},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", m.name, m.help, m.name, m.name, m.value)
		}
	})
}
