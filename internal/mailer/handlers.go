package mailer

import (
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/httpapi"
)

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
