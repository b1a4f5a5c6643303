package auth

import (
	"strings"
	"testing"
)

func TestParseEmail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	for _, tc := range []struct {
		in, want string // want "" means rejected
	}{
		{"anna@example.com", "anna@example.com"},
		{"  Anna.Petrova@Example.COM\t", "anna.petrova@example.com"},
		{"first+tag@mail.example.co.uk", "first+tag@mail.example.co.uk"},
		{"o'hara_x-y@sub-domain.example", "o'hara_x-y@sub-domain.example"},
		{"a@b.c1", "a@b.c1"},
		{"", ""},
		{"   ", ""},
		{"plainaddress", ""},
		{"@example.com", ""},
		{"anna@", ""},
		{"anna@localhost", ""},
		{"anna@127.0.0.1", ""},
		{"anna@@example.com", ""},
		{"an na@example.com", ""},
		{".anna@example.com", ""},
		{"anna.@example.com", ""},
		{"an..na@example.com", ""},
		{"anna@-example.com", ""},
		{"anna@example-.com", ""},
		{"anna@example..com", ""},
		{"anna@exa_mple.com", ""},
		{"Anna <anna@example.com>", ""},
		{`"anna"@example.com`, ""},
		{"анна@пример.рф", ""},
		{"anna@example.com\r\nBcc: x@y.z", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{long, ""},           // 255 characters
		{long[1:], long[1:]}, // 254 characters
	} {
		got, msg := parseEmail(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseEmail(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}

func TestParseNewPassword(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", false},
		{"1234567", false},
		{"12345678", true},
		{"пароль!!", true},               // 8 runes, 14 bytes
		{"пароль!", false},               // 7 runes, though 13 bytes
		{strings.Repeat("я", 128), true}, // 256 bytes
		{strings.Repeat("x", 129), false},
		{"  spaces count  ", true},
	} {
		got, msg := parseNewPassword(tc.in)
		if (msg == "") != tc.ok || (tc.ok && got != tc.in) {
			t.Errorf("parseNewPassword(%q) = %q, %q; want ok=%v and the input unchanged", tc.in, got, msg, tc.ok)
		}
	}
}

func TestParseLocale(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means rejected
	}{
		{"", "en"},
		{"en", "en"},
		{"ru", "ru"},
		{"RU", "ru"},
		{"ru-RU", "ru"},
		{"ru_RU", "ru"},
		{"en-GB", "en"},
		{"de", "en"},
		{"zh-Hant-TW", "en"},
		{"r", ""},
		{"russian", ""},
		{"ru-RU-verylongsubtag", ""},
		{"12", ""},
		{"ru;q=0.9", ""},
		{strings.Repeat("ab-", 13), ""},
	} {
		got, msg := parseLocale(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseLocale(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"012345", "012345"},
		{" 012345 ", "012345"},
		{"12345", ""},
		{"1234567", ""},
		{"12a456", ""},
		{"١٢٣٤٥٦", ""}, // Arabic-Indic digits
		{"", ""},
	} {
		got, msg := parseCode(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseCode(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}
