package auth

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestRandomCodeRejectsBiasedDraws(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"small", []byte{0, 0, 0, 7}, "000007"},
		{"wraps", []byte{0, 0x0f, 0x42, 0x40}, "000000"}, // 1,000,000
		{"largest accepted", be(codeLimit - 1), "999999"},
		// Draws at or above codeLimit would favour low codes; they are
		// thrown away and the next four bytes are used.
		{"rejected then accepted", append(be(codeLimit), 0, 0, 0, 42), "000042"},
		{"max rejected", append(be(0xffffffff), 0, 0, 0x30, 0x39), "012345"},
	} {
		got, err := randomCode(bytes.NewReader(tc.bytes))
		if err != nil || got != tc.want {
			t.Errorf("%s: randomCode = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := randomCode(bytes.NewReader(be(codeLimit))); err == nil {
		t.Error("a reader that runs dry after a rejected draw gave a code")
	}
}

func be(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func TestRandomCodeIsSixDigits(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := randomCode(rand.Reader)
		if err != nil || !sixDigits.MatchString(c) {
			t.Fatalf("randomCode = %q, %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Errorf("only %d distinct codes in 200 draws", len(seen))
	}
}

func TestCodeMACIsBoundToSecretPurposeAndUser(t *testing.T) {
	base := codeMAC(testSecret, purposeVerify, "user-1", "123456")
	if strings.Contains(base, "123456") || len(base) != 64 {
		t.Errorf("MAC %q", base)
	}
	for name, other := range map[string]string{
		"other code":    codeMAC(testSecret, purposeVerify, "user-1", "123457"),
		"other user":    codeMAC(testSecret, purposeVerify, "user-2", "123456"),
		"other purpose": codeMAC(testSecret, "reset", "user-1", "123456"),
		"other secret":  codeMAC([]byte("another secret of thirty-two b!!"), purposeVerify, "user-1", "123456"),
		"shifted field": codeMAC(testSecret, purposeVerify, "user-11", "23456"),
	} {
		if other == base {
			t.Errorf("%s: same MAC", name)
		}
	}
}
