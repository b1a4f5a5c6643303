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

// Notices carry no code and code mails must; a notice with a code, or an
// unknown type, is poison.
func TestDecodeNotices(t *testing.T) {
	for _, c := range []struct {
		typ, code string
		ok        bool
	}{
		{TypePasswordChanged, "", true},
		{TypeEmailChanged, "", true},
		{TypeAccountDeleted, "", true},
		{TypeEmailChangeCode, "123456", true},
		{TypeEmailChangeCode, "", false},
		{TypeAccountDeleted, "123456", false},
		{"account_frozen", "", false},
	} {
		env, err := NewCodeMail("e1", c.typ, time.Now(), CodeMail{Email: "a@example.com", Code: c.code})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := env.Encode()
		_, err = Decode(b, "legacy")
		if (err == nil) != c.ok {
			t.Errorf("%s with code %q: err %v, want ok %v", c.typ, c.code, err, c.ok)
		}
	}
}

// A user event survives the round trip; the versions and names a consumer
// relies on are checked, and a missing name takes the stable default.
func TestUserEvents(t *testing.T) {
	env, err := NewUserEvent("e1", time.Now(), UserUpdated{ID: "u1", Name: "Anna", Version: 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := env.Encode()
	got, err := DecodeUserEvent(b)
	if err != nil || got != (UserEvent{EventID: "e1", Type: TypeUserUpdated, ID: "u1", Name: "Anna", Version: 3}) {
		t.Fatalf("updated: %+v, %v", got, err)
	}
	env, _ = NewUserEvent("e2", time.Now(), UserUpdated{ID: "u1", Version: 4}, true)
	b, _ = env.Encode()
	if got, err = DecodeUserEvent(b); err != nil || !got.Deleted() || got.Version != 4 || got.Name != "" {
		t.Fatalf("deleted: %+v, %v", got, err)
	}
	for _, bad := range []string{
		`{"id":"e","type":"user.updated","version":1,"occurred_at":"2026-01-01T00:00:00Z","data":{"id":"u","version":1}}`,
		`{"id":"e","type":"user.updated","version":1,"occurred_at":"2026-01-01T00:00:00Z","data":{"id":"u","name":"A","version":0}}`,
		`{"id":"e","type":"user.renamed","version":1,"occurred_at":"2026-01-01T00:00:00Z","data":{"id":"u","version":1}}`,
		`{"id":"e","type":"user.deleted","version":2,"occurred_at":"2026-01-01T00:00:00Z","data":{"id":"u","version":1}}`,
		`not json`,
	} {
		if _, err := DecodeUserEvent([]byte(bad)); !errors.Is(err, ErrPoison) {
			t.Errorf("%s: err %v, want poison", bad, err)
		}
	}
	a, b2 := DisplayName("0190a0e0-0000-7000-8000-000000000001", ""), DisplayName("0190a0e0-0000-7000-8000-000000000002", "")
	if !strings.HasPrefix(a, "Reader ") || a == b2 || a != DisplayName("0190a0e0-0000-7000-8000-000000000001", "") {
		t.Errorf("default names %q, %q: want stable, distinct, Reader-prefixed", a, b2)
	}
	if DisplayName("x", "Anna") != "Anna" {
		t.Error("a chosen name is shown as it is")
	}
}
