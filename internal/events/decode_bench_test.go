package events

import "testing"

// BenchmarkDecodeBare and BenchmarkDecodeEnvelope decode one mail request
// in each shape, as the mailer does for every record.
func BenchmarkDecodeBare(b *testing.B) {
	v := []byte(`{"email":"user42@example.com","code":"123456"}`)
	for b.Loop() {
		if _, err := Decode(v, "kafka:mail/0/1@1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	v := []byte(`{"id":"0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b","type":"verification_code","version":1,"occurred_at":"2026-11-27T10:00:00Z","data":{"email":"a@b.c","code":"123456","locale":"ru","expires_at":"2026-11-27T10:15:00Z"}}`)
	for b.Loop() {
		if _, err := Decode(v, "k"); err != nil {
			b.Fatal(err)
		}
	}
}
