package mailer

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// A record's log lines each carry the record's attributes and their own;
// a line's own attributes never reach another line, and a line below the
// level is not written.
func TestRecordLoggerLinesCarryTheRecord(t *testing.T) {
	var buf bytes.Buffer
	log := recordLogger{slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), []any{"event_id", "ev-1", "offset", 7}}
	dlq := log.with("reason", "poison")
	log.Info("mail sent", "attempts", 1)
	dlq.Warn("record moved to the dead-letter topic", "dlq", "mail.requests.dlq")
	log.Log(t.Context(), slog.LevelDebug, "not written")
	log.Info("mail already sent")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines; want 3:\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"msg": "mail sent", "event_id": "ev-1", "offset": 7.0, "attempts": 1.0},
		{"msg": "record moved to the dead-letter topic", "event_id": "ev-1", "offset": 7.0, "reason": "poison", "dlq": "mail.requests.dlq"},
		{"msg": "mail already sent", "event_id": "ev-1", "offset": 7.0},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		delete(got, "time")
		delete(got, "level")
		if len(got) != len(want[i]) {
			t.Errorf("line %d = %v; want %v", i, got, want[i])
			continue
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v; want %v", i, k, got[k], v)
			}
		}
	}
}
