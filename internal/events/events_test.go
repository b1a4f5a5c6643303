package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	env, err := NewCodeMail("0193f6f2-aaaa", TypeVerificationCode, at, CodeMail{Email: "a@example.com", Code: "123456", Locale: "ru", ExpiresAt: at.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0193f6f2-aaaa","type":"verification_code","version":1,"occurred_at":"2026-11-27T10:00:00Z","data":{"email":"a@example.com","code":"123456","locale":"ru","expires_at":"2026-11-27T10:10:00Z"}}`
	if string(b) != want {
		t.Fatalf("wire form\n got %s\nwant %s", b, want)
	}
	d, err := Decode(b, "unused")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "0193f6f2-aaaa" || d.Type != TypeVerificationCode || d.Legacy || d.Mail.Code != "123456" || d.Mail.Locale != "ru" || !d.Mail.ExpiresAt.Equal(at.Add(10*time.Minute)) {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodeLegacyPayload(t *testing.T) {
	d, err := Decode([]byte(`{"email":"old@example.com","code":"654321"}`), "kafka:mail.requests/2/17")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Legacy || d.ID != "kafka:mail.requests/2/17" || d.Type != TypeVerificationCode || d.Mail.Email != "old@example.com" {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodePoison(t *testing.T) {
	tests := map[string]string{
		"garbage":          "\x00\xffnot json",
		"array":            `[1,2]`,
		"empty object":     `{}`,
		"unknown type":     `{"id":"1","type":"sms_code","version":1,"data":{"email":"a@b.c","code":"1"}}`,
		"future version":   `{"id":"1","type":"verification_code","version":2,"data":{"email":"a@b.c","code":"1"}}`,
		"no id":            `{"type":"verification_code","version":1,"data":{"email":"a@b.c","code":"1"}}`,
		"bad email":        `{"id":"1","type":"verification_code","version":1,"data":{"email":"nobody","code":"1"}}`,
		"header injection": `{"id":"1","type":"verification_code","version":1,"data":{"email":"a@b.c\r\nBcc: x@y.z","code":"1"}}`,
		"no code":          `{"email":"a@b.c"}`,
		"data not object":  `{"id":"1","type":"verification_code","version":1,"data":"x"}`,
		"trailing data":    `{"email":"a@b.c","code":"1"} {}`,
	}
	for name, value := range tests {
		if _, err := Decode([]byte(value), "k"); !errors.Is(err, ErrPoison) {
			t.Errorf("%s: want ErrPoison, got %v", name, err)
		}
	}
}

func TestDecodeToleratesNewOptionalFields(t *testing.T) {
	v := `{"id":"1","type":"password_reset_code","version":1,"occurred_at":"2026-11-27T10:00:00Z","trace":"x","data":{"email":"a@b.c","code":"123456","new_field":true}}`
	if d, err := Decode([]byte(v), "k"); err != nil || d.Type != TypePasswordResetCode {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"id":"1","type":"verification_code","version":1,"data":{"email":"a@b.c","code":"123456"}}`)
	f.Add(`{"email":"a@b.c","code":"1"}`)
	f.Add(`{"type":null}`)
	f.Fuzz(func(t *testing.T, v string) {
		d, err := Decode([]byte(v), "legacy")
		if err != nil {
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("error without ErrPoison: %v", err)
			}
			return
		}
		if d.ID == "" || !strings.Contains(d.Mail.Email, "@") || d.Mail.Code == "" {
			t.Fatalf("accepted an unusable event: %+v", d)
		}
	})
}
